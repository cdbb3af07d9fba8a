//! The rsrun binary: parse the command line, run the verb, print errors, choose the exit
//! code. The only place that prints errors.

// Its own entry point (below); the test harness brings one when built for tests.
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code))]

use clap::Parser;
use rsrun::cli::{Cli, Command, CreateArgs, Deferred, ListFormat, LogFormat, RunArgs};
use rsrun::container::{parse_signal, CreateOpts, Runtime};
use rsrun::error::Error;
use rsrun::logger::{Format, Logger};

fn create_opts(a: &CreateArgs) -> CreateOpts {
    CreateOpts {
        bundle: a.bundle.clone(),
        pid_file: a.handoff.pid_file.clone(),
        console_socket: a.handoff.console_socket.clone(),
        console_fd: None,
        pidfd_socket: a.handoff.pidfd_socket.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.handoff.preserve_fds,
    }
}

fn version() -> String {
    format!(
        "rsrun version {}\ncommit: {}\nspec: {}\n",
        env!("CARGO_PKG_VERSION"),
        env!("RSRUN_COMMIT"),
        rsrun::state::OCI_VERSION
    )
}

fn run(cli: Cli, rt: &Runtime) -> Result<i32, Error> {
    let Some(cmd) = cli.command else {
        return Err(Error::container("no command given: see rsrun --help"));
    };
    match cmd {
        Command::Create(a) => rt.create(&a.id, &create_opts(&a)).map(|_| 0),
        Command::Start { id } => rt.start(&id).map(|()| 0),
        Command::State { id } => {
            let st = rt.state(&id)?;
            let mut text =
                serde_json::to_string_pretty(&st).map_err(|e| Error::container(e.to_string()))?;
            text.push('\n');
            // One write: stdout's line buffering would split it at the last newline.
            std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes())
                .map_err(|e| Error::sys("write", "stdout", rsrun::error::io_errno(&e)))?;
            Ok(0)
        }
        Command::Kill { all, id, signal } => rt.kill(&id, parse_signal(&signal)?, all).map(|()| 0),
        Command::Delete { force, ids } => {
            for id in ids {
                rt.delete(&id, force)?;
            }
            Ok(0)
        }
        Command::Run(a) => {
            rsrun::cli::run::run(rt, &a.create.id, create_opts(&a.create), a.detach, a.keep)
        }
        Command::List { format, quiet } => {
            let items = rt.list()?;
            let out = if quiet {
                items.iter().map(|s| format!("{}\n", s.id)).collect()
            } else if format == ListFormat::Json {
                rsrun::cli::list::json(&items)
            } else {
                rsrun::cli::list::table(&items)
            };
            print!("{out}");
            Ok(0)
        }
        Command::Spec { bundle, rootless } => {
            let path = bundle.join("config.json");
            if rsrun::sys::fs::exists(&path) {
                return Err(Error::container(format!(
                    "File {} exists. Remove it first",
                    path.display()
                )));
            }
            let pure_v2 = rsrun::cgroups::Cgroup::resolve(None, "spec")
                .is_ok_and(|c| c.mode == rsrun::cgroups::Mode::V2);
            let text = if rootless {
                let (uid, gid) = (rsrun::sys::proc::geteuid(), rsrun::sys::proc::getegid());
                rsrun::spec::default::rootless_for_host(pure_v2, uid, gid)
            } else {
                rsrun::spec::default::for_host(pure_v2)
            };
            rsrun::sys::fs::write_file(&path, text.as_bytes())?;
            Ok(0)
        }
        Command::Ps {
            format,
            id,
            ps_args,
        } => {
            print!(
                "{}",
                rsrun::cli::ps::ps(rt, &id, format == ListFormat::Json, &ps_args)?
            );
            Ok(0)
        }
        Command::Events {
            stats,
            interval,
            id,
        } => rsrun::cli::events::events(rt, &id, stats, &interval).map(|()| 0),
        Command::Update(a) => rsrun::cli::update::update(rt, &a).map(|()| 0),
        Command::Features => {
            print!("{}", rsrun::cli::features::features());
            Ok(0)
        }
        Command::Exec(a) => rsrun::cli::exec::exec(rt, a.0),
        Command::Pause { id } => rt.pause(&id).map(|()| 0),
        Command::Resume { id } => rt.resume(&id).map(|()| 0),
        Command::Checkpoint(a) => rt.checkpoint(&a.id, &a.opts()?).map(|()| 0),
        Command::Restore(a) => rt.restore(&a.id, &a.opts()?),
    }
}

/// For a command whose process (or its clone) enters a container: how many fds above
/// stdio go to the container (`--preserve-fds`, and for create/run the socket-activation
/// ones, which come first), and whether LISTEN_FDS/LISTEN_PID and NOTIFY_SOCKET are
/// passed on (create/run only).
fn container_fds(cmd: &Option<Command>) -> Option<(u32, bool, bool)> {
    match cmd {
        Some(Command::Create(Deferred(a)))
        | Some(Command::Run(Deferred(RunArgs { create: a, .. }))) => {
            let listen = rsrun::container::listen_fds();
            Some((
                a.handoff.preserve_fds.saturating_add(listen),
                listen > 0,
                true,
            ))
        }
        Some(Command::Exec(a)) => Some((a.handoff.preserve_fds, false, false)),
        _ => None,
    }
}

/// The entry point: Rust's runtime start-up is skipped (see `rsrun::sys::exe::process_start`
/// for what it did that rsrun still needs); arguments still come from std::env.
#[cfg(not(test))]
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    rsrun::sys::exe::process_start();
    real_main();
    0
}

/// Go's flag parsers take long flags with one dash too, and runc's clients use that:
/// containerd's go-runc passes `restore … -no-subreaper`. Those spellings become `--`.
fn runc_spellings(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    const SINGLE_DASH: [&str; 1] = ["-no-subreaper"];
    args.map(|a| match a.to_str() {
        Some(s) if SINGLE_DASH.contains(&s) => format!("-{s}").into(),
        _ => a,
    })
    .collect()
}

fn real_main() {
    let cli = Cli::parse_from(runc_spellings(std::env::args_os()));
    if cli.version {
        print!("{}", version());
        return;
    }
    // runc's contract: every failure of `exec` itself exits 255, so it cannot be taken
    // for the exit status of the process (which `exec` returns when it ran).
    let failed = if matches!(cli.command, Some(Command::Exec(_))) {
        255
    } else {
        1
    };
    let fail = |e: Error| -> ! {
        eprintln!("rsrun: {e}");
        std::process::exit(failed);
    };
    let rootless = match rsrun::rootless::parse_flag(cli.rootless.as_deref()) {
        Ok(flag) => rsrun::rootless::Rootless::new(flag),
        Err(e) => fail(e),
    };
    // The state root comes from the caller's environment (XDG_RUNTIME_DIR), which the
    // re-exec below drops: it is found here and passed on as --root.
    let (root, root_given) = match &cli.root {
        Some(r) => (r.clone(), true),
        None => match rsrun::rootless::default_state_root() {
            Ok(r) => (r, false),
            Err(e) => fail(e),
        },
    };
    // Before anything else, a command that enters a container lets go of what its caller
    // gave it beyond what goes to the container: every other fd is closed, and the process
    // re-executes (read-only, CVE-2019-5736) with only the variables it passes on, so no
    // process it clones into the container holds the caller's fds or environment.
    if let Some((kept, listen, notify)) = container_fds(&cli.command) {
        use rsrun::sys::exe;
        if let Err(e) = exe::close_fds_from(3u32.saturating_add(kept)) {
            fail(e);
        }
        let env = exe::container_env(listen, notify);
        if !exe::running_readonly() || !exe::env_is(&env) {
            let root_arg = (!root_given).then_some(root.as_path());
            fail(exe::reexec_readonly(&env, root_arg));
        }
    }
    let log = Logger {
        file: cli.log.clone(),
        format: if cli.log_format == LogFormat::Json {
            Format::Json
        } else {
            Format::Text
        },
        debug: cli.debug,
    };
    let rt = Runtime {
        root,
        rootless,
        log: log.clone(),
        systemd_cgroup: cli.systemd_cgroup,
    };
    match run(cli, &rt) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let msg = e.to_string();
            if log.file.is_some() {
                log.log("error", &msg);
            }
            eprintln!("rsrun: {msg}");
            std::process::exit(failed);
        }
    }
}

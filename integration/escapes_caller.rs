//! What rsrun's caller holds must not reach the container: its fds and its environment
//! stay out of every process that runs in the container's namespaces (the created init,
//! startContainer hooks, `exec`'d processes), and hooks that run in the container are
//! confined as its process is.

use crate::common::*;
use serde_json::json;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SECRET: &str = "RSRUN_CALLER_SECRET=hunter2";

/// Give `cmd` the caller's baggage: a host directory on fd 9 (not CLOEXEC) and a secret
/// in its environment.
fn with_caller_baggage(cmd: &mut Command, host_dir: &Path) {
    let (k, v) = SECRET.split_once('=').unwrap();
    cmd.env(k, v);
    give_fd(cmd, host_dir, 9);
}

/// Open `path` and give it to `cmd` as fd `n`, not CLOEXEC. The file is kept at a high
/// fd number here, so that no other `give_fd` of the same command (whose dup2s run one
/// after another in the child) can overwrite it before it is dup'ed to `n`.
fn give_fd(cmd: &mut Command, path: &Path, n: i32) {
    use std::os::fd::{AsRawFd, FromRawFd};
    let opened = std::fs::File::open(path).unwrap();
    // SAFETY: F_DUPFD_CLOEXEC on a valid fd returns a new fd we own.
    let high = unsafe { libc::fcntl(opened.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 512) };
    assert!(
        high >= 512,
        "F_DUPFD_CLOEXEC: {}",
        std::io::Error::last_os_error()
    );
    let f = unsafe { std::fs::File::from_raw_fd(high) };
    // SAFETY: dup2 is async-signal-safe; the File moves into the closure.
    unsafe {
        cmd.pre_exec(move || {
            let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
            let ret = if fd == n {
                libc::fcntl(n, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, n)
            };
            if ret < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// `ls -l` of a shell's own fd table (`$$`, not ls's) into `file`, and its environment
/// (stdout is redirected for good first, so the shell keeps no saved copy of it).
fn record(file: &str) -> String {
    format!("exec > {file}.fds; ls -l /proc/$$/fd; tr '\\0' '\\n' < /proc/$$/environ > {file}.env")
}

/// A log directory bind-mounted at the same path inside the container.
fn log_dir(env: &Env) -> String {
    let logdir = env.dir.join("log");
    std::fs::create_dir_all(&logdir).unwrap();
    let ld = logdir.to_str().unwrap().to_string();
    env.edit(|v| {
        v["mounts"].as_array_mut().unwrap().push(json!({
            "destination": ld, "type": "bind", "source": ld, "options": ["rbind", "rw"]
        }));
    });
    ld
}

/// The fd numbers in an `ls -l /proc/N/fd` listing, sorted.
fn fd_numbers(listing: &str) -> Vec<u32> {
    let mut n: Vec<u32> = listing
        .lines()
        .filter(|l| l.contains(" -> "))
        .filter_map(|l| {
            l.split(" -> ")
                .next()?
                .split_whitespace()
                .last()?
                .parse()
                .ok()
        })
        .collect();
    n.sort_unstable();
    n
}

/// From the host: `pid` holds no fd of the caller (none that is not CLOEXEC above
/// `3 + kept`, none on `host_dir`) and no variable of the caller's environment.
fn assert_no_baggage(pid: i32, kept: u32, host_dir: &Path, what: &str) {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(
        !environ.contains("RSRUN_CALLER_SECRET"),
        "{what} ({pid}) carries the caller's environment ({} bytes)",
        environ.len()
    );
    for e in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let e = e.unwrap();
        let n: u32 = e.file_name().to_str().unwrap().parse().unwrap();
        let target = std::fs::read_link(e.path()).unwrap_or_default();
        assert_ne!(
            target, host_dir,
            "{what} ({pid}) holds the caller's directory on fd {n}"
        );
        if n < 3 + kept {
            continue;
        }
        let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{n}")).unwrap();
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .map(|f| u32::from_str_radix(f.trim(), 8).unwrap())
            .unwrap();
        assert_ne!(
            flags & libc::O_CLOEXEC as u32,
            0,
            "{what} ({pid}) holds fd {n} ({}) across exec",
            target.display()
        );
    }
}

/// Wait (bounded) for `path` to exist and return its contents.
fn wait_file(path: &Path) -> String {
    let end = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(Instant::now() < end, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::read_to_string(path).unwrap()
}

/// A caller of `create` holding a host directory fd and a secret: neither is in the
/// created init (seen from the host), in a startContainer hook (which could walk
/// /proc/self/fd/9/../.. to the host's root) or in the container's process.
/// `--preserve-fds` still passes exactly what it names.
#[test]
fn caller_fds_and_env_stay_out_of_init_and_hooks() {
    let env = Env::new("caller-create");
    let ld = log_dir(&env);
    let hook = format!(
        "{}; ls /proc/self/fd/9/../.. > {ld}/walk 2>&1; true",
        record(&format!("{ld}/hook"))
    );
    env.edit(|v| {
        v["hooks"] = json!({
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", hook]}]
        });
    });
    env.set_args(&["sh", "-c", &record(&format!("{ld}/proc"))]);
    let preserved = env.dir.join("preserved");
    std::fs::write(&preserved, "p").unwrap();
    let mut cmd = env.cmd(&[
        "create",
        "--preserve-fds",
        "1",
        "--bundle",
        env.bundle.to_str().unwrap(),
        "cc1",
    ]);
    with_caller_baggage(&mut cmd, &env.bundle);
    give_fd(&mut cmd, &preserved, 3);
    let r = output(cmd);
    assert_eq!(r.code, 0, "create: {}", r.stderr);
    let pid = env.state("cc1")["pid"].as_i64().unwrap() as i32;
    assert_no_baggage(pid, 1, &env.bundle, "the created init");

    assert_eq!(env.rsrun(&["start", "cc1"]).code, 0);
    env.wait_status("cc1", "stopped");
    let walk = std::fs::read_to_string(format!("{ld}/walk")).unwrap();
    assert!(
        !walk.contains("rootfs") && walk.contains("No such file"),
        "the hook walked to the host through fd 9: {walk}"
    );
    for who in ["hook", "proc"] {
        let fds = std::fs::read_to_string(format!("{ld}/{who}.fds")).unwrap();
        let numbers = fd_numbers(&fds);
        assert_eq!(numbers, vec![0, 1, 2, 3], "fds of the {who}: {fds}");
        assert!(
            fds.contains(preserved.to_str().unwrap()),
            "fd 3 of the {who} is not the preserved file: {fds}"
        );
        let envs = std::fs::read_to_string(format!("{ld}/{who}.env")).unwrap();
        assert!(
            !envs.contains("RSRUN_CALLER_SECRET"),
            "the {who} sees the caller's environment: {envs}"
        );
    }
    assert_eq!(env.rsrun(&["delete", "cc1"]).code, 0);
    env.assert_clean("cc1", None);
}

/// `rsrun exec` from a caller holding a host directory fd and a secret: the process it
/// clones into the container's cgroup holds neither before its execve (seen from the
/// host while the container is paused), nor does the exec'd process.
#[test]
fn caller_fds_and_env_stay_out_of_exec() {
    let env = Env::new("caller-exec");
    let ld = log_dir(&env);
    env.set_args(&["sleep", "100"]);
    let init = env.run_detached("ce1");
    assert_eq!(env.rsrun(&["pause", "ce1"]).code, 0);
    // `rsrun resume` would wait for the container's lock, which exec holds: thaw through
    // the cgroup, also when an assertion fails (or the cleanup would wait forever).
    struct Thaw(rsrun::cgroups::Cgroup);
    impl Drop for Thaw {
        fn drop(&mut self) {
            let _ = rsrun::cgroups::freezer::set_frozen(&self.0, false);
        }
    }
    let thaw = Thaw(rsrun::cgroups::Cgroup::resolve(None, "ce1").unwrap());

    let script = record(&format!("{ld}/exec"));
    let mut cmd = env.cmd(&["exec", "--ignore-paused", "ce1", "sh", "-c", &script]);
    with_caller_baggage(&mut cmd, &env.bundle);
    let pending = std::thread::spawn(move || output(cmd));
    // The clone joins the frozen cgroup before it execs: it stops there.
    let end = Instant::now() + Duration::from_secs(10);
    let child = loop {
        let r = env.rsrun(&["ps", "--format", "json", "ce1"]);
        let pids: Vec<i32> = serde_json::from_str(&r.stdout).unwrap_or_default();
        if let Some(p) = pids.into_iter().find(|p| *p != init) {
            break p;
        }
        assert!(
            Instant::now() < end,
            "the exec'd process never joined the cgroup"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let comm = std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap();
    assert_eq!(comm.trim(), "rsrun", "not the process before its execve");
    assert_no_baggage(child, 0, &env.bundle, "the exec'd process before execve");
    drop(thaw);
    let r = pending.join().unwrap();
    assert_eq!(r.code, 0, "exec: {}", r.stderr);
    let fds = wait_file(Path::new(&format!("{ld}/exec.fds")));
    assert_eq!(
        fd_numbers(&fds),
        vec![0, 1, 2],
        "fds of the exec'd process: {fds}"
    );
    let envs = wait_file(Path::new(&format!("{ld}/exec.env")));
    assert!(!envs.contains("RSRUN_CALLER_SECRET"), "{envs}");
    env.delete_and_assert_clean("ce1");
}

/// rsrun skips its read-only re-exec when its binary already sits on a read-only mount;
/// the caller's environment must still not reach the created init.
#[test]
fn caller_env_stays_out_with_a_read_only_binary() {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    let env = Env::new("caller-robin");
    let bin = env.dir.join("rsrun-ro");
    std::fs::write(&bin, "").unwrap();
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = umount2(&self.0, MntFlags::MNT_DETACH);
        }
    }
    mount(
        Some(RSRUN),
        &bin,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    let _unmount = Unmount(bin.clone());
    let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    mount(None::<&str>, &bin, None::<&str>, ro, None::<&str>).unwrap();

    env.set_args(&["true"]);
    let mut cmd = Command::new(&bin);
    cmd.arg("--root").arg(&env.root).args([
        "create",
        "--bundle",
        env.bundle.to_str().unwrap(),
        "cr1",
    ]);
    with_caller_baggage(&mut cmd, &env.bundle);
    let r = output(cmd);
    assert_eq!(r.code, 0, "create: {}", r.stderr);
    let pid = env.state("cr1")["pid"].as_i64().unwrap() as i32;
    let seen = std::panic::catch_unwind(|| assert_no_baggage(pid, 0, &env.bundle, "the init"));
    assert_eq!(env.rsrun(&["delete", "-f", "cr1"]).code, 0);
    env.assert_clean("cr1", Some(pid));
    seen.unwrap();
}

/// What a static busybox `echo`/`sleep` may call, and nothing rsrun would call for itself
/// (no close_range, getcwd, fcntl, close, setgroups, setres*id, prctl, rt_sig*, sockets).
const PROGRAM_SYSCALLS: &[&str] = &[
    "arch_prctl",
    "brk",
    "clock_nanosleep",
    "execve",
    "exit",
    "exit_group",
    "futex",
    "getegid",
    "geteuid",
    "getgid",
    "getpid",
    "getrandom",
    "getuid",
    "mmap",
    "mprotect",
    "munmap",
    "nanosleep",
    "prlimit64",
    "readlink",
    "rseq",
    "set_robust_list",
    "set_tid_address",
    "write",
    "writev",
];

/// A default-deny profile that allows what the program needs. Without no_new_privs,
/// loading a filter needs CAP_SYS_ADMIN, which the process does not keep: the one call
/// rsrun cannot avoid after loading it is the capset that drops it.
fn minimal_profile(env: &Env, nnp: bool) {
    let mut names: Vec<&str> = PROGRAM_SYSCALLS.to_vec();
    if !nnp {
        names.push("capset");
    }
    env.edit(|v| {
        v["process"]["noNewPrivileges"] = json!(nnp);
        v["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]
        });
    });
}

/// Run `cmd` with stdout and stderr in files that outlive it (a created container keeps
/// writing to them after `create` returns); returns the exit code.
fn run_to(mut cmd: Command, out: &Path) -> i32 {
    cmd.stdout(std::fs::File::create(out).unwrap())
        .stderr(std::fs::File::create(out.with_extension("err")).unwrap())
        .status()
        .unwrap()
        .code()
        .unwrap_or(-1)
}

/// A default-deny seccomp profile that allows only what the container's program needs
/// runs, with and without no_new_privs, for run, create + start and exec: once the
/// filter is loaded rsrun makes no call of its own but the final execve (and, without
/// no_new_privs, the capset that drops the CAP_SYS_ADMIN the load needed).
#[test]
fn minimal_default_deny_profile_runs() {
    let env = Env::new("caller-mindeny");
    for nnp in [true, false] {
        minimal_profile(&env, nnp);
        let id = |verb: &str| format!("md-{verb}-{}", nnp as u8);
        let r = env.run(&id("run"), &["echo", "hi"]);
        assert_eq!(
            (r.code, r.stdout.as_str()),
            (0, "hi\n"),
            "run (noNewPrivileges {nnp}): {}",
            r.stderr
        );
        env.assert_clean(&id("run"), None);

        let out = env.dir.join(format!("cs-{nnp}.out"));
        let create = env.cmd(&[
            "create",
            "--bundle",
            env.bundle.to_str().unwrap(),
            &id("cs"),
        ]);
        let code = run_to(create, &out);
        let err = std::fs::read_to_string(out.with_extension("err")).unwrap();
        assert_eq!(code, 0, "create (noNewPrivileges {nnp}): {err}");
        let r = env.rsrun(&["start", &id("cs")]);
        assert_eq!(r.code, 0, "start (noNewPrivileges {nnp}): {}", r.stderr);
        env.wait_status(&id("cs"), "stopped");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "hi\n");
        assert_eq!(env.rsrun(&["delete", &id("cs")]).code, 0);

        env.set_args(&["sleep", "100"]);
        let r = env.rsrun(&[
            "run",
            "-d",
            "--bundle",
            env.bundle.to_str().unwrap(),
            &id("ex"),
        ]);
        assert_eq!(r.code, 0, "run -d (noNewPrivileges {nnp}): {}", r.stderr);
        let r = env.rsrun(&["exec", &id("ex"), "echo", "hi"]);
        assert_eq!(
            (r.code, r.stdout.as_str()),
            (0, "hi\n"),
            "exec (noNewPrivileges {nnp}): {}",
            r.stderr
        );
        assert_eq!(env.rsrun(&["delete", "-f", &id("ex")]).code, 0);
        env.assert_clean(&id("ex"), None);
    }
}

/// A startContainer hook runs in the container confined as its process is: under the
/// container's seccomp filter (a mkdir the profile refuses fails in the hook too), with
/// the same no_new_privs, capabilities and ids; without an `env` of its own it gets the
/// process's environment (runc's behaviour).
#[test]
fn start_container_hook_is_confined_as_the_process() {
    let env = Env::new("caller-hookconf");
    let ld = log_dir(&env);
    let probe = |who: &str| {
        format!(
            "mkdir {ld}/{who}-made 2>/dev/null; echo $? > {ld}/{who}.mkdir; \
             grep -E '^(Uid|Gid|NoNewPrivs|Seccomp|Seccomp_filters|Cap[A-Za-z]+):' /proc/self/status > {ld}/{who}.status; \
             echo \"$HOOKVAR\" > {ld}/{who}.var"
        )
    };
    for nnp in [true, false] {
        for f in std::fs::read_dir(&ld).unwrap() {
            let p = f.unwrap().path();
            let _ = std::fs::remove_dir(&p).or_else(|_| std::fs::remove_file(&p));
        }
        let (hook, proc_) = (probe("hook"), probe("proc"));
        env.edit(|v| {
            v["process"]["noNewPrivileges"] = json!(nnp);
            v["process"]["env"]
                .as_array_mut()
                .unwrap()
                .push(json!("HOOKVAR=from-process"));
            v["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
            });
            v["hooks"] = json!({
                "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", hook]}]
            });
        });
        let id = format!("hc{}", nnp as u8);
        let r = env.run(&id, &["sh", "-c", &proc_]);
        assert_eq!(r.code, 0, "run (noNewPrivileges {nnp}): {}", r.stderr);
        for who in ["hook", "proc"] {
            assert!(
                !Path::new(&format!("{ld}/{who}-made")).exists(),
                "the {who}'s mkdir escaped the filter (noNewPrivileges {nnp})"
            );
            let rc = std::fs::read_to_string(format!("{ld}/{who}.mkdir")).unwrap();
            assert_ne!(rc.trim(), "0", "{who}: mkdir succeeded");
        }
        let hook_status = std::fs::read_to_string(format!("{ld}/hook.status")).unwrap();
        let proc_status = std::fs::read_to_string(format!("{ld}/proc.status")).unwrap();
        assert!(hook_status.contains("Seccomp:\t2"), "{hook_status}");
        assert_eq!(hook_status, proc_status, "noNewPrivileges {nnp}");
        let var = std::fs::read_to_string(format!("{ld}/hook.var")).unwrap();
        assert_eq!(var.trim(), "from-process", "the hook's environment");
        env.assert_clean(&id, None);
    }
}

/// The caller's umask does not reach the container's processes: without
/// `process.user.umask` they start with 0022, as under runc, for run and exec.
#[test]
fn caller_umask_stays_out() {
    let env = Env::new("caller-umask");
    let with_umask = |args: &[&str]| {
        let mut cmd = env.cmd(args);
        // SAFETY: umask is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::umask(0o077);
                Ok(())
            });
        }
        output(cmd)
    };
    env.set_args(&["sh", "-c", "umask"]);
    let r = with_umask(&["run", "--bundle", env.bundle.to_str().unwrap(), "cu1"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "0022\n"),
        "run: {}",
        r.stderr
    );
    env.set_args(&["sleep", "100"]);
    env.run_detached("cu2");
    let r = with_umask(&["exec", "cu2", "sh", "-c", "umask"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "0022\n"),
        "exec: {}",
        r.stderr
    );
    env.delete_and_assert_clean("cu2");
}

/// prestart and createRuntime hooks run once the rootfs is built (its mounts and /dev
/// set up) and before pivot_root, in the bundle: a hook that enters the init's mount
/// namespace sees the mounts under the rootfs, and what it mounts under rootfs/dev is
/// there in the container. createContainer hooks run in the rootfs (runc's behaviour).
#[test]
fn runtime_hooks_see_the_built_rootfs() {
    let env = Env::new("caller-rthooks");
    let ld = log_dir(&env);
    let rootfs = env.bundle.join("rootfs").canonicalize().unwrap();
    let rootfs = rootfs.to_str().unwrap();
    assert!(
        Path::new("/usr/bin/nsenter").exists(),
        "the test needs nsenter (util-linux)"
    );
    // The init's pid from the state on stdin; its mount points under the rootfs. The
    // prestart hook enters its mount namespace with its root (-r: a host that runs from
    // a chroot has another root at the top of the namespace).
    let mounts = |who: &str| {
        format!(
            "read -r s; pid=$(echo \"$s\" | grep -o '\"pid\":[0-9]*' | cut -d: -f2); \
             pwd > {ld}/{who}.cwd; \
             awk '{{print $5}}' /proc/$pid/mountinfo | grep '^{rootfs}/' > {ld}/{who}.mounts; "
        )
    };
    let add = format!(
        "{} /usr/bin/nsenter -t $pid -m -r -- /bin/sh -c \
         'mkdir -p {rootfs}/dev/hookmnt && mount -t tmpfs hooktmp {rootfs}/dev/hookmnt' \
         && grep hooktmp /proc/$pid/mountinfo > {ld}/prestart.added",
        mounts("prestart")
    );
    let hook = |script: String| json!({"path": "/bin/sh", "args": ["sh", "-c", script]});
    env.edit(|v| {
        v["hooks"] = json!({
            "prestart": [hook(add)],
            "createRuntime": [hook(format!("{} true", mounts("createRuntime")))],
            "createContainer": [hook(format!("pwd > {ld}/createContainer.cwd"))],
        });
    });
    let r = env.run("rt1", &["cat", "/proc/self/mountinfo"]);
    assert_eq!(r.code, 0, "run: {}", r.stderr);
    let added = std::fs::read_to_string(format!("{ld}/prestart.added")).unwrap_or_default();
    assert_eq!(
        r.stdout
            .lines()
            .filter(|l| l.contains(" /dev/hookmnt "))
            .count(),
        1,
        "the prestart hook's mount ({added}) is not in the container: {}",
        r.stdout
    );
    for who in ["prestart", "createRuntime"] {
        let seen = std::fs::read_to_string(format!("{ld}/{who}.mounts")).unwrap();
        let seen: Vec<&str> = seen.lines().collect();
        for want in ["proc", "dev", "dev/pts", "sys"] {
            let want = format!("{rootfs}/{want}");
            assert!(
                seen.contains(&want.as_str()),
                "{who} does not see {want}: {seen:?}"
            );
        }
        let cwd = std::fs::read_to_string(format!("{ld}/{who}.cwd")).unwrap();
        assert_eq!(
            Path::new(cwd.trim()),
            env.bundle.canonicalize().unwrap(),
            "{who}'s cwd"
        );
    }
    let cwd = std::fs::read_to_string(format!("{ld}/createContainer.cwd")).unwrap();
    assert_eq!(cwd.trim(), rootfs, "createContainer's cwd");
    env.assert_clean("rt1", None);
}

/// Hooks rsrun runs on the host get their stdio and nothing else of rsrun's caller, as
/// runc's do: a caller of `start` or `delete` holding a host directory fd and a secret
/// gives neither to the poststart or poststop hook (a hook is the bundle's code; what
/// the engine holds open is not its to use).
#[test]
fn host_hooks_hold_only_their_stdio() {
    let env = Env::new("caller-host-hooks");
    let ld = env.dir.join("log");
    std::fs::create_dir_all(&ld).unwrap();
    let ld = ld.to_str().unwrap().to_string();
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", record(&format!("{ld}/{name}"))]});
    env.edit(|v| {
        v["hooks"] = json!({"poststart": [hook("poststart")], "poststop": [hook("poststop")]});
    });
    env.set_args(&["sleep", "1000"]);
    assert_eq!(env.create("cc5").code, 0);
    for args in [&["start", "cc5"][..], &["delete", "--force", "cc5"][..]] {
        let mut cmd = env.cmd(args);
        with_caller_baggage(&mut cmd, &env.bundle);
        let r = output(cmd);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    }
    for who in ["poststart", "poststop"] {
        let fds = std::fs::read_to_string(format!("{ld}/{who}.fds")).unwrap();
        assert_eq!(
            fd_numbers(&fds),
            vec![0, 1, 2],
            "fds of the {who} hook: {fds}"
        );
        let envs = std::fs::read_to_string(format!("{ld}/{who}.env")).unwrap();
        assert!(
            !envs.contains("RSRUN_CALLER_SECRET"),
            "the {who} hook sees the caller's environment: {envs}"
        );
    }
    env.assert_clean("cc5", None);
}

/// The helpers rsrun runs on the host get their stdio and the fds rsrun names, none of
/// those its caller left open, as runc's do: `ps` only its stdio, CRIU's dump its stdio
/// and the container's lock (its state directory) as fd 3. Stand-ins on PATH and in
/// `RSRUN_CRIU` list their fds (CRIU's fails the dump; the container runs on).
#[test]
fn helpers_hold_only_their_stdio_and_the_fds_rsrun_names() {
    let env = Env::new("caller-helpers");
    let ld = env.dir.join("log");
    let bin = env.dir.join("bin");
    std::fs::create_dir_all(&ld).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    let ld = ld.to_str().unwrap().to_string();
    // `exec sh -c`: the listing is of a shell that holds no script file open; `exec >`:
    // and no copy of its stdout saved aside. `first` speaks on the helper's stdout.
    let stand_in = |name: &str, first: &str, last: &str| {
        let path = bin.join(name);
        let script = format!(
            "#!/bin/sh\nexec sh -c '{first} exec > {ld}/{name}.fds; ls -l /proc/$$/fd; {last}'\n"
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        path
    };
    stand_in("ps", "echo UID PID CMD;", "");
    let criu = stand_in("criu", "", "exit 1");
    env.set_args(&["sleep", "1000"]);
    assert_eq!(env.create("cc6").code, 0);
    assert_eq!(env.rsrun(&["start", "cc6"]).code, 0);

    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut cmd = env.cmd(&["ps", "cc6"]);
    with_caller_baggage(&mut cmd, &env.bundle);
    cmd.env("PATH", path);
    let r = output(cmd);
    assert_eq!(r.code, 0, "ps: {}", r.stderr);
    let fds = std::fs::read_to_string(format!("{ld}/ps.fds")).unwrap();
    assert_eq!(fd_numbers(&fds), vec![0, 1, 2], "fds of ps: {fds}");

    let images = env.dir.join("images");
    let mut cmd = env.cmd(&[
        "checkpoint",
        "--image-path",
        images.to_str().unwrap(),
        "cc6",
    ]);
    with_caller_baggage(&mut cmd, &env.bundle);
    cmd.env("RSRUN_CRIU", &criu);
    let r = output(cmd);
    assert_ne!(r.code, 0, "the stand-in CRIU fails the dump");
    let fds = std::fs::read_to_string(format!("{ld}/criu.fds")).unwrap();
    assert_eq!(fd_numbers(&fds), vec![0, 1, 2, 3], "fds of CRIU: {fds}");
    let lock = env.root.join("cc6");
    assert!(
        fds.lines()
            .any(|l| l.contains(" 3 -> ") && l.ends_with(lock.to_str().unwrap())),
        "CRIU's fd 3 is the container's lock ({}): {fds}",
        lock.display()
    );
    assert_eq!(env.status("cc6"), "running");
    env.delete_and_assert_clean("cc6");
}

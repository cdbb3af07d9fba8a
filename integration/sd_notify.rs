//! sd_notify through the container (runc's notify socket): with NOTIFY_SOCKET set, the
//! container gets `/run/notify/notify.sock`, and `start` / `run -d` return once it has
//! said READY=1, which they relay with MAINPID (the init) to the host socket; an init
//! that exits first ends the wait. Only the socket's directory is exposed; `delete`
//! leaves nothing; a host socket that does not exist is refused before anything exists.

use crate::common::background::{Bg, DEADLINE};
use crate::common::sd_notify::{install_tool, HostSocket};
use crate::common::*;
use serde_json::json;
use std::time::Duration;

/// A bundle with the sd-notify tool and a writable rootfs, and the host's notify socket.
fn setup(name: &str) -> (Env, HostSocket) {
    let env = Env::new(name);
    install_tool(&env.bundle.join("rootfs"));
    env.edit(|v| v["root"]["readonly"] = json!(false));
    let host = HostSocket::bind(&env.dir.join("host-notify.sock"));
    (env, host)
}

/// `rsrun ARGS` with NOTIFY_SOCKET pointing at `host`.
fn notifying(env: &Env, host: &HostSocket, args: &[&str]) -> std::process::Command {
    let mut c = env.cmd(args);
    c.env("NOTIFY_SOCKET", &host.path);
    c
}

/// `rsrun ARGS` with NOTIFY_SOCKET, within the deadline (a hang fails the test).
fn notifying_within(env: &Env, host: &HostSocket, args: &[&str]) -> Run {
    Bg::spawn(notifying(env, host, args), &args.join(" "), &env.dir).finish(DEADLINE)
}

/// `delete --force ID`, then nothing of it is left.
fn delete_leaves_nothing(env: &Env, id: &str, pid: Option<i64>) {
    let r = env.rsrun(&["delete", "--force", id]);
    assert_eq!(r.code, 0, "delete {id}: {}", r.stderr);
    env.assert_clean(id, pid.map(|p| p as i32));
}

/// `create ID` with NOTIFY_SOCKET; the init's pid.
fn create_notifying(env: &Env, host: &HostSocket, id: &str) -> i64 {
    let bundle = env.bundle.to_str().unwrap();
    let r = output(notifying(env, host, &["create", "--bundle", bundle, id]));
    assert_eq!(r.code, 0, "create {id}: {}", r.stderr);
    pid_of(env, id)
}

/// `start ID` with NOTIFY_SOCKET in the background, once it has released the init.
fn start_in_background(env: &Env, host: &HostSocket, id: &str) -> Bg {
    let start = Bg::spawn(
        notifying(env, host, &["start", id]),
        &format!("start {id}"),
        &env.dir,
    );
    env.wait_status(id, "running");
    start
}

/// `run -d ID` with NOTIFY_SOCKET, which must succeed within the deadline.
fn run_detached_notifying(env: &Env, host: &HostSocket, id: &str) {
    let bundle = env.bundle.to_str().unwrap();
    let r = notifying_within(env, host, &["run", "-d", "--bundle", bundle, id]);
    assert_eq!(r.code, 0, "run -d {id}: {}", r.stderr);
}

fn pid_of(env: &Env, id: &str) -> i64 {
    env.state(id)["pid"].as_i64().unwrap()
}

/// The messages a READY relay sends: the container's READY line, MAINPID, and runc's
/// BARRIER=1 (its pipe fd is closed by the receive, which answers it).
fn expect_relay(host: &HostSocket, pid: i64) {
    let got: Vec<String> = (0..3)
        .map(|i| {
            host.recv(DEADLINE)
                .unwrap_or_else(|| panic!("message {i} of the relay never came"))
        })
        .collect();
    assert_eq!(
        got,
        vec![
            "READY=1\n".to_string(),
            format!("MAINPID={pid}\n"),
            "BARRIER=1".to_string()
        ]
    );
}

#[test]
fn start_waits_for_ready_and_relays_it() {
    let (env, host) = setup("sdn-start");
    let rootfs = env.bundle.join("rootfs");
    // The process records what it sees, waits at a gate the test opens, then notifies.
    nix::unistd::mkfifo(
        &rootfs.join("gate"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    env.set_args(&[
        "sh",
        "-c",
        "{ echo \"env=$NOTIFY_SOCKET\"; ls -A /run/notify; cat /proc/self/mountinfo; \
         touch /run/notify/x 2>&1; tr '\\0' '\\n' </proc/self/environ; } >/seen 2>&1; \
         read x </gate; sd-notify STATUS=starting; sd-notify READY=1; sleep 1000",
    ]);
    let pid = create_notifying(&env, &host, "sdn1");
    let mut start = start_in_background(&env, &host, "sdn1");
    // Released; the process then writes /seen and blocks at the gate: start must still be
    // waiting, and nothing reached the host.
    let end = std::time::Instant::now() + DEADLINE;
    while !rootfs.join("seen").exists()
        || std::fs::metadata(rootfs.join("seen")).unwrap().len() == 0
    {
        assert!(
            std::time::Instant::now() < end,
            "the container never wrote /seen"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(start.still_running(), "start returned before READY");
    assert_eq!(host.drain(), Vec::<String>::new());
    std::fs::write(rootfs.join("gate"), "go\n").unwrap();
    let r = start.finish(DEADLINE);
    assert_eq!(r.code, 0, "start: {}", r.stderr);
    // STATUS= is not relayed; READY=1 is, with the init as MAINPID.
    expect_relay(&host, pid);

    let seen = std::fs::read_to_string(rootfs.join("seen")).unwrap();
    let mut lines = seen.lines();
    assert_eq!(lines.next(), Some("env=/run/notify/notify.sock"), "{seen}");
    // Only the socket is in the directory; it is mounted read-only at /run/notify.
    assert_eq!(lines.next(), Some("notify.sock"), "{seen}");
    let mount = seen
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/run/notify"))
        .unwrap_or_else(|| panic!("no mount at /run/notify: {seen}"));
    let opts: Vec<&str> = mount.split(' ').nth(5).unwrap().split(',').collect();
    for o in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(opts.contains(&o), "/run/notify mounted {opts:?}");
    }
    assert!(seen.contains("Read-only file system"), "{seen}");
    // The host socket's path reaches nothing in the container.
    assert!(
        !seen.contains(host.path.to_str().unwrap()),
        "the host's NOTIFY_SOCKET leaks into the container: {seen}"
    );

    delete_leaves_nothing(&env, "sdn1", Some(pid));
}

#[test]
fn run_detached_returns_after_ready() {
    let (env, host) = setup("sdn-run");
    // The process notifies once the test opens its gate: until then run -d waits.
    nix::unistd::mkfifo(
        &env.bundle.join("rootfs/gate"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    env.set_args(&["sh", "-c", "read x </gate; sd-notify READY=1; sleep 1000"]);
    let bundle = env.bundle.to_str().unwrap();
    let mut run = Bg::spawn(
        notifying(&env, &host, &["run", "-d", "--bundle", bundle, "sdn2"]),
        "run -d sdn2",
        &env.dir,
    );
    env.wait_status("sdn2", "running");
    assert!(run.still_running(), "run -d returned before READY");
    assert_eq!(host.drain(), Vec::<String>::new());
    std::fs::write(env.bundle.join("rootfs/gate"), "go\n").unwrap();
    let r = run.finish(DEADLINE);
    assert_eq!(r.code, 0, "run -d: {}", r.stderr);
    let pid = pid_of(&env, "sdn2");
    expect_relay(&host, pid);
    assert_eq!(env.status("sdn2"), "running");
    delete_leaves_nothing(&env, "sdn2", Some(pid));
}

#[test]
fn init_exiting_before_ready_ends_the_wait() {
    let (env, host) = setup("sdn-exit");
    env.set_args(&["sh", "-c", "exit 3"]);
    let pid = create_notifying(&env, &host, "sdn3");
    // runc returns without an error; nothing is relayed.
    let r = notifying_within(&env, &host, &["start", "sdn3"]);
    assert_eq!(r.code, 0, "start: {}", r.stderr);
    assert_eq!(env.status("sdn3"), "stopped");
    assert_eq!(host.drain(), Vec::<String>::new());
    delete_leaves_nothing(&env, "sdn3", Some(pid));

    // The same through run -d.
    run_detached_notifying(&env, &host, "sdn4");
    assert_eq!(host.drain(), Vec::<String>::new());
    delete_leaves_nothing(&env, "sdn4", None);
}

#[test]
fn missing_host_socket_is_refused_and_leaves_nothing() {
    let env = Env::new("sdn-missing");
    let missing = env.dir.join("no-such-notify.sock");
    let bundle = env.bundle.to_str().unwrap().to_string();
    for (id, verb) in [("sdn5", "create"), ("sdn6", "run")] {
        let mut args = vec![verb, "--bundle", &bundle, id];
        if verb == "run" {
            args.insert(1, "-d");
        }
        let mut c = env.cmd(&args);
        c.env("NOTIFY_SOCKET", &missing);
        let r = output(c);
        assert_one_line_error(&r, "NOTIFY_SOCKET");
        assert!(
            r.stderr.contains(missing.to_str().unwrap()) && r.stderr.contains("ENOENT"),
            "{}",
            r.stderr
        );
        env.assert_clean(id, None);
    }
}

#[test]
fn user_namespace_container_notifies() {
    let (env, host) = setup("sdn-userns");
    // The mapped root may not make directories in a rootfs the host's root owns: the
    // mount point is there (as an image that expects the socket would have it).
    std::fs::create_dir_all(env.bundle.join("rootfs/run/notify")).unwrap();
    env.edit(|v| {
        with_userns(v);
        v["root"]["readonly"] = json!(true);
    });
    env.set_args(&["sh", "-c", "sd-notify READY=1; sleep 1000"]);
    run_detached_notifying(&env, &host, "sdn7");
    let pid = pid_of(&env, "sdn7");
    expect_relay(&host, pid);
    delete_leaves_nothing(&env, "sdn7", Some(pid));
}

#[test]
fn start_killed_while_waiting_leaves_what_delete_removes() {
    let (env, host) = setup("sdn-killed");
    env.set_args(&["sleep", "1000"]);
    let pid = create_notifying(&env, &host, "sdn8");
    let mut start = start_in_background(&env, &host, "sdn8");
    // Released, and waiting for a READY that never comes: SIGKILL it there (dropping a
    // Bg kills it).
    assert!(start.still_running(), "start returned without READY");
    drop(start);
    assert!(env.root.join("sdn8/notify/notify.sock").exists());
    assert_eq!(host.drain(), Vec::<String>::new());
    delete_leaves_nothing(&env, "sdn8", Some(pid));
}

/// The container of a foreground `run`: TERM ends it with 7; `/trapped` says the trap is set.
fn trapping_args(env: &Env, then: &str) {
    env.set_args(&[
        "sh",
        "-c",
        &format!("trap 'exit 7' TERM; touch /trapped; {then}; sleep 1000 & wait"),
    ]);
}

/// `run` in the foreground (NOTIFY_SOCKET set) in the background, once its container has
/// set its TERM trap.
fn foreground_run(env: &Env, host: &HostSocket, id: &str) -> Bg {
    let bundle = env.bundle.to_str().unwrap();
    let run = Bg::spawn(
        notifying(env, host, &["run", "--bundle", bundle, id]),
        &format!("run {id}"),
        &env.dir,
    );
    wait_until(&format!("{id} to set its trap"), DEADLINE, || {
        env.bundle.join("rootfs/trapped").exists()
    });
    run
}

/// TERM to the foreground `run`: the container's trap ends it with 7, which `run` returns.
fn terminate_foreground_run(run: Bg) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(run.pid()),
        nix::sys::signal::SIGTERM,
    )
    .unwrap();
    let r = run.finish(DEADLINE);
    assert_eq!(r.code, 7, "run: {}", r.stderr);
}

#[test]
fn foreground_run_relays_ready_with_its_own_pid() {
    let (env, host) = setup("sdn-fg");
    trapping_args(&env, "sd-notify READY=1");
    let run = foreground_run(&env, &host, "sdn9");
    // rsrun is the main process a service manager watches.
    expect_relay(&host, run.pid() as i64);
    terminate_foreground_run(run);
    env.assert_clean("sdn9", None);
}

#[test]
fn foreground_run_forwards_signals_while_waiting_for_ready() {
    let (env, host) = setup("sdn-fg-wait");
    // The container never notifies: a TERM to rsrun still reaches it.
    trapping_args(&env, "true");
    let run = foreground_run(&env, &host, "sdn10");
    terminate_foreground_run(run);
    assert_eq!(host.drain(), Vec::<String>::new());
    env.assert_clean("sdn10", None);
}

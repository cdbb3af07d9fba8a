//! rsrun must never hang: engines call the runtime synchronously, so a hang wedges the
//! kubelet's or dockerd's worker. Every command here runs with a deadline; past it the
//! command is killed and the test fails (a hang is a failure, not a stuck suite).
//!
//! - `exec --ignore-paused` into a paused container must not hold the container's lock
//!   while its process sits frozen: `resume` goes through.
//! - `create`/`run` into a cgroup that is already frozen is refused in one line.
//! - A seccomp notify filter that covers the syscalls rsrun's init makes cannot deadlock
//!   the hand-off of the listener fd.

use crate::common::*;
use crate::seccomp::{Notif, NotifResp, NOTIF_RECV, NOTIF_SEND};
use serde_json::json;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Long enough for a slow (emulated) guest, short enough for a hang to fail the test.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// A command running in the background with its output in files (a created container
/// inherits them; a pipe would be held open).
pub(crate) struct Bg {
    child: Child,
    what: String,
    out: std::path::PathBuf,
    err: std::path::PathBuf,
}

impl Bg {
    pub(crate) fn spawn(mut c: Command, what: &str, dir: &std::path::Path) -> Bg {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let out = dir.join(format!("bg-{n}.out"));
        let err = dir.join(format!("bg-{n}.err"));
        let child = c
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        Bg {
            child,
            what: what.to_string(),
            out,
            err,
        }
    }

    /// Wait for the command to end; past `limit` kill it and fail the test.
    pub(crate) fn finish(mut self, limit: Duration) -> Run {
        let end = Instant::now() + limit;
        let mut delay = Duration::from_millis(1);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Run {
                    code: st.code().unwrap_or(-1),
                    stdout: std::fs::read_to_string(&self.out).unwrap_or_default(),
                    stderr: std::fs::read_to_string(&self.err).unwrap_or_default(),
                };
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "`{}` hung: killed after {limit:?} (stderr so far: {:?})",
                    self.what,
                    std::fs::read_to_string(&self.err).unwrap_or_default()
                );
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(50));
        }
    }

    pub(crate) fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub(crate) fn still_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `rsrun --root <root> ARGS` with a deadline.
fn rsrun_within(env: &Env, args: &[&str], limit: Duration) -> Run {
    Bg::spawn(env.cmd(args), &args.join(" "), &env.dir).finish(limit)
}

/// Wait (bounded) until `f` holds.
fn wait_for(what: &str, f: impl Fn() -> bool) {
    wait_until(what, DEADLINE, f)
}

#[test]
fn exec_ignore_paused_does_not_block_resume() {
    let env = Env::new("hang-exec");
    env.set_args(&["sleep", "100"]);
    let b = env.bundle.to_str().unwrap();
    assert_eq!(env.rsrun(&["run", "-d", "--bundle", b, "hang-x1"]).code, 0);
    assert_eq!(env.rsrun(&["pause", "hang-x1"]).code, 0);
    let pid = env.state("hang-x1")["pid"].as_i64().unwrap() as i32;
    let cg = rsrun::cgroups::Cgroup::resolve(None, "hang-x1").unwrap();
    let mut exec = Bg::spawn(
        env.cmd(&["exec", "--ignore-paused", "hang-x1", "echo", "thawed"]),
        "exec --ignore-paused",
        &env.dir,
    );
    // The exec'd process is in the frozen cgroup, frozen with it.
    wait_for("the exec'd process to join the frozen cgroup", || {
        cg.pids().len() >= 2
    });
    assert!(
        exec.still_running(),
        "exec returned while its process is frozen"
    );
    let r = rsrun_within(&env, &["resume", "hang-x1"], DEADLINE);
    assert_eq!(r.code, 0, "resume: {}", r.stderr);
    let r = exec.finish(DEADLINE);
    assert_stdout(&r, "thawed\n");
    assert_eq!(env.status("hang-x1"), "running");
    assert_eq!(env.rsrun(&["delete", "-f", "hang-x1"]).code, 0);
    env.assert_clean("hang-x1", Some(pid));
}

#[test]
fn start_of_a_paused_created_container_is_refused() {
    let env = Env::new("hang-start");
    env.set_args(&["echo", "started"]);
    let b = env.bundle.to_str().unwrap();
    assert_eq!(env.rsrun(&["create", "--bundle", b, "hang-s1"]).code, 0);
    let pid = env.state("hang-s1")["pid"].as_i64().unwrap() as i32;
    assert_eq!(env.rsrun(&["pause", "hang-s1"]).code, 0);
    // The frozen init cannot take the start request: refused, not waited for.
    let r = rsrun_within(&env, &["start", "hang-s1"], DEADLINE);
    assert_one_line_error(&r, "paused");
    assert_eq!(env.rsrun(&["resume", "hang-s1"]).code, 0);
    assert_eq!(env.status("hang-s1"), "created");
    let r = rsrun_within(&env, &["start", "hang-s1"], DEADLINE);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(env.rsrun(&["delete", "-f", "hang-s1"]).code, 0);
    env.assert_clean("hang-s1", Some(pid));
}

/// A cgroup made (and frozen) by the test, thawed and removed at the end.
struct FrozenCgroup(rsrun::cgroups::Cgroup);

impl FrozenCgroup {
    fn new(path: &str) -> FrozenCgroup {
        let mut cg = rsrun::cgroups::Cgroup::resolve(Some(path), "unused").unwrap();
        cg.plan_create();
        cg.create().unwrap();
        rsrun::cgroups::freezer::set_frozen(&cg, true).unwrap();
        FrozenCgroup(cg)
    }
}

impl Drop for FrozenCgroup {
    fn drop(&mut self) {
        let _ = rsrun::cgroups::freezer::set_frozen(&self.0, false);
        let _ = self.0.destroy();
    }
}

#[test]
fn run_into_a_frozen_cgroup_is_refused() {
    let env = Env::new("hang-frozen");
    env.set_args(&["true"]);
    let b = env.bundle.to_str().unwrap();
    let name = format!("/rsrun-it-frozen-{}", std::process::id());
    // The container's own cgroup exists and is frozen (runc: "container's cgroup
    // unexpectedly frozen").
    let frozen = FrozenCgroup::new(&name);
    env.edit(|v| v["linux"]["cgroupsPath"] = json!(name));
    for verb in ["run", "create"] {
        let r = rsrun_within(&env, &[verb, "--bundle", b, "hang-f1"], DEADLINE);
        assert_one_line_error(&r, "frozen");
        assert!(
            !env.root.join("hang-f1").exists(),
            "{verb}: state dir left behind"
        );
        assert!(
            frozen.0.pids().is_empty(),
            "{verb}: a process was left in the cgroup"
        );
        assert!(
            rsrun::cgroups::freezer::is_frozen(&frozen.0),
            "{verb}: the cgroup was thawed"
        );
        for d in &frozen.0.dirs {
            assert!(
                d.path.exists(),
                "{verb}: removed a cgroup it did not create"
            );
        }
    }
    // A new cgroup below a frozen one would be born frozen.
    let child = format!("{name}/child");
    env.edit(|v| v["linux"]["cgroupsPath"] = json!(child));
    let r = rsrun_within(&env, &["run", "--bundle", b, "hang-f2"], DEADLINE);
    assert_one_line_error(&r, "frozen");
    assert!(!env.root.join("hang-f2").exists(), "state dir left behind");
    let cg = rsrun::cgroups::Cgroup::resolve(Some(&child), "hang-f2").unwrap();
    for d in &cg.dirs {
        assert!(!d.path.exists(), "cgroup {} left behind", d.path.display());
    }
    drop(frozen);
    // Thawed, the same config runs.
    let r = rsrun_within(&env, &["run", "--bundle", b, "hang-f3"], DEADLINE);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// A seccomp agent on `sock`: takes the listener fd and answers every notification with
/// "continue" (`answer`), or never answers. Returns the syscall numbers it was asked about.
fn agent(sock: &std::path::Path, answer: bool) -> std::thread::JoinHandle<Vec<i32>> {
    let l = UnixListener::bind(sock).unwrap();
    std::thread::spawn(move || {
        let (conn, _) = l.accept().unwrap();
        let (_, fd) = recv_with_fd(&conn);
        if !answer {
            // Keep the fd (and so the filter's notifications pending) until the
            // container's processes are gone.
            wait_hangup(&fd);
            return Vec::new();
        }
        let mut seen = Vec::new();
        loop {
            let mut p = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let n = unsafe { libc::poll(&mut p, 1, 20_000) };
            if n <= 0 || p.revents & libc::POLLIN == 0 {
                return seen;
            }
            let mut req = Notif::default();
            if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV as _, &mut req) } != 0 {
                continue;
            }
            seen.push(req.data.nr);
            let resp = NotifResp {
                id: req.id,
                val: 0,
                error: 0,
                flags: 1, // SECCOMP_USER_NOTIF_FLAG_CONTINUE
            };
            unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND as _, &resp) };
        }
    })
}

/// Block until no process uses the filter any more (POLLHUP), at most 60 s.
fn wait_hangup(fd: &OwnedFd) {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: 0,
        revents: 0,
    };
    unsafe { libc::poll(&mut p, 1, 60_000) };
}

/// Notify on the syscalls every process (and rsrun's init) makes.
fn notify_profile(env: &Env, sock: &std::path::Path) {
    env.edit(|v| {
        v["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock.to_str().unwrap(),
            "syscalls": [{"names": ["read", "close", "openat", "execve"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
}

#[test]
fn seccomp_notify_on_runtime_syscalls_with_an_agent() {
    let env = Env::new("hang-notify");
    let sock = env.dir.join("agent.sock");
    notify_profile(&env, &sock);
    for nnp in [true, false] {
        let id = format!("hang-n-{nnp}");
        env.edit(|v| v["process"]["noNewPrivileges"] = json!(nnp));
        let _ = std::fs::remove_file(&sock);
        let t = agent(&sock, true);
        env.set_args(&["cat", "/etc/group"]);
        let b = env.bundle.to_str().unwrap();
        let r = rsrun_within(&env, &["run", "--bundle", b, &id], DEADLINE);
        assert_eq!(r.code, 0, "nnp={nnp}: {}", r.stderr);
        assert!(r.stdout.contains("root:x:0:"), "{}", r.stdout);
        let seen = t.join().unwrap();
        // The container's own execve and its file opens went to the agent.
        assert!(seen.contains(&(libc::SYS_execve as i32)), "{seen:?}");
        assert!(seen.contains(&(libc::SYS_openat as i32)), "{seen:?}");
        env.assert_clean(&id, None);
    }
    // `exec` hands its own process's listener over the same way.
    let _ = std::fs::remove_file(&sock);
    let _init_agent = agent(&sock, true);
    env.set_args(&["sleep", "100"]);
    let b = env.bundle.to_str().unwrap();
    let r = rsrun_within(&env, &["run", "-d", "--bundle", b, "hang-n-x"], DEADLINE);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let _ = std::fs::remove_file(&sock);
    let t = agent(&sock, true);
    let r = rsrun_within(&env, &["exec", "hang-n-x", "cat", "/etc/group"], DEADLINE);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("root:x:0:"), "{}", r.stdout);
    assert_eq!(env.rsrun(&["delete", "-f", "hang-n-x"]).code, 0);
    let seen = t.join().unwrap();
    assert!(seen.contains(&(libc::SYS_execve as i32)), "{seen:?}");
}

#[test]
fn seccomp_notify_without_an_agent_fails_fast() {
    let env = Env::new("hang-noagent");
    let sock = env.dir.join("nobody.sock");
    notify_profile(&env, &sock);
    for nnp in [true, false] {
        env.edit(|v| v["process"]["noNewPrivileges"] = json!(nnp));
        env.set_args(&["true"]);
        let b = env.bundle.to_str().unwrap();
        let r = rsrun_within(&env, &["run", "--bundle", b, "hang-na"], DEADLINE);
        assert_one_line_error(&r, "listenerPath");
        env.assert_clean("hang-na", None);
    }
}

#[test]
fn seccomp_notify_agent_that_never_answers() {
    let env = Env::new("hang-mute");
    let sock = env.dir.join("agent.sock");
    notify_profile(&env, &sock);
    let _agent = agent(&sock, false);
    env.set_args(&["true"]);
    let b = env.bundle.to_str().unwrap();
    // rsrun's own steps make none of these calls once the filter is loaded: create
    // returns, whatever the agent does.
    let r = rsrun_within(&env, &["create", "--bundle", b, "hang-m1"], DEADLINE);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let pid = env.state("hang-m1")["pid"].as_i64().unwrap() as i32;
    // The container's own execve waits for the agent; `start` waits for it, without
    // holding the container's lock, so the container can still be killed and deleted.
    let start = Bg::spawn(env.cmd(&["start", "hang-m1"]), "start", &env.dir);
    wait_for("the init to be blocked in the notified execve", || {
        std::fs::read_to_string(format!("/proc/{pid}/syscall"))
            .is_ok_and(|s| s.split(' ').next() == Some(&libc::SYS_execve.to_string()))
    });
    let r = rsrun_within(&env, &["delete", "--force", "hang-m1"], DEADLINE);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // `start` returns once the init is gone (it cannot tell a killed init from one
    // that exec'd and exited: either closes the start socket).
    start.finish(DEADLINE);
    env.assert_clean("hang-m1", Some(pid));
}

#[test]
fn seccomp_notify_on_the_hand_off_is_refused() {
    let env = Env::new("hang-handoff");
    let sock = env.dir.join("agent.sock");
    env.set_args(&["true"]);
    for (i, (default, names)) in [
        ("SCMP_ACT_NOTIFY", vec!["getpid"]),
        ("SCMP_ACT_ALLOW", vec!["mkdir", "write"]),
    ]
    .into_iter()
    .enumerate()
    {
        env.edit(|v| {
            v["linux"]["seccomp"] = json!({
                "defaultAction": default,
                "listenerPath": sock.to_str().unwrap(),
                "syscalls": [{"names": names, "action": "SCMP_ACT_NOTIFY"}]
            });
        });
        let id = format!("hang-h{i}");
        let r = rsrun_within(
            &env,
            &["create", "--bundle", env.bundle.to_str().unwrap(), &id],
            DEADLINE,
        );
        assert_one_line_error(
            &r,
            if i == 0 {
                "linux.seccomp.defaultAction"
            } else {
                "linux.seccomp.syscalls[0]"
            },
        );
        env.assert_clean(&id, None);
    }
}

/// runc's seccomp-notify scenarios that remain: an agent that goes away leaves the
/// notified syscalls failing with ENOSYS (not hanging); listener paths that cannot be
/// reached are refused; a startContainer hook under a notify filter holds no fd beyond
/// its stdio.
#[test]
fn seccomp_notify_agent_gone_means_enosys() {
    let env = Env::new("hang-agentgone");
    let sock = env.dir.join("agent.sock");
    env.edit(|v| {
        v["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock.to_str().unwrap(),
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
    let l = UnixListener::bind(&sock).unwrap();
    let t = std::thread::spawn(move || {
        let (conn, _) = l.accept().unwrap();
        let (_, fd) = recv_with_fd(&conn);
        drop(fd); // the agent is gone before the container's first mkdir
    });
    env.set_args(&["sh", "-c", "mkdir /tmp/x 2>&1; echo rc=$?"]);
    let b = env.bundle.to_str().unwrap();
    let r = rsrun_within(&env, &["run", "--bundle", b, "hang-ag"], DEADLINE);
    t.join().unwrap();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("Function not implemented") && r.stdout.contains("rc=1"),
        "{}",
        r.stdout
    );
    env.assert_clean("hang-ag", None);
}

#[test]
fn seccomp_notify_listener_paths_that_cannot_be_reached_are_refused() {
    let env = Env::new("hang-listenpath");
    for (i, path) in ["", "@abstract-rsrun-test", "/nonexistent/agent.sock"]
        .iter()
        .enumerate()
    {
        env.edit(|v| {
            v["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": path,
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
            });
        });
        env.set_args(&["true"]);
        let id = format!("hang-lp{i}");
        let b = env.bundle.to_str().unwrap();
        let r = rsrun_within(&env, &["run", "--bundle", b, &id], DEADLINE);
        assert_one_line_error(&r, "listenerPath");
        env.assert_clean(&id, None);
    }
}

#[test]
fn start_container_hook_under_notify_holds_only_its_stdio() {
    let env = Env::new("hang-hookfds");
    let sock = env.dir.join("agent.sock");
    env.edit(|v| {
        v["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock.to_str().unwrap(),
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        });
        v["hooks"] = json!({"startContainer": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", "ls /proc/self/fd > /dev/shm/hookfds"]
        }]});
    });
    let t = agent(&sock, true);
    env.set_args(&["sh", "-c", "cat /dev/shm/hookfds"]);
    let b = env.bundle.to_str().unwrap();
    let r = rsrun_within(&env, &["run", "--bundle", b, "hang-hf"], DEADLINE);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let _ = t.join();
    // 0-2, and the directory ls is reading.
    let fds: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "{}", r.stdout);
    env.assert_clean("hang-hf", None);
}

//! rsrun must never hang: engines call the runtime synchronously, so a hang wedges the
//! kubelet's or dockerd's worker. Every command here runs with a deadline; past it the
//! command is killed and the test fails (a hang is a failure, not a stuck suite).
//!
//! - `exec --ignore-paused` into a paused container must not hold the container's lock
//!   while its process sits frozen: `resume` goes through.
//! - `create`/`run` into a cgroup that is already frozen is refused in one line.
//! - A seccomp notify filter that covers the syscalls rsrun's init makes cannot deadlock
//!   the hand-off of the listener fd.

use crate::common::background::{rsrun_within, Bg, DEADLINE};
use crate::common::seccomp_agent::{agent, Answer};
use crate::common::*;
use serde_json::json;

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
        let t = agent(&sock, Answer::Continue);
        env.set_args(&["cat", "/etc/group"]);
        let b = env.bundle.to_str().unwrap();
        let r = rsrun_within(&env, &["run", "--bundle", b, &id], DEADLINE);
        assert_eq!(r.code, 0, "nnp={nnp}: {}", r.stderr);
        assert!(r.stdout.contains("root:x:0:"), "{}", r.stdout);
        let seen = t.join().unwrap().syscalls;
        // The container's own execve and its file opens went to the agent.
        assert!(seen.contains(&(libc::SYS_execve as i32)), "{seen:?}");
        assert!(seen.contains(&(libc::SYS_openat as i32)), "{seen:?}");
        env.assert_clean(&id, None);
    }
    // `exec` hands its own process's listener over the same way.
    let _ = std::fs::remove_file(&sock);
    let _init_agent = agent(&sock, Answer::Continue);
    env.set_args(&["sleep", "100"]);
    let b = env.bundle.to_str().unwrap();
    let r = rsrun_within(&env, &["run", "-d", "--bundle", b, "hang-n-x"], DEADLINE);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let _ = std::fs::remove_file(&sock);
    let t = agent(&sock, Answer::Continue);
    let r = rsrun_within(&env, &["exec", "hang-n-x", "cat", "/etc/group"], DEADLINE);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("root:x:0:"), "{}", r.stdout);
    assert_eq!(env.rsrun(&["delete", "-f", "hang-n-x"]).code, 0);
    let seen = t.join().unwrap().syscalls;
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
    let _agent = agent(&sock, Answer::Never);
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

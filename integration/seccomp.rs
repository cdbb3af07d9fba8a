//! Seccomp: the filter is in place (`Seccomp: 2`), denied syscalls fail with the given
//! errno or kill, argument comparisons apply, exec gets the same filter, a real-world
//! profile runs a shell, and SCMP_ACT_NOTIFY hands the listener fd to a listener.

use crate::common::background::{rsrun_within, DEADLINE};
use crate::common::seccomp_agent::{agent, serve, Answer};
use crate::common::*;
use serde_json::json;

#[test]
fn errno_and_filter_present() {
    let env = Env::new("sc-errno");
    env.edit(|v| {
        v["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["mkdir", "mkdirat", "no_such_syscall"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
        });
    });
    let r = env.run(
        "se1se",
        &[
            "sh",
            "-c",
            "grep '^Seccomp:' /proc/self/status; mkdir /dev/shm/x 2>&1; echo rc=$?",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("Seccomp:\t2"), "{}", r.stdout);
    assert!(
        r.stdout.contains("Permission denied"),
        "EACCES (13) expected: {}",
        r.stdout
    );
    assert!(r.stdout.contains("rc=1"));
    env.assert_clean("se1se", None);
}

#[test]
fn kill_process_action() {
    let env = Env::new("sc-kill");
    env.edit(|v| {
        v["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"}]
        });
    });
    let r = env.run("sk2", &["uname"]);
    assert_eq!(r.code, 128 + 31, "uname must die of SIGSYS: {}", r.stderr);
    assert_eq!(r.stdout, "", "uname printed before it died");
}

#[test]
fn argument_comparisons() {
    let env = Env::new("sc-args");
    // chmod(path, mode) has the mode in argument 1, fchmodat(dirfd, path, mode) in 2.
    let rules = |index: usize| {
        vec![
            json!({"names": [if index == 1 { "chmod" } else { "fchmodat" }], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                   "args": [{"index": index, "value": 448, "op": "SCMP_CMP_EQ"}]}),
            json!({"names": [if index == 1 { "chmod" } else { "fchmodat" }], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                   "args": [{"index": index, "value": 2048, "valueTwo": 2048, "op": "SCMP_CMP_MASKED_EQ"}]}),
        ]
    };
    let mut all = rules(1);
    all.extend(rules(2));
    env.edit(|v| {
        v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": all});
    });
    let r = env.run(
        "sa1",
        &["sh", "-c", "touch /dev/shm/f; chmod 700 /dev/shm/f 2>/dev/null && echo 700; chmod 4755 /dev/shm/f 2>/dev/null && echo 4755; chmod 755 /dev/shm/f && echo 755"],
    );
    assert_eq!(r.stdout, "755\n", "{}", r.stderr);
}

#[test]
fn without_no_new_privs_and_dropped_caps() {
    // The filter must be loaded while CAP_SYS_ADMIN is still held.
    let env = Env::new("sc-nonnp");
    env.edit(|v| {
        v["process"]["noNewPrivileges"] = json!(false);
        v["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
        });
    });
    let r = env.run(
        "sn1",
        &[
            "sh",
            "-c",
            "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; mkdir /dev/shm/x || echo denied",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("NoNewPrivs:\t0") && r.stdout.contains("Seccomp:\t2"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("denied"));
}

#[test]
fn exec_gets_the_container_filter() {
    let env = Env::new("sc-exec");
    env.edit(|v| {
        v["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
        });
    });
    env.set_args(&["sleep", "100"]);
    env.run_detached("sx1");
    let r = env.rsrun(&[
        "exec",
        "sx1",
        "sh",
        "-c",
        "grep '^Seccomp:' /proc/self/status; mkdir /dev/shm/x || echo denied",
    ]);
    assert_eq!(r.stdout, "Seccomp:\t2\ndenied\n", "{}", r.stderr);
    assert_eq!(env.rsrun(&["delete", "-f", "sx1"]).code, 0);
}

#[test]
fn real_world_profile_runs_a_shell() {
    let path = "/usr/share/containers/seccomp.json";
    let profile: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(path)
            .expect("golang-github-containers-common provides the default profile"),
    )
    .unwrap();
    let env = Env::new("sc-real");
    env.edit(|v| v["linux"]["seccomp"] = profile);
    let r = env.run(
        "sr1",
        &[
            "sh",
            "-c",
            "grep '^Seccomp:' /proc/self/status; ls / | wc -l; echo $((6*7))",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("Seccomp:\t2\n") && r.stdout.ends_with("42\n"),
        "{}",
        r.stdout
    );
}

#[test]
fn invalid_profiles_are_refused() {
    let env = Env::new("sc-bad");
    env.edit(|v| v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_BOGUS"}));
    let r = env.create("scb1");
    assert_one_line_error(&r, "linux.seccomp.defaultAction");
    env.assert_clean("scb1", None);
    env.edit(|v| {
        v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_BOGUS"}]}]})
    });
    assert_one_line_error(&env.create("scb2"), "linux.seccomp.syscalls[0].args[0].op");
    env.edit(|v| {
        v["linux"]["seccomp"] =
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_BOGUS"]})
    });
    assert_one_line_error(&env.create("sb3"), "linux.seccomp.architectures[0]");
    env.assert_clean("sb3", None);
}

#[test]
fn notify_sends_the_listener_fd() {
    let env = Env::new("sc-notify");
    let sock = env.dir.join("seccomp.sock");
    env.edit(|v| {
        v["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock.to_str().unwrap(),
            "listenerMetadata": "test-metadata",
            // Not in oci-spec's types: rsrun carries it itself (kernel >= 5.19).
            "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
    // The agent: takes the fd and the state, answers one mkdir with EROFS.
    let t = agent(&sock, Answer::FirstFailsWith(libc::EROFS));
    let r = env.run("sy1sn", &["sh", "-c", "mkdir /dev/shm/x 2>&1; echo rc=$?"]);
    let seen = t.join().unwrap();
    let (mkdir, mkdirat) = (libc::SYS_mkdir as i32, libc::SYS_mkdirat as i32);
    assert!(
        seen.syscalls == [mkdir] || seen.syscalls == [mkdirat],
        "{:?}",
        seen.syscalls
    );
    let doc = seen.state;
    assert_eq!(doc["fds"], json!(["seccompFd"]));
    assert_eq!(doc["metadata"], "test-metadata");
    assert_eq!(doc["state"]["id"], "sy1sn");
    assert!(doc["pid"].as_i64().unwrap() > 0);
    assert!(
        r.stdout.contains("Read-only file system") && r.stdout.contains("rc=1"),
        "{} {}",
        r.stdout,
        r.stderr
    );
    env.assert_clean("sy1sn", None);
}

/// runc's -ENOSYS stub: under a default-deny profile without defaultErrnoRet (Docker's
/// shape), a syscall newer than every syscall the profile names gets ENOSYS (so a
/// program falls back, as glibc does from fchmodat2), one the profile knows but does not
/// allow keeps the default EPERM, or defaultErrnoRet when given; the same for `exec`.
#[test]
fn syscalls_newer_than_the_profile_get_enosys() {
    let env = Env::new("sc-enosys");
    let probe = env.dir.join("probe.c");
    std::fs::write(
        &probe,
        r#"#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(void) {
    long r = syscall(1000);
    printf("unknown=%d\n", r < 0 ? errno : 0);
    r = syscall(SYS_acct, 0);
    printf("acct=%d\n", r < 0 ? errno : 0);
    return 0;
}
"#,
    )
    .unwrap();
    let out = env.bundle.join("rootfs/bin/probe");
    let mut c = std::process::Command::new("cc");
    c.args(["-static", "-O1", "-o"]).arg(&out).arg(&probe);
    let r = output(c);
    assert_eq!(r.code, 0, "cc: {}", r.stderr);
    // Everything a busybox shell and the probe need, as Docker's profile allows it.
    let common: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("/usr/share/containers/seccomp.json")
            .expect("containers-common's seccomp.json (golang-github-containers-common)"),
    )
    .unwrap();
    let mut allowed: Vec<serde_json::Value> = Vec::new();
    for rule in common["syscalls"].as_array().unwrap() {
        let plain = rule["action"] == "SCMP_ACT_ALLOW"
            && rule
                .get("args")
                .is_none_or(|a| a.as_array().is_none_or(|a| a.is_empty()))
            && rule.get("includes").is_none_or(|i| {
                i.as_object()
                    .is_none_or(|o| o.keys().all(|k| k == "arches" || k == "minKernel"))
            })
            && rule
                .get("excludes")
                .is_none_or(|i| i.as_object().is_none_or(|o| o.is_empty()));
        if plain {
            allowed.extend(rule["names"].as_array().unwrap().iter().cloned());
        }
    }
    allowed.retain(|n| n != "acct");
    env.edit(|v| {
        v["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]
        });
    });
    let want = format!("unknown={}\nacct={}\n", libc::ENOSYS, libc::EPERM);
    let r = env.run("ses1", &["/bin/probe"]);
    assert_stdout(&r, &want);
    env.set_args(&["sleep", "1000"]);
    assert_eq!(env.create("ses2").code, 0);
    assert_eq!(env.rsrun(&["start", "ses2"]).code, 0);
    let r = env.rsrun(&["exec", "ses2", "/bin/probe"]);
    assert_stdout(&r, &want);
    assert_eq!(env.rsrun(&["delete", "--force", "ses2"]).code, 0);
    env.assert_clean("ses2", None);
    // seccomp.bats "[seccomp defaultErrnoRet=ENXIO]": the default action answers with
    // defaultErrnoRet; the newer-than-the-profile syscall still gets ENOSYS.
    env.edit(|v| v["linux"]["seccomp"]["defaultErrnoRet"] = json!(libc::ENXIO));
    let want = format!("unknown={}\nacct={}\n", libc::ENOSYS, libc::ENXIO);
    let r = env.run("ses3", &["/bin/probe"]);
    assert_stdout(&r, &want);
    env.assert_clean("ses3", None);
}

/// seccomp-notify.bats "(SCMP_ACT_NOTIFY kill seccompagent)": once the agent has closed
/// the listener, a notified syscall fails with ENOSYS (it does not hang) and the
/// container goes on.
#[test]
fn notify_after_the_agent_is_gone_gets_enosys() {
    let env = Env::new("sc-agentgone");
    let sock = env.dir.join("seccomp.sock");
    env.edit(|v| {
        v["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock.to_str().unwrap(),
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
    let t = agent(&sock, Answer::Leave);
    env.set_args(&["sh", "-c", "mkdir /dev/shm/x 2>&1; echo rc=$?; echo after"]);
    let b = env.bundle.to_str().unwrap();
    let r = rsrun_within(&env, &["run", "--bundle", b, "sc-ag1"], DEADLINE);
    t.join().unwrap();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("Function not implemented") && r.stdout.contains("rc=1\nafter"),
        "{} {}",
        r.stdout,
        r.stderr
    );
    env.assert_clean("sc-ag1", None);
}

/// seccomp-notify.bats "(empty listener path)", and listener paths that cannot be
/// reached (an abstract name nobody listens at, as in "(SCMP_ACT_NOTIFY abstract
/// listener path)"; a missing directory): refused by name, within the deadline, before
/// anything runs.
#[test]
fn notify_listener_paths_that_cannot_be_reached_are_refused() {
    let env = Env::new("sc-listenpath");
    env.set_args(&["true"]);
    for (i, (path, named)) in [
        ("", "linux.seccomp.listenerPath"),
        ("@abstract-rsrun-test", "listenerPath"),
        ("/nonexistent/agent.sock", "listenerPath"),
    ]
    .into_iter()
    .enumerate()
    {
        env.edit(|v| {
            v["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": path,
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
            });
        });
        let id = format!("sc-lp{i}");
        let b = env.bundle.to_str().unwrap();
        let r = rsrun_within(&env, &["run", "--bundle", b, &id], DEADLINE);
        assert_one_line_error(&r, named);
        env.assert_clean(&id, None);
    }
}

/// seccomp-notify.bats "(SCMP_ACT_NOTIFY startContainer hook)": a startContainer hook,
/// run after the notify filter is loaded and its listener handed off, holds no fd of
/// the runtime's: only stdio, and the directory its `ls` reads.
#[test]
fn start_container_hook_under_a_notify_filter_gets_no_extra_fd() {
    let env = Env::new("sc-notify-hook");
    let sock = env.dir.join("seccomp.sock");
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
    let t = agent(&sock, Answer::Continue);
    env.set_args(&["sh", "-c", "cat /dev/shm/hookfds"]);
    let b = env.bundle.to_str().unwrap();
    let r = rsrun_within(&env, &["run", "--bundle", b, "sc-nh1"], DEADLINE);
    assert_eq!(r.code, 0, "{}", r.stderr);
    t.join().unwrap();
    let fds: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "{}", r.stdout);
    env.assert_clean("sc-nh1", None);
}

/// seccomp-notify.bats "(SCMP_ACT_NOTIFY abstract listener path)": a listenerPath
/// starting with `@` names a socket in the abstract namespace, as runc (Go's net.Dial)
/// takes it: the agent listening there gets the listener and the state (one nobody
/// listens at is refused: notify_listener_paths_that_cannot_be_reached_are_refused).
#[test]
fn notify_to_an_abstract_listener_path() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener};
    let env = Env::new("sc-abstract");
    let name = format!("rsrun-it-seccomp-{}", std::process::id());
    env.edit(|v| {
        v["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": format!("@{name}"),
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        })
    });
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let t = serve(
        UnixListener::bind_addr(&addr).unwrap(),
        Answer::FirstFailsWith(libc::EROFS),
    );
    let r = env.run(
        "sc-abs1",
        &["sh", "-c", "mkdir /dev/shm/x 2>&1; echo rc=$?"],
    );
    // Checked before waiting for the agent, which waits forever if never reached.
    assert!(
        r.stdout.contains("Read-only file system") && r.stdout.contains("rc=1"),
        "{} {}",
        r.stdout,
        r.stderr
    );
    let seen = t.join().unwrap();
    assert_eq!(seen.state["state"]["id"], "sc-abs1");
    env.assert_clean("sc-abs1", None);
}

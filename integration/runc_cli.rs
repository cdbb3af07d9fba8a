//! runc's command-line contract where engines and scripts depend on it.

use crate::common::*;

#[test]
fn kill_with_signal_0_checks_the_init() {
    let env = Env::new("kill0");
    env.set_args(&["sleep", "1000"]);
    assert_eq!(env.create("k01").code, 0);
    assert_eq!(env.rsrun(&["start", "k01"]).code, 0);
    let pid = env.state("k01")["pid"].as_i64().unwrap();
    let r = env.rsrun(&["kill", "k01", "0"]);
    assert_eq!(r.code, 0, "kill 0 of a running container: {}", r.stderr);
    assert_eq!(env.status("k01"), "running", "signal 0 must not hurt");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert_one_line_error(&env.rsrun(&["kill", "k01", "65"]), "invalid signal");
    assert_one_line_error(&env.rsrun(&["kill", "k01", "-1"]), "invalid signal");
    assert_eq!(env.rsrun(&["kill", "k01", "KILL"]).code, 0);
    env.wait_status("k01", "stopped");
    assert_one_line_error(&env.rsrun(&["kill", "k01", "0"]), "not running");
    assert_eq!(env.rsrun(&["delete", "k01"]).code, 0);
    env.assert_clean("k01", Some(pid as i32));
}

#[test]
fn every_exec_failure_exits_255() {
    let env = Env::new("exec255");
    env.set_args(&["sleep", "1000"]);
    assert_eq!(env.create("x255").code, 0);
    assert_eq!(env.rsrun(&["start", "x255"]).code, 0);
    for args in [
        vec!["exec", "nosuch", "true"],
        vec!["exec", "x255", "/nonexistent"],
        vec!["exec", "--cwd", "/nonexistent", "x255", "true"],
        vec!["exec", "--cgroup", "nosuch", "x255", "true"],
    ] {
        let r = env.rsrun(&args);
        assert_eq!(r.code, 255, "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {}", r.stderr);
    }
    // The process's own status is passed through, 255 included.
    assert_eq!(env.rsrun(&["exec", "x255", "sh", "-c", "exit 3"]).code, 3);
    assert_eq!(
        env.rsrun(&["exec", "x255", "sh", "-c", "exit 255"]).code,
        255
    );
    assert_eq!(env.rsrun(&["delete", "--force", "x255"]).code, 0);
    env.assert_clean("x255", None);
}

#[test]
fn exec_env_replaces_the_configs_variable() {
    let env = Env::new("exec-env");
    env.edit(|v| {
        v["process"]["env"] = serde_json::json!(["PATH=/bin", "MY_VAR=old", "KEEP=1"]);
    });
    env.set_args(&["sleep", "1000"]);
    assert_eq!(env.create("xe1").code, 0);
    assert_eq!(env.rsrun(&["start", "xe1"]).code, 0);
    let r = env.rsrun(&["exec", "--env", "MY_VAR=new", "xe1", "env"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let vars: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| !l.starts_with("HOME="))
        .collect();
    assert_eq!(vars, ["PATH=/bin", "KEEP=1", "MY_VAR=new"], "{}", r.stdout);
    assert_eq!(env.rsrun(&["delete", "--force", "xe1"]).code, 0);
    env.assert_clean("xe1", None);
}

#[test]
fn exec_process_file_without_user_runs_as_root() {
    let env = Env::new("exec-nouser");
    env.set_args(&["sleep", "1000"]);
    assert_eq!(env.create("xn1").code, 0);
    assert_eq!(env.rsrun(&["start", "xn1"]).code, 0);
    let p = env.dir.join("process.json");
    std::fs::write(
        &p,
        r#"{"args": ["id", "-u"], "cwd": "/", "env": ["PATH=/bin"]}"#,
    )
    .unwrap();
    let r = env.rsrun(&["exec", "--process", p.to_str().unwrap(), "xn1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "0\n");
    assert_eq!(env.rsrun(&["delete", "--force", "xn1"]).code, 0);
    env.assert_clean("xn1", None);
}

/// env.bats: an empty HOME is set from the container's passwd, once.
#[test]
fn empty_home_is_set_from_passwd() {
    let env = Env::new("home-empty");
    env.edit(|v| {
        v["process"]["env"] = serde_json::json!(["PATH=/bin", "HOME="]);
    });
    let r = env.run("he1", &["sh", "-c", "env | grep -c '^HOME='; echo $HOME"]);
    assert_stdout(&r, "1\n/root\n");
    env.assert_clean("he1", None);
}

/// `linux.netDevices` is refused, naming the field, not silently ignored.
#[test]
fn net_devices_are_refused_not_ignored() {
    let env = Env::new("netdev");
    env.edit(|v| {
        v["linux"]["netDevices"] = serde_json::json!({"nosuchdev0": {}});
    });
    assert_one_line_error(&env.create("nd1n"), "linux.netDevices");
    env.assert_clean("nd1n", None);
}

/// help.bats: `-h`, `--help` and `help` at the top and for every command print usage
/// and succeed; an unknown command fails.
#[test]
fn help_for_every_command() {
    for args in [&["-h"][..], &["--help"], &["help"]] {
        let r = rsrun(args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert!(r.stdout.contains("Usage"), "{args:?}: {}", r.stdout);
    }
    let commands = [
        "checkpoint",
        "create",
        "delete",
        "events",
        "exec",
        "features",
        "kill",
        "list",
        "pause",
        "ps",
        "restore",
        "resume",
        "run",
        "spec",
        "start",
        "state",
        "update",
    ];
    for c in commands {
        for args in [&[c, "-h"][..], &[c, "--help"], &["help", c]] {
            let r = rsrun(args);
            assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
            assert!(
                r.stdout.contains(&format!("Usage: rsrun {c}")),
                "{args:?}: {}",
                r.stdout
            );
        }
    }
    let r = rsrun(&["foo", "-h"]);
    assert_ne!(r.code, 0, "an unknown command: {}", r.stdout);
    assert!(r.stderr.contains("foo"), "{}", r.stderr);
}

/// debug.bats: `--debug` logs debug lines to stderr in text (logrus's shape), and to
/// `--log` in text or JSON; without it, none.
#[test]
fn debug_goes_to_stderr_or_the_log_in_either_format() {
    let env = Env::new("cli-debug");
    env.set_args(&["true"]);
    let bundle = env.bundle.to_str().unwrap().to_string();
    let r = env.rsrun(&["--debug", "run", "--bundle", &bundle, "dbg-t1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let first = r.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("time=\"") && first.contains(" level=debug msg=\""),
        "{}",
        r.stderr
    );
    let log = env.dir.join("text.log");
    let r = env.rsrun(&[
        "--debug",
        "--log",
        log.to_str().unwrap(),
        "run",
        "--bundle",
        &bundle,
        "dbg-t2",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("level=debug"), "{}", r.stderr);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("level=debug msg=\"create dbg-t2"), "{text}");
    let r = env.rsrun(&["run", "--bundle", &bundle, "dbg-t3"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    for id in ["dbg-t1", "dbg-t2", "dbg-t3"] {
        env.assert_clean(id, None);
    }
}

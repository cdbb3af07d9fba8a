//! How a process that cannot be executed fails, and how errors keep their cause across
//! the fork: runc's words and exit codes, which engines turn into theirs (Docker: "no
//! such file or directory" → 127, "permission denied" → 126).

use crate::common::*;
use serde_json::json;

fn image_with_bad_executables(env: &Env) {
    add_bad_executables(&env.bundle.join("rootfs"));
}

/// What the lookup finds fails `create` with runc's text, and leaves nothing.
#[test]
fn an_executable_that_cannot_be_found_or_run_fails_create_in_runcs_words() {
    let env = Env::new("xf-create");
    image_with_bad_executables(&env);
    for (i, (arg, want)) in [
        (
            "/nonexistent",
            r#"exec: "/nonexistent": stat /nonexistent: no such file or directory"#,
        ),
        ("/tmp", r#"exec: "/tmp": permission denied"#),
        ("/noexec", r#"exec: "/noexec": permission denied"#),
        (
            "nosuchcommand",
            r#"exec: "nosuchcommand": executable file not found in $PATH"#,
        ),
    ]
    .iter()
    .enumerate()
    {
        let id = format!("xf-c{i}");
        env.set_args(&[arg]);
        let r = env.create(&id);
        assert_one_line_error(&r, want);
        env.assert_clean(&id, None);
    }
}

/// An execve that fails after the lookup (a missing `#!` interpreter, a file that is not
/// an executable format) is the process's own failure, as with runc: `start` succeeds,
/// the process says why on its stderr and exits 1.
#[test]
fn an_execve_failure_is_the_processes_own() {
    let env = Env::new("xf-start");
    image_with_bad_executables(&env);
    for (i, (arg, want)) in [
        ("/badscript", "exec /badscript: no such file or directory\n"),
        ("/badelf", "exec /badelf: exec format error\n"),
    ]
    .iter()
    .enumerate()
    {
        let id = format!("xf-s{i}");
        env.set_args(&[arg]);
        let r = env.create(&id);
        assert_eq!(r.code, 0, "create {arg}: {}", r.stderr);
        let r = env.rsrun(&["start", &id]);
        assert_eq!(r.code, 0, "start {arg}: {}", r.stderr);
        env.wait_status(&id, "stopped");
        assert_eq!(env.rsrun(&["delete", &id]).code, 0);
        // `run` shows the process's words and status.
        let r = env.run(&format!("xf-r{i}"), &[arg]);
        assert_eq!((r.code, r.stderr.as_str()), (1, *want), "run {arg}");
        env.assert_clean(&id, None);
    }
}

/// The same through `exec`: lookup failures are exec's own (255, runc's text), execve
/// failures the process's (its stderr, status 1).
#[test]
fn exec_failures_split_the_same_way() {
    let env = Env::new("xf-exec");
    image_with_bad_executables(&env);
    env.set_args(&["sleep", "1000"]);
    assert_eq!(env.create("xf-e").code, 0);
    assert_eq!(env.rsrun(&["start", "xf-e"]).code, 0);
    let r = env.rsrun(&["exec", "xf-e", "/nonexistent"]);
    assert_eq!(r.code, 255);
    assert_one_line_error(&r, "stat /nonexistent: no such file or directory");
    let r = env.rsrun(&["exec", "xf-e", "/badscript"]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "exec /badscript: no such file or directory\n")
    );
    let r = env.rsrun(&["exec", "--detach", "xf-e", "/badelf"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(env.rsrun(&["delete", "--force", "xf-e"]).code, 0);
    env.assert_clean("xf-e", None);
}

/// Values too big for the report of the step they broke still arrive, with the errno.
#[test]
fn huge_values_keep_their_cause() {
    let env = Env::new("xf-huge");
    let good = env.config();
    let big = "x".repeat(1 << 20);
    type Edit<'a> = Box<dyn Fn(&mut serde_json::Value) + 'a>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "hostname",
            Box::new(|v| v["hostname"] = json!(big.clone())),
            "hostname: must be at most 64 bytes",
        ),
        (
            "args",
            Box::new(|v| v["process"]["args"] = json!([format!("/{big}")])),
            "file name too long",
        ),
        (
            "cwd",
            Box::new(|v| v["process"]["cwd"] = json!(format!("/{big}"))),
            "ENAMETOOLONG",
        ),
        (
            "cgroupsPath",
            Box::new(|v| v["linux"]["cgroupsPath"] = json!("/a\u{0}b")),
            "linux.cgroupsPath: contains a NUL byte",
        ),
    ];
    for (i, (what, edit, want)) in cases.iter().enumerate() {
        let mut v = good.clone();
        edit(&mut v);
        env.write_config(&v);
        let id = format!("xf-h{i}");
        let r = env.create(&id);
        assert_one_line_error(&r, want);
        assert!(
            r.stderr.len() < 4096,
            "{what}: {} bytes of error",
            r.stderr.len()
        );
        assert!(!r.stderr.contains("exited before"), "{what}: {}", r.stderr);
        env.assert_clean(&id, None);
    }
}

/// An init that dies while being set up is reported by how it died, not by the end of
/// the protocol socket.
#[test]
fn an_init_killed_during_create_is_reported_as_killed() {
    let env = Env::new("xf-killed");
    env.edit(|v| {
        v["hooks"] = json!({"createRuntime": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", "p=$(tr -d ' \\n' | grep -o '\"pid\":[0-9]*' | cut -d: -f2); kill -9 $p"]
        }]});
    });
    let r = env.create("xf-k");
    assert_one_line_error(&r, "container init was killed by SIGKILL");
    env.assert_clean("xf-k", None);
}

//! Hooks fire in order, at the point and in the namespace the runtime-spec names, with
//! the state on stdin; a failing hook fails the operation.

use crate::common::*;
use serde_json::json;

/// A hook script that records its name, status, the namespace it ran in, its env and
/// the pid of its state.
fn hook(log: &str, name: &str) -> serde_json::Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!(
            "read -r s; echo \"{name} $(echo \"$s\" | grep -o '\"status\":\"[a-z]*\"') $(readlink /proc/self/ns/mnt) $HOOKENV $(echo \"$s\" | grep -o '\"pid\":[0-9]*')\" >> {log}/hooks.log"
        )],
        "env": ["HOOKENV=e-{name}".replace("{name}", name)],
        "timeout": 5
    })
}

#[test]
fn hooks_run_in_order_with_state() {
    let env = Env::new("hooks");
    let logdir = env.dir.join("hooklog");
    std::fs::create_dir_all(&logdir).unwrap();
    let ld = logdir.to_str().unwrap().to_string();
    env.edit(|v| {
        // startContainer runs inside the container: give it the log dir at the same path.
        v["mounts"].as_array_mut().unwrap().push(json!({
            "destination": ld, "type": "bind", "source": ld, "options": ["rbind", "rw"]
        }));
        v["hooks"] = json!({
            "prestart": [hook(&ld, "prestart")],
            "createRuntime": [hook(&ld, "createRuntime")],
            "createContainer": [hook(&ld, "createContainer")],
            "startContainer": [hook(&ld, "startContainer")],
            "poststart": [hook(&ld, "poststart")],
            "poststop": [hook(&ld, "poststop")],
        });
    });
    env.set_args(&["true"]);
    assert_eq!(env.create("hk1").code, 0);
    let log = std::fs::read_to_string(logdir.join("hooks.log")).unwrap();
    let names: Vec<&str> = log.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(names, vec!["prestart", "createRuntime", "createContainer"]);
    let pid = env.state("hk1")["pid"].as_i64().unwrap();
    assert_eq!(env.rsrun(&["start", "hk1"]).code, 0);
    env.wait_status("hk1", "stopped");
    assert_eq!(env.rsrun(&["delete", "hk1"]).code, 0);
    env.assert_clean("hk1", None);

    let log = std::fs::read_to_string(logdir.join("hooks.log")).unwrap();
    let lines: Vec<Vec<&str>> = log.lines().map(|l| l.split(' ').collect()).collect();
    let names: Vec<&str> = lines.iter().map(|l| l[0]).collect();
    assert_eq!(
        names,
        vec![
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ]
    );
    let host_mnt = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let host_mnt = host_mnt.to_str().unwrap();
    for l in &lines {
        let in_container = matches!(l[0], "createContainer" | "startContainer");
        assert_eq!(
            l[2] != host_mnt,
            in_container,
            "{} ran in the wrong mount namespace",
            l[0]
        );
        assert_eq!(l[3], format!("e-{}", l[0]), "env of {}", l[0]);
    }
    // prestart, createRuntime, createContainer and startContainer run once the
    // environment is created (the runtime-spec's lifecycle; crun's state, which
    // conformance suites check): `created`.
    for l in &lines[..4] {
        assert_eq!(l[1], "\"status\":\"created\"", "{}", l[0]);
        assert_eq!(
            l[4],
            format!("\"pid\":{pid}"),
            "the init's host pid to {}",
            l[0]
        );
    }
    assert_eq!(lines[4][1], "\"status\":\"running\"");
    assert_eq!(lines[5][1], "\"status\":\"stopped\"");
}

/// hooks.bats "runc create [hook fails]", "[second createRuntime hook fails]": the
/// second hook of a list failing fails `create`, in runc's words (`hook #1`), and
/// leaves nothing behind.
#[test]
fn failing_hook_fails_create_and_leaves_nothing() {
    let env = Env::new("hookfail");
    for (i, kind) in ["prestart", "createRuntime", "createContainer"]
        .iter()
        .enumerate()
    {
        env.edit(|v| {
            v["hooks"] = json!({*kind: [{"path": "/bin/true"}, {"path": "/bin/false"}]});
        });
        let id = format!("hf{i}");
        let r = env.create(&id);
        assert_one_line_error(&r, &format!("error running {kind} hook #1: \"/bin/false\""));
        env.assert_clean(&id, None);
    }
}

/// hooks.bats "runc run [hook fails]": a failing prestart, createRuntime,
/// createContainer or startContainer hook fails `run` before the process runs, and
/// leaves nothing. poststart is where rsrun follows the runtime-spec ("the runtime MUST
/// log a warning ... as if the hook had succeeded") where runc fails: a warning, exit 0.
#[test]
fn failing_hook_fails_run_before_the_process() {
    let env = Env::new("hookfail-run");
    for (i, kind) in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
    ]
    .iter()
    .enumerate()
    {
        env.edit(|v| {
            v["hooks"] = json!({*kind: [{"path": "/bin/true"}, {"path": "/bin/false"}]});
        });
        let id = format!("hfr{i}");
        let r = env.run(&id, &["echo", "Hello World"]);
        assert!(!r.stdout.contains("Hello World"), "{kind}: {}", r.stdout);
        assert_one_line_error(&r, &format!("error running {kind} hook #1: \"/bin/false\""));
        env.assert_clean(&id, None);
    }
    env.edit(|v| {
        v["hooks"] = json!({"poststart": [{"path": "/bin/true"}, {"path": "/bin/false"}]});
    });
    let r = env.run("hfr-post", &["echo", "Hello World"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "Hello World\n");
    assert!(
        r.stderr
            .contains("level=warning msg=\"error running poststart hook #1:")
            && r.stderr.contains("/bin/false"),
        "{}",
        r.stderr
    );
    env.assert_clean("hfr-post", None);
}

#[test]
fn hook_timeout_is_enforced() {
    let env = Env::new("hooktimeout");
    env.edit(|v| {
        v["hooks"] = json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    });
    let t = std::time::Instant::now();
    let r = env.create("ht1");
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    assert_one_line_error(&r, "timed out");
    env.assert_clean("ht1", None);
}

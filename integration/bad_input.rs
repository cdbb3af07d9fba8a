//! Bad input: a one-line error naming the field, path or id (and the errno where there
//! is one), a non-zero exit, and nothing left behind.

use crate::common::*;
use serde_json::json;

fn refused(env: &Env, id: &str, needle: &str) {
    let r = env.create(id);
    assert_one_line_error(&r, needle);
    env.assert_clean(id, None);
}

#[test]
fn missing_bundle_and_config() {
    let env = Env::new("bad-bundle");
    let r = env.rsrun(&["create", "--bundle", "/nonexistent/bundle", "bb1"]);
    assert_one_line_error(&r, "\"/nonexistent/bundle\": ENOENT");
    env.assert_clean("bb1", None);
    std::fs::remove_file(env.bundle.join("config.json")).unwrap();
    let r = env.create("bb2");
    assert_one_line_error(&r, "config.json\": ENOENT");
    env.assert_clean("bb2", None);
}

#[test]
fn malformed_json() {
    let env = Env::new("bad-json");
    std::fs::write(
        env.bundle.join("config.json"),
        "{\"ociVersion\": \"1.0.0\", ",
    )
    .unwrap();
    refused(&env, "bj1", "config.json");
}

#[test]
fn missing_fields() {
    let env = Env::new("bad-fields");
    let good = env.config();
    let mut v = good.clone();
    v["process"].as_object_mut().unwrap().remove("args");
    env.write_config(&v);
    refused(&env, "bf1", "process.args");

    let mut v = good.clone();
    v["root"].as_object_mut().unwrap().remove("path");
    env.write_config(&v);
    refused(&env, "bf2", "root");

    let mut v = good.clone();
    v["root"]["path"] = json!("no-such-rootfs");
    env.write_config(&v);
    refused(&env, "bf3", "no-such-rootfs\": ENOENT");
}

#[test]
fn unsupported_oci_version() {
    let env = Env::new("bad-version");
    env.edit(|v| v["ociVersion"] = json!("2.0.0"));
    refused(&env, "bv1", "ociVersion");
}

#[test]
fn bad_namespaces() {
    let env = Env::new("bad-ns");
    let good = env.config();
    let mut v = good.clone();
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "bogus"}));
    env.write_config(&v);
    refused(&env, "bn1", "linux.namespaces[6].type");

    let mut v = good.clone();
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "pid"}));
    env.write_config(&v);
    refused(&env, "bn2", "listed twice");

    let mut v = good.clone();
    v["linux"]["namespaces"] =
        json!([{"type": "mount"}, {"type": "network", "path": "/nonexistent/netns"}]);
    v["hostname"] = json!(null);
    env.write_config(&v);
    refused(&env, "bn3", "/nonexistent/netns");
}

#[test]
fn invalid_ids() {
    let env = Env::new("bad-ids");
    let long = "x".repeat(1025);
    for id in ["", ".", "..", "a/b", "../../etc", long.as_str()] {
        let r = env.rsrun(&["create", "--bundle", env.bundle.to_str().unwrap(), id]);
        assert_one_line_error(&r, "invalid container id");
    }
    assert!(!env.root.exists() || std::fs::read_dir(&env.root).unwrap().next().is_none());
}

#[test]
fn duplicate_id() {
    let env = Env::new("bad-dup");
    env.set_args(&["sleep", "100"]);
    assert_eq!(env.create("dup1").code, 0);
    let pid = env.state("dup1")["pid"].as_i64().unwrap();
    let r = env.create("dup1");
    assert_one_line_error(&r, "already exists");
    // The first container is untouched.
    assert_eq!(env.status("dup1"), "created");
    assert_eq!(env.state("dup1")["pid"].as_i64().unwrap(), pid);
    assert_eq!(env.rsrun(&["delete", "dup1"]).code, 0);
    env.assert_clean("dup1", Some(pid as i32));
}

#[test]
fn missing_executable_fails_create() {
    let env = Env::new("bad-exe");
    env.set_args(&["no-such-binary"]);
    refused(&env, "be1", "executable file not found in $PATH");
    env.set_args(&["/bin/no-such-binary"]);
    refused(&env, "be2", "/bin/no-such-binary");
}

#[test]
fn wrong_state_commands() {
    let env = Env::new("bad-state");
    assert_one_line_error(&env.rsrun(&["start", "nope"]), "does not exist");
    assert_one_line_error(&env.rsrun(&["kill", "nope"]), "does not exist");
    assert_one_line_error(&env.rsrun(&["delete", "nope"]), "does not exist");
    assert_one_line_error(&env.rsrun(&["state", "nope"]), "does not exist");
    env.set_args(&["true"]);
    env.run_detached("ws1");
    env.wait_status("ws1", "stopped");
    assert_one_line_error(&env.rsrun(&["start", "ws1"]), "stopped");
    assert_one_line_error(&env.rsrun(&["kill", "ws1", "TERM"]), "not running");
    assert_one_line_error(&env.rsrun(&["kill", "ws1", "NOSUCHSIG"]), "invalid signal");
    assert_eq!(env.rsrun(&["delete", "ws1"]).code, 0);
    env.assert_clean("ws1", None);
}

#[test]
fn unsupported_features_are_refused_not_ignored() {
    let env = Env::new("bad-unsupported");
    let good = env.config();
    let mut v = good.clone();
    v["process"]["terminal"] = json!(true);
    env.write_config(&v);
    refused(&env, "bu2", "process.terminal");

    let mut v = good.clone();
    v["linux"]["cgroupsPath"] = json!("system.slice:rsrun:bu4");
    env.write_config(&v);
    refused(&env, "bu4", "--systemd-cgroup");

    let mut v = good.clone();
    v["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "relative/dir", "type": "tmpfs", "source": "tmpfs"}));
    env.write_config(&v);
    refused(&env, "bu3", "mounts[7].destination");
}

#[test]
fn failing_mount_names_it_and_leaves_nothing() {
    let env = Env::new("bad-mount");
    env.edit(|v| {
        v["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/data", "type": "bind", "source": "/nonexistent/source", "options": ["rbind"]
        }));
    });
    refused(&env, "bm1", "mounts[7].source");
}

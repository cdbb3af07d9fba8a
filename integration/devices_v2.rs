//! The device cgroup with the rule lists engines really send: Docker's default list,
//! Podman's, and a hundred rules. On a pure cgroup v2 host (`make test-v2`) they become
//! one eBPF program, which has to load (it once failed with ENOSPC: a verifier log that
//! overflowed its buffer) and has to bite; on a v1 host they are the devices files.
//! Each test opens an allowed device (it works) and a denied one (EPERM).

use crate::common::*;
use serde_json::{json, Value};

fn c(major: i64, minor: i64, access: &str) -> Value {
    json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": access})
}

/// Docker's list (moby's default spec plus the defaults it adds for an unprivileged
/// container): deny all, then fifteen rules.
fn docker() -> Vec<Value> {
    vec![
        json!({"allow": false, "access": "rwm"}),
        c(1, 5, "rwm"),
        c(1, 3, "rwm"),
        c(1, 9, "rwm"),
        c(1, 8, "rwm"),
        c(5, 0, "rwm"),
        c(5, 1, "rwm"),
        json!({"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"}),
        json!({"allow": true, "type": "c", "access": "m"}),
        json!({"allow": true, "type": "b", "access": "m"}),
        c(1, 7, "rwm"),
        json!({"allow": true, "type": "c", "major": 136, "access": "rwm"}),
        c(5, 2, "rwm"),
        c(10, 200, "rwm"),
        c(10, 232, "rwm"),
        c(10, 227, "rwm"),
    ]
}

/// Podman's list: deny all, the mknod wildcards, the standard nodes, the pty range.
fn podman() -> Vec<Value> {
    vec![
        json!({"allow": false, "access": "rwm"}),
        json!({"allow": true, "type": "c", "access": "m"}),
        json!({"allow": true, "type": "b", "access": "m"}),
        c(1, 3, "rwm"),
        c(1, 8, "rwm"),
        c(1, 7, "rwm"),
        c(5, 0, "rwm"),
        c(1, 5, "rwm"),
        c(1, 9, "rwm"),
        c(5, 1, "rwm"),
        json!({"allow": true, "type": "c", "major": 136, "access": "rwm"}),
        c(5, 2, "rwm"),
        c(10, 229, "rwm"),
    ]
}

/// Run `script` in a container with `rules` as linux.resources.devices and CAP_MKNOD
/// (to make the nodes to open); returns its output.
fn run_with_rules(env: &Env, id: &str, rules: Vec<Value>, script: &str) -> String {
    env.edit(|v| {
        v["linux"]["resources"]["devices"] = Value::Array(rules);
        add_capability(v, "CAP_MKNOD");
    });
    let r = env.run(id, &["sh", "-c", script]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    env.assert_clean(id, None);
    r.stdout
}

/// /dev/null and /dev/zero work. The other nodes are made with mknod (the lists allow
/// it) and only opened: 239:0 has no rule and no driver, so the device cgroup's EPERM is
/// the only error that can come first (allowed, it would be ENXIO); fuse (10:229) is what
/// each list says.
const SCRIPT: &str = "echo x > /dev/null && echo null-ok; head -c 3 /dev/zero | wc -c; \
    mknod /dev/none c 239 0 && echo mknod-ok; (: < /dev/none) 2>&1; \
    mknod /dev/fuse-test c 10 229; (: < /dev/fuse-test) 2>&1 && echo fuse-open-ok; true";

/// Run SCRIPT under `rules` and check what it saw.
fn check_list(name: &str, rules: Vec<Value>, fuse_allowed: bool) {
    let env = Env::new(name);
    let out = run_with_rules(&env, name, rules, SCRIPT);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(&l[..3], ["null-ok", "3", "mknod-ok"], "{out}");
    assert!(l[3].contains("Operation not permitted"), "239:0: {out}");
    // Allowed, the open reaches the driver: no device cgroup error.
    let fuse = l.get(4).copied().unwrap_or("");
    assert_eq!(
        fuse.contains("Operation not permitted"),
        !fuse_allowed,
        "fuse: {out}"
    );
}

#[test]
fn docker_default_device_rules_load_and_bite() {
    // Docker denies fuse explicitly.
    check_list("dev-docker", docker(), false);
}

#[test]
fn podman_default_device_rules_load_and_bite() {
    check_list("dev-podman", podman(), true);
}

#[test]
fn a_hundred_device_rules_load_and_bite() {
    let env = Env::new("dev-100");
    let mut rules = vec![json!({"allow": false, "access": "rwm"})];
    // Majors 240-254 are for local/experimental use: no driver answers, so an allowed
    // open fails with ENXIO, a denied one with EPERM.
    for i in 0..100 {
        rules.push(c(240 + i % 15, i / 15, "rwm"));
    }
    let script =
        "mknod /dev/first c 240 0; mknod /dev/hundredth c 249 6; mknod /dev/none c 239 0; \
        for d in first hundredth none; do (: < /dev/$d) 2>&1; done; true";
    let out = run_with_rules(&env, "dev100", rules, script);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l.len(), 3, "{out}");
    assert!(
        l[0].contains("No such device or address"),
        "first rule: {out}"
    );
    assert!(
        l[1].contains("No such device or address"),
        "100th rule: {out}"
    );
    assert!(l[2].contains("Operation not permitted"), "no rule: {out}");
}

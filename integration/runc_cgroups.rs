//! Tests written after runc's cgroups.bats scenarios that need a cgroup layout or an I/O
//! scheduler this development host lacks (pure v2, BFQ): each skips here by name (the
//! Makefile's HOST_SKIPS) and runs in the pure v2 lane (`make test-v2`).

use crate::common::*;
use serde_json::json;
use std::path::Path;

/// The cgroup mount of the config made read-write (runc's `set_cgroup_mount_writable`).
fn cgroup_mount_writable(v: &mut serde_json::Value) {
    for m in v["mounts"].as_array_mut().unwrap() {
        if m["type"] == "cgroup" {
            m["options"].as_array_mut().unwrap().retain(|o| o != "ro");
        }
    }
}

/// `exec ID ARGS`, which must succeed; its stdout.
fn exec_ok(env: &Env, id: &str, args: &[&str]) -> String {
    let mut full = vec!["exec", id];
    full.extend_from_slice(args);
    let r = env.rsrun(&full);
    assert_eq!(r.code, 0, "exec {args:?}: {}", r.stderr);
    r.stdout
}

/// cgroups.bats "runc exec (cgroup v2 + init process in non-root cgroup) succeeds": the
/// container moves its init into a sub-cgroup it made; an exec still joins the
/// container's cgroup, and once a domain controller is enabled for the sub-cgroups (no
/// process may join the container's cgroup then: EBUSY) it joins the init's.
#[test]
fn exec_with_the_init_in_a_sub_cgroup() {
    if !pure_v2_or_skip("runc_cgroups::exec_with_the_init_in_a_sub_cgroup") {
        return;
    }
    let env = Env::new("rcg-subgroup");
    env.edit(cgroup_mount_writable);
    env.set_args(&["sleep", "100"]);
    env.run_detached("rcg-sg1");
    let controllers = exec_ok(
        &env,
        "rcg-sg1",
        &["cat", "/sys/fs/cgroup/cgroup.controllers"],
    );
    assert!(
        controllers.split_whitespace().any(|c| c == "memory"),
        "{controllers}"
    );
    assert_eq!(
        exec_ok(&env, "rcg-sg1", &["cat", "/proc/self/cgroup"]),
        "0::/\n"
    );
    exec_ok(&env, "rcg-sg1", &["mkdir", "/sys/fs/cgroup/foo"]);
    exec_ok(
        &env,
        "rcg-sg1",
        &["sh", "-c", "echo 1 > /sys/fs/cgroup/foo/cgroup.procs"],
    );
    // Without a domain controller on, the container's cgroup still takes processes.
    assert_eq!(
        exec_ok(&env, "rcg-sg1", &["cat", "/proc/self/cgroup"]),
        "0::/\n"
    );
    exec_ok(
        &env,
        "rcg-sg1",
        &[
            "sh",
            "-euc",
            "echo $$ > /sys/fs/cgroup/foo/cgroup.procs; echo +memory > /sys/fs/cgroup/cgroup.subtree_control",
        ],
    );
    assert_eq!(
        exec_ok(&env, "rcg-sg1", &["cat", "/proc/self/cgroup"]),
        "0::/foo\n"
    );
    env.delete_and_assert_clean("rcg-sg1");
}

/// cgroups.bats "runc run (cgroupv2 mount inside container)": the container's cgroup2
/// mount shows its own cgroup, with no cgroup below it.
#[test]
fn cgroup2_mount_inside_shows_no_other_cgroup() {
    if !pure_v2_or_skip("runc_cgroups::cgroup2_mount_inside_shows_no_other_cgroup") {
        return;
    }
    let env = Env::new("rcg-mount");
    env.set_args(&["sleep", "100"]);
    env.run_detached("rcg-m1");
    let dirs = exec_ok(&env, "rcg-m1", &["find", "/sys/fs/cgroup/", "-type", "d"]);
    assert_eq!(dirs, "/sys/fs/cgroup/\n");
    let mounts = exec_ok(&env, "rcg-m1", &["cat", "/proc/self/mounts"]);
    assert!(
        mounts
            .lines()
            .any(|l| l.split_whitespace().take(3).collect::<Vec<_>>()
                == ["cgroup2", "/sys/fs/cgroup", "cgroup2"]),
        "{mounts}"
    );
    env.delete_and_assert_clean("rcg-m1");
}

/// A loop device on a one-page file (in the test's directory), detached when dropped.
struct Loop {
    dev: String,
}

impl Loop {
    fn new(dir: &Path) -> Option<Loop> {
        let file = dir.join("backing.img");
        std::fs::write(&file, vec![0u8; 4096]).unwrap();
        let out = std::process::Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&file)
            .output()
            .ok()?;
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !dev.is_empty()).then_some(Loop { dev })
    }

    fn name(&self) -> &str {
        self.dev.trim_start_matches("/dev/")
    }

    /// Switch its queue to BFQ; false when the kernel has no BFQ.
    fn use_bfq(&self) -> bool {
        let sched = format!("/sys/block/{}/queue/scheduler", self.name());
        std::fs::write(&sched, "bfq").is_ok()
            && std::fs::read_to_string(&sched).is_ok_and(|s| s.contains("[bfq]"))
    }

    fn major_minor(&self) -> (u64, u64) {
        let text = std::fs::read_to_string(format!("/sys/block/{}/dev", self.name())).unwrap();
        let (a, b) = text.trim().split_once(':').unwrap();
        (a.parse().unwrap(), b.parse().unwrap())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.dev])
            .status();
    }
}

/// cgroups.bats "runc run (per-device io weight for bfq)": a default weight and one for
/// a device under BFQ land in BFQ's file (v1 `blkio.bfq.weight_device`, v2
/// `io.bfq.weight`), one line each.
#[test]
fn per_device_io_weight_for_bfq() {
    const NAME: &str = "runc_cgroups::per_device_io_weight_for_bfq";
    let env = Env::new("rcg-bfq");
    let Some(dev) = Loop::new(&env.dir) else {
        skip(NAME, "no loop device can be made here");
        return;
    };
    if !dev.use_bfq() {
        skip(NAME, "the kernel has no BFQ I/O scheduler here");
        return;
    }
    let (major, minor) = dev.major_minor();
    env.edit(|v| {
        v["linux"]["devices"] =
            json!([{"path": dev.dev, "type": "b", "major": major, "minor": minor}]);
        v["linux"]["resources"]["blockIO"] = json!({
            "weight": 333,
            "weightDevice": [{"major": major, "minor": minor, "weight": 444}]
        });
    });
    env.set_args(&["sleep", "100"]);
    env.run_detached("rcg-bfq1");
    let weights = if crate::resources::v2() {
        crate::resources::read("rcg-bfq1", "io", "io.bfq.weight")
    } else {
        crate::resources::read("rcg-bfq1", "blkio", "blkio.bfq.weight_device")
    };
    assert!(weights.contains("default 333"), "{weights}");
    assert!(
        weights.contains(&format!("{major}:{minor} 444")),
        "{weights}"
    );
    env.delete_and_assert_clean("rcg-bfq1");
}

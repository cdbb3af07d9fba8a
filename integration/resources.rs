//! linux.resources: the kernel's own cgroup files say what rsrun wrote, and the limits
//! bite. Runs on v1/hybrid and on pure v2 (the file names differ).

use crate::common::*;
use rsrun::cgroups::{Cgroup, Mode};
use serde_json::json;

/// Read a cgroup file of container `id` from the host, in the hierarchy holding `controller`.
fn read(id: &str, controller: &str, file: &str) -> String {
    let cg = Cgroup::resolve(None, id).unwrap();
    let dir = cg
        .dirs
        .iter()
        .find(|d| cg.mode == Mode::V2 || d.controllers.split(',').any(|c| c == controller))
        .unwrap();
    std::fs::read_to_string(dir.path.join(file))
        .unwrap()
        .trim()
        .to_string()
}

fn v2() -> bool {
    Cgroup::resolve(None, "x").unwrap().mode == Mode::V2
}

#[test]
fn limits_are_written() {
    let env = Env::new("res-files");
    env.edit(|v| {
        v["linux"]["resources"]["memory"] = json!({"limit": 67108864, "reservation": 33554432});
        v["linux"]["resources"]["pids"] = json!({"limit": 42});
        v["linux"]["resources"]["cpu"] = json!({"shares": 512, "quota": 20000, "period": 100000});
    });
    env.set_args(&["sleep", "100"]);
    assert_eq!(
        env.rsrun(&["run", "-d", "--bundle", env.bundle.to_str().unwrap(), "rf1"])
            .code,
        0
    );
    if v2() {
        assert_eq!(read("rf1", "memory", "memory.max"), "67108864");
        assert_eq!(read("rf1", "memory", "memory.low"), "33554432");
        assert_eq!(read("rf1", "pids", "pids.max"), "42");
        assert_eq!(read("rf1", "cpu", "cpu.max"), "20000 100000");
        assert_eq!(read("rf1", "cpu", "cpu.weight"), "20");
    } else {
        assert_eq!(read("rf1", "memory", "memory.limit_in_bytes"), "67108864");
        assert_eq!(
            read("rf1", "memory", "memory.soft_limit_in_bytes"),
            "33554432"
        );
        assert_eq!(read("rf1", "pids", "pids.max"), "42");
        assert_eq!(read("rf1", "cpu", "cpu.cfs_quota_us"), "20000");
        assert_eq!(read("rf1", "cpu", "cpu.shares"), "512");
        let devs = read("rf1", "devices", "devices.list");
        assert!(
            devs.contains("c 1:3 rwm") && !devs.contains("a *:* rwm"),
            "{devs}"
        );
    }
    assert_eq!(env.rsrun(&["delete", "-f", "rf1"]).code, 0);
    env.assert_clean("rf1", None);
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    let env = Env::new("res-pids");
    env.edit(|v| v["linux"]["resources"]["pids"] = json!({"limit": 10}));
    let r = env.run(
        "rp1",
        &["sh", "-c", "n=0; while [ $n -lt 30 ]; do sleep 5 & n=$((n+1)); done 2>/dev/null; echo started; ls /proc | grep -c '^[0-9]'"],
    );
    let count: i32 = r
        .stdout
        .lines()
        .last()
        .unwrap_or("0")
        .trim()
        .parse()
        .unwrap_or(99);
    assert!(
        count <= 10,
        "{} processes under pids.max=10: {}",
        count,
        r.stdout
    );
    env.assert_clean("rp1", None);
}

#[test]
fn memory_hog_is_oom_killed() {
    let env = Env::new("res-oom");
    env.edit(|v| v["linux"]["resources"]["memory"] = json!({"limit": 16777216, "swap": 16777216}));
    // dd allocates a 64 MiB buffer: the OOM killer must stop it (SIGKILL → 137).
    let r = env.run(
        "ro1",
        &[
            "sh",
            "-c",
            "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo rc=$?",
        ],
    );
    assert_eq!(r.stdout, "rc=137\n", "{}", r.stderr);
    env.assert_clean("ro1", None);
}

#[test]
fn devices_are_default_deny() {
    let env = Env::new("res-dev");
    env.edit(|v| {
        for set in ["bounding", "effective", "permitted"] {
            v["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_MKNOD"));
        }
    });
    // /dev/mem (1:1) is not in the allow list: mknod may work, opening must not.
    let r = env.run(
        "rd1",
        &["sh", "-c", "mknod /dev/shm/mem c 1 1; head -c1 /dev/shm/mem >/dev/null && echo opened-mem; head -c1 /dev/zero | wc -c"],
    );
    assert!(
        !r.stdout.contains("opened-mem"),
        "{} {}",
        r.stdout,
        r.stderr
    );
    assert!(
        r.stdout.contains('1'),
        "allowed /dev/zero could not be read: {}",
        r.stderr
    );
    env.assert_clean("rd1", None);
}

#[test]
fn bad_resource_values_name_the_field() {
    let env = Env::new("res-bad");
    env.edit(|v| v["linux"]["resources"]["memory"] = json!({"swappiness": 500}));
    let r = env.create("rb1");
    assert_one_line_error(&r, "linux.resources.memory.swappiness");
    env.assert_clean("rb1", None);
    env.edit(|v| {
        v["linux"]["resources"]["memory"] = json!(null);
        v["linux"]["resources"]["cpu"] = json!({"cpus": "9999"});
    });
    let r = env.create("rb2");
    assert_one_line_error(&r, "linux.resources.cpu.cpus");
    assert!(r.stderr.contains("cpuset.cpus"), "{}", r.stderr);
    env.assert_clean("rb2", None);
}

//! linux.resources: the kernel's own cgroup files say what rsrun wrote, and the limits
//! bite. Runs on v1/hybrid and on pure v2 (the file names differ).

use crate::common::*;
use rsrun::cgroups::{Cgroup, Mode};
use serde_json::json;

/// Read a cgroup file of container `id` from the host, in the hierarchy holding `controller`.
pub(crate) fn read(id: &str, controller: &str, file: &str) -> String {
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

pub(crate) fn v2() -> bool {
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
    env.run_detached("rf1");
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
    env.delete_and_assert_clean("rf1");
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    let env = Env::new("res-pids");
    env.edit(|v| v["linux"]["resources"]["pids"] = json!({"limit": 10}));
    let r = env.run(
        "rp1rp",
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
    env.assert_clean("rp1rp", None);
}

#[test]
fn memory_hog_is_oom_killed() {
    let env = Env::new("res-oom");
    env.edit(|v| v["linux"]["resources"]["memory"] = json!({"limit": 16777216, "swap": 16777216}));
    // dd allocates a 64 MiB buffer: the OOM killer must stop it (SIGKILL → 137).
    let r = env.run(
        "ro1ro",
        &[
            "sh",
            "-c",
            "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo rc=$?",
        ],
    );
    assert_eq!(r.stdout, "rc=137\n", "{}", r.stderr);
    env.assert_clean("ro1ro", None);
}

#[test]
fn devices_are_default_deny() {
    let env = Env::new("res-dev");
    env.edit(|v| {
        add_capability(v, "CAP_MKNOD");
    });
    // /dev/mem (1:1) is not in the allow list: mknod may work, opening must not.
    let r = env.run(
        "rd1rd",
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
    env.assert_clean("rd1rd", None);
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
    assert!(r.stderr.contains("9999"), "{}", r.stderr);
    env.assert_clean("rb2", None);
}

#[test]
fn update_changes_limits() {
    let env = Env::new("res-update");
    env.set_args(&["sleep", "100"]);
    env.run_detached("ru1");
    let r = env.rsrun(&["update", "--memory", "64m", "--pids-limit", "20", "ru1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let res = env.dir.join("res.json");
    std::fs::write(&res, r#"{"cpu": {"quota": 30000, "period": 100000}}"#).unwrap();
    let r = env.rsrun(&["update", "--resources", res.to_str().unwrap(), "ru1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    if v2() {
        assert_eq!(read("ru1", "memory", "memory.max"), "67108864");
        assert_eq!(read("ru1", "cpu", "cpu.max"), "30000 100000");
    } else {
        assert_eq!(read("ru1", "memory", "memory.limit_in_bytes"), "67108864");
        assert_eq!(read("ru1", "cpu", "cpu.cfs_quota_us"), "30000");
    }
    assert_eq!(read("ru1", "pids", "pids.max"), "20");
    // A limit below current usage is refused by the v1 kernel (v2 reclaims, then
    // OOM-kills); the error names the field, in runc's words.
    let r = env.rsrun(&["update", "--memory", "4k", "ru1"]);
    if !v2() {
        assert_one_line_error(
            &r,
            "linux.resources.memory.limit: unable to set memory limit to 4096",
        );
    }
    assert_one_line_error(
        &env.rsrun(&["update", "--memory", "lots", "ru1"]),
        "--memory",
    );
    assert_eq!(env.rsrun(&["delete", "-f", "ru1"]).code, 0);
    assert_one_line_error(
        &env.rsrun(&["update", "--memory", "64m", "ru1"]),
        "does not exist",
    );
}

#[test]
fn events_stats_and_oom() {
    let env = Env::new("res-events");
    env.edit(|v| v["linux"]["resources"]["memory"] = json!({"limit": 16777216, "swap": 16777216}));
    env.set_args(&["sleep", "100"]);
    env.run_detached("ev1");
    let r = env.rsrun(&["events", "--stats", "ev1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], "ev1");
    assert_eq!(v["data"]["memory"]["usage"]["limit"], 16777216);
    assert!(v["data"]["pids"]["current"].as_u64().unwrap() >= 1);

    // Stream: an OOM kill inside the container shows up as an oom event.
    let out = env.dir.join("events.out");
    let mut c = env.cmd(&["events", "--interval", "10s", "ev1"]);
    c.stdout(std::fs::File::create(&out).unwrap());
    let mut child = c.spawn().unwrap();
    // OOM kills before the stream starts are not events: wait for its first stats line
    // (it has read the kill count by then) before causing one.
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !std::fs::read_to_string(&out).unwrap().contains("\"stats\"") {
        assert!(
            std::time::Instant::now() < end,
            "the event stream never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let hog = env.rsrun(&[
        "exec",
        "ev1",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=64M",
        "count=1",
    ]);
    assert_eq!(
        hog.code, 137,
        "the exec'd hog was not OOM-killed: {}",
        hog.stderr
    );
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(&out).unwrap().contains("\"oom\"") {
        assert!(
            std::time::Instant::now() < end,
            "no oom event: {}",
            std::fs::read_to_string(&out).unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(env.rsrun(&["delete", "-f", "ev1"]).code, 0);
    // The stream ends when the container is gone (it checks at every interval).
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > end {
            let _ = child.kill();
            panic!("`events` still streaming 10 s after the container was deleted");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn ps_lists_the_container_processes() {
    let env = Env::new("res-ps");
    env.set_args(&["sleep", "100"]);
    env.run_detached("ps1");
    let pidf = env.dir.join("x.pid");
    assert_eq!(
        env.rsrun(&[
            "exec",
            "-d",
            "--pid-file",
            pidf.to_str().unwrap(),
            "ps1",
            "sleep",
            "50"
        ])
        .code,
        0
    );
    let init = env.state("ps1")["pid"].as_i64().unwrap();
    let execd: i64 = std::fs::read_to_string(&pidf).unwrap().parse().unwrap();
    let r = env.rsrun(&["ps", "--format", "json", "ps1"]);
    let pids: Vec<i64> = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(pids.contains(&init) && pids.contains(&execd));
    let r = env.rsrun(&["ps", "ps1", "-o", "pid,comm"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert!(lines[0].contains("PID"));
    assert!(lines[1..].iter().all(|l| l.ends_with("sleep")));
    assert_eq!(env.rsrun(&["delete", "-f", "ps1"]).code, 0);
}

#[test]
fn features_document() {
    let r = rsrun(&["features"]);
    assert_eq!(r.code, 0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ociVersionMin"], "1.0.0");
    assert!(v["hooks"].as_array().unwrap().len() == 6);
    assert_eq!(v["linux"]["cgroup"]["v2"], true);
    assert_eq!(v["linux"]["seccomp"]["enabled"], true);
    assert!(v["linux"]["capabilities"]
        .as_array()
        .unwrap()
        .contains(&json!("CAP_SYS_ADMIN")));
    assert!(v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .contains(&json!("time")));
    // What mounts::recursive_read_only_covers_submounts and mounts::idmapped_bind_mount
    // show working is listed as such.
    let options = v["mountOptions"].as_array().unwrap();
    for o in ["rro", "rnosuid", "idmap", "ridmap", "tmpcopyup"] {
        assert!(options.contains(&json!(o)), "{o} missing: {options:?}");
    }
    assert_eq!(v["linux"]["mountExtensions"]["idmap"]["enabled"], true);
}

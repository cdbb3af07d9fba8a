//! Tests written after runc's update.bats: the values `update` leaves in the kernel's
//! cgroup files, by flag, by `-r -` (stdin) and by `-r FILE`. v1/hybrid and pure v2
//! (the file names and the meaning of the swap limit differ).

use crate::common::*;
use crate::resources::{read, v2};
use serde_json::json;

/// `update -r - ID` with `json` on stdin, which must succeed.
fn update_from_stdin(env: &Env, id: &str, json: &str) {
    let mut c = env.cmd(&["update", "-r", "-", id]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(json.as_bytes())
            .unwrap();
    }
    let r = Run::from(child.wait_with_output().unwrap());
    assert_eq!(r.code, 0, "update -r - {json}: {}", r.stderr);
}

fn update_ok(env: &Env, args: &[&str]) {
    let mut full = vec!["update"];
    full.extend_from_slice(args);
    let r = env.rsrun(&full);
    assert_eq!(r.code, 0, "update {args:?}: {}", r.stderr);
}

/// The initial values of runc's update.bats, back again through `-r` (the cpuset to CPU 0).
const INITIAL: &str = r#"{
  "memory": {"limit": 33554432, "reservation": 25165824},
  "cpu": {"shares": 100, "quota": 500000, "period": 1000000, "cpus": "0"},
  "pids": {"limit": 20}
}"#;

/// update.bats "update cgroup v1/v2 common limits": cpuset, memory (bytes and with a
/// unit), reservation, swap (-1, a value, with memory), memory -1 (which lifts the swap
/// limit too), pids (a value, -1), everything back by `-r -` and by `-r FILE`, all at
/// once by flags.
#[test]
fn update_common_limits() {
    let env = Env::new("ru-common");
    env.edit(|v| {
        v["linux"]["resources"]["memory"] = json!({"limit": 33554432, "reservation": 25165824});
        v["linux"]["resources"]["cpu"] = json!({"shares": 100, "quota": 500000, "period": 1000000});
        v["linux"]["resources"]["pids"] = json!({"limit": 20});
    });
    env.set_args(&["sleep", "100"]);
    env.run_detached("ru-c1");
    let id = "ru-c1";
    let (limit, reserve, swap, unlimited) = if v2() {
        ("memory.max", "memory.low", "memory.swap.max", "max")
    } else {
        (
            "memory.limit_in_bytes",
            "memory.soft_limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "9223372036854771712",
        )
    };
    let mem = |f: &str| read(id, "memory", f);
    let has_swap = v2() || {
        let cg = rsrun::cgroups::Cgroup::resolve(None, id).unwrap();
        cg.dirs
            .iter()
            .any(|d| d.path.join("memory.memsw.limit_in_bytes").exists())
    };
    assert_eq!(mem(limit), "33554432");
    assert_eq!(mem(reserve), "25165824");
    assert_eq!(read(id, "pids", "pids.max"), "20");

    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    let smp = online.trim() != "0";
    if smp {
        update_ok(&env, &[id, "--cpuset-cpus", "1"]);
        assert_eq!(read(id, "cpuset", "cpuset.cpus"), "1");
    }
    update_ok(&env, &[id, "--memory", "67108864"]);
    assert_eq!(mem(limit), "67108864");
    update_ok(&env, &[id, "--memory", "50M"]);
    assert_eq!(mem(limit), "52428800");
    update_ok(&env, &[id, "--memory-reservation", "33554432"]);
    assert_eq!(mem(reserve), "33554432");
    if has_swap {
        update_ok(&env, &[id, "--memory-swap", "-1"]);
        assert_eq!(mem(swap), unlimited);
        if v2() {
            // On v2 the swap limit is what memory+swap leaves beyond memory.
            update_ok(
                &env,
                &[id, "--memory", "52428800", "--memory-swap", "96468992"],
            );
            assert_eq!(mem(swap), (96468992 - 52428800).to_string());
        } else {
            update_ok(&env, &[id, "--memory-swap", "96468992"]);
            assert_eq!(mem(swap), "96468992");
        }
    }
    update_ok(&env, &[id, "--memory", "-1"]);
    assert_eq!(mem(limit), unlimited);
    if has_swap {
        assert_eq!(mem(swap), unlimited, "memory -1 leaves the swap limit");
    }
    update_ok(&env, &[id, "--pids-limit", "10"]);
    assert_eq!(read(id, "pids", "pids.max"), "10");
    update_ok(&env, &[id, "--pids-limit", "-1"]);
    assert_eq!(read(id, "pids", "pids.max"), "max");

    let back_to_initial = || {
        assert_eq!(read(id, "cpuset", "cpuset.cpus"), "0");
        assert_eq!(mem(limit), "33554432");
        assert_eq!(mem(reserve), "25165824");
        assert_eq!(read(id, "pids", "pids.max"), "20");
    };
    update_from_stdin(&env, id, INITIAL);
    back_to_initial();

    update_ok(
        &env,
        &[
            id,
            "--cpu-period",
            "900000",
            "--cpu-quota",
            "600000",
            "--cpu-share",
            "200",
            "--memory",
            "67108864",
            "--memory-reservation",
            "33554432",
            "--pids-limit",
            "10",
        ],
    );
    assert_eq!(mem(limit), "67108864");
    assert_eq!(mem(reserve), "33554432");
    assert_eq!(read(id, "pids", "pids.max"), "10");

    let file = env.dir.join("resources.json");
    std::fs::write(&file, INITIAL).unwrap();
    update_ok(&env, &["-r", file.to_str().unwrap(), id]);
    back_to_initial();

    if has_swap {
        // runc's setMemoryAndSwap cases: swap above the old one, then memory above it.
        update_ok(&env, &[id, "--memory", "30M", "--memory-swap", "50M"]);
        assert_eq!(mem(limit), (30 << 20).to_string());
        let want = if v2() { 20 << 20 } else { 50 << 20 };
        assert_eq!(mem(swap), want.to_string());
        update_ok(&env, &[id, "--memory", "60M", "--memory-swap", "80M"]);
        assert_eq!(mem(limit), (60 << 20).to_string());
        let want = if v2() { 20 << 20 } else { 80 << 20 };
        assert_eq!(mem(swap), want.to_string());
    }
    env.delete_and_assert_clean(id);
}

/// The CFS quota and period as (quota, period), -1 for no quota, on v1 and v2.
fn cpu_quota(id: &str) -> (i64, u64) {
    if v2() {
        let max = read(id, "cpu", "cpu.max");
        let (q, p) = max.split_once(' ').unwrap();
        (
            if q == "max" { -1 } else { q.parse().unwrap() },
            p.parse().unwrap(),
        )
    } else {
        (
            read(id, "cpu", "cpu.cfs_quota_us").parse().unwrap(),
            read(id, "cpu", "cpu.cfs_period_us").parse().unwrap(),
        )
    }
}

/// update.bats "update cpu period with no previous period/quota set" and "update cpu
/// quota with no previous period/quota set": either alone, the other keeps the
/// kernel's default (no quota; a 100 ms period).
#[test]
fn update_cpu_period_or_quota_alone() {
    let env = Env::new("ru-cpualone");
    env.set_args(&["sleep", "100"]);
    env.edit(|v| v["linux"]["resources"]["cpu"] = json!({}));
    env.run_detached("ru-ca1");
    update_ok(&env, &["--cpu-period", "50000", "ru-ca1"]);
    assert_eq!(cpu_quota("ru-ca1"), (-1, 50000));
    env.run_detached("ru-ca2");
    update_ok(&env, &["--cpu-quota", "30000", "ru-ca2"]);
    assert_eq!(cpu_quota("ru-ca2"), (30000, 100000));
    env.delete_and_assert_clean("ru-ca1");
    env.delete_and_assert_clean("ru-ca2");
}

//! Tests written after runc's update.bats: the values `update` leaves in the kernel's
//! cgroup files, by flag, by `-r -` (stdin) and by `-r FILE`. v1/hybrid and pure v2
//! (the file names and the meaning of the swap limit differ).

use crate::common::*;
use crate::resources::{read, v2};
use serde_json::json;
use std::time::Duration;

/// `update -r - ID` with `json` on stdin.
pub(crate) fn update_stdin(env: &Env, id: &str, json: &str) -> Run {
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
    Run::from(child.wait_with_output().unwrap())
}

/// `update -r - ID` with `json` on stdin, which must succeed.
fn update_from_stdin(env: &Env, id: &str, json: &str) {
    let r = update_stdin(env, id, json);
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
    let cg = rsrun::cgroups::Cgroup::resolve(None, id).unwrap();
    cpu_quota_in(&cpu_dir(&cg).path)
}

/// The directory of `cg` holding the cpu controller's files.
fn cpu_dir(cg: &rsrun::cgroups::Cgroup) -> &rsrun::cgroups::CgroupDir {
    cg.dirs
        .iter()
        .find(|d| {
            cg.mode == rsrun::cgroups::Mode::V2 || d.controllers.split(',').any(|c| c == "cpu")
        })
        .unwrap()
}

/// The CFS quota and period in cgroup directory `dir` (v2's cpu.max or v1's files).
fn cpu_quota_in(dir: &std::path::Path) -> (i64, u64) {
    let f = |n: &str| {
        std::fs::read_to_string(dir.join(n))
            .unwrap()
            .trim()
            .to_string()
    };
    if dir.join("cpu.max").exists() {
        let max = f("cpu.max");
        let (q, p) = max.split_once(' ').unwrap();
        (
            if q == "max" { -1 } else { q.parse().unwrap() },
            p.parse().unwrap(),
        )
    } else {
        (
            f("cpu.cfs_quota_us").parse().unwrap(),
            f("cpu.cfs_period_us").parse().unwrap(),
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

/// A parent cgroup directory a test makes (to give it limits first), removed when
/// dropped: declared before the test's `Env`, it goes after the containers in it.
struct ParentCgroup(std::path::PathBuf);

impl ParentCgroup {
    fn new(path: &std::path::Path) -> ParentCgroup {
        std::fs::create_dir(path).unwrap();
        ParentCgroup(path.to_path_buf())
    }
}

impl Drop for ParentCgroup {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir(&self.0) {
            if !std::thread::panicking() {
                panic!("rmdir {}: {e}", self.0.display());
            }
        }
    }
}

/// The number of times the kernel throttled container `id` for its CFS quota.
fn nr_throttled(id: &str) -> u64 {
    read(id, "cpu", "cpu.stat")
        .lines()
        .find_map(|l| l.strip_prefix("nr_throttled "))
        .unwrap()
        .parse()
        .unwrap()
}

/// update.bats "set cpu period with no quota" and "set cpu quota with no period": a
/// config with one of them alone; the other keeps the kernel's default (no quota; a
/// 100 ms period), and the quota alone (5 ms in 100 ms) throttles a busy loop.
#[test]
fn cpu_period_or_quota_alone_in_the_config() {
    let env = Env::new("ru-cpucfg");
    env.set_args(&["sleep", "100"]);
    env.edit(|v| v["linux"]["resources"]["cpu"] = json!({"period": 1000000}));
    env.run_detached("ru-cc1");
    assert_eq!(cpu_quota("ru-cc1"), (-1, 1000000));
    env.edit(|v| v["linux"]["resources"]["cpu"] = json!({"quota": 5000}));
    env.run_detached("ru-cc2");
    assert_eq!(cpu_quota("ru-cc2"), (5000, 100000));
    // Starting the init may have used up a period or two already (in an emulated guest).
    let before = nr_throttled("ru-cc2");
    let spin = env.rsrun(&["exec", "-d", "ru-cc2", "sh", "-c", "while :; do :; done"]);
    assert_eq!(spin.code, 0, "exec -d: {}", spin.stderr);
    wait_until(
        "the busy loop to be throttled",
        Duration::from_secs(20),
        || nr_throttled("ru-cc2") > before + 2,
    );
    env.delete_and_assert_clean("ru-cc1");
    env.delete_and_assert_clean("ru-cc2");
}

/// A one-line RT process for `exec --process`: `true` under SCHED_FIFO, which the kernel
/// allows only in a cgroup with RT runtime (EPERM in one without).
fn rt_process() -> serde_json::Value {
    json!({
        "args": ["true"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
        "env": ["PATH=/bin"],
        "capabilities": {"bounding": ["CAP_SYS_NICE"], "effective": ["CAP_SYS_NICE"], "permitted": ["CAP_SYS_NICE"]},
        "scheduler": {"policy": "SCHED_FIFO", "priority": 1}
    })
}

/// update.bats "update rt period and runtime" (cgroup v1 with RT group scheduling): the
/// container's parent gets the root's RT bandwidth first (a new group has none to give);
/// then the runtime alone (the period stays the parent's), both by `-r -`, both by
/// flags, both smaller at once. An RT process can run in the container once it has a
/// runtime.
#[test]
fn update_rt_period_and_runtime() {
    const NAME: &str = "runc_update::update_rt_period_and_runtime";
    let parent_rel = format!("ru-rt-{}", std::process::id());
    let path = format!("/{parent_rel}/ru-rt1");
    let cg = rsrun::cgroups::Cgroup::resolve(Some(&path), "ru-rt1").unwrap();
    let Some(cpu) = cg
        .dirs
        .iter()
        .find(|d| d.controllers.split(',').any(|c| c == "cpu"))
        .filter(|_| cg.mode != rsrun::cgroups::Mode::V2)
    else {
        return skip(
            NAME,
            "no cgroup v1 cpu hierarchy (v2 has no RT group bandwidth)",
        );
    };
    let root_file = |f: &str| cpu.mountpoint.join(f);
    if !root_file("cpu.rt_runtime_us").exists() {
        return skip(
            NAME,
            "the kernel has no RT group scheduling (CONFIG_RT_GROUP_SCHED)",
        );
    }
    let root_period = std::fs::read_to_string(root_file("cpu.rt_period_us")).unwrap();
    let root_runtime = std::fs::read_to_string(root_file("cpu.rt_runtime_us")).unwrap();
    let parent = ParentCgroup::new(cpu.path.parent().unwrap());
    std::fs::write(parent.0.join("cpu.rt_period_us"), root_period.trim()).unwrap();
    std::fs::write(parent.0.join("cpu.rt_runtime_us"), root_runtime.trim()).unwrap();

    let env = Env::new("ru-rt");
    env.set_args(&["sleep", "100"]);
    env.edit(|v| v["linux"]["cgroupsPath"] = json!(path));
    env.run_detached("ru-rt1");
    let rt = || {
        let f = |n: &str| {
            std::fs::read_to_string(cpu.path.join(n))
                .unwrap()
                .trim()
                .to_string()
        };
        (f("cpu.rt_period_us"), f("cpu.rt_runtime_us"))
    };
    let process = env.dir.join("rt-process.json");
    std::fs::write(&process, rt_process().to_string()).unwrap();
    let rt_exec = || env.rsrun(&["exec", "--process", process.to_str().unwrap(), "ru-rt1"]);
    let r = rt_exec();
    assert!(
        r.code != 0 && r.stderr.contains("sched_setattr") && r.stderr.contains("EPERM"),
        "SCHED_FIFO in a group without RT runtime: {} {}",
        r.code,
        r.stderr
    );

    update_from_stdin(&env, "ru-rt1", r#"{"cpu": {"realtimeRuntime": 500001}}"#);
    assert_eq!(rt(), (root_period.trim().to_string(), "500001".into()));
    let r = rt_exec();
    assert_eq!(r.code, 0, "SCHED_FIFO with RT runtime: {}", r.stderr);
    update_from_stdin(
        &env,
        "ru-rt1",
        r#"{"cpu": {"realtimePeriod": 800001, "realtimeRuntime": 500001}}"#,
    );
    assert_eq!(rt(), ("800001".into(), "500001".into()));
    update_ok(
        &env,
        &[
            "ru-rt1",
            "--cpu-rt-period",
            "900001",
            "--cpu-rt-runtime",
            "600001",
        ],
    );
    assert_eq!(rt(), ("900001".into(), "600001".into()));
    // Both smaller: the new period with the old runtime is refused (EINVAL), so the
    // period goes again after the runtime (runc 1.1 fails here: runc issue #4094).
    update_ok(
        &env,
        &[
            "ru-rt1",
            "--cpu-rt-period",
            "500000",
            "--cpu-rt-runtime",
            "400000",
        ],
    );
    assert_eq!(rt(), ("500000".into(), "400000".into()));

    let r = env.rsrun(&["delete", "-f", "ru-rt1"]);
    assert_eq!(r.code, 0, "delete -f: {}", r.stderr);
    for d in &cg.dirs {
        assert!(!d.path.exists(), "cgroup {} left behind", d.path.display());
        // The parent rsrun made (in every hierarchy but cpu's) goes with it.
        let made = d.path.parent().unwrap();
        assert!(
            made == parent.0 || !made.exists(),
            "{} left behind",
            made.display()
        );
    }
}

/// update.bats "update cgroup v2 resources via unified map" (pure v2): the unified map
/// of `update -r -` reaches the files (a quota lifted, a weight, a pids limit) over
/// what the config's cpu and pids fields had set.
#[test]
fn update_through_the_unified_map() {
    if !pure_v2_or_skip("runc_update::update_through_the_unified_map") {
        return;
    }
    let env = Env::new("ru-unified");
    env.edit(|v| {
        v["linux"]["resources"]["cpu"] = json!({"shares": 100, "quota": 500000, "period": 1000000});
        v["linux"]["resources"]["pids"] = json!({"limit": 20});
    });
    env.set_args(&["sleep", "100"]);
    env.run_detached("ru-u1");
    let files = || {
        (
            read("ru-u1", "cpu", "cpu.max"),
            read("ru-u1", "cpu", "cpu.weight"),
            read("ru-u1", "pids", "pids.max"),
        )
    };
    // shares 100 is weight 4 on v2's scale.
    assert_eq!(files(), ("500000 1000000".into(), "4".into(), "20".into()));
    update_from_stdin(
        &env,
        "ru-u1",
        r#"{"unified": {"cpu.max": "max 100000", "cpu.weight": "16", "pids.max": "10"}}"#,
    );
    assert_eq!(files(), ("max 100000".into(), "16".into(), "10".into()));
    env.delete_and_assert_clean("ru-u1");
}

/// The names of the device programs attached to container `id`'s v2 cgroup.
fn device_programs(id: &str) -> Vec<String> {
    let cg = rsrun::cgroups::Cgroup::resolve(None, id).unwrap();
    device_programs_in(cg.v2_dir().unwrap())
}

/// The names of the device programs attached to v2 cgroup directory `dir`.
fn device_programs_in(dir: &std::path::Path) -> Vec<String> {
    let fd = std::fs::File::open(dir).unwrap();
    rsrun::sys::bpf::attached_device_progs(&fd, dir)
        .unwrap()
        .into_iter()
        .map(|p| rsrun::sys::bpf::prog_name(p).unwrap())
        .collect()
}

/// update.bats "runc update replaces devices cgroup program" (pure v2): sixty-five updates
/// in a row (past the 64 programs the kernel attaches to one cgroup) leave exactly one
/// device program on the container's cgroup, rsrun's, and its rules still bite: /dev/null
/// opens, a node they do not allow does not (EPERM), and the container runs on.
#[test]
fn many_updates_leave_one_device_program() {
    if !pure_v2_or_skip("runc_update::many_updates_leave_one_device_program") {
        return;
    }
    let env = Env::new("ru-devprog");
    env.edit(|v| {
        add_capability(v, "CAP_MKNOD");
    });
    // Sixty-five updates take a minute or two in an emulated guest.
    env.set_args(&["sleep", "100000"]);
    env.run_detached("ru-dp1");
    assert_eq!(device_programs("ru-dp1"), ["rsrun"]);
    for n in 1..=65 {
        update_ok(&env, &["--pids-limit", &(2 * n).to_string(), "ru-dp1"]);
        if n == 1 {
            assert_eq!(device_programs("ru-dp1"), ["rsrun"], "after one update");
        }
    }
    assert_eq!(read("ru-dp1", "pids", "pids.max"), "130");
    assert_eq!(device_programs("ru-dp1"), ["rsrun"]);
    let r = env.rsrun(&[
        "exec",
        "ru-dp1",
        "sh",
        "-c",
        "echo x > /dev/null && echo null-ok; mknod /dev/none c 239 0 && (: < /dev/none) 2>&1; true",
    ]);
    assert_eq!(r.code, 0, "exec: {}", r.stderr);
    assert!(
        r.stdout.starts_with("null-ok\n") && r.stdout.contains("Operation not permitted"),
        "{}",
        r.stdout
    );
    assert_eq!(env.status("ru-dp1"), "running");
    env.delete_and_assert_clean("ru-dp1");
}

/// runc's order for a CFS period the kernel refuses against the old quota: under a parent
/// limited to one CPU, 50 ms in 100 ms becomes 20 ms in 40 ms, where the new period with
/// the old quota (125%) would be more than the parent grants (EINVAL on v1, where the
/// period is written first; v2 writes both at once).
#[test]
fn update_cpu_period_below_the_old_quota_under_a_parent_limit() {
    let path = format!("/ru-cfs-{}/ru-cfs1", std::process::id());
    let cg = rsrun::cgroups::Cgroup::resolve(Some(&path), "ru-cfs1").unwrap();
    let cpu = cpu_dir(&cg);
    let parent = ParentCgroup::new(cpu.path.parent().unwrap());
    if cg.mode == rsrun::cgroups::Mode::V2 {
        std::fs::write(parent.0.join("cpu.max"), "100000 100000").unwrap();
    } else {
        std::fs::write(parent.0.join("cpu.cfs_quota_us"), "100000").unwrap();
    }
    let env = Env::new("ru-cfs");
    env.set_args(&["sleep", "100"]);
    env.edit(|v| {
        v["linux"]["cgroupsPath"] = json!(path);
        v["linux"]["resources"]["cpu"] = json!({"quota": 50000, "period": 100000});
    });
    env.run_detached("ru-cfs1");
    assert_eq!(cpu_quota_in(&cpu.path), (50000, 100000));
    update_ok(
        &env,
        &["ru-cfs1", "--cpu-period", "40000", "--cpu-quota", "20000"],
    );
    assert_eq!(cpu_quota_in(&cpu.path), (20000, 40000));
    let r = env.rsrun(&["delete", "-f", "ru-cfs1"]);
    assert_eq!(r.code, 0, "delete -f: {}", r.stderr);
    for d in &cg.dirs {
        assert!(!d.path.exists(), "cgroup {} left behind", d.path.display());
    }
}

/// A device program of rsrun's left on a cgroup that existed before the container (by a
/// create killed half-way through) is replaced by the container's own, as runc replaces
/// its programs: one program is attached, and the container's rules decide (the left
/// one denied every device, /dev/null too).
#[test]
fn a_device_program_left_on_the_cgroup_is_replaced() {
    if !pure_v2_or_skip("runc_update::a_device_program_left_on_the_cgroup_is_replaced") {
        return;
    }
    let path = format!("/ru-stale-{}", std::process::id());
    let cg = rsrun::cgroups::Cgroup::resolve(Some(&path), "ru-st1").unwrap();
    let dir = cg.v2_dir().unwrap();
    std::fs::create_dir(dir).unwrap();
    rsrun::cgroups::devices_bpf::attach(&cg, &[]).unwrap();
    assert_eq!(device_programs_in(dir), ["rsrun"]);
    let env = Env::new("ru-stale");
    env.edit(|v| v["linux"]["cgroupsPath"] = json!(path));
    env.set_args(&["sleep", "100000"]);
    env.run_detached("ru-st1");
    assert_eq!(device_programs_in(dir), ["rsrun"]);
    let r = env.rsrun(&[
        "exec",
        "ru-st1",
        "sh",
        "-c",
        "echo x > /dev/null && echo null-ok",
    ]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "null-ok\n"),
        "{}",
        r.stderr
    );
    let r = env.rsrun(&["delete", "-f", "ru-st1"]);
    assert_eq!(r.code, 0, "delete -f: {}", r.stderr);
    assert!(!dir.exists(), "{} left behind", dir.display());
}

//! The systemd cgroup driver (`--systemd-cgroup`): a transient scope per container. These
//! tests need systemd as PID 1 with its system bus: `make test-systemd` runs them in a QEMU
//! guest booting the host's systemd (scripts/systemd-guest.sh), on pure v2 and on hybrid.

use crate::common::{assert_one_line_error, pure_v2, skip, Env, Run};
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

/// Whether systemd is PID 1 here (sd_booted); if not, say so and skip.
pub(crate) fn systemd_booted(test: &str) -> bool {
    let comm = std::fs::read_to_string("/proc/1/comm").unwrap_or_default();
    if std::path::Path::new("/run/systemd/system").is_dir() && comm.trim() == "systemd" {
        return true;
    }
    skip(
        test,
        "PID 1 is not systemd (make test-systemd runs this in a systemd guest)",
    );
    false
}

pub(crate) fn systemctl(args: &[&str]) -> String {
    let o = Command::new("systemctl").args(args).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn prop(unit: &str, name: &str) -> String {
    systemctl(&["show", "--value", "-p", name, unit])
        .trim()
        .to_string()
}

/// `systemctl list-units --all` shows no such unit.
pub(crate) fn assert_no_unit(unit: &str) {
    let out = systemctl(&["list-units", "--all", "--no-legend", unit]);
    assert!(out.trim().is_empty(), "unit left behind: {out}");
}

fn sd(env: &Env, args: &[&str]) -> Run {
    let mut full = vec!["--systemd-cgroup"];
    full.extend_from_slice(args);
    env.rsrun(&full)
}

fn sd_create(env: &Env, id: &str) -> Run {
    sd(
        env,
        &["create", "--bundle", env.bundle.to_str().unwrap(), id],
    )
}

fn init_pid(env: &Env, id: &str) -> i32 {
    env.state(id)["pid"].as_i64().unwrap() as i32
}

/// The v2 (or name=systemd) cgroup path of `pid`.
pub(crate) fn cgroup_of(pid: i32) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    crate::common::proc_cgroup::v2_or_systemd_path(&text)
}

/// A bundle whose container sleeps, in the scope `cgroups_path` names.
fn sleeping_env(name: &str, cgroups_path: &str) -> Env {
    let env = Env::new(name);
    env.edit(|v| {
        v["linux"]["cgroupsPath"] = json!(cgroups_path);
        v["process"]["args"] = json!(["sleep", "1000"]);
    });
    env
}

/// `delete --force` leaves no unit, no cgroup, no state, no process.
fn delete_leaves_nothing(env: &Env, id: &str, unit: &str, pid: Option<i32>) {
    let r = env.rsrun(&["delete", "--force", id]);
    assert_eq!(r.code, 0, "delete: {}", r.stderr);
    assert_no_unit(unit);
    env.assert_clean(id, pid);
}

#[test]
fn scope_holds_the_container_and_delete_removes_it() {
    if !systemd_booted("systemd::scope_holds_the_container_and_delete_removes_it") {
        return;
    }
    let env = sleeping_env("sd-scope", "system.slice:rsrun:sd-scope1");
    env.edit(|v| v["linux"]["resources"] = json!({"pids": {"limit": 50}}));
    let r = sd_create(&env, "sd-scope1");
    assert_eq!(r.code, 0, "create: {}", r.stderr);
    let unit = "rsrun-sd-scope1.scope";
    let pid = init_pid(&env, "sd-scope1");
    assert_eq!(prop(unit, "ActiveState"), "active");
    assert_eq!(prop(unit, "Delegate"), "yes");
    assert_eq!(prop(unit, "Slice"), "system.slice");
    assert_eq!(prop(unit, "TasksMax"), "50");
    let cg = prop(unit, "ControlGroup");
    assert_eq!(cg, "/system.slice/rsrun-sd-scope1.scope");
    assert_eq!(cgroup_of(pid), cg);
    // The init alone is in the scope: rsrun moved itself back out.
    let procs_dir = if pure_v2() {
        format!("/sys/fs/cgroup{cg}")
    } else {
        format!("/sys/fs/cgroup/systemd{cg}")
    };
    let procs = std::fs::read_to_string(format!("{procs_dir}/cgroup.procs")).unwrap();
    assert_eq!(procs.trim(), pid.to_string());
    let r = env.rsrun(&["start", "sd-scope1"]);
    assert_eq!(r.code, 0, "start: {}", r.stderr);
    let ps = env.rsrun(&["ps", "--format", "json", "sd-scope1"]);
    assert_eq!(ps.stdout.trim(), format!("[{pid}]"));
    // The device allow list is systemd's too on v2, and the default devices still work.
    if pure_v2() {
        assert_eq!(prop(unit, "DevicePolicy"), "strict");
    }
    let r = env.rsrun(&[
        "exec",
        "sd-scope1",
        "sh",
        "-c",
        "echo x > /dev/null && head -c1 /dev/zero | wc -c",
    ]);
    assert_eq!(r.stdout.trim(), "1", "{}", r.stderr);
    // An exec'd process joins the scope too.
    let r = env.rsrun(&["exec", "--detach", "sd-scope1", "sleep", "999"]);
    assert_eq!(r.code, 0, "exec: {}", r.stderr);
    let procs = std::fs::read_to_string(format!("{procs_dir}/cgroup.procs")).unwrap();
    assert_eq!(procs.lines().count(), 2, "{procs}");
    delete_leaves_nothing(&env, "sd-scope1", unit, Some(pid));
    assert!(!std::path::Path::new(&procs_dir).exists());
}

#[test]
fn memory_limit_is_a_unit_property_and_bites() {
    if !systemd_booted("systemd::memory_limit_is_a_unit_property_and_bites") {
        return;
    }
    let env = sleeping_env("sd-mem", "system.slice:rsrun:sd-mem1");
    env.edit(|v| v["linux"]["resources"]["memory"] = json!({"limit": 16777216, "swap": 16777216}));
    let r = sd_create(&env, "sd-mem1");
    assert_eq!(r.code, 0, "create: {}", r.stderr);
    let key = if pure_v2() {
        "MemoryMax"
    } else {
        "MemoryLimit"
    };
    assert_eq!(prop("rsrun-sd-mem1.scope", key), "16777216");
    delete_leaves_nothing(&env, "sd-mem1", "rsrun-sd-mem1.scope", None);
    // dd's 64 MiB buffer is OOM-killed (SIGKILL: 137); the failed unit is not left behind.
    env.edit(|v| v["linux"]["cgroupsPath"] = json!("system.slice:rsrun:sd-mem2"));
    env.set_args(&[
        "sh",
        "-c",
        "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo rc=$?",
    ]);
    let r = sd(
        &env,
        &["run", "--bundle", env.bundle.to_str().unwrap(), "sd-mem2"],
    );
    assert_eq!(r.stdout, "rc=137\n", "{}", r.stderr);
    assert_no_unit("rsrun-sd-mem1.scope");
    assert_no_unit("rsrun-sd-mem2.scope");
    env.assert_clean("sd-mem2", None);
}

#[test]
fn kubelet_style_nested_slice() {
    if !systemd_booted("systemd::kubelet_style_nested_slice") {
        return;
    }
    let env = sleeping_env(
        "sd-nest",
        "kubepods-besteffort-podsd1.slice:cri-containerd:sd-nest1",
    );
    let r = sd_create(&env, "sd-nest1");
    assert_eq!(r.code, 0, "create: {}", r.stderr);
    let unit = "cri-containerd-sd-nest1.scope";
    let pid = init_pid(&env, "sd-nest1");
    assert_eq!(
        cgroup_of(pid),
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podsd1.slice/cri-containerd-sd-nest1.scope"
    );
    assert_eq!(prop(unit, "Slice"), "kubepods-besteffort-podsd1.slice");
    delete_leaves_nothing(&env, "sd-nest1", unit, Some(pid));
}

#[test]
fn unit_name_collision_is_refused_and_leaves_nothing() {
    if !systemd_booted("systemd::unit_name_collision_is_refused_and_leaves_nothing") {
        return;
    }
    let env = sleeping_env("sd-dup", "system.slice:rsrun:sd-dup");
    let r = sd_create(&env, "sd-dup1");
    assert_eq!(r.code, 0, "create: {}", r.stderr);
    let pid = init_pid(&env, "sd-dup1");
    let r = sd_create(&env, "sd-dup2");
    assert_one_line_error(&r, "rsrun-sd-dup.scope");
    // Refused as a populated cgroup (checked first) or by systemd as an existing unit.
    assert!(
        r.stderr.contains("UnitExists") || r.stderr.contains("cgroup is not empty"),
        "{}",
        r.stderr
    );
    env.assert_clean("sd-dup2", None);
    // The first container and its unit are untouched.
    assert_eq!(prop("rsrun-sd-dup.scope", "ActiveState"), "active");
    assert_eq!(cgroup_of(pid), "/system.slice/rsrun-sd-dup.scope");
    delete_leaves_nothing(&env, "sd-dup1", "rsrun-sd-dup.scope", Some(pid));
}

#[test]
fn unit_refused_by_systemd_leaves_nothing() {
    if !systemd_booted("systemd::unit_refused_by_systemd_leaves_nothing") {
        return;
    }
    let env = Env::new("sd-refuse");
    // A valid container id, but a unit name longer than systemd takes (256).
    let name = format!("sd-refuse-{}", "x".repeat(260));
    env.edit(|v| v["linux"]["cgroupsPath"] = json!(format!("system.slice:rsrun:{name}")));
    let r = sd_create(&env, "sd-refuse1");
    assert_one_line_error(&r, "StartTransientUnit");
    env.assert_clean("sd-refuse1", None);
    let left = systemctl(&["list-units", "--all", "--no-legend", "rsrun-sd-refuse*"]);
    assert!(left.trim().is_empty(), "{left}");
}

#[test]
fn delete_force_after_a_killed_create_stops_the_unit() {
    if !systemd_booted("systemd::delete_force_after_a_killed_create_stops_the_unit") {
        return;
    }
    let env = sleeping_env("sd-crash", "system.slice:rsrun:sd-crash1");
    let mark = env.dir.join("hook-ran");
    env.edit(|v| {
        // The hook runs once the scope and the init exist: rsrun is killed there.
        v["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c",
            format!("echo $$ > {}; exec sleep 1000", mark.display())]}]});
    });
    let mut child = env
        .cmd(&[
            "--systemd-cgroup",
            "create",
            "--bundle",
            env.bundle.to_str().unwrap(),
            "sd-crash1",
        ])
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&mark).map_or(true, |s| !s.ends_with('\n')) {
        assert!(Instant::now() < end, "the createRuntime hook never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(prop("rsrun-sd-crash1.scope", "ActiveState"), "active");
    child.kill().unwrap();
    child.wait().unwrap();
    delete_leaves_nothing(&env, "sd-crash1", "rsrun-sd-crash1.scope", None);
    let hook: i32 = std::fs::read_to_string(&mark)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = Command::new("kill").arg(hook.to_string()).status();
}

#[test]
fn dead_bus_is_a_one_line_error_and_leaves_nothing() {
    // Needs no systemd: the bus address points at nothing.
    let env = Env::new("sd-nobus");
    env.edit(|v| v["linux"]["cgroupsPath"] = json!("system.slice:rsrun:sd-nobus1"));
    let nobus = env.dir.join("no-bus");
    let mut c = env.cmd(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        env.bundle.to_str().unwrap(),
        "sd-nobus1",
    ]);
    c.env(
        "DBUS_SYSTEM_BUS_ADDRESS",
        format!("unix:path={}", nobus.display()),
    );
    // Output to files: a created init would hold pipes open.
    let r = crate::common::output(c);
    assert_one_line_error(&r, "system bus");
    assert!(r.stderr.contains("ENOENT"), "{}", r.stderr);
    env.assert_clean("sd-nobus1", None);
}

/// update.bats "update cgroup v2 resources via unified map" under the systemd driver: on
/// v2 the unified files systemd has a property for become the scope's properties too
/// (so a reload keeps them), over what the cpu and pids fields had set; on a hybrid host
/// the map is refused by name and the unit keeps its limit.
#[test]
fn update_through_the_unified_map_sets_unit_properties() {
    if !systemd_booted("systemd::update_through_the_unified_map_sets_unit_properties") {
        return;
    }
    let env = sleeping_env("sd-unified", "system.slice:rsrun:sd-uni1");
    env.edit(|v| {
        v["linux"]["resources"]["cpu"] = json!({"shares": 100, "quota": 500000, "period": 1000000});
        v["linux"]["resources"]["pids"] = json!({"limit": 20});
    });
    let r = sd_create(&env, "sd-uni1");
    assert_eq!(r.code, 0, "create: {}", r.stderr);
    let unit = "rsrun-sd-uni1.scope";
    assert_eq!(prop(unit, "TasksMax"), "20");
    let r = crate::runc_update::update_stdin(
        &env,
        "sd-uni1",
        r#"{"unified": {"cpu.max": "max 100000", "cpu.weight": "16", "pids.max": "10"}}"#,
    );
    if pure_v2() {
        assert_eq!(r.code, 0, "update: {}", r.stderr);
        assert_eq!(prop(unit, "TasksMax"), "10");
        assert_eq!(prop(unit, "CPUWeight"), "16");
        assert_eq!(prop(unit, "CPUQuotaPerSecUSec"), "infinity");
        let cg = prop(unit, "ControlGroup");
        let read = |f: &str| std::fs::read_to_string(format!("/sys/fs/cgroup{cg}/{f}")).unwrap();
        assert_eq!(read("cpu.max").trim(), "max 100000");
        assert_eq!(read("cpu.weight").trim(), "16");
        assert_eq!(read("pids.max").trim(), "10");
    } else {
        assert_one_line_error(&r, "linux.resources.unified");
        assert_eq!(prop(unit, "TasksMax"), "20");
    }
    let r = env.rsrun(&["delete", "--force", "sd-uni1"]);
    assert_eq!(r.code, 0, "delete: {}", r.stderr);
    assert_no_unit(unit);
    env.assert_clean("sd-uni1", None);
}

#[test]
fn update_pause_and_kill_all_on_a_scope() {
    if !systemd_booted("systemd::update_pause_and_kill_all_on_a_scope") {
        return;
    }
    let env = sleeping_env("sd-upd", "system.slice:rsrun:sd-upd1");
    env.edit(|v| {
        v["linux"]["resources"]["memory"] = json!({"limit": 67108864});
        v["linux"]["resources"]["cpu"] = json!({"quota": 50000, "period": 100000});
    });
    let r = sd_create(&env, "sd-upd1");
    assert_eq!(r.code, 0, "create: {}", r.stderr);
    let unit = "rsrun-sd-upd1.scope";
    assert_eq!(prop(unit, "CPUQuotaPerSecUSec"), "500ms");
    let r = env.rsrun(&["start", "sd-upd1"]);
    assert_eq!(r.code, 0, "start: {}", r.stderr);
    let r = env.rsrun(&[
        "update",
        "--memory",
        "33554432",
        "--cpu-quota",
        "20000",
        "sd-upd1",
    ]);
    assert_eq!(r.code, 0, "update: {}", r.stderr);
    // Both the unit and the cgroup files.
    assert_eq!(prop(unit, "CPUQuotaPerSecUSec"), "200ms");
    let cg = prop(unit, "ControlGroup");
    if pure_v2() {
        assert_eq!(prop(unit, "MemoryMax"), "33554432");
        let read = |f: &str| std::fs::read_to_string(format!("/sys/fs/cgroup{cg}/{f}")).unwrap();
        assert_eq!(read("memory.max").trim(), "33554432");
        assert_eq!(read("cpu.max").trim(), "20000 100000");
    } else {
        assert_eq!(prop(unit, "MemoryLimit"), "33554432");
        let read = |c: &str, f: &str| {
            std::fs::read_to_string(format!("/sys/fs/cgroup/{c}{cg}/{f}")).unwrap()
        };
        assert_eq!(read("memory", "memory.limit_in_bytes").trim(), "33554432");
        assert_eq!(read("cpu,cpuacct", "cpu.cfs_quota_us").trim(), "20000");
    }
    // events --stats reads the scope's files: the init is counted, the new limit shows.
    let r = env.rsrun(&["events", "--stats", "sd-upd1"]);
    assert_eq!(r.code, 0, "events: {}", r.stderr);
    let ev: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert!(ev["data"]["pids"]["current"].as_u64() >= Some(1), "{ev}");
    assert_eq!(ev["data"]["memory"]["usage"]["limit"], 33554432, "{ev}");
    let r = env.rsrun(&["pause", "sd-upd1"]);
    assert_eq!(r.code, 0, "pause: {}", r.stderr);
    assert_eq!(env.status("sd-upd1"), "paused");
    let r = env.rsrun(&["resume", "sd-upd1"]);
    assert_eq!(r.code, 0, "resume: {}", r.stderr);
    assert_eq!(env.status("sd-upd1"), "running");
    let r = env.rsrun(&["kill", "--all", "sd-upd1", "KILL"]);
    assert_eq!(r.code, 0, "kill --all: {}", r.stderr);
    env.wait_status("sd-upd1", "stopped");
    let r = env.rsrun(&["delete", "sd-upd1"]);
    assert_eq!(r.code, 0, "delete: {}", r.stderr);
    assert_no_unit(unit);
    env.assert_clean("sd-upd1", None);
}

/// Wait (bounded: an emulated guest is slow) until `unit`'s ActiveState is `want`.
fn wait_active_state(unit: &str, want: &str) {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let got = prop(unit, "ActiveState");
        if got == want {
            return;
        }
        assert!(Instant::now() < end, "{unit} stayed {got}, never {want}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `Type=notify` service running `rsrun run` in the foreground (NOTIFY_SOCKET is
/// systemd's): it is `activating` until the container says READY=1, then `active` with
/// rsrun as its main process; `systemctl stop` ends the container and leaves nothing.
#[test]
fn notify_service_is_active_once_the_container_is_ready() {
    if !systemd_booted("systemd::notify_service_is_active_once_the_container_is_ready") {
        return;
    }
    let env = Env::new("sd-notify-unit");
    let rootfs = env.bundle.join("rootfs");
    crate::common::sd_notify::install_tool(&rootfs);
    nix::unistd::mkfifo(
        &rootfs.join("gate"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    env.edit(|v| {
        v["root"]["readonly"] = json!(false);
        v["process"]["args"] = json!([
            "sh",
            "-c",
            "trap 'exit 0' TERM; read x </gate; sd-notify READY=1; sleep 1000 & wait"
        ]);
    });
    let unit = format!("rsrun-notify-{}.service", std::process::id());
    let run = env.cmd(&[
        "run",
        "--bundle",
        env.bundle.to_str().unwrap(),
        "sd-notify1",
    ]);
    let mut c = Command::new("systemd-run");
    c.args(["--no-block", "--unit", &unit, "-p", "Type=notify"])
        .arg(run.get_program())
        .args(run.get_args());
    let o = c.output().unwrap();
    assert!(o.status.success(), "systemd-run: {o:?}");
    // The container is held at the gate: the service is still starting.
    env.wait_status("sd-notify1", "running");
    assert_eq!(prop(&unit, "ActiveState"), "activating");
    std::fs::write(rootfs.join("gate"), "go\n").unwrap();
    wait_active_state(&unit, "active");
    let main = prop(&unit, "MainPID");
    assert_eq!(main, prop(&unit, "ExecMainPID"), "MAINPID is rsrun's own");
    let comm = std::fs::read_to_string(format!("/proc/{main}/comm")).unwrap();
    assert_eq!(comm.trim(), "rsrun");
    let pid = init_pid(&env, "sd-notify1");
    let o = Command::new("systemctl")
        .args(["stop", &unit])
        .output()
        .unwrap();
    assert!(o.status.success(), "systemctl stop: {o:?}");
    assert_no_unit(&unit);
    env.assert_clean("sd-notify1", Some(pid));
}

#[test]
fn allowed_cpus_and_memory_nodes_are_unit_properties() {
    if !systemd_booted("systemd::allowed_cpus_and_memory_nodes_are_unit_properties") {
        return;
    }
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    // The last online cpu alone: not what the scope would have anyway.
    let last = online.trim().rsplit([',', '-']).next().unwrap().to_string();
    let env = sleeping_env("sd-cpuset", "system.slice:rsrun:sd-cpuset1");
    env.edit(|v| v["linux"]["resources"]["cpu"] = json!({"cpus": last, "mems": "0"}));
    let r = sd_create(&env, "sd-cpuset1");
    assert_eq!(r.code, 0, "create: {}", r.stderr);
    let unit = "rsrun-sd-cpuset1.scope";
    assert_eq!(prop(unit, "AllowedCPUs"), last);
    assert_eq!(prop(unit, "AllowedMemoryNodes"), "0");
    let cg = prop(unit, "ControlGroup");
    let cpuset_dir = if pure_v2() {
        format!("/sys/fs/cgroup{cg}")
    } else {
        format!("/sys/fs/cgroup/cpuset{cg}")
    };
    let read = |f: &str| std::fs::read_to_string(format!("{cpuset_dir}/{f}")).unwrap();
    assert_eq!(read("cpuset.cpus").trim(), last);
    assert_eq!(read("cpuset.mems").trim(), "0");
    // update changes the unit and the file.
    let r = env.rsrun(&["update", "--cpuset-cpus", "0", "sd-cpuset1"]);
    assert_eq!(r.code, 0, "update: {}", r.stderr);
    assert_eq!(prop(unit, "AllowedCPUs"), "0");
    assert_eq!(read("cpuset.cpus").trim(), "0");
    delete_leaves_nothing(&env, "sd-cpuset1", unit, None);
    assert!(!std::path::Path::new(&cpuset_dir).exists());
}

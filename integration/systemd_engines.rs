//! Engines with their systemd defaults drive rsrun as they drive runc: Docker with
//! `native.cgroupdriver=systemd` and Podman with `cgroup_manager = "systemd"` (what they use
//! on a modern host). Each does the same with runc and with rsrun, and what systemd shows is
//! compared: the container's scope is active with its pid in it, the memory limit is a unit
//! property, and once the container is removed no unit (`systemctl list-units --all`) and no
//! cgroup is left. They need systemd as PID 1: `make test-systemd` runs them in its guest.

use crate::common::engines::{
    fresh_dir, podman_relays_notify_as_with_runc, run_image_args, Dockerd, Podman,
};
use crate::common::*;
use crate::systemd::{cgroup_of, prop, systemctl, systemd_booted};
use std::path::PathBuf;

/// What systemd and the engine show of one container's life.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    /// The scope's ActiveState while the container runs.
    active: String,
    /// The init's cgroup is the scope's ControlGroup.
    pid_in_scope: bool,
    /// MemoryMax (v2) or MemoryLimit (hybrid) of the scope.
    memory: String,
    /// Exit status and output of an exec.
    exec: (i32, String),
    /// The scope's swap and I/O weight properties: what the engine sends for "not set"
    /// (no swap beyond the limit, a weight of 0) is no property for runc either.
    unset: Vec<String>,
    /// Units and cgroup directories left once the container is removed.
    left: Vec<String>,
}

fn memory_property() -> &'static str {
    if pure_v2() {
        "MemoryMax"
    } else {
        "MemoryLimit"
    }
}

/// Every directory `cg` (a unit's ControlGroup) has in some hierarchy: the v2 one, or on a
/// hybrid host each v1 hierarchy and the unified one.
fn cgroup_dirs(cg: &str) -> Vec<PathBuf> {
    if pure_v2() {
        return vec![PathBuf::from(format!("/sys/fs/cgroup{cg}"))];
    }
    std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| e.path().join(cg.trim_start_matches('/')))
        .collect()
}

/// The units named by `patterns` and the cgroup directories of `cg` that still exist.
fn left_behind(patterns: &[String], cg: &str) -> Vec<String> {
    let mut left: Vec<String> = patterns
        .iter()
        .map(|u| systemctl(&["list-units", "--all", "--no-legend", u]))
        .filter(|o| !o.trim().is_empty())
        .collect();
    left.extend(
        cgroup_dirs(cg)
            .into_iter()
            .filter(|d| d.exists())
            .map(|d| d.display().to_string()),
    );
    left
}

fn unset_properties() -> &'static [&'static str] {
    if pure_v2() {
        &["MemorySwapMax", "IOWeight"]
    } else {
        &["BlockIOWeight"]
    }
}

fn want() -> Seen {
    Seen {
        active: "active".into(),
        pid_in_scope: true,
        memory: "67108864".into(),
        exec: (2, "exec-ok\n".into()),
        unset: Vec::new(),
        left: Vec::new(),
    }
}

/// One container's life under an engine: `run` (detached, 64 MiB), `exec`, `stop`, `rm`,
/// through `engine`; `scope` names the container's unit from its id.
fn life(
    engine: &dyn Fn(&[&str]) -> Run,
    runtime: &str,
    name: &str,
    scope: &dyn Fn(&str) -> Vec<String>,
) -> Seen {
    let r = engine(&run_image_args(
        &["-d", "--name", name, "--network", "none", "--memory", "64m"],
        runtime,
        &["sleep", "1000"],
    ));
    assert_eq!(r.code, 0, "run with {runtime}: {}", r.stderr);
    let id = r.stdout.trim().to_string();
    let units = scope(&id);
    let unit = &units[0];
    let pid: i32 = engine(&["inspect", "-f", "{{.State.Pid}}", name])
        .stdout
        .trim()
        .parse()
        .unwrap();
    let cg = prop(unit, "ControlGroup");
    let seen_pid = cgroup_of(pid);
    let active = prop(unit, "ActiveState");
    let memory = prop(unit, memory_property());
    let unset = unset_properties()
        .iter()
        .map(|p| format!("{p}={}", prop(unit, p)))
        .collect();
    let r = engine(&["exec", name, "sh", "-c", "echo exec-ok; exit 2"]);
    let exec = (r.code, r.stdout.clone());
    if r.code != 2 {
        eprintln!("exec with {runtime}: {}", r.stderr);
    }
    let r = engine(&["stop", "-t", "1", name]);
    assert_eq!(r.code, 0, "stop with {runtime}: {}", r.stderr);
    let r = engine(&["rm", name]);
    assert_eq!(r.code, 0, "rm with {runtime}: {}", r.stderr);
    wait_dead(pid);
    Seen {
        active,
        pid_in_scope: !cg.is_empty() && seen_pid == cg,
        memory,
        exec,
        unset,
        left: left_behind(&units, &cg),
    }
}

fn compare_with_runc(engine: &str, seen: &[(&str, Seen)]) {
    let (runc, rsrun) = (&seen[0].1, &seen[1].1);
    let runc_but_unset = Seen {
        unset: Vec::new(),
        ..runc.clone()
    };
    assert_eq!(runc_but_unset, want(), "{engine} with runc");
    assert_eq!(rsrun, runc, "{engine}: rsrun vs runc");
}

#[test]
fn docker_with_the_systemd_cgroup_driver() {
    if !systemd_booted("systemd_engines::docker_with_the_systemd_cgroup_driver") {
        return;
    }
    let dir = fresh_dir("sd-docker");
    let dk = Dockerd::with_image(&dir, "systemd");
    let docker = |args: &[&str]| dk.docker(args);
    let scope = |id: &str| vec![format!("docker-{id}.scope")];
    let seen: Vec<(&str, Seen)> = ["runc", "rsrun"]
        .into_iter()
        .map(|rt| (rt, life(&docker, rt, &format!("sde-{rt}"), &scope)))
        .collect();
    drop(dk);
    compare_with_runc("docker", &seen);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn podman_with_the_systemd_cgroup_manager() {
    if !systemd_booted("systemd_engines::podman_with_the_systemd_cgroup_manager") {
        return;
    }
    let pm = Podman::with_cgroup_manager("sd-podman", "systemd");
    let podman = |args: &[&str]| pm.run(args);
    // The container's scope, and conmon's that Podman makes beside it.
    let scope = |id: &str| {
        vec![
            format!("libpod-{id}.scope"),
            format!("libpod-conmon-{id}.scope"),
        ]
    };
    let runc = runc_binary().expect("runc is required for differential tests");
    let seen: Vec<(&str, Seen)> = [("runc", runc), ("rsrun", RSRUN)]
        .into_iter()
        .map(|(name, rt)| (name, life(&podman, rt, &format!("sdp-{name}"), &scope)))
        .collect();
    drop(pm);
    compare_with_runc("podman", &seen);
}

/// Podman with `cgroup_manager = "systemd"` and `--sdnotify=container` (what a Quadlet
/// unit of `Notify=true` runs): the container's READY=1 reaches Podman's socket through
/// rsrun as through runc.
#[test]
fn podman_sdnotify_container_with_the_systemd_cgroup_manager() {
    if !systemd_booted("systemd_engines::podman_sdnotify_container_with_the_systemd_cgroup_manager")
    {
        return;
    }
    let pm = Podman::with_cgroup_manager("sd-podman-sdn", "systemd");
    podman_relays_notify_as_with_runc(&pm);
}

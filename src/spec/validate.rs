//! Validation is a list of small checks over the parsed spec, each naming the field it
//! refuses. Nothing here touches the system: it runs before any side effect.

use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::collections::HashSet;

type Check = fn(&Spec) -> Result<()>;

/// Every check, in the order runc's `configs/validate` applies the equivalent ones.
const CHECKS: &[(&str, Check)] = &[
    ("ociVersion", oci_version),
    ("root", root),
    ("process", process),
    ("linux.namespaces", namespaces),
    ("linux.uidMappings", id_mappings),
    ("linux.timeOffsets", time_offsets),
    ("hostname", hostname),
    ("mounts", mounts),
    ("linux.cgroupsPath", cgroups_path),
    ("linux.sysctl", sysctl),
    ("linux.netDevices", net_devices),
];

pub fn validate(spec: &Spec) -> Result<()> {
    for (_, check) in CHECKS {
        check(spec)?;
    }
    Ok(())
}

fn oci_version(spec: &Spec) -> Result<()> {
    let v = spec.version();
    if v.is_empty() {
        return Err(Error::config("ociVersion", "missing"));
    }
    let major = v.split('.').next().unwrap_or("");
    if major != "1" {
        return Err(Error::config(
            "ociVersion",
            format!("unsupported version {v:?}: rsrun implements runtime-spec 1.x"),
        ));
    }
    Ok(())
}

fn root(spec: &Spec) -> Result<()> {
    match spec.root() {
        None => Err(Error::config("root", "missing")),
        Some(r) if r.path().as_os_str().is_empty() => Err(Error::config("root.path", "empty")),
        Some(_) => Ok(()),
    }
}

fn process(spec: &Spec) -> Result<()> {
    let p = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::config("process", "missing"))?;
    process_fields(p)
}

/// The largest uid or gid rsrun gives a process (runc's rule). 4294967295 is -1 to
/// setresuid/setresgid ("leave unchanged"): a process configured with it would keep the
/// runtime's root identity.
pub const MAX_ID: u32 = i32::MAX as u32;

/// Refuse an id outside 0..=MAX_ID, naming the field or flag it came from.
pub fn check_id(field: &str, id: u32) -> Result<()> {
    if id > MAX_ID {
        return Err(Error::config(
            field,
            format!("{id} is outside the valid range 0-{MAX_ID}"),
        ));
    }
    Ok(())
}

fn user_ids(u: &oci_spec::runtime::User) -> Result<()> {
    check_id("process.user.uid", u.uid())?;
    check_id("process.user.gid", u.gid())?;
    for (i, g) in u.additional_gids().iter().flatten().enumerate() {
        check_id(&format!("process.user.additionalGids[{i}]"), *g)?;
    }
    Ok(())
}

/// The checks of a process object: the container's, or one `exec` runs.
pub fn process_fields(p: &oci_spec::runtime::Process) -> Result<()> {
    user_ids(p.user())?;
    if let Some(adj) = p.oom_score_adj().filter(|a| !(-1000..=1000).contains(a)) {
        return Err(Error::config(
            "process.oomScoreAdj",
            format!("{adj} is outside -1000..1000"),
        ));
    }
    if let Some(b) = p.console_size() {
        for (name, v) in [("height", b.height()), ("width", b.width())] {
            if v > u16::MAX as u64 {
                return Err(Error::config(
                    format!("process.consoleSize.{name}"),
                    format!("{v} is larger than {}", u16::MAX),
                ));
            }
        }
    }
    match p.args() {
        Some(a) if !a.is_empty() && !a[0].is_empty() => {}
        _ => return Err(Error::config("process.args", "missing or empty")),
    }
    if !p.cwd().is_absolute() {
        return Err(Error::config(
            "process.cwd",
            format!("{:?} is not an absolute path", p.cwd()),
        ));
    }
    if let Some(env) = p.env() {
        for (i, e) in env.iter().enumerate() {
            if !e.contains('=') || e.contains('\0') {
                return Err(Error::config(
                    format!("process.env[{i}]"),
                    format!("{e:?} is not KEY=VALUE"),
                ));
            }
        }
    }
    if let Some(rl) = p.rlimits() {
        let mut seen = HashSet::new();
        for (i, r) in rl.iter().enumerate() {
            if !seen.insert(r.typ().to_string()) {
                return Err(Error::config(
                    format!("process.rlimits[{i}]"),
                    format!("{} given twice", r.typ()),
                ));
            }
            if r.soft() > r.hard() {
                return Err(Error::config(
                    format!("process.rlimits[{i}]"),
                    format!(
                        "{}: soft limit {} above hard limit {}",
                        r.typ(),
                        r.soft(),
                        r.hard()
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn ns_list(spec: &Spec) -> Vec<oci_spec::runtime::LinuxNamespace> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
}

fn has_ns(spec: &Spec, t: LinuxNamespaceType) -> bool {
    ns_list(spec).iter().any(|n| n.typ() == t)
}

fn namespaces(spec: &Spec) -> Result<()> {
    let mut seen = HashSet::new();
    for (i, ns) in ns_list(spec).iter().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(Error::config(
                format!("linux.namespaces[{i}]"),
                format!("namespace {:?} listed twice", ns.typ().to_string()),
            ));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(Error::config(
                    format!("linux.namespaces[{i}].path"),
                    format!("{p:?} is not an absolute path"),
                ));
            }
        }
    }
    // Without a mount namespace the container shares the runtime's (runtime-spec); as
    // runc, /proc and /sys cannot then be restricted (that would change the host's).
    if !has_ns(spec, LinuxNamespaceType::Mount) {
        let linux = spec.linux().clone().unwrap_or_default();
        for (field, paths) in [
            ("linux.maskedPaths", linux.masked_paths()),
            ("linux.readonlyPaths", linux.readonly_paths()),
        ] {
            if paths.as_ref().is_some_and(|p| !p.is_empty()) {
                return Err(Error::config(
                    field,
                    "unable to restrict sys entries without a private mount namespace",
                ));
            }
        }
    }
    Ok(())
}

/// One id mapping's ranges: not empty, and neither end may reach 4294967295 (-1, which
/// the kernel refuses to map) or wrap around.
fn mapping_ranges(field: &str, maps: &[oci_spec::runtime::LinuxIdMapping]) -> Result<()> {
    for (i, m) in maps.iter().enumerate() {
        let field = format!("{field}[{i}]");
        if m.size() == 0 {
            return Err(Error::config(format!("{field}.size"), "must be at least 1"));
        }
        for (name, start) in [("containerID", m.container_id()), ("hostID", m.host_id())] {
            if start.checked_add(m.size()).is_none() {
                return Err(Error::config(
                    format!("{field}.{name}"),
                    format!(
                        "{start} + size {} goes past the largest id {}",
                        m.size(),
                        u32::MAX - 1
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn id_mappings(spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    mapping_ranges(
        "linux.uidMappings",
        linux.uid_mappings().as_deref().unwrap_or_default(),
    )?;
    mapping_ranges(
        "linux.gidMappings",
        linux.gid_mappings().as_deref().unwrap_or_default(),
    )?;
    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    let user_ns = ns_list(spec)
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::User)
        .cloned();
    match user_ns {
        None if has_maps => Err(Error::config(
            "linux.uidMappings",
            "id mappings given without a user namespace",
        )),
        Some(ns) if ns.path().is_none() => {
            let uid = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty());
            let gid = linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
            if !uid {
                return Err(Error::config(
                    "linux.uidMappings",
                    "a new user namespace needs uid mappings",
                ));
            }
            if !gid {
                return Err(Error::config(
                    "linux.gidMappings",
                    "a new user namespace needs gid mappings",
                ));
            }
            Ok(())
        }
        Some(_) if has_maps => Err(Error::config(
            "linux.uidMappings",
            "id mappings cannot be given for a joined user namespace",
        )),
        _ => Ok(()),
    }
}

fn time_offsets(spec: &Spec) -> Result<()> {
    let offsets = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().clone())
        .unwrap_or_default();
    if offsets.is_empty() {
        return Ok(());
    }
    let new_time = ns_list(spec)
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::Time && n.path().is_none());
    if !new_time {
        return Err(Error::config(
            "linux.timeOffsets",
            "time offsets need a new time namespace",
        ));
    }
    for (k, o) in &offsets {
        if k != "monotonic" && k != "boottime" {
            return Err(Error::config(
                format!("linux.timeOffsets.{k}"),
                "unknown clock (expected monotonic or boottime)",
            ));
        }
        if let Some(ns) = o.nanosecs().filter(|n| *n >= 1_000_000_000) {
            return Err(Error::config(
                format!("linux.timeOffsets.{k}.nanosecs"),
                format!("{ns} is not below 1000000000"),
            ));
        }
    }
    Ok(())
}

fn hostname(spec: &Spec) -> Result<()> {
    let wants = spec.hostname().as_ref().is_some_and(|h| !h.is_empty())
        || spec.domainname().as_ref().is_some_and(|h| !h.is_empty());
    if wants && !has_ns(spec, LinuxNamespaceType::Uts) {
        return Err(Error::config(
            "hostname",
            "cannot set a hostname or domainname without a new uts namespace",
        ));
    }
    // The kernel's limit (HOST_NAME_MAX); sethostname would say only EINVAL.
    for (field, v) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        if let Some(v) = v {
            if v.len() > 64 || v.contains('\0') {
                return Err(Error::config(
                    field,
                    format!(
                        "must be at most 64 bytes without NUL (got {} bytes)",
                        v.len()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Mount entries are checked where they are turned into mount operations (one place for
/// their rules: destination, options, source, type, id mappings); planning them is pure.
fn mounts(spec: &Spec) -> Result<()> {
    crate::rootfs::plan_mounts(spec, std::path::Path::new("/")).map(drop)
}

/// Moving network devices into the container is the engine's work here (rsrun sets up
/// no network): refused rather than ignored.
fn net_devices(spec: &Spec) -> Result<()> {
    let any = spec
        .linux()
        .as_ref()
        .and_then(|l| l.net_devices().as_ref())
        .is_some_and(|d| !d.is_empty());
    if any {
        return Err(Error::config(
            "linux.netDevices",
            "moving network devices into the container is not supported",
        ));
    }
    Ok(())
}

fn cgroups_path(spec: &Spec) -> Result<()> {
    if let Some(p) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
    {
        let s = p.to_string_lossy();
        if s.contains('\0') {
            return Err(Error::config("linux.cgroupsPath", "contains a NUL byte"));
        }
    }
    Ok(())
}

/// Only sysctls that live in a namespace the container has of its own (runc's rules).
fn sysctl(spec: &Spec) -> Result<()> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let sysctls = spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().clone())
        .unwrap_or_default();
    let new_ns = |t: LinuxNamespaceType| {
        ns_list(spec)
            .iter()
            .any(|n| n.typ() == t && n.path().is_none())
    };
    for (k, v) in &sysctls {
        let field = format!("linux.sysctl.{k}");
        if k.is_empty()
            || k.contains("..")
            || k.starts_with('/')
            || k.contains('\0')
            || v.contains('\0')
        {
            return Err(Error::config(field, "not a sysctl name"));
        }
        let key = k.replace('/', ".");
        let ok = if IPC.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
            has_ns(spec, LinuxNamespaceType::Ipc)
        } else if key.starts_with("net.") {
            has_ns(spec, LinuxNamespaceType::Network)
        } else if key == "kernel.domainname" {
            new_ns(LinuxNamespaceType::Uts)
        } else if key == "kernel.hostname" {
            return Err(Error::config(
                field,
                "conflicts with the hostname field: use that",
            ));
        } else {
            false
        };
        if !ok {
            return Err(Error::config(
                field,
                "not allowed: it is not in a namespace of the container's own",
            ));
        }
    }
    Ok(())
}

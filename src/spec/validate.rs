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
    ("linux.sysctl", sysctl),
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
    if !has_ns(spec, LinuxNamespaceType::Mount) {
        return Err(Error::config(
            "linux.namespaces",
            "a mount namespace is required (rsrun never mounts in the host's)",
        ));
    }
    Ok(())
}

fn id_mappings(spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
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
    for k in offsets.keys() {
        if k != "monotonic" && k != "boottime" {
            return Err(Error::config(
                format!("linux.timeOffsets.{k}"),
                "unknown clock (expected monotonic or boottime)",
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
    Ok(())
}

fn mounts(spec: &Spec) -> Result<()> {
    for (i, m) in spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if !m.destination().is_absolute() {
            return Err(Error::config(
                format!("mounts[{i}].destination"),
                format!("{:?} is not an absolute path", m.destination()),
            ));
        }
        crate::rootfs::options::parse(m.options().as_deref().unwrap_or_default())
            .map_err(|msg| Error::config(format!("mounts[{i}].options"), msg))?;
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

//! Running without host root: whether rsrun is rootless (`--rootless true|false|auto`,
//! as runc decides it), and where a rootless user's container state lives.

use crate::error::{Error, Result};
use crate::logger::Logger;
use crate::plan::Plan;
use std::path::PathBuf;

/// The state root when `--root` is not given and the caller is host root.
pub const ROOT_STATE_DIR: &str = "/run/rsrun";

/// `--rootless`: `None` is auto, as runc's flag (and its default).
pub fn parse_flag(value: Option<&str>) -> Result<Option<bool>> {
    match value {
        None | Some("auto") => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(v) => Err(Error::container(format!(
            "invalid --rootless argument {v:?}: true, false or auto"
        ))),
    }
}

/// True when the process runs in a user namespace other than the host's initial one
/// (whose uid_map maps every id to itself: `0 0 4294967295`), as rootless Podman runs
/// its OCI runtime.
pub fn in_user_namespace() -> bool {
    match crate::sys::fs::read_text(std::path::Path::new("/proc/self/uid_map")) {
        Ok(map) => {
            let fields: Vec<&str> = map.split_whitespace().collect();
            fields != ["0", "0", "4294967295"]
        }
        Err(_) => false,
    }
}

/// Whether rsrun runs rootless: what `--rootless` says, or when it says auto (runc's
/// rule) a non-root effective uid, or root in a user namespace that is not the host's.
/// Decided when first asked: only the commands that make a container ask, so `state`,
/// `list`, `kill` and `delete` do not read `/proc/self/uid_map`.
#[derive(Debug, Default)]
pub struct Rootless {
    flag: Option<bool>,
    decided: std::sync::OnceLock<bool>,
}

impl Rootless {
    /// `flag` as `parse_flag` returns it (`None`: auto).
    pub fn new(flag: Option<bool>) -> Rootless {
        Rootless {
            flag,
            decided: std::sync::OnceLock::new(),
        }
    }

    pub fn get(&self) -> bool {
        *self.decided.get_or_init(|| {
            self.flag
                .unwrap_or_else(|| crate::sys::proc::geteuid() != 0 || in_user_namespace())
        })
    }
}

/// The state root when `--root` is not given: `$XDG_RUNTIME_DIR/rsrun` for a user who is
/// not root (or is root only in a user namespace of their own, `$USER` not `root`), as
/// runc does; `/run/rsrun` otherwise. Made private to the user (mode 0700) when it is the
/// user's. A non-root user without `$XDG_RUNTIME_DIR` is told to give `--root`.
pub fn default_state_root() -> Result<PathBuf> {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty());
    let euid_root = crate::sys::proc::geteuid() == 0;
    let honour = match &xdg {
        None => false,
        Some(_) if !euid_root => true,
        Some(_) => in_user_namespace() && std::env::var("USER").map_or(true, |u| u != "root"),
    };
    match xdg {
        Some(dir) if honour => {
            let root = PathBuf::from(dir).join("rsrun");
            make_private_dir(&root)?;
            Ok(root)
        }
        _ if !euid_root => Err(Error::container(format!(
            "rootless: no state root: XDG_RUNTIME_DIR is not set and uid {} may not use {ROOT_STATE_DIR}; set XDG_RUNTIME_DIR or give --root",
            crate::sys::proc::geteuid()
        ))),
        _ => Ok(PathBuf::from(ROOT_STATE_DIR)),
    }
}

/// `dir`, created when missing, owned by the caller with mode 0700.
fn make_private_dir(dir: &std::path::Path) -> Result<()> {
    match crate::sys::fs::mkdir(dir, 0o700)? {
        true => Ok(()),
        false => crate::sys::fs::chmod(dir, 0o700),
    }
}

/// What a rootless container does without (as runc's): no id-mapped mounts (refused,
/// naming the mount: id-mapping needs privilege over the source's filesystem), no
/// device cgroup rules where
/// there is no devices cgroup (ignored), no cgroup for a controller the caller
/// may not write (`left_out`, from `Cgroup::keep_writable`; a resource that needs one is
/// refused, naming it), device nodes bound from the host (mknod needs host root), and no
/// `oom_score_adj` below the caller's own (lowering it needs CAP_SYS_RESOURCE: the
/// current value is kept, with a warning).
pub fn adapt_plan(plan: &mut Plan, left_out: &[String], log: &Logger) -> Result<()> {
    if let Some(op) = plan.rootfs.mounts.iter().find(|m| m.idmap.is_some()) {
        return Err(Error::config(
            format!("mounts[{}]", op.index),
            "id-mapped mounts are not supported for rootless containers (id-mapping needs CAP_SYS_ADMIN over the source's filesystem)",
        ));
    }
    for why in left_out {
        log.debug(&format!("rootless: no cgroup for {why}"));
    }
    // Device rules without a devices cgroup are ignored, as runc does (on v2 the filter
    // is tried, and its refusal ignored: `Runtime::create`).
    let cg = &plan.rootfs.cgroup;
    let devices_cgroup = cg.mode == crate::cgroups::Mode::V2
        || cg
            .dirs
            .iter()
            .any(|d| d.controllers.split(',').any(|c| c == "devices"));
    if !devices_cgroup {
        plan.cgroup_writes.retain(|w| w.controller != "devices");
    }
    if let Some(w) = crate::cgroups::resources::first_without_cgroup(cg, &plan.cgroup_writes) {
        let name = match w.controller {
            "" => "cgroup2",
            c => c,
        };
        let why = match left_out.iter().find(|l| l.starts_with(&format!("{name}:"))) {
            Some(l) => l.clone(),
            None if left_out.is_empty() => format!("{name}: no such hierarchy"),
            None => left_out.join("; "),
        };
        return Err(Error::config(
            w.field.clone(),
            format!(
                "cannot set {name} limit: rootless container could not join or create cgroup (no writable cgroup: {why}; delegate one to the user or drop the limit)"
            ),
        ));
    }
    plan.rootfs.bind_devices = true;
    if let Some(adj) = plan.process.oom_score_adj {
        let current = crate::sys::fs::read_text(std::path::Path::new("/proc/self/oom_score_adj"))
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok());
        if let Some(cur) = current.filter(|c| adj < *c) {
            log.warn(&format!(
                "rootless: process.oomScoreAdj {adj} is below the current {cur} (lowering it needs CAP_SYS_RESOURCE): keeping {cur}"
            ));
            plan.process.oom_score_adj = None;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn flag_values_are_runcs() {
        assert_eq!(super::parse_flag(None).unwrap(), None);
        assert_eq!(super::parse_flag(Some("auto")).unwrap(), None);
        assert_eq!(super::parse_flag(Some("true")).unwrap(), Some(true));
        assert_eq!(super::parse_flag(Some("false")).unwrap(), Some(false));
        let e = super::parse_flag(Some("yes")).unwrap_err().to_string();
        assert!(e.contains("--rootless") && e.contains("yes"), "{e}");
        assert!(super::Rootless::new(Some(true)).get() && !super::Rootless::new(Some(false)).get());
    }
}

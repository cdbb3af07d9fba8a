//! Freezing a container's cgroup: v1 `freezer.state`, v2 `cgroup.freeze`.

use super::Cgroup;
use crate::error::{Error, Result, SysContext};
use std::path::PathBuf;
use std::time::Duration;

enum Knob {
    V1(PathBuf),
    V2(PathBuf),
}

/// The freezer's directory: the v1 freezer hierarchy's, or the v2 one's.
fn freezer_dir(cg: &Cgroup) -> Option<(&super::CgroupDir, bool)> {
    if let Some(d) = cg.dirs.iter().find(|d| d.controllers == "freezer") {
        return Some((d, false));
    }
    if cg.mode == super::Mode::V2 {
        return cg.dirs.first().map(|d| (d, true));
    }
    None
}

fn knob(cg: &Cgroup) -> Option<Knob> {
    freezer_dir(cg).map(|(d, v2)| match v2 {
        false => Knob::V1(d.path.join("freezer.state")),
        true => Knob::V2(d.path.join("cgroup.freeze")),
    })
}

/// Refuse to create a container in a frozen cgroup (runc: "container's cgroup unexpectedly
/// frozen"): its init would stop at its first step and `create` would wait for ever.
/// A cgroup that does not exist yet is born frozen below a frozen one, so the nearest
/// existing directory is the one asked: v1 `freezer.state` FROZEN or FREEZING, v2
/// `cgroup.freeze` 1 (freezing) or `cgroup.events` `frozen 1` (frozen, also by an ancestor).
pub fn refuse_frozen(cg: &Cgroup) -> Result<()> {
    let Some((d, v2)) = freezer_dir(cg) else {
        return Ok(());
    };
    let mut dir = d.path.as_path();
    while !crate::sys::fs::exists(dir) && dir != d.mountpoint {
        match dir.parent() {
            Some(p) => dir = p,
            None => return Ok(()),
        }
    }
    // (file, the line that says frozen)
    let says = |f: &str, frozen: &dyn Fn(&str) -> bool| {
        let p = dir.join(f);
        let text = crate::sys::fs::read_pseudo(&p).ok()?;
        let line = text.lines().map(str::trim).find(|l| frozen(l))?.to_string();
        Some((p, line))
    };
    let frozen = if v2 {
        says("cgroup.freeze", &|l| l == "1").or_else(|| says("cgroup.events", &|l| l == "frozen 1"))
    } else {
        says("freezer.state", &|l| l == "FROZEN" || l == "FREEZING")
    };
    match frozen {
        Some((p, line)) => Err(Error::container(format!(
            "container's cgroup unexpectedly frozen: {} says {line:?}",
            p.display()
        ))),
        None => Ok(()),
    }
}

pub fn is_frozen(cg: &Cgroup) -> bool {
    match knob(cg) {
        Some(Knob::V1(p)) => crate::sys::fs::read_pseudo(p).is_ok_and(|s| s.trim() == "FROZEN"),
        Some(Knob::V2(p)) => crate::sys::fs::read_pseudo(p).is_ok_and(|s| s.trim() == "1"),
        None => false,
    }
}

/// Freeze (`true`) or thaw the cgroup and wait until the kernel reports it done.
pub fn set_frozen(cg: &Cgroup, frozen: bool) -> Result<()> {
    match knob(cg) {
        Some(Knob::V1(p)) => {
            let want = if frozen { "FROZEN" } else { "THAWED" };
            for _ in 0..1000 {
                crate::sys::fs::write_existing(&p, want.as_bytes())?;
                let now = crate::sys::fs::read_pseudo(&p).op("read", &p)?;
                if now.trim() == want {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(Error::container(format!(
                "{}: did not reach {want}",
                p.display()
            )))
        }
        Some(Knob::V2(p)) => {
            crate::sys::fs::write_existing(&p, if frozen { b"1" } else { b"0" })?;
            let events = p.with_file_name("cgroup.events");
            let want = if frozen { "frozen 1" } else { "frozen 0" };
            for _ in 0..1000 {
                let ev = crate::sys::fs::read_pseudo(&events).op("read", &events)?;
                if ev.lines().any(|l| l.trim() == want) {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(Error::container(format!(
                "{}: did not reach {want}",
                events.display()
            )))
        }
        None => Err(Error::container("no freezer cgroup for this container")),
    }
}

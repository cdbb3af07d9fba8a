//! Freezing a container's cgroup: v1 `freezer.state`, v2 `cgroup.freeze`.

use super::Cgroup;
use crate::error::{Error, Result, SysContext};
use std::path::PathBuf;
use std::time::Duration;

enum Knob {
    V1(PathBuf),
    V2(PathBuf),
}

fn knob(cg: &Cgroup) -> Option<Knob> {
    if let Some(d) = cg.dirs.iter().find(|d| d.controllers == "freezer") {
        return Some(Knob::V1(d.path.join("freezer.state")));
    }
    if cg.mode == super::Mode::V2 {
        return cg
            .dirs
            .first()
            .map(|d| Knob::V2(d.path.join("cgroup.freeze")));
    }
    None
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

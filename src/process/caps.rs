//! Capabilities: the five sets as bitmasks (planned in the parent), applied in the child
//! around the uid change: bounding before setuid, then E/P/I in one capset, then ambient.

use crate::error::{Error, Result};
use nix::errno::Errno;
use oci_spec::runtime::{Capabilities, LinuxCapabilities};
use std::str::FromStr;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub inheritable: u64,
    pub permitted: u64,
    pub ambient: u64,
}

/// The highest capability the running kernel knows.
pub fn last_cap() -> u32 {
    crate::sys::fs::read_pseudo("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Spec capability sets → masks. Capabilities the kernel does not know are skipped and
/// reported through `warn` (runc's behaviour); unknown names fail at parse time.
pub fn plan(c: &LinuxCapabilities, last: u32, warn: &mut dyn FnMut(String)) -> Result<CapSets> {
    let mut mask = |set: &Option<Capabilities>, field: &str| -> Result<u64> {
        let mut m = 0u64;
        for cap in set.iter().flatten() {
            let name = format!("CAP_{cap}");
            let parsed = caps::Capability::from_str(&name).map_err(|_| {
                Error::config(
                    format!("process.capabilities.{field}"),
                    format!("unknown capability {name:?}"),
                )
            })?;
            let idx = parsed.index() as u32;
            if idx > last {
                warn(format!(
                    "capability {name} is not supported by this kernel: skipped"
                ));
                continue;
            }
            m |= 1u64 << idx;
        }
        Ok(m)
    };
    Ok(CapSets {
        bounding: mask(c.bounding(), "bounding")?,
        effective: mask(c.effective(), "effective")?,
        inheritable: mask(c.inheritable(), "inheritable")?,
        permitted: mask(c.permitted(), "permitted")?,
        ambient: mask(c.ambient(), "ambient")?,
    })
}

/// Drop every capability outside `bounding` from the bounding set (needs CAP_SETPCAP,
/// so this runs before the uid change).
pub fn apply_bounding(sets: &CapSets, last: u32) -> Result<()> {
    for i in 0..=last {
        if sets.bounding & (1 << i) == 0 {
            crate::sys::privilege::prctl(
                "prctl(PR_CAPBSET_DROP)",
                libc::PR_CAPBSET_DROP,
                i as libc::c_ulong,
                0,
            )
            .or_else(|e| {
                if e.errno() == Some(Errno::EINVAL) {
                    Ok(())
                } else {
                    Err(e)
                }
            })?;
        }
    }
    Ok(())
}

/// Set effective, permitted and inheritable at once, then raise the ambient ones.
pub fn apply_sets(sets: &CapSets, last: u32) -> Result<()> {
    if let Err(e) = crate::sys::privilege::capset(sets.effective, sets.permitted, sets.inheritable)
    {
        return Err(explain_eperm(e, sets));
    }
    for i in 0..=last {
        if sets.ambient & (1 << i) != 0 {
            // Ambient needs the cap in permitted and inheritable; runc ignores failures.
            let _ = crate::sys::privilege::prctl(
                "prctl(PR_CAP_AMBIENT_RAISE)",
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                i as libc::c_ulong,
            );
        }
    }
    Ok(())
}

/// capset fails with EPERM when the spec asks for capabilities rsrun itself does not
/// hold (a host whose root lacks some, e.g. CAP_SYS_RESOURCE): name them.
fn explain_eperm(e: Error, sets: &CapSets) -> Error {
    if e.errno() != Some(Errno::EPERM) {
        return e;
    }
    let Ok(held) = caps::read(None, caps::CapSet::Permitted) else {
        return e;
    };
    let held: u64 = held.iter().fold(0, |m, c| m | (1u64 << c.index()));
    let missing = (sets.permitted | sets.effective | sets.inheritable) & !held;
    let names: Vec<String> = caps::all()
        .into_iter()
        .filter(|c| missing & (1u64 << c.index()) != 0)
        .map(|c| c.to_string())
        .collect();
    if names.is_empty() {
        return e;
    }
    Error::config(
        "process.capabilities",
        format!(
            "{e}: the runtime does not hold {} itself, so it cannot grant them",
            names.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_unknown_to_kernel() {
        let c: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_KILL","CAP_CHOWN","CAP_CHECKPOINT_RESTORE"],"effective":["CAP_KILL"]}"#,
        )
        .unwrap();
        let mut warned = Vec::new();
        let s = plan(&c, 39, &mut |w| warned.push(w)).unwrap();
        assert_eq!(s.bounding, (1 << 5) | (1 << 0));
        assert_eq!(s.effective, 1 << 5);
        assert_eq!(s.inheritable, 0);
        assert_eq!(warned.len(), 1);
        assert!(warned[0].contains("CAP_CHECKPOINT_RESTORE"));
    }
}

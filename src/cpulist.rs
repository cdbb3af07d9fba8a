//! Linux CPU and memory-node lists (`0-3,5`, as in cpuset files and
//! /sys/devices/system/cpu/online): parsed as ranges, never expanded, and checked
//! against what the host has online. Used by the cpuset resources and execCPUAffinity.

use crate::error::{Error, Result};

/// A cpuset list (`0-3,5`) as sorted, merged inclusive ranges. Ranges are never expanded
/// into their members: `0-4000000000` is one pair, not four billion numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdList(Vec<(u32, u32)>);

impl IdList {
    /// `None` for anything that is not a list of numbers and `a-b` ranges with a <= b.
    pub fn parse(s: &str) -> Option<IdList> {
        let mut ranges = Vec::new();
        for part in s.trim().split(',').filter(|p| !p.is_empty()) {
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
                None => {
                    let x = part.trim().parse().ok()?;
                    (x, x)
                }
            };
            if a > b {
                return None;
            }
            ranges.push((a, b));
        }
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (a, b) in ranges {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        Some(IdList(merged))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The largest member.
    pub fn max(&self) -> Option<u32> {
        self.0.last().map(|r| r.1)
    }

    /// The smallest member of `self` that `have` lacks.
    pub fn first_missing(&self, have: &IdList) -> Option<u32> {
        self.0.iter().find_map(|&(a, b)| {
            // `have` is merged, so one range of it covers all of a..=b or some is missing.
            match have.0.iter().find(|r| r.0 <= a && a <= r.1) {
                None => Some(a),
                Some(r) if r.1 < b => Some(r.1 + 1),
                Some(_) => None,
            }
        })
    }

    /// Back to the kernel's list syntax.
    pub fn text(&self) -> String {
        let part = |&(a, b): &(u32, u32)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        };
        self.0.iter().map(part).collect::<Vec<_>>().join(",")
    }

    /// The members as a bitmask, least significant bit first (byte `i` bit `j` is member
    /// `8i+j`), as systemd's AllowedCPUs/AllowedMemoryNodes take them; `None` beyond
    /// 65536 members (more than any kernel has CPUs or nodes).
    pub fn bitmask(&self) -> Option<Vec<u8>> {
        let max = self.max()?;
        if max >= 1 << 16 {
            return None;
        }
        let mut mask = vec![0u8; max as usize / 8 + 1];
        for m in self.members() {
            mask[m as usize / 8] |= 1 << (m % 8);
        }
        Some(mask)
    }

    /// Every member, in order; only for a list already bounded (checked against the host).
    pub fn members(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().flat_map(|&(a, b)| a..=b)
    }
}

/// Parse `value` (field `field`) and refuse members the host does not have, as listed in
/// `online` (`/sys/devices/system/cpu/online` or `.../node/online`).
pub fn check_online(field: &str, value: &str, online: &str) -> Result<IdList> {
    let want = IdList::parse(value)
        .ok_or_else(|| Error::config(field, format!("{value:?} is not a cpuset list")))?;
    if let Ok(have) = crate::sys::fs::read_pseudo(online) {
        let have = IdList::parse(&have).unwrap_or_default();
        if let Some(x) = want.first_missing(&have) {
            return Err(Error::config(
                field,
                format!(
                    "{value:?}: {x} is not online on this host ({online}: {})",
                    have.text()
                ),
            ));
        }
    }
    Ok(want)
}

pub const CPUS_ONLINE: &str = "/sys/devices/system/cpu/online";
pub const NODES_ONLINE: &str = "/sys/devices/system/node/online";

#[cfg(test)]
mod cpuset_tests {
    use super::IdList;

    #[test]
    fn lists() {
        let s = IdList::parse("5,0-2").unwrap();
        assert_eq!(s.members().collect::<Vec<_>>(), vec![0, 1, 2, 5]);
        assert_eq!(s.text(), "0-2,5");
        assert_eq!(IdList::parse("0-1,2,3-3").unwrap().text(), "0-3");
        assert!(IdList::parse("3-1").is_none());
        assert!(IdList::parse("x").is_none());
        assert!(IdList::parse("-1").is_none());
        assert!(IdList::parse("4294967296").is_none());
        assert!(IdList::parse("").unwrap().is_empty());
    }

    #[test]
    fn bitmasks_are_little_endian() {
        let m = |s: &str| IdList::parse(s).unwrap().bitmask();
        assert_eq!(m("0"), Some(vec![0x01]));
        assert_eq!(m("0-1"), Some(vec![0x03]));
        assert_eq!(m("1,8"), Some(vec![0x02, 0x01]));
        assert_eq!(m("3-4,15"), Some(vec![0x18, 0x80]));
        assert_eq!(m(""), None);
        assert_eq!(m("0-4294967295"), None);
    }

    #[test]
    fn huge_ranges_are_not_expanded() {
        let t = std::time::Instant::now();
        let want = IdList::parse("0-4294967295").unwrap();
        let have = IdList::parse("0-1").unwrap();
        assert_eq!(want.first_missing(&have), Some(2));
        assert_eq!(want.max(), Some(u32::MAX));
        let top = IdList::parse("4294967295").unwrap();
        assert_eq!(top.first_missing(&have), Some(u32::MAX));
        assert_eq!(IdList::parse("1,0").unwrap().first_missing(&have), None);
        assert_eq!(IdList::parse("0-2").unwrap().first_missing(&have), Some(2));
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
    }
}

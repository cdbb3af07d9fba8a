//! The device rules of `linux.resources.devices` as rsrun applies them: checked and made
//! plain data before the fork (`from_resources`), then written to v1's devices files
//! (`DeviceRule::text`), compiled to v2's eBPF filter (`devices_bpf`) or given to systemd
//! (`systemd::device_properties`).

use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

/// Which devices a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    All,
    Block,
    /// Character devices (the spec's `c` and `u`).
    Char,
    /// FIFOs (`p`): not device-controlled by the eBPF filter.
    Fifo,
}

/// One rule, after the default deny: the last rule that matches a device decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: DeviceKind,
    /// `None`: any major (the spec's -1 or no value).
    pub major: Option<u32>,
    /// `None`: any minor.
    pub minor: Option<u32>,
    /// A combination of r, w and m.
    pub access: String,
}

impl DeviceRule {
    fn new(kind: DeviceKind, major: Option<u32>, minor: Option<u32>, access: &str) -> Self {
        DeviceRule {
            allow: true,
            kind,
            major,
            minor,
            access: access.into(),
        }
    }

    /// `linux.resources.devices[i]` checked: a major or minor of -1 (or none) is the
    /// wildcard, as in runc; any other negative, or a number past 32 bits (which the eBPF
    /// filter would truncate into another device's number), is refused, as is an access
    /// that is not a combination of r, w and m.
    pub fn from_spec(i: usize, r: &LinuxDeviceCgroup) -> Result<DeviceRule> {
        let number = |name: &str, v: Option<i64>| match v {
            None | Some(-1) => Ok(None),
            Some(v) => u32::try_from(v).map(Some).map_err(|_| {
                Error::config(
                    format!("linux.resources.devices[{i}].{name}"),
                    format!("{v} is neither -1 (any) nor a device number"),
                )
            }),
        };
        let major = number("major", r.major())?;
        let minor = number("minor", r.minor())?;
        let access = match r.access() {
            None => "rwm".to_string(),
            Some(a) if !a.is_empty() && a.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) => {
                a.clone()
            }
            Some(a) => {
                return Err(Error::config(
                    format!("linux.resources.devices[{i}].access"),
                    format!("{a:?}: expected a combination of r, w, m"),
                ))
            }
        };
        let kind = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => DeviceKind::All,
            LinuxDeviceType::B => DeviceKind::Block,
            LinuxDeviceType::C | LinuxDeviceType::U => DeviceKind::Char,
            LinuxDeviceType::P => DeviceKind::Fifo,
        };
        Ok(DeviceRule {
            allow: r.allow(),
            kind,
            major,
            minor,
            access,
        })
    }

    /// `type major:minor access` as the v1 devices files take it.
    pub fn text(&self) -> String {
        let t = match self.kind {
            DeviceKind::All => "a",
            DeviceKind::Block => "b",
            DeviceKind::Char => "c",
            DeviceKind::Fifo => "p",
        };
        let n = |v: Option<u32>| v.map(|x| x.to_string()).unwrap_or_else(|| "*".into());
        format!("{t} {}:{} {}", n(self.major), n(self.minor), self.access)
    }
}

/// runc's default device allow list, appended after the spec's rules.
pub fn default_allowed() -> Vec<DeviceRule> {
    use DeviceKind::{Block, Char};
    let rule = DeviceRule::new;
    vec![
        rule(Char, None, None, "m"),
        rule(Block, None, None, "m"),
        rule(Char, Some(1), Some(3), "rwm"),
        rule(Char, Some(1), Some(8), "rwm"),
        rule(Char, Some(1), Some(7), "rwm"),
        rule(Char, Some(5), Some(0), "rwm"),
        rule(Char, Some(1), Some(5), "rwm"),
        rule(Char, Some(1), Some(9), "rwm"),
        rule(Char, Some(136), None, "rwm"),
        rule(Char, Some(5), Some(2), "rwm"),
        rule(Char, Some(10), Some(200), "rwm"),
    ]
}

/// The full device rule list after the default deny: the spec's rules, then runc's
/// defaults. The nodes `linux.devices` creates get no rule of their own: creating a node
/// grants no access to it; only `linux.resources.devices` does (as in runc).
pub fn from_resources(res: &LinuxResources) -> Result<Vec<DeviceRule>> {
    let mut rules = Vec::new();
    for (i, r) in res.devices().iter().flatten().enumerate() {
        rules.push(DeviceRule::from_spec(i, r)?);
    }
    rules.extend(default_allowed());
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_rule(v: serde_json::Value) -> LinuxDeviceCgroup {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn wildcards_and_full_range_numbers() {
        let r = DeviceRule::from_spec(
            0,
            &spec_rule(serde_json::json!({"allow": true, "type": "c", "major": -1, "minor": 4294967295u32})),
        )
        .unwrap();
        assert_eq!(r.text(), "c *:4294967295 rwm");
        let r = DeviceRule::from_spec(1, &spec_rule(serde_json::json!({"allow": false}))).unwrap();
        assert_eq!((r.allow, r.text()), (false, "a *:* rwm".to_string()));
        let u = DeviceRule::from_spec(
            2,
            &spec_rule(serde_json::json!({"allow": true, "type": "u", "major": 4, "access": "rw"})),
        )
        .unwrap();
        assert_eq!(u.text(), "c 4:* rw");
    }

    #[test]
    fn bad_numbers_and_access_name_the_field() {
        for (v, field) in [
            (
                serde_json::json!({"allow": true, "major": -2}),
                "devices[3].major",
            ),
            (
                serde_json::json!({"allow": true, "minor": 4294967296u64}),
                "devices[3].minor",
            ),
            (
                serde_json::json!({"allow": true, "access": "rx"}),
                "devices[3].access",
            ),
            (
                serde_json::json!({"allow": true, "access": ""}),
                "devices[3].access",
            ),
        ] {
            let e = DeviceRule::from_spec(3, &spec_rule(v.clone()))
                .unwrap_err()
                .to_string();
            assert!(e.contains(field), "{v}: {e}");
        }
    }
}

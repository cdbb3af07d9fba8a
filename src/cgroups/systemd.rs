//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup is a transient
//! scope unit that systemd creates and owns, as with runc's systemd driver.
//!
//! - `linux.cgroupsPath` is `slice:prefix:name` (`system.slice:docker:ID`); an empty slice is
//!   `system.slice`, an empty path is `:rsrun:ID`; the unit is `prefix-name.scope`
//!   (`name.scope` without a prefix), placed in the slice. Slices nest by their dashes:
//!   `a-b.slice` lives in `a.slice/a-b.slice` (systemd.slice(5)), and systemd makes a slice
//!   that does not exist yet when the scope asks for it.
//! - `create` starts the scope over D-Bus (`StartTransientUnit`, waiting for the job) with
//!   `Delegate=yes` and rsrun's own pid as the scope's first process: the init is then cloned
//!   straight into the scope's cgroup as with the cgroupfs driver, and rsrun moves itself
//!   back to where it was (`OwnCgroups`). The basic `linux.resources` become unit properties
//!   (so a `systemctl daemon-reload` keeps them), and on v2 the device rules become
//!   `DevicePolicy=strict` + `DeviceAllow=`; every resource is also written to the cgroup
//!   files (and rsrun's own device program attached), as without systemd.
//! - On a v1/hybrid host systemd owns the hierarchies it manages (`name=systemd`, the
//!   unified one, and the controllers a delegated unit gets); rsrun makes the same path in the
//!   others (cpuset, freezer, devices, ...) and removes it on delete.
//! - `delete` stops the unit (waiting for the job) and resets it if it failed (an OOM kill),
//!   so no unit is left; a unit that is already gone is fine.

use super::dbus::{Arg, CallError, Conn, Property, Value};
use super::Mode;
use crate::error::{Error, Result};
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long a call or a job may take before rsrun gives up.
const TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_SLICE: &str = "system.slice";
const DEFAULT_PREFIX: &str = "rsrun";

/// The container's unit, recorded in its state before the unit exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// `prefix-name.scope`.
    pub name: String,
    /// The slice it lives in.
    pub slice: String,
    /// Names the container and its state root: `delete` stops only a unit that has it (a
    /// create refused for a name collision must not stop the other container's unit).
    #[serde(default)]
    pub description: String,
    /// The unit properties `linux.resources` asks for (create only, not recorded).
    #[serde(skip)]
    pub props: Vec<Property>,
}

/// runc's rules for `linux.cgroupsPath` under the systemd driver: the unit and the cgroup
/// path (the same in every hierarchy), e.g. `/system.slice/docker-ID.scope`.
pub fn parse_cgroups_path(spec_path: Option<&str>, id: &str) -> Result<(Unit, String)> {
    let field = "linux.cgroupsPath";
    let (slice, prefix, name) = match spec_path.filter(|p| !p.is_empty()) {
        None => ("", DEFAULT_PREFIX, id),
        Some(p) => {
            let parts: Vec<&str> = p.split(':').collect();
            let [slice, prefix, name] = parts[..] else {
                return Err(Error::config(
                    field,
                    format!("{p:?}: the systemd driver expects \"slice:prefix:name\""),
                ));
            };
            (slice, prefix, name)
        }
    };
    let slice = if slice.is_empty() {
        DEFAULT_SLICE
    } else {
        slice
    };
    let name = if name.is_empty() { id } else { name };
    if name.ends_with(".slice") {
        return Err(Error::config(
            field,
            format!("{name:?}: a container in a slice unit of its own is not supported"),
        ));
    }
    let unit = if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    if unit.contains('/') || !unit.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Error::config(
            field,
            format!("{unit:?} is not a valid unit name"),
        ));
    }
    let dir = expand_slice(slice)?;
    let path = format!("{}/{unit}", dir.trim_end_matches('/'));
    Ok((
        Unit {
            name: unit,
            slice: slice.to_string(),
            description: format!("rsrun container {id}"),
            props: Vec::new(),
        },
        path,
    ))
}

/// Without `--systemd-cgroup`, a `slice:prefix:name` path is refused rather than taken
/// as a directory name.
pub fn check_driver(spec_path: Option<&str>) -> Result<()> {
    match spec_path {
        Some(s) if !s.starts_with('/') && s.split(':').count() == 3 => Err(Error::config(
            "linux.cgroupsPath",
            format!("{s:?} is a systemd slice:prefix:name path, which needs --systemd-cgroup"),
        )),
        _ => Ok(()),
    }
}

/// A slice's cgroup path: `a-b-c.slice` is `/a.slice/a-b.slice/a-b-c.slice`, `-.slice` is
/// the root.
pub fn expand_slice(slice: &str) -> Result<String> {
    let bad = || {
        Err(Error::config(
            "linux.cgroupsPath",
            format!("{slice:?} is not a valid slice name"),
        ))
    };
    let Some(base) = slice.strip_suffix(".slice") else {
        return bad();
    };
    if base.is_empty() || slice.contains('/') {
        return bad();
    }
    if base == "-" {
        return Ok("/".into());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in base.split('-') {
        if part.is_empty() {
            return bad();
        }
        path.push_str(&format!("/{prefix}{part}.slice"));
        prefix.push_str(part);
        prefix.push('-');
    }
    Ok(path)
}

/// Whether systemd makes and owns a delegated unit's directory in this hierarchy (`` is the
/// v2 one): the controllers the accounting properties turn on. rsrun makes the others
/// (`devices` too: systemd realizes it on v1 only for a device policy, which rsrun leaves to
/// its own rules).
pub fn owns_hierarchy(controllers: &str) -> bool {
    controllers.is_empty()
        || controllers.split(',').any(|c| {
            matches!(
                c,
                "name=systemd" | "cpu" | "cpuacct" | "memory" | "pids" | "blkio"
            )
        })
}

/// The unit properties for `linux.resources`, as runc sets them: the limits systemd knows
/// (0 means unset, -1 unlimited, as everywhere in rsrun).
pub fn resource_properties(res: Option<&LinuxResources>, mode: Mode) -> Vec<Property> {
    let mut p: Vec<Property> = Vec::new();
    let Some(res) = res else {
        return p;
    };
    let v2 = mode == Mode::V2;
    if let Some(m) = res.memory() {
        memory_properties(m, v2, &mut p);
    }
    if let Some(c) = res.cpu() {
        cpu_properties(c, v2, &mut p);
    }
    if let Some(l) = res.pids().map(|p| p.limit()).filter(|l| *l != 0) {
        p.push(("TasksMax".into(), Value::U64(unlimited_below_zero(l))));
    }
    // Docker sends a weight of 0 for "not set".
    if let Some(w) = res
        .block_io()
        .as_ref()
        .and_then(|b| b.weight())
        .filter(|w| *w != 0)
    {
        if v2 {
            let w = super::resources::blkio_to_io_weight(w);
            p.push(("IOWeight".into(), Value::U64(w)));
        } else {
            p.push(("BlockIOWeight".into(), Value::U64(w as u64)));
        }
    }
    let cpusets = res.cpu().as_ref().map(|c| {
        [
            ("AllowedCPUs", c.cpus().as_deref()),
            ("AllowedMemoryNodes", c.mems().as_deref()),
        ]
    });
    for (name, list) in cpusets.into_iter().flatten() {
        if let Some(mask) = list.and_then(cpu_mask) {
            p.push((name.into(), Value::Bytes(mask)));
        }
    }
    if v2 {
        // After the fields: the unified map wins over them, as in its files.
        p.extend(unified_properties(res));
    }
    p
}

/// A CFS quota per `period` as systemd keeps it: per second, in 10 ms steps (rounded up,
/// as runc).
fn quota_per_sec(quota: u64, period: u64) -> u64 {
    let per_sec = quota * 1_000_000 / period.max(1);
    per_sec.div_ceil(10_000) * 10_000
}

/// A cpuset list (`0-2,4`) as systemd's bitmask.
fn cpu_mask(list: &str) -> Option<Vec<u8>> {
    crate::cpulist::IdList::parse(list).and_then(|l| l.bitmask())
}

/// The unit properties for the `linux.resources.unified` files systemd has a property
/// for (runc's systemd driver converts the same ones); the other files are only written.
/// A value that does not parse gets no property (its file write refuses it).
fn unified_properties(res: &LinuxResources) -> Vec<Property> {
    let mut files: Vec<_> = res.unified().iter().flatten().collect();
    files.sort();
    let max_or = |v: &str| match v {
        "max" => Some(u64::MAX),
        v => v.parse().ok(),
    };
    let mut p: Vec<Property> = Vec::new();
    for (file, value) in files {
        let v = value.trim();
        let named = |name: &str, n: Option<u64>| n.map(|n| (name.to_string(), Value::U64(n)));
        match file.as_str() {
            "cpu.max" => {
                let mut words = v.split_whitespace();
                let quota = words.next().and_then(max_or);
                let period = match words.next() {
                    Some(w) => w.parse().ok(),
                    None => Some(100_000),
                };
                if let (Some(quota), Some(period), None) = (quota, period, words.next()) {
                    let per_sec = match quota {
                        u64::MAX => u64::MAX,
                        q => quota_per_sec(q, period),
                    };
                    p.push(("CPUQuotaPeriodUSec".into(), Value::U64(period)));
                    p.push(("CPUQuotaPerSecUSec".into(), Value::U64(per_sec)));
                }
            }
            "cpu.weight" => p.extend(named("CPUWeight", v.parse().ok())),
            "cpuset.cpus" | "cpuset.mems" => {
                let name = match file.as_str() {
                    "cpuset.cpus" => "AllowedCPUs",
                    _ => "AllowedMemoryNodes",
                };
                if let Some(mask) = cpu_mask(v) {
                    p.push((name.into(), Value::Bytes(mask)));
                }
            }
            "memory.high" => p.extend(named("MemoryHigh", max_or(v))),
            "memory.low" => p.extend(named("MemoryLow", max_or(v))),
            "memory.min" => p.extend(named("MemoryMin", max_or(v))),
            "memory.max" => p.extend(named("MemoryMax", max_or(v))),
            "memory.swap.max" => p.extend(named("MemorySwapMax", max_or(v))),
            "pids.max" => p.extend(named("TasksMax", max_or(v))),
            _ => {}
        }
    }
    p
}

/// A limit as systemd takes it: a negative one (-1) is none.
fn unlimited_below_zero(v: i64) -> u64 {
    if v < 0 {
        u64::MAX
    } else {
        v as u64
    }
}

/// `MemoryMax`/`MemoryLimit`, `MemorySwapMax`, `MemoryLow`.
fn memory_properties(m: &oci_spec::runtime::LinuxMemory, v2: bool, p: &mut Vec<Property>) {
    if let Some(l) = m.limit().filter(|l| *l != 0) {
        let key = if v2 { "MemoryMax" } else { "MemoryLimit" };
        p.push((key.into(), Value::U64(unlimited_below_zero(l))));
    }
    // v2 counts swap alone: memory+swap minus the limit (resources.rs refuses what
    // does not convert).
    match (m.swap(), m.limit()) {
        (Some(-1), _) if v2 => p.push(("MemorySwapMax".into(), Value::U64(u64::MAX))),
        // swap == limit is no swap: the file gets 0, the unit nothing (runc).
        (Some(sw), Some(l)) if v2 && l > 0 && sw > l => {
            p.push(("MemorySwapMax".into(), Value::U64((sw - l) as u64)))
        }
        _ => {}
    }
    if let Some(r) = m.reservation().filter(|r| *r > 0 && v2) {
        p.push(("MemoryLow".into(), Value::U64(r as u64)));
    }
}

/// `CPUWeight`/`CPUShares`, `CPUQuotaPeriodUSec`, `CPUQuotaPerSecUSec`.
fn cpu_properties(c: &oci_spec::runtime::LinuxCpu, v2: bool, p: &mut Vec<Property>) {
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        if v2 {
            let w = super::resources::shares_to_weight(s);
            p.push(("CPUWeight".into(), Value::U64(w)));
        } else {
            p.push(("CPUShares".into(), Value::U64(s)));
        }
    }
    let period = c.period().filter(|p| *p != 0);
    if let Some(per) = period.filter(|_| v2) {
        p.push(("CPUQuotaPeriodUSec".into(), Value::U64(per)));
    }
    match c.quota() {
        Some(q) if q > 0 => {
            let per_sec = quota_per_sec(q as u64, period.unwrap_or(100_000));
            p.push(("CPUQuotaPerSecUSec".into(), Value::U64(per_sec)));
        }
        Some(q) if q < 0 => p.push(("CPUQuotaPerSecUSec".into(), Value::U64(u64::MAX))),
        _ => {}
    }
}

/// The first systemd that knows AllowedCPUs and AllowedMemoryNodes.
const CPUSET_PROPERTIES_SINCE: u32 = 244;

/// systemd's major version from its `Version` property (`252.22-1~deb12u1`, `v245`).
pub fn major_version(version: &str) -> Option<u32> {
    let digits: String = version
        .trim_start_matches('v')
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// `props` without what this systemd does not know: AllowedCPUs and AllowedMemoryNodes
/// before 244 (an older systemd would refuse the whole unit; rsrun writes the cpuset files
/// itself either way). The version is asked only when such a property is there.
fn supported(c: &mut Conn, props: &[Property]) -> Result<Vec<Property>> {
    let is_cpuset = |n: &str| n == "AllowedCPUs" || n == "AllowedMemoryNodes";
    if !props.iter().any(|(n, _)| is_cpuset(n)) {
        return Ok(props.to_vec());
    }
    let version = c
        .call(
            DEST,
            PATH,
            "org.freedesktop.DBus.Properties",
            "Get",
            &[Arg::Str(MANAGER), Arg::Str("Version")],
        )?
        .map_err(|e| call_error("Get Version of", "the manager", e))?
        .args()?;
    let major = version.first().and_then(|v| major_version(v)).unwrap_or(0);
    Ok(props
        .iter()
        .filter(|(n, _)| major >= CPUSET_PROPERTIES_SINCE || !is_cpuset(n))
        .cloned()
        .collect())
}

/// `DevicePolicy=strict` and `DeviceAllow=` for the container's device rules, on pure v2
/// only, where systemd's device program and rsrun's are both attached (BPF_F_ALLOW_MULTI)
/// and a device must pass both: the list is every device the rules allow anywhere (a
/// superset: deny rules stay rsrun's own program's job). On v1 the devices hierarchy stays
/// rsrun's (systemd would rewrite the files on a reload). Nothing is set when a rule allows
/// every type, or names a major that /proc/devices does not list.
pub fn device_properties(
    rules: &[super::device_rules::DeviceRule],
    mode: Mode,
    proc_devices: &str,
) -> Vec<Property> {
    use super::device_rules::DeviceKind as K;
    if mode != Mode::V2 {
        return Vec::new();
    }
    let mut allow: Vec<(String, String)> = Vec::new();
    for r in rules.iter().filter(|r| r.allow) {
        let access = r.access.clone();
        let (kind, section) = match r.kind {
            K::Char => ("char", "Character devices:"),
            K::Block => ("block", "Block devices:"),
            K::Fifo => continue,
            K::All => return Vec::new(),
        };
        let node = match (r.major, r.minor) {
            (None, _) => format!("{kind}-*"),
            (Some(ma), Some(mi)) => format!("/dev/{kind}/{ma}:{mi}"),
            (Some(ma), None) => match device_group(proc_devices, section, ma) {
                Some(name) => format!("{kind}-{name}"),
                None => return Vec::new(),
            },
        };
        allow.push((node, access));
    }
    vec![
        ("DevicePolicy".into(), Value::Str("strict".into())),
        ("DeviceAllow".into(), Value::StrPairs(allow)),
    ]
}

/// The name /proc/devices gives `major` in `section` (`136 pts` → `pts`).
fn device_group(proc_devices: &str, section: &str, major: u32) -> Option<String> {
    let mut inside = false;
    for line in proc_devices.lines() {
        let line = line.trim();
        if line.ends_with(':') {
            inside = line == section;
            continue;
        }
        if !inside {
            continue;
        }
        let (num, name) = line.split_once(' ')?;
        if num.parse::<u32>().ok() == Some(major) {
            return Some(name.trim().to_string());
        }
    }
    None
}

fn call_error(what: &str, unit: &str, e: CallError) -> Error {
    let short = e.name.rsplit('.').next().unwrap_or(&e.name).to_string();
    Error::container(format!(
        "systemd {what} {unit}: {} ({short})",
        e.message.trim_end_matches('.')
    ))
}

fn connect() -> Result<Conn> {
    let mut c = Conn::system(TIMEOUT)?;
    c.call(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "AddMatch",
        &[Arg::Str(
            "type='signal',sender='org.freedesktop.systemd1',\
             interface='org.freedesktop.systemd1.Manager',member='JobRemoved'",
        )],
    )?
    .map_err(|e| call_error("AddMatch", "JobRemoved", e))?;
    Ok(c)
}

/// Wait until systemd's job (the object path a call returned) is finished; its result.
fn wait_job(c: &mut Conn, reply: &super::dbus::Msg) -> Result<String> {
    let job = reply.args()?.into_iter().next().unwrap_or_default();
    let args = c.wait_signal("JobRemoved", |a| a.get(1) == Some(&job))?;
    Ok(args.get(3).cloned().unwrap_or_default())
}

fn reset_failed(c: &mut Conn, unit: &str) {
    let _ = c.call(DEST, PATH, MANAGER, "ResetFailedUnit", &[Arg::Str(unit)]);
}

/// Start the container's scope with `pid` in it and wait until it is running.
pub fn start(unit: &Unit, mode: Mode, pid: u32) -> Result<()> {
    let io = if mode == Mode::V2 {
        "IOAccounting"
    } else {
        "BlockIOAccounting"
    };
    let mut props: Vec<Property> = vec![
        (
            "Description".into(),
            Value::Str(format!("rsrun container {}", unit.name)),
        ),
        ("Slice".into(), Value::Str(unit.slice.clone())),
        ("Delegate".into(), Value::Bool(true)),
        ("PIDs".into(), Value::U32s(vec![pid])),
        ("DefaultDependencies".into(), Value::Bool(false)),
        ("MemoryAccounting".into(), Value::Bool(true)),
        ("CPUAccounting".into(), Value::Bool(true)),
        (io.into(), Value::Bool(true)),
        ("TasksAccounting".into(), Value::Bool(true)),
    ];
    let mut c = connect()?;
    props.extend(supported(&mut c, &unit.props)?);
    let reply = c
        .call(
            DEST,
            PATH,
            MANAGER,
            "StartTransientUnit",
            &[
                Arg::Str(&unit.name),
                Arg::Str("fail"),
                Arg::Props(&props),
                Arg::NoAux,
            ],
        )?
        .map_err(|e| call_error("StartTransientUnit", &unit.name, e))?;
    let result = wait_job(&mut c, &reply)?;
    if result != "done" {
        reset_failed(&mut c, &unit.name);
        return Err(Error::container(format!(
            "systemd StartTransientUnit {}: the start job ended {result:?}",
            unit.name
        )));
    }
    Ok(())
}

/// Stop the unit (a unit already gone is fine) and forget it if it failed. A unit of that
/// name that is not this container's is left alone, and so are its directories: the result
/// says whether the cgroup directories are this container's to remove.
pub fn stop(unit: &Unit) -> Result<bool> {
    let mut c = connect()?;
    let path = match c.call(DEST, PATH, MANAGER, "GetUnit", &[Arg::Str(&unit.name)])? {
        Ok(reply) => reply.args()?.into_iter().next().unwrap_or_default(),
        Err(e) if e.name.ends_with(".NoSuchUnit") => return Ok(true),
        Err(e) => return Err(call_error("GetUnit", &unit.name, e)),
    };
    let desc = c
        .call(
            DEST,
            &path,
            "org.freedesktop.DBus.Properties",
            "Get",
            &[
                Arg::Str("org.freedesktop.systemd1.Unit"),
                Arg::Str("Description"),
            ],
        )?
        .map_err(|e| call_error("Get Description of", &unit.name, e))?
        .args()?;
    if desc.first() != Some(&unit.description) {
        return Ok(false);
    }
    match c.call(
        DEST,
        PATH,
        MANAGER,
        "StopUnit",
        &[Arg::Str(&unit.name), Arg::Str("replace")],
    )? {
        Ok(reply) => {
            wait_job(&mut c, &reply)?;
        }
        Err(e) if e.name.ends_with(".NoSuchUnit") => {}
        Err(e) => return Err(call_error("StopUnit", &unit.name, e)),
    }
    reset_failed(&mut c, &unit.name);
    Ok(true)
}

/// `update`: set the unit's resource properties (at runtime, as runc does).
pub fn set_properties(unit: &Unit, props: &[Property]) -> Result<()> {
    if props.is_empty() {
        return Ok(());
    }
    let mut c = Conn::system(TIMEOUT)?;
    let props = supported(&mut c, props)?;
    c.call(
        DEST,
        PATH,
        MANAGER,
        "SetUnitProperties",
        &[Arg::Str(&unit.name), Arg::Bool(true), Arg::Props(&props)],
    )?
    .map_err(|e| call_error("SetUnitProperties", &unit.name, e))?;
    Ok(())
}

/// Where rsrun itself is in the hierarchies systemd manages, to move back there once the
/// init has been cloned into the scope.
pub struct OwnCgroups(Vec<(PathBuf, PathBuf)>);

impl OwnCgroups {
    pub fn save(cg: &super::Cgroup) -> Result<OwnCgroups> {
        use crate::error::SysContext;
        let text =
            crate::sys::fs::read_pseudo("/proc/self/cgroup").op("read", "/proc/self/cgroup")?;
        let own = super::hierarchy::parse_proc_cgroup(&text);
        let mut out = Vec::new();
        for d in cg.dirs.iter().filter(|d| owns_hierarchy(&d.controllers)) {
            if let Some(p) = own.get(&d.controllers) {
                let dir = d.mountpoint.join(p.trim_start_matches('/'));
                out.push((d.mountpoint.clone(), dir));
            }
        }
        Ok(OwnCgroups(out))
    }

    /// Move rsrun back (idempotent). On v1 systemd may have removed the directory meanwhile
    /// (it trims a controller from a slice's units when the last unit needing it stops):
    /// then the nearest ancestor that is left.
    pub fn restore(&self) -> Result<()> {
        let pid = crate::sys::proc::getpid().to_string();
        for (mountpoint, dir) in &self.0 {
            let mut d = dir.as_path();
            loop {
                match crate::sys::fs::write_existing(&d.join("cgroup.procs"), pid.as_bytes()) {
                    Err(Error::Sys {
                        errno: nix::errno::Errno::ENOENT,
                        ..
                    }) if d != mountpoint => {
                        d = d.parent().unwrap_or(mountpoint);
                    }
                    r => {
                        r?;
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_expand_as_systemd_names_them() {
        // runc's libcontainer/cgroups/systemd TestExpandSlice cases.
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(
            expand_slice("test-a-b.slice").unwrap(),
            "/test.slice/test-a.slice/test-a-b.slice"
        );
        assert_eq!(
            expand_slice("kubepods-besteffort-pod1.slice").unwrap(),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice"
        );
        for bad in [
            "",
            ".slice",
            "test",
            "test.scope",
            "test--a.slice",
            "-test.slice",
            "test-.slice",
            "a/b.slice",
        ] {
            assert!(expand_slice(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn cgroups_path_rules() {
        let (u, p) = parse_cgroups_path(Some("system.slice:docker:abc"), "id").unwrap();
        assert_eq!(
            (u.name.as_str(), u.slice.as_str()),
            ("docker-abc.scope", "system.slice")
        );
        assert_eq!(p, "/system.slice/docker-abc.scope");
        // Empty parts take the defaults: system.slice, the container id.
        let (u, p) = parse_cgroups_path(Some("::"), "id").unwrap();
        assert_eq!(u.name, "id.scope");
        assert_eq!(p, "/system.slice/id.scope");
        let (u, _) = parse_cgroups_path(None, "id").unwrap();
        assert_eq!(u.name, "rsrun-id.scope");
        let (_, p) = parse_cgroups_path(
            Some("kubepods-burstable-podX.slice:cri-containerd:c1"),
            "id",
        )
        .unwrap();
        assert_eq!(
            p,
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podX.slice/cri-containerd-c1.scope"
        );
        let (_, p) = parse_cgroups_path(Some("-.slice:p:n"), "id").unwrap();
        assert_eq!(p, "/p-n.scope");
        for bad in [
            "/a/b",
            "a:b",
            "a.slice:b:c:d",
            "notaslice:p:n",
            "a--b.slice:p:n",
        ] {
            let e = parse_cgroups_path(Some(bad), "id").unwrap_err().to_string();
            assert!(e.starts_with("linux.cgroupsPath"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn device_rules_become_an_allow_list_on_v2() {
        let rules = super::super::device_rules::default_allowed();
        let devs = "Character devices:\n  1 mem\n136 pts\n\nBlock devices:\n  8 sd\n";
        let p = device_properties(&rules, Mode::V2, devs);
        assert_eq!(p[0], ("DevicePolicy".into(), Value::Str("strict".into())));
        let Value::StrPairs(allow) = &p[1].1 else {
            panic!("{p:?}")
        };
        let has = |n: &str, a: &str| allow.contains(&(n.to_string(), a.to_string()));
        assert!(has("char-*", "m") && has("block-*", "m"), "{allow:?}");
        assert!(
            has("/dev/char/1:3", "rwm") && has("char-pts", "rwm"),
            "{allow:?}"
        );
        // A major /proc/devices does not name, or a v1 host: no device properties.
        assert!(device_properties(&rules, Mode::V2, "Character devices:\n").is_empty());
        assert!(device_properties(&rules, Mode::Hybrid, devs).is_empty());
    }

    #[test]
    fn slice_paths_need_the_driver() {
        assert!(check_driver(Some("system.slice:rsrun:abc")).is_err());
        assert!(check_driver(Some("/a/b")).is_ok());
        assert!(check_driver(Some("a/b")).is_ok());
        assert!(check_driver(None).is_ok());
    }

    #[test]
    fn resources_become_unit_properties() {
        let res: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 33554432, "swap": 50331648},
            "cpu": {"shares": 1024, "quota": 12345, "period": 100000},
            "pids": {"limit": 10}
        }))
        .unwrap();
        let p = resource_properties(Some(&res), Mode::V2);
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("MemoryMax"), Some(Value::U64(33554432)));
        assert_eq!(get("MemorySwapMax"), Some(Value::U64(16777216)));
        assert_eq!(
            get("CPUWeight"),
            Some(Value::U64(super::super::resources::shares_to_weight(1024)))
        );
        // 123450 µs per second, rounded up to 10 ms steps.
        assert_eq!(get("CPUQuotaPerSecUSec"), Some(Value::U64(130000)));
        assert_eq!(get("CPUQuotaPeriodUSec"), Some(Value::U64(100000)));
        assert_eq!(get("TasksMax"), Some(Value::U64(10)));
        let p = resource_properties(Some(&res), Mode::Hybrid);
        assert!(p
            .iter()
            .any(|(n, v)| n == "MemoryLimit" && *v == Value::U64(33554432)));
        assert!(!p.iter().any(|(n, _)| n == "MemorySwapMax"));
        assert!(p
            .iter()
            .any(|(n, v)| n == "CPUShares" && *v == Value::U64(1024)));
    }

    #[test]
    fn unified_files_become_unit_properties_after_the_fields() {
        let res: LinuxResources = serde_json::from_value(serde_json::json!({
            "cpu": {"shares": 100, "quota": 500000, "period": 1000000},
            "pids": {"limit": 20},
            "unified": {"cpu.max": "max 100000", "cpu.weight": "16", "pids.max": "10",
                "memory.high": "max", "memory.min": "4096", "cpuset.cpus": "0-1",
                "io.max": "8:0 rbps=1", "memory.swap.max": "lots"}
        }))
        .unwrap();
        let p = resource_properties(Some(&res), Mode::V2);
        // The last value of a property is what systemd keeps.
        let last = |k: &str| p.iter().rfind(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(last("CPUQuotaPerSecUSec"), Some(Value::U64(u64::MAX)));
        assert_eq!(last("CPUQuotaPeriodUSec"), Some(Value::U64(100000)));
        assert_eq!(last("CPUWeight"), Some(Value::U64(16)));
        assert_eq!(last("TasksMax"), Some(Value::U64(10)));
        assert_eq!(last("MemoryHigh"), Some(Value::U64(u64::MAX)));
        assert_eq!(last("MemoryMin"), Some(Value::U64(4096)));
        assert_eq!(last("AllowedCPUs"), Some(Value::Bytes(vec![3])));
        // No property for io.max; none for a value that does not parse.
        assert_eq!(last("MemorySwapMax"), None);
        assert_eq!(p.iter().filter(|(n, _)| n == "TasksMax").count(), 2);
        let quota = |v: &str| {
            let res: LinuxResources =
                serde_json::from_value(serde_json::json!({"unified": {"cpu.max": v}})).unwrap();
            resource_properties(Some(&res), Mode::V2)
        };
        assert_eq!(
            quota("50000"),
            vec![
                ("CPUQuotaPeriodUSec".into(), Value::U64(100000)),
                ("CPUQuotaPerSecUSec".into(), Value::U64(500000))
            ]
        );
        assert!(quota("50000 100000 9").is_empty() && quota("").is_empty());
    }

    #[test]
    fn what_engines_send_for_unset_is_not_a_property() {
        // Docker: blkio weight 0 for "not set"; the kubelet: swap equal to the limit (no
        // swap), which runc leaves out of the unit too.
        let res: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 33554432, "swap": 33554432},
            "blockIO": {"weight": 0}
        }))
        .unwrap();
        for mode in [Mode::V2, Mode::Hybrid] {
            let p = resource_properties(Some(&res), mode);
            let names: Vec<&str> = p.iter().map(|(n, _)| n.as_str()).collect();
            assert!(
                !names
                    .iter()
                    .any(|n| n.contains("Weight") || *n == "MemorySwapMax"),
                "{mode:?}: {names:?}"
            );
        }
        let res: LinuxResources =
            serde_json::from_value(serde_json::json!({"blockIO": {"weight": 500}})).unwrap();
        let p = resource_properties(Some(&res), Mode::V2);
        assert!(p.iter().any(|(n, _)| n == "IOWeight"), "{p:?}");
    }

    #[test]
    fn cpusets_are_bitmask_properties() {
        let res: LinuxResources = serde_json::from_value(serde_json::json!({
            "cpu": {"cpus": "0-1,9", "mems": "0"}
        }))
        .unwrap();
        for mode in [Mode::V2, Mode::Hybrid] {
            let p = resource_properties(Some(&res), mode);
            let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            assert_eq!(get("AllowedCPUs"), Some(Value::Bytes(vec![0x03, 0x02])));
            assert_eq!(get("AllowedMemoryNodes"), Some(Value::Bytes(vec![0x01])));
        }
        let res: LinuxResources =
            serde_json::from_value(serde_json::json!({"cpu": {"cpus": ""}})).unwrap();
        assert!(resource_properties(Some(&res), Mode::V2).is_empty());
    }

    #[test]
    fn systemd_versions_parse() {
        assert_eq!(major_version("252.22-1~deb12u1"), Some(252));
        assert_eq!(major_version("v245"), Some(245));
        assert_eq!(major_version("243"), Some(243));
        assert_eq!(major_version("unknown"), None);
        assert!(major_version("243").unwrap() < CPUSET_PROPERTIES_SINCE);
    }
}

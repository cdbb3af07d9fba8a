//! `linux.resources` → the cgroup files to write, for v1 and for v2, with runc's v1→v2
//! conversions so one config behaves the same on both. Pure: `apply` does the writes.

use super::{Cgroup, Mode};
use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxNetwork, LinuxResources};

/// One write: the controller whose directory holds `file` (`""` = the v2 hierarchy),
/// the value, and the spec field it comes from (for errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub controller: &'static str,
    pub file: String,
    pub value: String,
    pub field: String,
}

fn w(
    controller: &'static str,
    file: impl Into<String>,
    value: impl ToString,
    field: &str,
) -> Write {
    Write {
        controller,
        file: file.into(),
        value: value.to_string(),
        field: field.into(),
    }
}

fn limit(v: i64) -> String {
    if v < 0 {
        "-1".into()
    } else {
        v.to_string()
    }
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// runc's cpu.shares → cpu.weight conversion.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + ((shares.clamp(2, 262144) - 2) * 9999) / 262142
}

/// runc's blkio.weight → io.weight conversion.
pub fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + ((w.clamp(10, 1000) as u64 - 10) * 9999) / 990
}

/// Memory values are bytes, or -1 for "no limit"; anything below is refused. 0 means
/// "not set" (runc's reading): writing it would leave the container no memory at all.
fn check_memory(res: &LinuxResources) -> Result<()> {
    if let Some(m) = res.memory() {
        for (v, f) in [
            (m.limit(), "limit"),
            (m.reservation(), "reservation"),
            (m.swap(), "swap"),
            (m.kernel_tcp(), "kernelTCP"),
        ] {
            if let Some(v) = v.filter(|v| *v < -1) {
                return Err(Error::config(
                    format!("linux.resources.memory.{f}"),
                    format!("{v} is negative (-1 means unlimited)"),
                ));
            }
        }
    }
    if let Some(p) = res.pids() {
        if p.limit() < -1 {
            return Err(Error::config(
                "linux.resources.pids.limit",
                format!("{} is negative (-1 or 0 mean unlimited)", p.limit()),
            ));
        }
    }
    Ok(())
}

/// `memory.kernel`: Linux no longer enforces a kernel memory limit (v1's
/// memory.kmem.limit_in_bytes was deprecated in 5.4 and takes writes it ignores; v2 has
/// none), and runc drops it with a warning. A limit that would not hold is refused;
/// 0 (unset) and -1 (no limit) ask for nothing.
fn check_kernel_memory(m: &LinuxMemory) -> Result<()> {
    #[allow(deprecated)]
    let kernel = m.kernel();
    match kernel {
        Some(v) if v > 0 => Err(Error::config(
            "linux.resources.memory.kernel",
            format!("{v}: kernel memory limits are not enforced by Linux since 5.4 (memory.kmem.limit_in_bytes); count it in memory.limit"),
        )),
        _ => Ok(()),
    }
}

fn rdma_writes(res: &LinuxResources, controller: &'static str) -> Vec<Write> {
    let mut keys: Vec<_> = res.rdma().iter().flatten().collect();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    keys.into_iter()
        .map(|(dev, r)| {
            let mut v = dev.clone();
            if let Some(h) = r.hca_handles() {
                v.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = r.hca_objects() {
                v.push_str(&format!(" hca_object={o}"));
            }
            w(
                controller,
                "rdma.max",
                v,
                &format!("linux.resources.rdma.{dev}"),
            )
        })
        .collect()
}

/// cpuset.cpus, cpuset.mems and pids.max have the same names and values on v1 and v2.
fn cpuset_and_pids(
    res: &LinuxResources,
    cpuset: &'static str,
    pids: &'static str,
    out: &mut Vec<Write>,
) {
    if let Some(c) = res.cpu() {
        if let Some(v) = c.cpus().as_ref().filter(|v| !v.is_empty()) {
            out.push(w(cpuset, "cpuset.cpus", v, "linux.resources.cpu.cpus"));
        }
        if let Some(v) = c.mems().as_ref().filter(|v| !v.is_empty()) {
            out.push(w(cpuset, "cpuset.mems", v, "linux.resources.cpu.mems"));
        }
    }
    if let Some(p) = res.pids() {
        let v = if p.limit() <= 0 { -1 } else { p.limit() };
        out.push(w(pids, "pids.max", max_or(v), "linux.resources.pids.limit"));
    }
}

/// Writes for a v1 (or hybrid) host. `devices`: write the device rules too (create);
/// `false` leaves the device list alone (update).
pub fn v1(res: &LinuxResources, devices: bool) -> Result<Vec<Write>> {
    check_memory(res)?;
    let mut out = Vec::new();
    if let Some(m) = res.memory() {
        v1_memory(m, &mut out)?;
    }
    if let Some(c) = res.cpu() {
        v1_cpu(c, &mut out);
    }
    cpuset_and_pids(res, "cpuset", "pids", &mut out);
    if let Some(b) = res.block_io() {
        v1_blkio(b, &mut out);
    }
    for h in res.hugepage_limits().iter().flatten() {
        out.push(w(
            "hugetlb",
            format!("hugetlb.{}.limit_in_bytes", h.page_size()),
            h.limit(),
            "linux.resources.hugepageLimits",
        ));
    }
    if let Some(n) = res.network() {
        v1_network(n, &mut out);
    }
    if res.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(Error::config(
            "linux.resources.unified",
            "needs a cgroup v2 host",
        ));
    }
    out.extend(rdma_writes(res, "rdma"));
    // Devices: default deny, then the rules in order.
    if devices {
        v1_devices(res, &mut out)?;
    }
    Ok(out)
}

/// Writes for a pure v2 host (devices are an eBPF program, not a file).
pub fn v2(res: &LinuxResources) -> Result<Vec<Write>> {
    check_memory(res)?;
    let mut out = Vec::new();
    if let Some(m) = res.memory() {
        v2_memory(m, &mut out)?;
    }
    if let Some(c) = res.cpu() {
        v2_cpu(c, &mut out)?;
    }
    cpuset_and_pids(res, "", "", &mut out);
    if let Some(b) = res.block_io() {
        v2_io(b, &mut out)?;
    }
    for h in res.hugepage_limits().iter().flatten() {
        out.push(w(
            "",
            format!("hugetlb.{}.max", h.page_size()),
            h.limit(),
            "linux.resources.hugepageLimits",
        ));
    }
    if res.network().is_some() {
        return Err(Error::config(
            "linux.resources.network",
            "net_cls/net_prio do not exist on cgroup v2",
        ));
    }
    out.extend(rdma_writes(res, ""));
    let mut keys: Vec<_> = res.unified().iter().flatten().collect();
    keys.sort();
    for (k, v) in keys {
        if k.contains('/') || !k.contains('.') {
            return Err(Error::config(
                format!("linux.resources.unified.{k}"),
                "not a cgroup file name",
            ));
        }
        out.push(w("", k.clone(), v, &format!("linux.resources.unified.{k}")));
    }
    Ok(out)
}

// The controllers, one function each (v1 then v2), in the order `v1`/`v2` call them.

fn v1_memory(m: &LinuxMemory, out: &mut Vec<Write>) -> Result<()> {
    if let Some(h) = m.use_hierarchy() {
        out.push(w(
            "memory",
            "memory.use_hierarchy",
            h as u8,
            "linux.resources.memory.useHierarchy",
        ));
    }
    // 0 means "not set" for the limits, as in runc (`apply` orders limit and swap).
    for (v, file, field) in [
        (m.limit(), "memory.limit_in_bytes", "limit"),
        (m.swap(), "memory.memsw.limit_in_bytes", "swap"),
        (m.reservation(), "memory.soft_limit_in_bytes", "reservation"),
        (
            m.kernel_tcp(),
            "memory.kmem.tcp.limit_in_bytes",
            "kernelTCP",
        ),
    ] {
        if let Some(v) = v.filter(|v| *v != 0) {
            out.push(w(
                "memory",
                file,
                limit(v),
                &format!("linux.resources.memory.{field}"),
            ));
        }
    }
    // No limit on memory and none given for memory+swap means no limit on either
    // (runc); `apply` skips it where the kernel has no swap accounting.
    if m.limit() == Some(-1) && m.swap().unwrap_or(0) == 0 {
        out.push(w(
            "memory",
            "memory.memsw.limit_in_bytes",
            -1,
            "linux.resources.memory.swap",
        ));
    }
    check_kernel_memory(m)?;
    if let Some(v) = m.swappiness() {
        if v > 100 {
            return Err(Error::config(
                "linux.resources.memory.swappiness",
                format!("{v} is above 100"),
            ));
        }
        out.push(w(
            "memory",
            "memory.swappiness",
            v,
            "linux.resources.memory.swappiness",
        ));
    }
    if m.disable_oom_killer() == Some(true) {
        out.push(w(
            "memory",
            "memory.oom_control",
            1,
            "linux.resources.memory.disableOOMKiller",
        ));
    }

    Ok(())
}

fn v1_cpu(c: &LinuxCpu, out: &mut Vec<Write>) {
    let (idle_before, idle_after) = cpu_idle(c, "cpu");
    out.extend(idle_before);
    if let Some(v) = c.shares().filter(|v| *v > 0) {
        out.push(w("cpu", "cpu.shares", v, "linux.resources.cpu.shares"));
    }
    if let Some(v) = c.period().filter(|v| *v > 0) {
        out.push(w(
            "cpu",
            "cpu.cfs_period_us",
            v,
            "linux.resources.cpu.period",
        ));
    }
    if let Some(v) = c.quota().filter(|v| *v != 0) {
        out.push(w(
            "cpu",
            "cpu.cfs_quota_us",
            limit(v),
            "linux.resources.cpu.quota",
        ));
    }
    if let Some(v) = c.burst() {
        out.push(w("cpu", "cpu.cfs_burst_us", v, "linux.resources.cpu.burst"));
    }
    if let Some(v) = c.realtime_period().filter(|v| *v > 0) {
        out.push(w(
            "cpu",
            "cpu.rt_period_us",
            v,
            "linux.resources.cpu.realtimePeriod",
        ));
    }
    if let Some(v) = c.realtime_runtime().filter(|v| *v != 0) {
        out.push(w(
            "cpu",
            "cpu.rt_runtime_us",
            v,
            "linux.resources.cpu.realtimeRuntime",
        ));
    }
    out.extend(idle_after);
}

/// cpu.idle: the kernel refuses a new weight (shares) for an idle group (EINVAL), so
/// leaving idle is written before everything else and entering it after.
fn cpu_idle(c: &LinuxCpu, controller: &'static str) -> (Option<Write>, Option<Write>) {
    let write = |v: i64| w(controller, "cpu.idle", v, "linux.resources.cpu.idle");
    match c.idle() {
        None => (None, None),
        Some(0) => (Some(write(0)), None),
        Some(v) => (None, Some(write(v))),
    }
}

fn v1_blkio(b: &LinuxBlockIo, out: &mut Vec<Write>) {
    // 0 means "not set" (Docker sends it); runc skips it too.
    if let Some(v) = b.weight().filter(|v| *v != 0) {
        out.push(w(
            "blkio",
            "blkio.weight",
            v,
            "linux.resources.blockIO.weight",
        ));
    }
    if let Some(v) = b.leaf_weight().filter(|v| *v != 0) {
        out.push(w(
            "blkio",
            "blkio.leaf_weight",
            v,
            "linux.resources.blockIO.leafWeight",
        ));
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(v) = d.weight() {
            out.push(w(
                "blkio",
                "blkio.weight_device",
                format!("{}:{} {v}", d.major(), d.minor()),
                "linux.resources.blockIO.weightDevice",
            ));
        }
        if let Some(v) = d.leaf_weight() {
            out.push(w(
                "blkio",
                "blkio.leaf_weight_device",
                format!("{}:{} {v}", d.major(), d.minor()),
                "linux.resources.blockIO.weightDevice",
            ));
        }
    }
    for (list, file, field) in [
        (
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
            "throttleReadBpsDevice",
        ),
        (
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
            "throttleWriteBpsDevice",
        ),
        (
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
            "throttleReadIOPSDevice",
        ),
        (
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
            "throttleWriteIOPSDevice",
        ),
    ] {
        for d in list.iter().flatten() {
            out.push(w(
                "blkio",
                file,
                format!("{}:{} {}", d.major(), d.minor(), d.rate()),
                &format!("linux.resources.blockIO.{field}"),
            ));
        }
    }
}

fn v1_network(n: &LinuxNetwork, out: &mut Vec<Write>) {
    if let Some(v) = n.class_id() {
        out.push(w(
            "net_cls",
            "net_cls.classid",
            v,
            "linux.resources.network.classID",
        ));
    }
    for p in n.priorities().iter().flatten() {
        out.push(w(
            "net_prio",
            "net_prio.ifpriomap",
            format!("{} {}", p.name(), p.priority()),
            "linux.resources.network.priorities",
        ));
    }
}

fn v2_memory(m: &LinuxMemory, out: &mut Vec<Write>) -> Result<()> {
    if let Some(v) = m.swappiness() {
        return Err(Error::config(
            "linux.resources.memory.swappiness",
            format!("{v}: memory.swappiness does not exist on cgroup v2"),
        ));
    }
    if m.disable_oom_killer() == Some(true) {
        return Err(Error::config(
            "linux.resources.memory.disableOOMKiller",
            "the OOM killer cannot be disabled on cgroup v2",
        ));
    }
    check_kernel_memory(m)?;
    if m.kernel_tcp().is_some_and(|v| v > 0) {
        return Err(Error::config(
            "linux.resources.memory.kernelTCP",
            "cgroup v2 has no separate TCP buffer limit (it counts in memory.max)",
        ));
    }
    if m.use_hierarchy() == Some(false) {
        return Err(Error::config(
            "linux.resources.memory.useHierarchy",
            "cgroup v2 is always hierarchical",
        ));
    }
    // 0 means "not set", as in runc.
    if let Some(v) = m.limit().filter(|v| *v != 0) {
        out.push(w(
            "",
            "memory.max",
            max_or(v),
            "linux.resources.memory.limit",
        ));
    }
    if let Some(v) = m.reservation().filter(|v| *v != 0) {
        out.push(w(
            "",
            "memory.low",
            max_or(v),
            "linux.resources.memory.reservation",
        ));
    }
    // v1's swap is memory+swap; v2's swap.max is swap alone. No limit on memory and
    // none given for swap means no limit on swap either (runc).
    let swap = match (m.swap().filter(|s| *s != 0), m.limit()) {
        (None, Some(-1)) => Some("max".to_string()),
        (None, _) => None,
        (Some(s), _) if s < 0 => Some("max".to_string()),
        (Some(s), Some(l)) if l > 0 => {
            if s < l {
                return Err(Error::config(
                    "linux.resources.memory.swap",
                    format!("{s} is below the memory limit {l}"),
                ));
            }
            Some((s - l).to_string())
        }
        (Some(s), _) => Some(s.to_string()),
    };
    if let Some(v) = swap {
        out.push(w("", "memory.swap.max", v, "linux.resources.memory.swap"));
    }

    Ok(())
}

fn v2_cpu(c: &LinuxCpu, out: &mut Vec<Write>) -> Result<()> {
    let (idle_before, idle_after) = cpu_idle(c, "");
    out.extend(idle_before);
    if let Some(v) = c.shares().filter(|v| *v > 0) {
        out.push(w(
            "",
            "cpu.weight",
            shares_to_weight(v),
            "linux.resources.cpu.shares",
        ));
    }
    if c.quota().is_some() || c.period().is_some() {
        let quota = match c.quota() {
            Some(q) if q > 0 => q.to_string(),
            _ => "max".into(),
        };
        let period = c.period().filter(|p| *p > 0).unwrap_or(100000);
        out.push(w(
            "",
            "cpu.max",
            format!("{quota} {period}"),
            "linux.resources.cpu.quota",
        ));
    }
    if let Some(v) = c.burst() {
        out.push(w("", "cpu.max.burst", v, "linux.resources.cpu.burst"));
    }
    if c.realtime_runtime().is_some_and(|v| v != 0) || c.realtime_period().is_some_and(|v| v != 0) {
        return Err(Error::config(
            "linux.resources.cpu.realtimeRuntime",
            "not supported on cgroup v2",
        ));
    }
    out.extend(idle_after);
    Ok(())
}

fn v2_io(b: &LinuxBlockIo, out: &mut Vec<Write>) -> Result<()> {
    let leaf = b.leaf_weight().is_some_and(|v| v != 0)
        || b.weight_device()
            .iter()
            .flatten()
            .any(|d| d.leaf_weight().is_some());
    if leaf {
        return Err(Error::config(
            "linux.resources.blockIO.leafWeight",
            "cgroup v2 has no leaf weights",
        ));
    }
    // 0 means "not set" (Docker sends it); runc skips it too.
    // On blkio's scale: `apply` converts it if io.weight is the file to write.
    if let Some(v) = b.weight().filter(|v| *v != 0) {
        out.push(w("", "io.bfq.weight", v, "linux.resources.blockIO.weight"));
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(v) = d.weight() {
            out.push(w(
                "",
                "io.bfq.weight",
                format!("{}:{} {v}", d.major(), d.minor()),
                "linux.resources.blockIO.weightDevice",
            ));
        }
    }
    for (list, key, field) in [
        (
            b.throttle_read_bps_device(),
            "rbps",
            "throttleReadBpsDevice",
        ),
        (
            b.throttle_write_bps_device(),
            "wbps",
            "throttleWriteBpsDevice",
        ),
        (
            b.throttle_read_iops_device(),
            "riops",
            "throttleReadIOPSDevice",
        ),
        (
            b.throttle_write_iops_device(),
            "wiops",
            "throttleWriteIOPSDevice",
        ),
    ] {
        for d in list.iter().flatten() {
            out.push(w(
                "",
                "io.max",
                format!("{}:{} {key}={}", d.major(), d.minor(), d.rate()),
                &format!("linux.resources.blockIO.{field}"),
            ));
        }
    }

    Ok(())
}

fn v1_devices(res: &LinuxResources, out: &mut Vec<Write>) -> Result<()> {
    out.push(w("devices", "devices.deny", "a", "linux.resources.devices"));
    for (i, r) in super::device_rules::from_resources(res)?.iter().enumerate() {
        let file = if r.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        out.push(w(
            "devices",
            file,
            r.text(),
            &format!("linux.resources.devices[{i}]"),
        ));
    }
    Ok(())
}

/// The controllers a v2 write list needs enabled in every ancestor's subtree_control.
pub fn v2_controllers(writes: &[Write]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for wr in writes {
        let c = wr.file.split('.').next().unwrap_or("").to_string();
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// The memory limits of a create, held back until the init has joined the cgroup (runc's
/// order: a limit below what the init already uses is refused in runc's words instead of
/// killing the init half-way through its setup).
pub struct AfterJoin {
    writes: Vec<Write>,
    /// OOM kills the cgroup had counted before (an existing cgroup may have a history).
    oom_kills: u64,
}

/// Split a create's writes into those to make now and those for `AfterJoin`.
pub fn split_after_join(cg: &Cgroup, writes: &[Write]) -> (Vec<Write>, AfterJoin) {
    let (now, later) = writes.iter().cloned().partition(|w| {
        !matches!(
            w.file.as_str(),
            "memory.limit_in_bytes"
                | "memory.memsw.limit_in_bytes"
                | "memory.max"
                | "memory.swap.max"
        )
    });
    let oom_kills = super::stats::oom_kills(cg);
    (
        now,
        AfterJoin {
            writes: later,
            oom_kills,
        },
    )
}

impl AfterJoin {
    /// The writes, once the init is in the cgroup. An OOM kill there since means the
    /// limit is too small for the init.
    pub fn apply(&self, cg: &Cgroup) -> Result<()> {
        apply(cg, &self.writes)?;
        match self.oom_killed(cg) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Why the init died while starting, if the memory limit killed it; `err` otherwise.
    pub fn explain(&self, cg: &Cgroup, err: Error) -> Error {
        self.oom_killed(cg).unwrap_or(err)
    }

    fn oom_killed(&self, cg: &Cgroup) -> Option<Error> {
        (super::stats::oom_kills(cg) > self.oom_kills).then(|| {
            Error::config(
                "linux.resources.memory.limit",
                "container init was OOM-killed (memory limit too low?)",
            )
        })
    }
}

/// The first write whose controller `cg` has no directory for.
pub fn first_without_cgroup<'a>(cg: &Cgroup, writes: &'a [Write]) -> Option<&'a Write> {
    writes.iter().find(|w| dir_for(cg, w.controller).is_none())
}

/// The directory of `cg` that holds `controller`'s files.
fn dir_for<'a>(cg: &'a Cgroup, controller: &str) -> Option<&'a super::CgroupDir> {
    cg.dirs
        .iter()
        .find(|d| cg.mode == Mode::V2 || d.controllers.split(',').any(|c| c == controller))
}

/// Where and what to write for `wr` in `dir`. Proportional weights have two homes, as in
/// runc: v1's CFQ `blkio.weight`, else BFQ's `blkio.bfq.weight`; v2's BFQ `io.bfq.weight`
/// (blkio's scale), else `io.weight` (converted to its 1..10000 scale).
fn target(dir: &std::path::Path, wr: &Write) -> (std::path::PathBuf, String) {
    let first = dir.join(&wr.file);
    let alt = match wr.file.as_str() {
        "blkio.weight" => "blkio.bfq.weight",
        "blkio.weight_device" => "blkio.bfq.weight_device",
        "io.bfq.weight" => "io.weight",
        _ => return (first, wr.value.clone()),
    };
    if crate::sys::fs::exists(&first) {
        return (first, wr.value.clone());
    }
    let mut value = wr.value.clone();
    if alt == "io.weight" {
        // `W` or `MAJ:MIN W`: the weight is the last word.
        let (dev, weight) = match wr.value.rsplit_once(' ') {
            Some((d, x)) => (format!("{d} "), x),
            None => (String::new(), wr.value.as_str()),
        };
        if let Ok(x) = weight.parse::<u16>() {
            value = format!("{dev}{}", blkio_to_io_weight(x));
        }
    }
    (dir.join(alt), value)
}

/// "No swap limit" where the kernel does not account swap is already true: skipped.
fn optional(wr: &Write) -> bool {
    matches!(
        (wr.file.as_str(), wr.value.as_str()),
        ("memory.memsw.limit_in_bytes", "-1") | ("memory.swap.max", "max")
    )
}

/// v1 wants memory.limit_in_bytes <= memory.memsw.limit_in_bytes at every step: like
/// runc, write memory+swap first when it grows past the current memory limit (or is
/// unlimited), memory first otherwise.
fn order_memory(cg: &Cgroup, writes: &[Write]) -> Vec<Write> {
    let mut out = writes.to_vec();
    let pos = |f: &str| out.iter().position(|w| w.file == f);
    let (Some(mem), Some(swap)) = (
        pos("memory.limit_in_bytes"),
        pos("memory.memsw.limit_in_bytes"),
    ) else {
        return out;
    };
    let want: i64 = out[swap].value.parse().unwrap_or(-1);
    let cur = dir_for(cg, "memory")
        .and_then(|d| crate::sys::fs::read_pseudo(d.path.join("memory.limit_in_bytes")).ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    if swap > mem && (want < 0 || cur < want as u64) {
        let w = out.remove(swap);
        out.insert(mem, w);
    }
    out
}

/// runc's words for a memory limit below what the cgroup uses now (EBUSY).
fn below_usage(dir: &std::path::Path, wr: &Write) -> Error {
    let read = |f: &str| {
        crate::sys::fs::read_pseudo(dir.join(f))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|_| "?".into())
    };
    Error::config(
        wr.field.clone(),
        format!(
            "unable to set memory limit to {} (current usage: {}, peak usage: {})",
            wr.value,
            read("memory.usage_in_bytes"),
            read("memory.max_usage_in_bytes")
        ),
    )
}

/// Perform the writes. Errors name the field, the file, the value and the errno. Files
/// are opened without O_CREAT: a knob this kernel lacks fails with ENOENT, naming it.
pub fn apply(cg: &Cgroup, writes: &[Write]) -> Result<()> {
    use nix::errno::Errno;
    if cg.mode == Mode::V2 {
        super::enable_controllers(cg, &v2_controllers(writes))?;
    }
    let mut writes = order_memory(cg, writes);
    // Periods already put back once after their partner.
    let mut retried: Vec<String> = Vec::new();
    // Consecutive writes to one file (the device rules) share one open.
    let mut open: Option<(std::path::PathBuf, std::os::fd::OwnedFd)> = None;
    let mut i = 0;
    while i < writes.len() {
        let wr = &writes[i];
        let Some(dir) = dir_for(cg, wr.controller) else {
            return Err(Error::config(
                wr.field.clone(),
                match cg.dirs.is_empty() {
                    true => "the container has no cgroup (rootless: none was writable)".to_string(),
                    false => format!(
                        "the container has no {} cgroup (no such v1 hierarchy on this host, or rootless: not writable)",
                        wr.controller
                    ),
                },
            ));
        };
        let (path, value) = target(&dir.path, wr);
        let fail = |e: Option<Errno>| {
            Error::config(
                wr.field.clone(),
                format!(
                    "write {:?} to {}: {}",
                    value,
                    path.display(),
                    crate::error::ErrnoName(e.unwrap_or(Errno::EIO))
                ),
            )
        };
        if !matches!(&open, Some((p, _)) if *p == path) {
            open = None;
            match crate::sys::fs::open(&path, nix::fcntl::OFlag::O_WRONLY) {
                Ok(fd) => open = Some((path.clone(), fd)),
                Err(e) if e.errno() == Some(Errno::ENOENT) && optional(wr) => {
                    i += 1;
                    continue;
                }
                Err(e) => return Err(fail(e.errno())),
            }
        }
        if let Some((_, f)) = &open {
            match crate::sys::fs::write_fd(f, value.as_bytes(), &path).map_err(|e| e.errno()) {
                Ok(()) => {}
                Err(Some(Errno::EBUSY)) if wr.file == "memory.limit_in_bytes" => {
                    return Err(below_usage(&dir.path, wr))
                }
                Err(Some(Errno::EINVAL)) if !retried.contains(&wr.file) => {
                    match after_partner(&writes, i) {
                        Some(at) => {
                            retried.push(wr.file.clone());
                            let period = writes.remove(i);
                            writes.insert(at, period);
                            continue;
                        }
                        None => return Err(fail(Some(Errno::EINVAL))),
                    }
                }
                Err(errno) => return Err(fail(errno)),
            }
        }
        i += 1;
    }
    Ok(())
}

/// A CFS or RT period the kernel refuses (EINVAL) against the group's current quota or
/// runtime (their ratio would exceed what the parent grants) may be right with the new
/// one: like runc, it is written again after that. Where writes[i], a period, is to be
/// reinserted once removed (just past its partner's write), if the batch has one after it.
fn after_partner(writes: &[Write], i: usize) -> Option<usize> {
    let partner = match writes[i].file.as_str() {
        "cpu.cfs_period_us" => "cpu.cfs_quota_us",
        "cpu.rt_period_us" => "cpu.rt_runtime_us",
        _ => return None,
    };
    // The partner's index now; once writes[i] is removed it sits one before.
    Some(i + 1 + writes[i + 1..].iter().position(|w| w.file == partner)?)
}

/// Refuse `cpu.cpus` / `cpu.mems` naming CPUs or memory nodes the host does not have.
pub fn check_cpusets(res: &LinuxResources) -> Result<()> {
    use crate::cpulist::{check_online, CPUS_ONLINE, NODES_ONLINE};
    let Some(c) = res.cpu() else {
        return Ok(());
    };
    for (val, online, field) in [
        (c.cpus(), CPUS_ONLINE, "linux.resources.cpu.cpus"),
        (c.mems(), NODES_ONLINE, "linux.resources.cpu.mems"),
    ] {
        if let Some(v) = val.as_deref().filter(|v| !v.is_empty()) {
            check_online(field, v, online)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn leaving_cpu_idle_comes_before_the_weight_and_entering_it_after() {
        for (idle, first) in [(0, true), (1, false)] {
            let r = res(serde_json::json!({"cpu": {"shares": 512, "quota": 1000, "idle": idle}}));
            for writes in [v1(&r, false).unwrap(), v2(&r).unwrap()] {
                let files: Vec<&str> = writes.iter().map(|w| w.file.as_str()).collect();
                let at = files.iter().position(|f| *f == "cpu.idle").unwrap();
                assert_eq!(at == 0, first, "{files:?}");
                assert_eq!(at == files.len() - 1, !first, "{files:?}");
            }
        }
    }

    #[test]
    fn a_refused_period_goes_after_its_partner() {
        let r = res(
            serde_json::json!({"cpu": {"period": 40000, "quota": 20000, "shares": 2,
            "realtimePeriod": 500000, "realtimeRuntime": 400000}}),
        );
        let writes = v1(&r, false).unwrap();
        let at = |f: &str| writes.iter().position(|w| w.file == f).unwrap();
        let (period, quota) = (at("cpu.cfs_period_us"), at("cpu.cfs_quota_us"));
        assert_eq!(after_partner(&writes, period), Some(quota));
        let (rt_period, rt_runtime) = (at("cpu.rt_period_us"), at("cpu.rt_runtime_us"));
        assert_eq!(after_partner(&writes, rt_period), Some(rt_runtime));
        assert_eq!(after_partner(&writes, at("cpu.shares")), None);
        // A period alone has no partner to wait for.
        let alone = v1(&res(serde_json::json!({"cpu": {"period": 40000}})), false).unwrap();
        assert_eq!(after_partner(&alone, 0), None);
    }

    #[test]
    fn conversions_match_runc() {
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262144), 10000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10000);
        assert_eq!(blkio_to_io_weight(500), 4950);
    }

    #[test]
    fn zero_memory_values_are_not_set() {
        let r = res(serde_json::json!({"memory": {"limit": 0, "reservation": 0, "swap": 0}}));
        assert_eq!(v1(&r, false).unwrap(), vec![]);
        assert_eq!(v2(&r).unwrap(), vec![]);
    }

    #[test]
    fn memory_and_pids_v1_v2() {
        let r = res(
            serde_json::json!({"memory": {"limit": 1048576, "swap": 2097152}, "pids": {"limit": 10}}),
        );
        let a = v1(&r, true).unwrap();
        assert_eq!(a[0].file, "memory.limit_in_bytes");
        assert_eq!(
            a[1],
            w(
                "memory",
                "memory.memsw.limit_in_bytes",
                "2097152",
                "linux.resources.memory.swap"
            )
        );
        assert!(a.iter().any(|x| x.file == "pids.max" && x.value == "10"));
        let b = v2(&r).unwrap();
        assert_eq!(b[0].value, "1048576");
        assert_eq!(
            b[1],
            w(
                "",
                "memory.swap.max",
                "1048576",
                "linux.resources.memory.swap"
            )
        );
        assert_eq!(v2_controllers(&b), vec!["memory", "pids"]);
    }

    #[test]
    fn cpu_max_and_unlimited() {
        let r = res(serde_json::json!({"cpu": {"quota": 50000, "period": 100000, "shares": 1024}}));
        let b = v2(&r).unwrap();
        assert!(b.contains(&w(
            "",
            "cpu.max",
            "50000 100000",
            "linux.resources.cpu.quota"
        )));
        assert!(b.contains(&w("", "cpu.weight", "39", "linux.resources.cpu.shares")));
        let r = res(serde_json::json!({"memory": {"limit": -1}, "pids": {"limit": 0}}));
        let b = v2(&r).unwrap();
        let val = |f: &str| b.iter().find(|x| x.file == f).unwrap().value.clone();
        assert_eq!(val("memory.max"), "max");
        assert_eq!(val("memory.swap.max"), "max");
        assert_eq!(val("pids.max"), "max");
    }

    #[test]
    fn zero_memory_values_are_unset() {
        let r = res(serde_json::json!({"memory": {"limit": 0, "swap": 0, "reservation": 0}}));
        assert_eq!(v1(&r, false).unwrap(), vec![]);
        assert_eq!(v2(&r).unwrap(), vec![]);
        // No memory limit and no swap given: no memory+swap limit either.
        let r = res(serde_json::json!({"memory": {"limit": -1}}));
        let a = v1(&r, false).unwrap();
        assert_eq!(a[1].file, "memory.memsw.limit_in_bytes");
        assert_eq!(a[1].value, "-1");
        assert!(optional(&a[1]));
    }

    #[test]
    fn fields_are_applied_or_refused() {
        let r = res(serde_json::json!({"memory": {"kernelTCP": 1048576}}));
        assert_eq!(
            v1(&r, false).unwrap()[0].file,
            "memory.kmem.tcp.limit_in_bytes"
        );
        assert!(v2(&r).unwrap_err().to_string().contains("memory.kernelTCP"));
        let r = res(serde_json::json!({"memory": {"kernel": 1048576}}));
        assert!(v1(&r, false)
            .unwrap_err()
            .to_string()
            .contains("memory.kernel"));
        assert!(v2(&r).unwrap_err().to_string().contains("memory.kernel"));
        let r = res(serde_json::json!({"memory": {"kernel": -1}}));
        assert_eq!(v1(&r, false).unwrap(), vec![]);
        let r = res(serde_json::json!({"memory": {"useHierarchy": false}}));
        assert!(v2(&r).unwrap_err().to_string().contains("useHierarchy"));
        let r = res(serde_json::json!({"blockIO": {"leafWeight": 300}}));
        assert!(v2(&r).unwrap_err().to_string().contains("leafWeight"));
    }

    #[test]
    fn memory_limits_wait_for_the_init() {
        let r = res(
            serde_json::json!({"memory": {"limit": 1048576, "swap": 2097152, "reservation": 4096}, "pids": {"limit": 3}}),
        );
        let (before, after) = split_after_join(&Cgroup::none(), &v1(&r, false).unwrap());
        let files = |l: &[Write]| l.iter().map(|w| w.file.clone()).collect::<Vec<_>>();
        assert_eq!(
            files(&after.writes),
            ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
        );
        assert_eq!(files(&before), ["memory.soft_limit_in_bytes", "pids.max"]);
    }

    #[test]
    fn memory_and_swap_are_ordered_like_runc() {
        let tmp = std::env::temp_dir().join(format!("rsrun-memord-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(tmp.join("memory.limit_in_bytes"), "67108864\n").unwrap();
        let cg = Cgroup {
            mode: Mode::V1,
            dirs: vec![super::super::CgroupDir {
                controllers: "memory".into(),
                path: tmp.clone(),
                mountpoint: tmp.clone(),
            }],
            created: vec![],
            systemd: None,
        };
        let first = |limit: i64, swap: i64| {
            let r = res(serde_json::json!({"memory": {"limit": limit, "swap": swap}}));
            order_memory(&cg, &v1(&r, false).unwrap())[0].file.clone()
        };
        // Growing past the current limit: memory+swap first; shrinking: memory first.
        assert_eq!(first(268435456, 536870912), "memory.memsw.limit_in_bytes");
        assert_eq!(first(-1, -1), "memory.memsw.limit_in_bytes");
        assert_eq!(first(16777216, 33554432), "memory.limit_in_bytes");
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn weights_fall_back_like_runc() {
        let tmp = std::env::temp_dir().join(format!("rsrun-bfq-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let at = |file: &str, value: &str| {
            let (p, v) = target(&tmp, &w("", file, value, "f"));
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        };
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        // No CFQ: BFQ's files. No BFQ on v2: io.weight on its own scale.
        assert_eq!(at("blkio.weight", "500"), pair("blkio.bfq.weight", "500"));
        assert_eq!(
            at("blkio.weight_device", "8:0 500"),
            pair("blkio.bfq.weight_device", "8:0 500")
        );
        assert_eq!(at("io.bfq.weight", "500"), pair("io.weight", "4950"));
        assert_eq!(at("io.bfq.weight", "8:0 10"), pair("io.weight", "8:0 1"));
        for f in ["blkio.weight", "io.bfq.weight"] {
            std::fs::write(tmp.join(f), "").unwrap();
        }
        assert_eq!(at("blkio.weight", "500"), pair("blkio.weight", "500"));
        assert_eq!(at("io.bfq.weight", "500"), pair("io.bfq.weight", "500"));
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn devices_are_default_deny() {
        let r = res(serde_json::json!({"devices": [{"allow": false, "access": "rwm"}]}));
        let a = v1(&r, true).unwrap();
        let dev: Vec<String> = a
            .iter()
            .filter(|x| x.controller == "devices")
            .map(|x| format!("{} {}", x.file, x.value))
            .collect();
        assert_eq!(dev[0], "devices.deny a");
        assert_eq!(dev[1], "devices.deny a *:* rwm");
        assert!(dev.contains(&"devices.allow c 1:3 rwm".to_string()));
        assert!(dev.contains(&"devices.allow c 136:* rwm".to_string()));
        // What linux.devices creates is no grant: the defaults come last.
        assert_eq!(dev.last().unwrap(), "devices.allow c 10:200 rwm");
        let bad = res(serde_json::json!({"devices": [{"allow": true, "access": "rwx"}]}));
        assert!(v1(&bad, true)
            .unwrap_err()
            .to_string()
            .contains("devices[0].access"));
    }

    #[test]
    fn bad_values_name_the_field() {
        let r = res(serde_json::json!({"memory": {"swappiness": 200}}));
        assert!(v1(&r, true).unwrap_err().to_string().contains("swappiness"));
        let r = res(serde_json::json!({"unified": {"../x": "1"}}));
        assert!(v2(&r).unwrap_err().to_string().contains("unified"));
        let r = res(serde_json::json!({"memory": {"limit": 100, "swap": 50}}));
        assert!(v2(&r).unwrap_err().to_string().contains("memory.swap"));
        let r = res(serde_json::json!({"memory": {"limit": -5}}));
        assert!(v1(&r, false)
            .unwrap_err()
            .to_string()
            .contains("memory.limit"));
        let r = res(serde_json::json!({"rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 100}}}));
        assert_eq!(
            v2(&r).unwrap()[0].value,
            "mlx5_0 hca_handle=3 hca_object=100"
        );
        let r = res(serde_json::json!({"memory": {"useHierarchy": true}}));
        assert_eq!(v1(&r, false).unwrap()[0].file, "memory.use_hierarchy");
    }
}

//! Process attributes beyond identity and capabilities: I/O priority, scheduler, CPU
//! affinity, personality, NUMA memory policy. Planned from the spec (pure), applied by
//! the child through `sys`.

use crate::error::{Error, Result};
use serde::Serialize;

fn name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    /// ioprio_set value: class << 13 | level.
    pub ioprio: Option<i32>,
    pub sched: Option<crate::sys::sched::SchedAttr>,
    /// execCPUAffinity.initial / .final as CPU lists.
    pub affinity_initial: Option<Vec<usize>>,
    pub affinity_final: Option<Vec<usize>>,
    /// personality(2) persona.
    pub personality: Option<u64>,
    /// set_mempolicy(mode | flags, nodemask).
    pub mempolicy: Option<(i32, Vec<u64>)>,
}

/// A CPU list for sched_setaffinity: only CPUs the host has online, and within the
/// CPU_SETSIZE the call takes; checked on the ranges before any is expanded.
fn cpus(field: &str, s: &str) -> Result<Vec<usize>> {
    use crate::cpulist::{check_online, CPUS_ONLINE};
    let list = check_online(field, s, CPUS_ONLINE)?;
    match list.max() {
        None => Err(Error::config(field, format!("{s:?} names no CPU"))),
        Some(m) if m as usize >= libc::CPU_SETSIZE as usize => Err(Error::config(
            field,
            format!(
                "{s:?}: CPU {m} is beyond the {} CPUs sched_setaffinity takes",
                libc::CPU_SETSIZE
            ),
        )),
        Some(_) => Ok(list.members().map(|x| x as usize).collect()),
    }
}

pub fn plan(
    p: &oci_spec::runtime::Process,
    linux: Option<&oci_spec::runtime::Linux>,
) -> Result<Attrs> {
    let mut a = Attrs::default();
    if let Some(io) = p.io_priority() {
        a.ioprio = Some(io_priority(io)?);
    }
    if let Some(s) = p.scheduler() {
        let sched = scheduler(s)?;
        deadline_fits_cpuset(&sched, linux)?;
        a.sched = Some(sched);
    }
    if let Some(aff) = p.exec_cpu_affinity() {
        if let Some(i) = aff.initial().as_deref().filter(|s| !s.is_empty()) {
            a.affinity_initial = Some(cpus("process.execCPUAffinity.initial", i)?);
        }
        if let Some(f) = aff
            .cpu_affinity_final()
            .as_deref()
            .filter(|s| !s.is_empty())
        {
            a.affinity_final = Some(cpus("process.execCPUAffinity.final", f)?);
        }
    }
    let Some(l) = linux else {
        return Ok(a);
    };
    if let Some(per) = l.personality() {
        a.personality = Some(personality(per)?);
    }
    if let Some(mp) = l.memory_policy() {
        a.mempolicy = Some(memory_policy(mp)?);
    }
    if l.intel_rdt().is_some() {
        let why = if crate::sys::fs::exists(std::path::Path::new("/sys/fs/resctrl/schemata")) {
            "Intel RDT is not supported yet"
        } else {
            "resctrl is not mounted on this host (/sys/fs/resctrl)"
        };
        return Err(Error::config("linux.intelRdt", why));
    }
    Ok(a)
}

/// The value of `v`'s spec name in `table`, or an error naming `field` and `what`.
fn lookup<T: Serialize, V: Copy>(field: &str, what: &str, v: &T, table: &[(&str, V)]) -> Result<V> {
    let n = name(v);
    table
        .iter()
        .find(|(k, _)| *k == n)
        .map(|(_, v)| *v)
        .ok_or_else(|| Error::config(field, format!("unknown {what} {n:?}")))
}

/// ioprio_set's value: class << 13 | level.
fn io_priority(io: &oci_spec::runtime::LinuxIOPriority) -> Result<i32> {
    const CLASSES: &[(&str, i32)] = &[
        ("IOPRIO_CLASS_RT", 1),
        ("IOPRIO_CLASS_BE", 2),
        ("IOPRIO_CLASS_IDLE", 3),
    ];
    let class = lookup("process.ioPriority.class", "class", &io.class(), CLASSES)?;
    let prio = io.priority();
    if !(0..=7).contains(&prio) {
        return Err(Error::config(
            "process.ioPriority.priority",
            format!("{prio} is not 0-7"),
        ));
    }
    Ok((class << 13) | prio as i32)
}

/// sched_setattr's attributes.
fn scheduler(s: &oci_spec::runtime::Scheduler) -> Result<crate::sys::sched::SchedAttr> {
    const POLICIES: &[(&str, u32)] = &[
        ("SCHED_OTHER", 0),
        ("SCHED_FIFO", 1),
        ("SCHED_RR", 2),
        ("SCHED_BATCH", 3),
        ("SCHED_ISO", 4),
        ("SCHED_IDLE", 5),
        ("SCHED_DEADLINE", 6),
    ];
    const FLAGS: &[(&str, u64)] = &[
        ("SCHED_FLAG_RESET_ON_FORK", 0x01),
        ("SCHED_FLAG_RECLAIM", 0x02),
        ("SCHED_FLAG_DL_OVERRUN", 0x04),
        ("SCHED_FLAG_KEEP_POLICY", 0x08),
        ("SCHED_FLAG_KEEP_PARAMS", 0x10),
        ("SCHED_FLAG_UTIL_CLAMP_MIN", 0x20),
        ("SCHED_FLAG_UTIL_CLAMP_MAX", 0x40),
    ];
    let policy = lookup("process.scheduler.policy", "policy", &s.policy(), POLICIES)?;
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= lookup("process.scheduler.flags", "flag", f, FLAGS)?;
    }
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(Error::config(
            "process.scheduler.nice",
            format!("{nice} is not -20..19"),
        ));
    }
    let priority = s.priority().unwrap_or(0);
    if priority < 0 {
        return Err(Error::config(
            "process.scheduler.priority",
            format!("{priority} is negative"),
        ));
    }
    Ok(crate::sys::sched::SchedAttr {
        size: 56,
        policy,
        flags,
        nice,
        priority: priority as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    })
}

/// SCHED_DEADLINE needs an affinity of every online CPU (sched_setattr(2): EPERM
/// otherwise): with `linux.resources.cpu.cpus` narrower than that it cannot be set, which
/// runc reports in these words after the EPERM; rsrun says it before anything is made.
fn deadline_fits_cpuset(
    sched: &crate::sys::sched::SchedAttr,
    linux: Option<&oci_spec::runtime::Linux>,
) -> Result<()> {
    const SCHED_DEADLINE: u32 = 6;
    let cpus = linux
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.cpu().as_ref())
        .and_then(|c| c.cpus().as_deref())
        .filter(|c| !c.is_empty());
    let (Some(cpus), true) = (cpus, sched.policy == SCHED_DEADLINE) else {
        return Ok(());
    };
    use crate::cpulist::{IdList, CPUS_ONLINE};
    let online = crate::sys::fs::read_pseudo(CPUS_ONLINE)
        .ok()
        .and_then(|t| IdList::parse(&t));
    let all = match (IdList::parse(cpus), online) {
        (Some(want), Some(online)) => online.first_missing(&want).is_none(),
        _ => false,
    };
    if all {
        return Ok(());
    }
    Err(Error::config(
        "process.scheduler",
        format!(
            "process scheduler can't be used together with AllowedCPUs \
             (SCHED_DEADLINE needs every online CPU; linux.resources.cpu.cpus is {cpus:?})"
        ),
    ))
}

/// personality(2)'s persona.
fn personality(per: &oci_spec::runtime::LinuxPersonality) -> Result<u64> {
    const DOMAINS: &[(&str, u64)] = &[("LINUX", 0), ("LINUX32", 0x0008)];
    let domain = lookup("linux.personality.domain", "domain", &per.domain(), DOMAINS)?;
    if per.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(Error::config(
            "linux.personality.flags",
            "personality flags are not supported (runc neither)",
        ));
    }
    Ok(domain)
}

/// set_mempolicy's mode (with its flags) and node mask.
fn memory_policy(mp: &oci_spec::runtime::LinuxMemoryPolicy) -> Result<(i32, Vec<u64>)> {
    const MODES: &[(&str, i32)] = &[
        ("MPOL_DEFAULT", 0),
        ("MPOL_PREFERRED", 1),
        ("MPOL_BIND", 2),
        ("MPOL_INTERLEAVE", 3),
        ("MPOL_LOCAL", 4),
        ("MPOL_PREFERRED_MANY", 5),
        ("MPOL_WEIGHTED_INTERLEAVE", 6),
    ];
    const FLAGS: &[(&str, i32)] = &[
        ("MPOL_F_NUMA_BALANCING", 1 << 13),
        ("MPOL_F_RELATIVE_NODES", 1 << 14),
        ("MPOL_F_STATIC_NODES", 1 << 15),
    ];
    let mut mode = lookup("linux.memoryPolicy.mode", "mode", &mp.mode(), MODES)?;
    for f in mp.flags().iter().flatten() {
        mode |= lookup("linux.memoryPolicy.flags", "flag", f, FLAGS)?;
    }
    let mut mask = vec![0u64; 16];
    if let Some(nodes) = mp.nodes().as_deref().filter(|n| !n.is_empty()) {
        let set = crate::cpulist::IdList::parse(nodes).ok_or_else(|| {
            Error::config(
                "linux.memoryPolicy.nodes",
                format!("{nodes:?} is not a node list"),
            )
        })?;
        if let Some(n) = set.max().filter(|n| *n as usize >= mask.len() * 64) {
            return Err(Error::config(
                "linux.memoryPolicy.nodes",
                format!("node {n} is out of range"),
            ));
        }
        for n in set.members() {
            let n = n as usize;
            mask[n / 64] |= 1 << (n % 64);
        }
    }
    Ok((mode, mask))
}

/// Before the capability drop (RT classes need privileges): I/O priority, scheduler.
pub fn apply_privileged(a: &Attrs) -> Result<()> {
    if let Some(v) = a.ioprio {
        crate::sys::sched::ioprio_set(v)?;
    }
    if let Some(s) = &a.sched {
        crate::sys::sched::sched_setattr(s)?;
    }
    Ok(())
}

/// Right before execve: final affinity, personality, memory policy.
pub fn apply_last(a: &Attrs) -> Result<()> {
    if let Some(c) = &a.affinity_final {
        crate::sys::sched::set_affinity("process.execCPUAffinity.final", c)?;
    }
    if let Some(p) = a.personality {
        crate::sys::sched::personality(p)?;
    }
    if let Some((mode, mask)) = &a.mempolicy {
        crate::sys::sched::set_mempolicy(*mode, mask)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_every_attribute() {
        let p: oci_spec::runtime::Process = serde_json::from_value(serde_json::json!({
            "cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0},
            "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
            "scheduler": {"policy": "SCHED_BATCH", "nice": 5},
            "execCPUAffinity": {"initial": "0", "final": "0-1"}
        }))
        .unwrap();
        let l: oci_spec::runtime::Linux = serde_json::from_value(serde_json::json!({
            "personality": {"domain": "LINUX32"},
            "memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}
        }))
        .unwrap();
        let a = plan(&p, Some(&l)).unwrap();
        assert_eq!(a.ioprio, Some((2 << 13) | 4));
        assert_eq!(a.sched.unwrap().policy, 3);
        assert_eq!(a.sched.unwrap().nice, 5);
        assert_eq!(a.affinity_final, Some(vec![0, 1]));
        assert_eq!(a.personality, Some(8));
        assert_eq!(a.mempolicy.as_ref().unwrap().0, 2 | (1 << 15));
        assert_eq!(a.mempolicy.as_ref().unwrap().1[0], 1);
    }
}

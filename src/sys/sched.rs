//! Scheduling and memory attributes of the calling process: scheduler, I/O priority,
//! CPU affinity, personality, NUMA memory policy.

use crate::error::{Error, Result};
use nix::errno::Errno;

/// `struct sched_attr` (SCHED_ATTR_SIZE_VER0, 48 bytes, plus util clamps = 56).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

pub fn sched_setattr(a: &SchedAttr) -> Result<()> {
    #[repr(C)]
    struct Full {
        a: SchedAttr,
        util_min: u32,
        util_max: u32,
    }
    let full = Full {
        a: SchedAttr { size: 56, ..*a },
        util_min: 0,
        util_max: 0,
    };
    // SAFETY: sched_setattr with a valid sched_attr for the calling thread.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &full as *const Full, 0) };
    Errno::result(ret)
        .map(drop)
        .map_err(|e| Error::sys_nopath("sched_setattr (process.scheduler)", e))
}

pub fn ioprio_set(value: i32) -> Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    // SAFETY: ioprio_set with integers.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    Errno::result(ret)
        .map(drop)
        .map_err(|e| Error::sys_nopath("ioprio_set (process.ioPriority)", e))
}

pub fn set_affinity(field: &str, cpus: &[usize]) -> Result<()> {
    let mut set = nix::sched::CpuSet::new();
    for c in cpus {
        set.set(*c)
            .map_err(|e| Error::sys_nopath(format!("{field}: cpu {c}"), e))?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .map_err(|e| Error::sys_nopath(format!("sched_setaffinity ({field})"), e))
}

/// Affinity to every CPU, as current runc gives the container's processes whatever the
/// runtime was pinned to: the kernel narrows the full mask to the CPUs that exist and
/// that the caller's cpuset allows, so this must run once the process is in its cgroup.
pub fn reset_affinity() -> Result<()> {
    let mut set = nix::sched::CpuSet::new();
    for c in 0..nix::sched::CpuSet::count() {
        set.set(c)
            .map_err(|e| Error::sys_nopath(format!("cpu {c}"), e))?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .map_err(|e| Error::sys_nopath("sched_setaffinity (every CPU)", e))
}

pub fn personality(persona: u64) -> Result<()> {
    // SAFETY: personality with an integer persona.
    let ret = unsafe { libc::personality(persona as libc::c_ulong) };
    Errno::result(ret)
        .map(drop)
        .map_err(|e| Error::sys_nopath("personality (linux.personality)", e))
}

pub fn set_mempolicy(mode: i32, mask: &[u64]) -> Result<()> {
    let has_nodes = mask.iter().any(|m| *m != 0);
    let (ptr, max) = if has_nodes {
        (mask.as_ptr(), (mask.len() * 64) as libc::c_ulong + 1)
    } else {
        (std::ptr::null(), 0)
    };
    // SAFETY: set_mempolicy with a valid (or null) node mask.
    let ret = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, max) };
    Errno::result(ret)
        .map(drop)
        .map_err(|e| Error::sys_nopath("set_mempolicy (linux.memoryPolicy)", e))
}

//! What a process may do: prctl flags (dumpable, keep-caps, no_new_privs, parent-death
//! signal), capability sets, rlimits and the seccomp filter.

use crate::error::{Error, Result};
use nix::errno::Errno;
use std::os::fd::OwnedFd;

/// prctl with integer arguments, for the two options nix has no wrapper for:
/// PR_CAPBSET_DROP (the `caps` crate has one, but only for the capabilities it knows by
/// name; the bounding set is emptied up to the kernel's cap_last_cap, whatever its age)
/// and PR_CAP_AMBIENT.
pub fn prctl(
    op: &'static str,
    option: libc::c_int,
    a: libc::c_ulong,
    b: libc::c_ulong,
) -> Result<()> {
    // SAFETY: integer-argument prctl.
    let ret = unsafe { libc::prctl(option, a, b, 0, 0) };
    Errno::result(ret)
        .map(drop)
        .map_err(|e| Error::sys_nopath(op, e))
}

pub fn set_dumpable(on: bool) -> Result<()> {
    nix::sys::prctl::set_dumpable(on).map_err(|e| Error::sys_nopath("prctl(PR_SET_DUMPABLE)", e))
}

pub fn set_keepcaps(on: bool) -> Result<()> {
    nix::sys::prctl::set_keepcaps(on).map_err(|e| Error::sys_nopath("prctl(PR_SET_KEEPCAPS)", e))
}

pub fn set_no_new_privs() -> Result<()> {
    nix::sys::prctl::set_no_new_privs()
        .map_err(|e| Error::sys_nopath("prctl(PR_SET_NO_NEW_PRIVS)", e))
}

/// The signal the kernel sends when the parent dies; `None` clears it.
pub fn set_pdeathsig(sig: Option<nix::sys::signal::Signal>) -> Result<()> {
    nix::sys::prctl::set_pdeathsig(sig).map_err(|e| Error::sys_nopath("prctl(PR_SET_PDEATHSIG)", e))
}

/// Become a subreaper: orphaned descendants are reparented to this process.
pub fn set_child_subreaper() -> Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| Error::sys_nopath("prctl(PR_SET_CHILD_SUBREAPER)", e))
}

/// capset(2) for the calling thread with 64-bit masks.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let hdr = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let lo = |m: u64| m as u32;
    let hi = |m: u64| (m >> 32) as u32;
    let data = [
        Data {
            effective: lo(effective),
            permitted: lo(permitted),
            inheritable: lo(inheritable),
        },
        Data {
            effective: hi(effective),
            permitted: hi(permitted),
            inheritable: hi(inheritable),
        },
    ];
    // SAFETY: header and two data structs as capset(2) version 3 expects.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &hdr as *const Header, data.as_ptr()) };
    Errno::result(ret)
        .map(drop)
        .map_err(|e| Error::sys_nopath("capset", e))
}

/// setrlimit for `resource`; errors name the rlimit (`setrlimit RLIMIT_NOFILE: EPERM`).
pub fn setrlimit(name: &str, resource: libc::c_int, soft: u64, hard: u64) -> Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid rlimit; pid 0 is the caller.
    let ret = unsafe { libc::prlimit(0, resource as _, &lim, std::ptr::null_mut()) };
    Errno::result(ret)
        .map(drop)
        .map_err(|e| Error::sys_nopath(format!("setrlimit {name} (soft {soft}, hard {hard})"), e))
}

pub fn getrlimit(resource: libc::c_int) -> Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is writable; pid 0 is the caller.
    let ret = unsafe { libc::prlimit(0, resource as _, std::ptr::null(), &mut lim) };
    Errno::result(ret).map_err(|e| Error::sys_nopath("getrlimit", e))?;
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// seccomp(SECCOMP_SET_MODE_FILTER) with a BPF program (`struct sock_filter` bytes).
/// Returns the notify listener fd when `flags` asks for one.
pub fn seccomp_load(bpf: &[u8], flags: u32) -> Result<Option<OwnedFd>> {
    #[repr(C)]
    struct Fprog {
        len: u16,
        filter: *const u8,
    }
    // 8 bytes an instruction; the kernel itself refuses more than 4096 (BPF_MAXINSNS).
    let len = u16::try_from(bpf.len() / 8)
        .ok()
        .filter(|_| bpf.len() % 8 == 0)
        .ok_or_else(|| {
            Error::sys_nopath(
                format!("seccomp load filter of {} bytes", bpf.len()),
                Errno::EINVAL,
            )
        })?;
    let prog = Fprog {
        len,
        filter: bpf.as_ptr(),
    };
    const SECCOMP_SET_MODE_FILTER: libc::c_long = 1;
    // SAFETY: `prog` describes a live buffer of sock_filter structs.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags as libc::c_long,
            &prog as *const Fprog,
        )
    };
    let ret = Errno::result(ret).map_err(|e| Error::sys_nopath("seccomp load filter", e))?;
    // SAFETY: the fd the syscall above just returned, owned by nobody.
    Ok((flags & 8 != 0).then(|| unsafe { super::own_fd(ret as i32) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A program whose instruction count does not fit the kernel's u16 is refused by
    /// its size, never loaded with a truncated count (65536 instructions became 0).
    #[test]
    fn seccomp_program_too_long_or_torn_is_refused_before_the_syscall() {
        for len in [65536 * 8, 7] {
            let e = seccomp_load(&vec![0u8; len], 0).unwrap_err().to_string();
            assert!(e.contains(&format!("of {len} bytes")), "{e}");
        }
    }
}

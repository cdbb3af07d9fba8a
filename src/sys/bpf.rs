//! bpf(2): load a BPF_PROG_TYPE_CGROUP_DEVICE program and attach it to a cgroup; list the
//! device programs a cgroup has and name them.

use crate::error::{Error, Result};
use nix::errno::Errno;
use std::os::fd::{AsRawFd, OwnedFd};

/// One eBPF instruction as the kernel lays it out.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// dst in the low nibble, src in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

#[repr(C)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    _pad: [u8; 64],
}

#[repr(C)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    _pad: [u8; 108],
}

#[repr(C)]
struct ProgQuery {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: [u8; 100],
}

#[repr(C)]
struct GetFdById {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
    _pad: [u8; 116],
}

#[repr(C)]
struct InfoByFd {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
    _pad: [u8; 112],
}

/// The name rsrun gives its device programs (the kernel keeps 15 bytes).
pub const PROG_NAME: &str = "rsrun";

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_PROG_QUERY: libc::c_long = 16;
/// Where `name` lies in `struct bpf_prog_info`.
const PROG_INFO_NAME: std::ops::Range<usize> = 64..80;
/// The kernel's limit on programs attached to one cgroup hook (BPF_CGROUP_MAX_PROGS).
const MAX_ATTACHED: usize = 64;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// Load a cgroup device program; returns its fd. The first attempt runs without a
/// verifier log (a log that overflows its buffer fails the load with ENOSPC, and a
/// level-1 log of an ordinary rule list does); only a failed load is retried with a log,
/// whose last line says why, in one line (crun's `ebpf.c` does the same).
pub fn load_device_prog(insns: &[Insn]) -> Result<OwnedFd> {
    let e = match prog_load(insns, None) {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    let mut log = vec![0u8; 1 << 20];
    let why = match prog_load(insns, Some(&mut log)) {
        // Loaded with a log after all (a transient failure): use it.
        Ok(fd) => return Ok(fd),
        Err(_) => last_log_line(&log),
    };
    let op = match why {
        Some(l) => format!("bpf load device filter (verifier: {l})"),
        None => "bpf load device filter".into(),
    };
    Err(Error::sys_nopath(op, e))
}

/// The verifier's conclusion: the last non-empty line of its log.
fn last_log_line(log: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(log);
    text.trim_matches('\0')
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(String::from)
}

fn prog_load(insns: &[Insn], log: Option<&mut [u8]>) -> std::result::Result<OwnedFd, Errno> {
    let license = b"Apache\0";
    let mut name = [0u8; 16];
    name[..PROG_NAME.len()].copy_from_slice(PROG_NAME.as_bytes());
    let (log_level, log_size, log_buf) = match log {
        Some(l) => (1, l.len() as u32, l.as_mut_ptr() as u64),
        None => (0, 0, 0),
    };
    let mut attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level,
        log_size,
        log_buf,
        kern_version: 0,
        prog_flags: 0,
        prog_name: name,
        prog_ifindex: 0,
        expected_attach_type: 0,
        _pad: [0; 64],
    };
    let fd = bpf(BPF_PROG_LOAD, &mut attr)?;
    // SAFETY: the fd the syscall above just returned, owned by nobody.
    Ok(unsafe { super::own_fd(fd as i32) })
}

/// Attach a device program to a cgroup directory fd.
pub fn attach_device_prog(
    cgroup: &impl AsRawFd,
    prog: &impl AsRawFd,
    shown: &std::path::Path,
) -> Result<()> {
    let mut attr = ProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
        _pad: [0; 108],
    };
    bpf(BPF_PROG_ATTACH, &mut attr)
        .map(drop)
        .map_err(|e| Error::sys("bpf attach device filter to", shown, e))
}

/// bpf(cmd, attr): the syscall's return value.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::result::Result<i64, Errno> {
    // SAFETY: `attr` is a live, zero-padded attribute of the size passed, laid out as
    // the kernel's union member for `cmd`; any pointers in it point at live buffers.
    let ret =
        unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    Errno::result(ret)
}

/// The ids of the device programs attached to a cgroup directory fd, in the order the
/// kernel runs them (BPF_PROG_QUERY).
pub fn attached_device_progs(cgroup: &impl AsRawFd, shown: &std::path::Path) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; MAX_ATTACHED];
    let mut attr = ProgQuery {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        query_flags: 0,
        attach_flags: 0,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        _pad: [0; 100],
    };
    bpf(BPF_PROG_QUERY, &mut attr)
        .map_err(|e| Error::sys("bpf query the device programs of", shown, e))?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

/// An fd of the loaded program `id` (BPF_PROG_GET_FD_BY_ID).
fn prog_fd(id: u32) -> Result<OwnedFd> {
    let mut by_id = GetFdById {
        prog_id: id,
        next_id: 0,
        open_flags: 0,
        _pad: [0; 116],
    };
    let fd = bpf(BPF_PROG_GET_FD_BY_ID, &mut by_id)
        .map_err(|e| Error::sys_nopath(format!("bpf get the fd of program {id}"), e))?;
    // SAFETY: the fd the syscall above just returned, owned by nobody.
    Ok(unsafe { super::own_fd(fd as i32) })
}

/// Detach the device program `id` from a cgroup directory fd (BPF_PROG_DETACH).
pub fn detach_device_prog(cgroup: &impl AsRawFd, id: u32, shown: &std::path::Path) -> Result<()> {
    let prog = prog_fd(id)?;
    let mut attr = ProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: 0,
        replace_bpf_fd: 0,
        _pad: [0; 108],
    };
    bpf(BPF_PROG_DETACH, &mut attr)
        .map(drop)
        .map_err(|e| Error::sys(format!("bpf detach device program {id} from"), shown, e))
}

/// The name a loaded program was given (BPF_OBJ_GET_INFO_BY_FD).
pub fn prog_name(id: u32) -> Result<String> {
    let fd = prog_fd(id)?;
    let mut info = [0u8; 256];
    let mut attr = InfoByFd {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: info.len() as u32,
        info: info.as_mut_ptr() as u64,
        _pad: [0; 112],
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)
        .map_err(|e| Error::sys_nopath(format!("bpf get the info of program {id}"), e))?;
    let name = &info[PROG_INFO_NAME];
    let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
    Ok(String::from_utf8_lossy(&name[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn last_log_line_is_the_verifier_conclusion() {
        let log = b"0: R1=ctx() R10=fp0\n1: (b7) r0 = 0\nunreachable insn 2\n\n\0\0\0";
        assert_eq!(
            super::last_log_line(log).as_deref(),
            Some("unreachable insn 2")
        );
        assert_eq!(super::last_log_line(b"\0\0"), None);
    }
}

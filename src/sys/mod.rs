//! The one syscall layer: every `unsafe` call and raw libc use of the crate lives here.
//! Each wrapper retries EINTR where that is meaningful and returns errors that carry the
//! operation and path (`crate::error::Error::Sys`). Each file holds one kind of call;
//! this one only the fd basics they share.

pub mod bpf;
pub mod clone;
pub mod exe;
pub mod execve;
pub mod fs;
pub mod inotify;
pub mod poll;
pub mod privilege;
pub mod proc;
pub mod procfs;
pub mod sched;
pub mod signals;
pub mod socket;
pub mod spawn;
pub mod tty;

use crate::error::{Error, Result};
use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Take ownership of an fd number a syscall of this layer just returned.
///
/// # Safety
/// `fd` must be open and owned by nobody else (private to `sys`: only its wrappers,
/// right after the syscall that made the fd, call it).
unsafe fn own_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: as the caller guarantees.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The path under which an fd's file can be reached through procfs.
pub fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// dup2 that keeps the new fd without CLOEXEC (for stdio).
pub fn dup2(fd: &impl AsRawFd, to: RawFd) -> Result<()> {
    // SAFETY: dup2 on valid fds.
    let ret = unsafe { libc::dup2(fd.as_raw_fd(), to) };
    Errno::result(ret)
        .map(drop)
        .map_err(|e| Error::sys_nopath(format!("dup2 to {to}"), e))
}

/// An anonymous in-memory file (memfd), CLOEXEC.
pub fn memfd(name: &str) -> Result<std::fs::File> {
    memfd_with(name, libc::MFD_CLOEXEC)
}

/// A memfd that takes seals (F_ADD_SEALS), CLOEXEC.
pub fn sealable_memfd(name: &str) -> Result<std::fs::File> {
    memfd_with(name, libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
}

fn memfd_with(name: &str, flags: libc::c_uint) -> Result<std::fs::File> {
    let c = CString::new(name).map_err(|_| Error::sys_nopath("memfd_create", Errno::EINVAL))?;
    // SAFETY: memfd_create with a valid name.
    let fd = unsafe { libc::memfd_create(c.as_ptr(), flags) };
    let fd = Errno::result(fd).map_err(|e| Error::sys_nopath("memfd_create", e))?;
    // SAFETY: the fd the syscall above just returned, owned by nobody.
    Ok(std::fs::File::from(unsafe { own_fd(fd) }))
}

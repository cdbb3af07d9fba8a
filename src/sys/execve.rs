//! The hand-over to the container's program: the runtime's fds closed on exec, then
//! execve.

use crate::error::{Error, Result};
use nix::errno::Errno;
use std::ffi::{CStr, CString};

/// Mark every fd from `from` up CLOEXEC, so nothing of the runtime's survives execve.
pub fn cloexec_from(from: u32) -> Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes fd flags.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if ret < 0 {
        return Err(Error::sys_nopath("close_range", Errno::last()));
    }
    Ok(())
}

/// Replace the process image. Returns only on failure.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> Errno {
    match nix::unistd::execve(path, argv, envp) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

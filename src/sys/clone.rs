//! Making the container's processes: clone3 (fork-like, optionally straight into a
//! cgroup) and the child's way out that runs nothing of the parent's.

use crate::error::{Error, Result};
use nix::errno::Errno;
use std::os::fd::RawFd;

/// `clone3` arguments rsrun uses (see clone(2)). `exit_signal` is SIGCHLD.
pub struct CloneArgs {
    pub flags: u64,
    pub cgroup_fd: Option<RawFd>,
}

#[repr(C)]
#[derive(Default)]
struct RawCloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
pub const CLONE_PARENT: u64 = libc::CLONE_PARENT as u64;

/// Fork-like clone3: the child continues on a copy of the caller's stack and returns 0.
/// The caller must be single-threaded.
pub fn clone3(args: &CloneArgs) -> Result<i32> {
    let mut raw = RawCloneArgs {
        flags: args.flags,
        // A sibling (CLONE_PARENT) signals the parent it shares with the caller's rule;
        // clone3 wants no exit signal then.
        exit_signal: if args.flags & CLONE_PARENT != 0 {
            0
        } else {
            libc::SIGCHLD as u64
        },
        ..Default::default()
    };
    if let Some(fd) = args.cgroup_fd {
        raw.flags |= CLONE_INTO_CGROUP;
        raw.cgroup = fd as u64;
    }
    // SAFETY: clone3 with a zero stack behaves like fork; the struct outlives the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &raw as *const RawCloneArgs,
            std::mem::size_of::<RawCloneArgs>(),
        )
    };
    if ret < 0 {
        return Err(Error::sys_nopath("clone3", Errno::last()));
    }
    Ok(ret as i32)
}

/// `_exit` without running destructors or atexit handlers (for the child after clone).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

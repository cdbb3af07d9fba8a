//! The one syscall layer: every `unsafe` call and raw libc use of the crate lives here.
//! Each wrapper retries EINTR where that is meaningful and returns errors that carry the
//! operation and path (`crate::error::Error::Sys`).

pub mod bpf;
pub mod exe;
pub mod fs;
pub mod inotify;
pub mod poll;
pub mod privilege;
pub mod proc;
pub mod procfs;
pub mod sched;
pub mod socket;
pub mod spawn;
pub mod tty;

use crate::error::{Error, Result};
use nix::errno::Errno;
use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

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

pub fn set_domainname(name: &str) -> Result<()> {
    // SAFETY: the pointer and length describe a live buffer.
    let ret = unsafe { libc::setdomainname(name.as_ptr() as *const libc::c_char, name.len()) };
    Errno::result(ret)
        .map(drop)
        .map_err(|e| Error::sys("setdomainname", name, e))
}

/// Replace the process image. Returns only on failure.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> Errno {
    match nix::unistd::execve(path, argv, envp) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

/// `_exit` without running destructors or atexit handlers (for the child after clone).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

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

/// Set the process umask.
pub fn umask(mask: u32) {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        mask as libc::mode_t,
    ));
}

/// keyctl(KEYCTL_JOIN_SESSION_KEYRING, name). ENOSYS (no keyring support) is not an error.
pub fn join_session_keyring(name: &str) -> Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let c = CString::new(name).map_err(|_| Error::sys_nopath("keyctl", Errno::EINVAL))?;
    // SAFETY: keyctl with a valid C string.
    let ret = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, c.as_ptr()) };
    match Errno::result(ret) {
        Ok(_) | Err(Errno::ENOSYS) => Ok(()),
        Err(e) => Err(Error::sys("keyctl join session keyring", name, e)),
    }
}

/// dup2 that keeps the new fd without CLOEXEC (for stdio).
pub fn dup2(fd: &impl AsRawFd, to: RawFd) -> Result<()> {
    // SAFETY: dup2 on valid fds.
    let ret = unsafe { libc::dup2(fd.as_raw_fd(), to) };
    Errno::result(ret)
        .map(drop)
        .map_err(|e| Error::sys_nopath(format!("dup2 to {to}"), e))
}

/// seccomp(SECCOMP_SET_MODE_FILTER) with a BPF program (`struct sock_filter` bytes).
/// Returns the notify listener fd when `flags` asks for one.
pub fn seccomp_load(bpf: &[u8], flags: u32) -> Result<Option<OwnedFd>> {
    #[repr(C)]
    struct Fprog {
        len: u16,
        filter: *const u8,
    }
    let prog = Fprog {
        len: (bpf.len() / 8) as u16,
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
    Ok((flags & 8 != 0).then(|| unsafe { own_fd(ret as RawFd) }))
}

/// An anonymous in-memory file (memfd), CLOEXEC.
pub fn memfd(name: &str) -> Result<std::fs::File> {
    let c = CString::new(name).map_err(|_| Error::sys_nopath("memfd_create", Errno::EINVAL))?;
    // SAFETY: memfd_create with a valid name.
    let fd = unsafe { libc::memfd_create(c.as_ptr(), libc::MFD_CLOEXEC) };
    let fd = Errno::result(fd).map_err(|e| Error::sys_nopath("memfd_create", e))?;
    // SAFETY: the fd the syscall above just returned, owned by nobody.
    Ok(std::fs::File::from(unsafe { own_fd(fd) }))
}

/// Every signal back to its default action before execve: an ignored one (SIGPIPE,
/// which rsrun ignores, or whatever its caller ignored) would stay ignored in the
/// container process; caught ones are reset by execve anyway.
pub fn reset_signal_dispositions() {
    /// The kernel's `struct sigaction` (glibc's wrapper refuses its reserved 32 and 33).
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads a live struct of the kernel's layout; SIG_DFL has
        // no handler to run.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
    }
}

/// A created container's init, waiting for `start`, ends on SIGHUP, SIGINT, SIGTERM or
/// SIGQUIT as runc's does (`kill ID TERM`, or a signal through the init's pidfd). As
/// the init of a pid namespace it would otherwise ignore them: the kernel does not
/// deliver a signal left at its default action to a namespace's init. execve puts them
/// back to their default action.
pub fn exit_on_termination_signals() -> Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    extern "C" fn exit_by(sig: libc::c_int) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + sig) }
    }
    let action = SigAction::new(
        SigHandler::Handler(exit_by),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGQUIT,
    ] {
        // SAFETY: the handler only calls _exit.
        unsafe { sigaction(sig, &action) }
            .map_err(|e| Error::sys_nopath(format!("sigaction {sig}"), e))?;
    }
    Ok(())
}

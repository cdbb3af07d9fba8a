//! Setup done in a forked child between fork and exec of a helper rsrun runs (CRIU):
//! fds moved to the numbers the helper is told, the child written into cgroups, and a
//! private mount namespace with one bind mount. Everything is prepared before the fork;
//! the child makes raw syscalls only (no allocation, no locks).

use crate::error::{Error, Result};
use std::ffi::CString;
use std::os::unix::process::CommandExt;

/// The most fds one helper inherits beyond stdio.
pub const MAX_INHERITED: usize = 8;

pub struct ChildSetup {
    /// (number in the child, fd held now): the child gets a copy without CLOEXEC.
    pub fds: Vec<(i32, i32)>,
    /// Files the child writes "0" to (`cgroup.procs`: the writer enters the cgroup).
    pub write_zero: Vec<i32>,
    /// The process that spawns the child: the child dies (SIGKILL) with it. None: the
    /// child outlives it, and ignores SIGPIPE (its stderr may be a pipe the dead parent
    /// read).
    pub parent: Option<i32>,
    /// A mount namespace of the child's own (slave of the host's) where `.0` is bound
    /// (recursively) onto `.1`.
    pub private_bind: Option<(CString, CString)>,
}

/// A helper or hook rsrun runs on the host gets its stdio and what rsrun passes it by
/// number, nothing else: every fd above stdio is close-on-exec in its child (what rsrun's
/// caller left open does not reach it, as runc's hooks and helpers, spawned by Go's
/// os/exec, get only theirs).
pub fn only_stdio(cmd: &mut std::process::Command) {
    // SAFETY: the closure runs in the forked child before exec and makes one syscall.
    unsafe {
        cmd.pre_exec(cloexec_beyond_stdio);
    }
}

/// In a forked child: fds 3 and up close-on-exec.
fn cloexec_beyond_stdio() -> std::io::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on this process's fds.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Arrange for `s` to be done in the child when `cmd` is spawned (with `only_stdio`: the
/// fds it names are the only ones beyond stdio).
pub fn set_child_setup(cmd: &mut std::process::Command, s: ChildSetup) -> Result<()> {
    if s.fds.len() > MAX_INHERITED {
        return Err(Error::container(format!(
            "a helper can inherit at most {MAX_INHERITED} fds"
        )));
    }
    // SAFETY: the closure runs in the forked child before exec; `child_setup` makes only
    // raw syscalls on values prepared before the fork.
    unsafe {
        cmd.pre_exec(move || child_setup(&s));
    }
    Ok(())
}

/// In the forked child: the inherited fds at their numbers (without CLOEXEC), into the
/// cgroups, and the private mount namespace with the bind.
fn child_setup(s: &ChildSetup) -> std::io::Result<()> {
    let (fds, procs, bind) = (&s.fds, &s.write_zero, s.private_bind.as_ref());
    let err = || Err(std::io::Error::last_os_error());
    match s.parent {
        Some(parent) => {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
            // The parent may have died before the prctl.
            if nix::unistd::getppid().as_raw() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
        None => {
            // SAFETY: SIG_IGN runs no handler.
            if unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) } == libc::SIG_ERR {
                return err();
            }
        }
    }
    cloexec_beyond_stdio()?;
    // Two passes, so a wanted number that is also one of the fds held is not clobbered
    // before it is moved: first out of the way (above every wanted number), then in place.
    let mut moved = [0i32; MAX_INHERITED];
    for (i, &(_, have)) in fds.iter().enumerate() {
        // SAFETY: fcntl on an fd this process holds.
        moved[i] = unsafe { libc::fcntl(have, libc::F_DUPFD_CLOEXEC, 256) };
        if moved[i] < 0 {
            return err();
        }
    }
    for (i, &(want, _)) in fds.iter().enumerate() {
        // SAFETY: dup2 between fds this process holds; the copy has no CLOEXEC.
        if unsafe { libc::dup2(moved[i], want) } < 0 {
            return err();
        }
    }
    for &fd in procs {
        // SAFETY: a write of a static buffer to an fd this process holds.
        if unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) } < 0 {
            return err();
        }
    }
    if let Some((src, dst)) = bind {
        // SAFETY: namespace and mount syscalls with NUL-terminated strings made before
        // the fork.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNS) < 0 {
                return err();
            }
            if libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_SLAVE,
                std::ptr::null(),
            ) < 0
            {
                return err();
            }
            if libc::mount(
                src.as_ptr(),
                dst.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ) < 0
            {
                return err();
            }
        }
    }
    Ok(())
}

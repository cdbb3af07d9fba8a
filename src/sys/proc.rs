//! Processes and namespaces: signals, waiting, setns/unshare, credentials, /proc reads,
//! host and domain names, umask and the session keyring.

use crate::error::{Error, Result, SysContext};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::{Gid, Pid, Uid};
use std::ffi::CString;
use std::os::fd::AsFd;
use std::path::Path;

/// What /proc/<pid>/stat says about a process that rsrun cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub state: char,
    pub start_time: u64,
}

/// Parse /proc/<pid>/stat: the comm field may contain spaces and parentheses, so fields
/// are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); starttime is field 22.
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// `None` when the process does not exist.
pub fn stat(pid: i32) -> Option<ProcStat> {
    let text = super::fs::read_pseudo(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

pub fn kill(pid: i32, sig: Signal) -> Result<()> {
    nix::sys::signal::kill(Pid::from_raw(pid), sig).op0("kill")
}

pub fn kill_raw(pid: i32, sig: i32) -> Result<()> {
    // SAFETY: kill(2) with plain integers.
    let ret = unsafe { libc::kill(pid, sig) };
    Errno::result(ret).map(drop).op0("kill")
}

/// Wait for `pid` to change state; EINTR is retried.
pub fn waitpid(pid: i32, nohang: bool) -> Result<WaitStatus> {
    let flags = if nohang {
        Some(WaitPidFlag::WNOHANG)
    } else {
        None
    };
    loop {
        match nix::sys::wait::waitpid(Pid::from_raw(pid), flags) {
            Err(Errno::EINTR) => continue,
            r => return r.op0("waitpid"),
        }
    }
}

/// Exit code of a finished process as a shell reports it (128+N for a signal).
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

pub fn setns(fd: &impl AsFd, flag: CloneFlags, shown: &Path) -> Result<()> {
    nix::sched::setns(fd, flag).op("setns", shown)
}

pub fn unshare(flags: CloneFlags) -> Result<()> {
    nix::sched::unshare(flags).map_err(|e| Error::sys_nopath(format!("unshare({flags:?})"), e))
}

pub fn setresuid(uid: u32) -> Result<()> {
    let u = Uid::from_raw(uid);
    nix::unistd::setresuid(u, u, u).map_err(|e| Error::sys_nopath(format!("setresuid({uid})"), e))
}

pub fn setresgid(gid: u32) -> Result<()> {
    let g = Gid::from_raw(gid);
    nix::unistd::setresgid(g, g, g).map_err(|e| Error::sys_nopath(format!("setresgid({gid})"), e))
}

pub fn setgroups(gids: &[u32]) -> Result<()> {
    let g: Vec<Gid> = gids.iter().map(|g| Gid::from_raw(*g)).collect();
    nix::unistd::setgroups(&g).op0("setgroups")
}

pub fn sethostname(name: &str) -> Result<()> {
    nix::unistd::sethostname(name).op("sethostname", name)
}

pub fn getpid() -> i32 {
    nix::unistd::getpid().as_raw()
}

/// The effective uid (geteuid(2), which cannot fail).
pub fn geteuid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// The effective gid (getegid(2), which cannot fail).
pub fn getegid() -> u32 {
    nix::unistd::getegid().as_raw()
}

/// The real uid (getuid(2), which cannot fail).
pub fn getuid() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// The login name of `uid` from the passwd database, when it has one.
pub fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// setsid(2): a new session (and process group) led by the caller.
pub fn setsid() -> Result<()> {
    nix::unistd::setsid().map(drop).op0("setsid")
}

/// A user namespace with the given uid/gid maps, held by an fd (for id-mapped mounts):
/// a helper child is cloned into a new user namespace, its maps are written, its
/// namespace opened, and it is killed.
pub fn userns_with_maps(uid_map: &str, gid_map: &str) -> Result<std::os::fd::OwnedFd> {
    let pid = super::clone::clone3(&super::clone::CloneArgs {
        flags: libc::CLONE_NEWUSER as u64,
        cgroup_fd: None,
    })?;
    if pid == 0 {
        loop {
            // SAFETY: pause only waits for a signal; the parent kills us.
            unsafe { libc::pause() };
        }
    }
    let r = (|| {
        super::fs::write_file(
            Path::new(&format!("/proc/{pid}/uid_map")),
            uid_map.as_bytes(),
        )?;
        super::fs::write_file(
            Path::new(&format!("/proc/{pid}/gid_map")),
            gid_map.as_bytes(),
        )?;
        super::fs::open(
            Path::new(&format!("/proc/{pid}/ns/user")),
            nix::fcntl::OFlag::O_RDONLY,
        )
    })();
    let _ = kill(pid, Signal::SIGKILL);
    let _ = waitpid(pid, false);
    r
}

/// A pidfd for `pid` (CLOEXEC): readable once the process has exited.
pub fn pidfd_open(pid: i32) -> Result<std::os::fd::OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags; the result is a new fd we own.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    Errno::result(pidfd)
        // SAFETY: the fd the syscall above just returned, owned by nobody.
        .map(|fd| unsafe { super::own_fd(fd as i32) })
        .map_err(|e| Error::sys_nopath(format!("pidfd_open {pid}"), e))
}

/// Send `sig` to the process a pidfd refers to (pidfd_send_signal): unlike kill(2), never
/// to a later process that reused its pid.
pub fn pidfd_kill(pidfd: impl std::os::fd::AsFd, sig: i32) -> Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd_send_signal with a pidfd we borrow, a signal number, no siginfo, no flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_fd().as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(ret).map(drop).op0("pidfd_send_signal")
}

/// A copy of another process's fd `target` (pidfd_open + pidfd_getfd, CLOEXEC): how the
/// runtime takes a seccomp listener from the container process without that process
/// having to send it (runc's way too).
pub fn take_fd(pid: i32, target: i32) -> Result<std::os::fd::OwnedFd> {
    let pidfd = pidfd_open(pid)?;
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd_getfd on a pidfd we own; the result is a new fd we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target, 0) };
    Errno::result(fd)
        // SAFETY: the fd the syscall above just returned, owned by nobody.
        .map(|fd| unsafe { super::own_fd(fd as i32) })
        .map_err(|e| Error::sys_nopath(format!("pidfd_getfd {pid} fd {target}"), e))
}

/// setdomainname(2) in the caller's UTS namespace.
pub fn set_domainname(name: &str) -> Result<()> {
    // SAFETY: the pointer and length describe a live buffer.
    let ret = unsafe { libc::setdomainname(name.as_ptr() as *const libc::c_char, name.len()) };
    Errno::result(ret)
        .map(drop)
        .map_err(|e| Error::sys("setdomainname", name, e))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_parens_in_comm() {
        let s = "42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 1000 10";
        assert_eq!(
            parse_stat(s),
            Some(ProcStat {
                state: 'S',
                start_time: 12345
            })
        );
    }
}

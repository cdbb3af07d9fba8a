//! The rsrun process itself: what its start-up needs, and the read-only re-exec before
//! it enters a container (CVE-2019-5736).

use super::{exit_now, fs};
use crate::error::{Error, Result};
use nix::errno::Errno;
use std::ffi::CString;
use std::path::Path;

/// True when the running binary sits on a read-only mount (see `reexec_readonly`).
pub fn running_readonly() -> bool {
    let Ok(f) = std::fs::File::open("/proc/self/exe") else {
        return false;
    };
    nix::sys::statvfs::fstatvfs(&f)
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// Close every fd from `from` up. A command that enters a container calls this first:
/// what its caller left open (a host directory, a socket) would otherwise sit in the
/// container's init until its execve, and reach every startContainer hook and the
/// `/proc/<pid>/fd` of every process rsrun clones into the container.
pub fn close_fds_from(from: u32) -> Result<()> {
    // SAFETY: close_range only closes fds; nothing rsrun owns is open this early.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, 0) };
    Errno::result(ret)
        .map(drop)
        .map_err(|e| Error::sys_nopath("close_range", e))
}

/// The environment a command that enters a container runs with: the socket-activation
/// variables when they are passed on (`listen`), the system bus's address (where the
/// systemd driver finds systemd: no secret, and rsrun's own setting), none of the
/// caller's others. The initial environment stays in the memory of every process rsrun
/// clones (it is what `/proc/<pid>/environ` shows), so it is replaced by re-executing,
/// not by clearing.
pub fn container_env(listen: bool) -> Vec<CString> {
    let wanted = |k: &[u8]| {
        (listen && (k == b"LISTEN_FDS" || k == b"LISTEN_PID")) || k == b"DBUS_SYSTEM_BUS_ADDRESS"
    };
    std::env::vars_os()
        .filter(|(k, _)| wanted(k.as_encoded_bytes()))
        .filter_map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            CString::new(kv).ok()
        })
        .collect()
}

/// True when the process runs with exactly `env` (see `container_env`).
pub fn env_is(env: &[CString]) -> bool {
    std::env::vars_os().count() == env.len()
}

/// CVE-2019-5736: before rsrun enters a container, re-execute it through a private,
/// detached, read-only bind mount of its own binary, so a container process that gets
/// hold of /proc/<pid>/exe can never reopen the host's binary for writing (EROFS).
/// No copy is made: the same pages are mapped. The new image runs with `env` only.
/// Returns only on failure.
pub fn reexec_readonly(env: &[CString]) -> Error {
    let run = || -> Result<std::convert::Infallible> {
        let tree = fs::open_tree_clone(Path::new("/proc/self/exe"), false)?;
        fs::mount_setattr(
            &tree,
            fs::MOUNT_ATTR_RDONLY,
            0,
            false,
            None,
            Path::new("the rsrun binary"),
        )?;
        let empty = CString::default();
        let args: Vec<CString> = std::env::args_os()
            .filter_map(|a| {
                CString::new(std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str())).ok()
            })
            .collect();
        nix::unistd::execveat(
            &tree,
            &empty,
            &args,
            env,
            nix::fcntl::AtFlags::AT_EMPTY_PATH,
        )
        .map_err(|e| Error::sys_nopath("execveat read-only rsrun", e))?;
        Err(Error::sys_nopath("execveat read-only rsrun", Errno::EINVAL))
    };
    match run() {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

/// What Rust's own start-up does that rsrun needs (its entry point skips the rest: a
/// /proc/self/maps read and a signal stack, ~0.1 ms on every call): fds 0-2 open, on
/// /dev/null when the caller closed them, so nothing rsrun opens becomes stdio; SIGPIPE
/// ignored, so a peer that went away is an EPIPE error, not rsrun's death.
pub fn process_start() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: poll reads and writes the three pollfds of a live array.
    let ret = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
    if ret >= 0 {
        for p in fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0) {
            // The lowest free fd is the closed one (all below it are open or filled).
            let got = fs::open(Path::new("/dev/null"), nix::fcntl::OFlag::O_RDWR)
                .map(std::os::fd::IntoRawFd::into_raw_fd);
            if got.ok() != Some(p.fd) {
                exit_now(127);
            }
        }
    }
    // SAFETY: installing SIG_IGN has no handler to run.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

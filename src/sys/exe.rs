//! The rsrun process itself: what its start-up needs, and the re-exec from a binary no
//! container can write before it enters a container (CVE-2019-5736).

use super::clone::exit_now;
use super::fs;
use crate::error::{Error, Result};
use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::path::Path;

/// True when the running binary cannot be written: it sits on a read-only mount, or is
/// a memfd sealed against writes (see `reexec_readonly`).
pub fn running_readonly() -> bool {
    let Ok(f) = std::fs::File::open("/proc/self/exe") else {
        return false;
    };
    if nix::sys::statvfs::fstatvfs(&f)
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
    {
        return true;
    }
    // SAFETY: F_GET_SEALS on an open fd only reads its seals (EINVAL when not a memfd).
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & SEALS == SEALS
}

/// The seals of rsrun's memfd copy: no write, no resize, no further seal change.
const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

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
/// variables when they are passed on (`listen`), NOTIFY_SOCKET when `notify` (the host's
/// sd_notify socket, `container::notify`), the system bus's address (where the systemd
/// driver finds systemd: no secret, and rsrun's own setting), none of the caller's
/// others. The initial environment stays in the memory of every process rsrun
/// clones (it is what `/proc/<pid>/environ` shows), so it is replaced by re-executing,
/// not by clearing.
pub fn container_env(listen: bool, notify: bool) -> Vec<CString> {
    let wanted = |k: &[u8]| {
        (listen && (k == b"LISTEN_FDS" || k == b"LISTEN_PID"))
            || (notify && k == b"NOTIFY_SOCKET")
            || k == b"DBUS_SYSTEM_BUS_ADDRESS"
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

/// CVE-2019-5736: before rsrun enters a container, re-execute it from a binary no
/// container process can reopen for writing through /proc/<pid>/exe. As host root (or
/// root over its mount namespace): a private, detached, read-only bind mount of its own
/// binary (EROFS), no copy, the same pages mapped. Without that privilege (a rootless
/// user): a memfd copy of the binary sealed against writes (EPERM). The new image runs
/// with `env` only, and with `--root root` first when `root` is given (a state root
/// found from the caller's environment, which it no longer has). Returns only on failure.
pub fn reexec_readonly(env: &[CString], root: Option<&Path>) -> Error {
    use std::os::unix::ffi::OsStrExt;
    let mut args: Vec<CString> = std::env::args_os()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    if let Some(root) = root {
        if let Ok(r) = CString::new(root.as_os_str().as_bytes()) {
            let at = args.len().min(1);
            args.splice(at..at, [CString::from(c"--root"), r]);
        }
    }
    let exec = |fd: &std::os::fd::OwnedFd, what: &str| -> Error {
        let e = nix::unistd::execveat(
            fd,
            &CString::default(),
            &args,
            env,
            nix::fcntl::AtFlags::AT_EMPTY_PATH,
        )
        .err()
        .unwrap_or(Errno::EINVAL);
        Error::sys_nopath(format!("execveat {what}"), e)
    };
    match readonly_bind() {
        Ok(tree) => exec(&tree, "read-only rsrun"),
        Err(bind) => match sealed_copy() {
            Ok(copy) => exec(&copy, "sealed copy of rsrun"),
            Err(copy) => Error::container(format!(
                "no unwritable rsrun binary to re-execute: a read-only bind mount: {bind}; a sealed memfd copy: {copy}"
            )),
        },
    }
}

/// A detached read-only bind mount of the running binary.
fn readonly_bind() -> Result<std::os::fd::OwnedFd> {
    let tree = fs::open_tree_clone(Path::new("/proc/self/exe"), false)?;
    fs::mount_setattr(
        &tree,
        fs::MOUNT_ATTR_RDONLY,
        0,
        false,
        None,
        Path::new("the rsrun binary"),
    )?;
    Ok(tree)
}

/// A memfd copy of the running binary, sealed (`SEALS`).
fn sealed_copy() -> Result<std::os::fd::OwnedFd> {
    let mut copy = super::sealable_memfd("rsrun")?;
    let exe = Path::new("/proc/self/exe");
    let mut src = std::fs::File::open(exe)
        .map_err(|e| Error::sys("open", exe, crate::error::io_errno(&e)))?;
    std::io::copy(&mut src, &mut copy)
        .map_err(|e| Error::sys("copy into a memfd", exe, crate::error::io_errno(&e)))?;
    // SAFETY: F_ADD_SEALS on the memfd just made.
    let ret = unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, SEALS) };
    Errno::result(ret).map_err(|e| Error::sys_nopath("seal the memfd copy of rsrun", e))?;
    Ok(copy.into())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The fallback when no read-only bind can be made: a copy of the binary that
    /// carries every seal and refuses a write.
    #[test]
    fn sealed_copy_is_the_binary_sealed_against_writes() {
        use std::io::Write;
        let mut copy = std::fs::File::from(sealed_copy().unwrap());
        // SAFETY: F_GET_SEALS only reads the seals of an open fd.
        let seals = unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_GET_SEALS) };
        assert_eq!(seals & SEALS, SEALS, "seals {seals:#x}");
        assert_eq!(
            copy.metadata().unwrap().len(),
            std::fs::metadata("/proc/self/exe").unwrap().len()
        );
        assert!(copy.write_all(b"x").is_err());
    }
}

//! sd_notify through a container (runc's notify socket), so a container can tell the
//! service manager that started rsrun that it is ready (Podman's `--sdnotify=container`,
//! a systemd `Type=notify` unit running a container).
//!
//! When NOTIFY_SOCKET is set in rsrun's environment:
//! - `create` checks that the host socket takes datagrams (before anything exists), makes
//!   the directory `<root>/<id>/notify/` (mode 0755), bind-mounts it read-only (nosuid,
//!   nodev, noexec) at `/run/notify` in the container, and sets the container's
//!   `NOTIFY_SOCKET=/run/notify/notify.sock`. Only the directory is exposed: the host
//!   socket's path does not reach the container.
//! - `start` (and `run`) binds the datagram socket `notify.sock` in that directory (mode
//!   0777, any uid may send) before it releases the init, then waits until a datagram
//!   carries a `READY=` line or the init exits (a pidfd: never a hang). On READY it sends
//!   the host socket that line, then `MAINPID=<pid>` (the init, or for `run` in the
//!   foreground rsrun itself), then `BARRIER=1` with a pipe whose closing shows the
//!   manager has taken the messages (30 s at most), as runc does. An init that exits
//!   first ends the wait without an error (runc's behaviour).
//!
//! The directory lives in the container's state directory, so whatever removes that
//! (`delete`, after a crash too: see `state`) removes it.

use crate::error::{Error, Result};
use crate::state::ContainerDir;
use crate::sys::{fs as sfs, proc, socket};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use oci_spec::runtime::{Mount, Spec};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The socket directory, in the container's state directory.
pub const DIR: &str = "notify";
/// The socket in it.
pub const SOCKET: &str = "notify.sock";
/// Where the directory appears in the container.
pub const IN_CONTAINER: &str = "/run/notify";
/// How long the host manager has to take the messages (runc's bound).
const BARRIER_LIMIT: Duration = Duration::from_secs(30);

/// The host's notify socket: NOTIFY_SOCKET in rsrun's environment, when not empty.
pub fn host_socket() -> Option<PathBuf> {
    std::env::var_os("NOTIFY_SOCKET")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// For `create`, before anything exists: the host socket takes datagrams.
pub fn check_host(host: &Path) -> Result<()> {
    socket::datagram_connect(host)
        .map(drop)
        .map_err(|e| named(e, host))
}

/// For `create`: give the container the socket directory (mount and environment, which
/// replaces a NOTIFY_SOCKET of the spec's). `state_dir` is `<root>/<id>`, absolute.
pub fn add_to_spec(spec: &mut Spec, state_dir: &Path) {
    let mut mount = Mount::default();
    mount.set_destination(PathBuf::from(IN_CONTAINER));
    mount.set_source(Some(state_dir.join(DIR)));
    mount.set_options(Some(
        ["bind", "nosuid", "noexec", "nodev", "ro"]
            .map(String::from)
            .to_vec(),
    ));
    spec.mounts_mut().get_or_insert_with(Vec::new).push(mount);
    if let Some(p) = spec.process_mut() {
        let env = p.env_mut().get_or_insert_with(Vec::new);
        env.retain(|e| !e.starts_with("NOTIFY_SOCKET="));
        env.push(format!("NOTIFY_SOCKET={IN_CONTAINER}/{SOCKET}"));
    }
}

/// For `create`: the socket directory, before the init mounts it.
pub fn make_dir(dir: &ContainerDir) -> Result<()> {
    let path = dir.path.join(DIR);
    sfs::mkdirat(&dir.fd, Path::new(DIR), 0o755, &path)?;
    // Whatever the umask: the container's processes, any uid, go through it.
    sfs::chmod(&path, 0o755)
}

/// `start` waits for the container's READY and relays it (see the module doc).
pub struct Relay {
    host: OwnedFd,
    host_path: PathBuf,
    sock: OwnedFd,
    sock_path: PathBuf,
    init: OwnedFd,
    init_pid: i32,
}

/// For `start`, before the init is released: the host socket connected, the container's
/// socket bound, the init's pidfd. None when NOTIFY_SOCKET is unset or the container was
/// created without it (it has no socket directory to send to).
pub fn listen(dir: &ContainerDir, init_pid: i32) -> Result<Option<Relay>> {
    let Some(host_path) = host_socket() else {
        return Ok(None);
    };
    let sock_dir = dir.path.join(DIR);
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
    let dfd = match sfs::openat(&dir.fd, Path::new(DIR), flags, 0, &sock_dir) {
        Ok(fd) => fd,
        Err(e) if e.errno() == Some(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    let host = socket::datagram_connect(&host_path).map_err(|e| named(e, &host_path))?;
    let init = proc::pidfd_open(init_pid)?;
    let sock_path = sock_dir.join(SOCKET);
    sfs::remove_file_at(&dfd, Path::new(SOCKET), &sock_path)?;
    let sock = socket::datagram_bind_in(&dfd, SOCKET, &sock_path)?;
    Ok(Some(Relay {
        host,
        host_path,
        sock,
        sock_path,
        init,
        init_pid,
    }))
}

impl Relay {
    /// Wait for a `READY=` line from the container or for its init to exit; relay READY
    /// with `MAINPID=main_pid` (the init's pid when None).
    pub fn wait(self, main_pid: Option<i32>, warn: &mut dyn FnMut(&str)) -> Result<()> {
        let mut buf = vec![0u8; 4096];
        loop {
            let [sock_ready, init_gone] = crate::sys::poll::wait_any(
                [self.sock.as_fd(), self.init.as_fd()],
                &self.sock_path,
            )?;
            if sock_ready {
                let n = socket::recv_datagram(&self.sock, &mut buf, &self.sock_path)?;
                if let Some(line) = ready_line(&buf[..n]) {
                    let line = line.to_vec();
                    return self.relay(&line, main_pid.unwrap_or(self.init_pid), warn);
                }
                continue;
            }
            if init_gone {
                return Ok(());
            }
        }
    }

    fn relay(&self, ready: &[u8], main_pid: i32, warn: &mut dyn FnMut(&str)) -> Result<()> {
        let mut msg = ready.to_vec();
        msg.push(b'\n');
        self.send(&msg, &[])?;
        self.send(format!("MAINPID={main_pid}\n").as_bytes(), &[])?;
        // BARRIER=1 with a pipe's write end: the manager closes it once it has taken
        // everything sent before. One that ignores barriers is waited for 30 s.
        let (r, w) = socket::pipe()?;
        self.send(b"BARRIER=1", &[w.as_raw_fd()])?;
        drop(w);
        let shown = Path::new("the BARRIER=1 pipe");
        let end = Instant::now() + BARRIER_LIMIT;
        if crate::sys::poll::wait_any_until([r.as_fd()], end, shown)?.is_none() {
            warn(&format!(
                "{}: no answer to BARRIER=1 in {BARRIER_LIMIT:?}",
                self.host_path.display()
            ));
            return Ok(());
        }
        let mut b = [0u8; 1];
        match crate::sys::fs::read_fd(&r, &mut b, shown)? {
            0 => Ok(()),
            _ => Err(Error::container(format!(
                "{}: unexpected data on the BARRIER=1 pipe",
                self.host_path.display()
            ))),
        }
    }

    fn send(&self, data: &[u8], fds: &[std::os::fd::RawFd]) -> Result<()> {
        socket::send_frame(&self.host, data, fds).map_err(|e| {
            Error::sys(
                "send to NOTIFY_SOCKET",
                &self.host_path,
                e.errno().unwrap_or(Errno::EIO),
            )
        })
    }
}

/// The first `READY=` line of a notification, without its newline.
pub fn ready_line(msg: &[u8]) -> Option<&[u8]> {
    msg.split(|b| *b == b'\n')
        .find(|l| l.starts_with(b"READY="))
}

/// A host socket error, saying it is NOTIFY_SOCKET's.
fn named(e: Error, host: &Path) -> Error {
    match e.errno() {
        Some(errno) => Error::sys("connect to NOTIFY_SOCKET", host, errno),
        None => e,
    }
}

#[cfg(test)]
mod tests {
    use super::{add_to_spec, ready_line};

    #[test]
    fn the_container_gets_the_directory_read_only_and_its_own_notify_socket() {
        let mut spec = oci_spec::runtime::Spec::default();
        if let Some(p) = spec.process_mut() {
            p.set_env(Some(vec![
                "A=1".into(),
                "NOTIFY_SOCKET=/from/the/spec".into(),
            ]));
        }
        let before = spec.mounts().as_ref().map_or(0, |m| m.len());
        add_to_spec(&mut spec, std::path::Path::new("/run/rsrun/c1"));
        let mounts = spec.mounts().clone().unwrap_or_default();
        assert_eq!(mounts.len(), before + 1);
        let m = mounts.last().unwrap();
        assert_eq!(m.destination(), std::path::Path::new("/run/notify"));
        assert_eq!(
            m.source().as_deref(),
            Some(std::path::Path::new("/run/rsrun/c1/notify"))
        );
        let opts = m.options().clone().unwrap_or_default();
        for o in ["bind", "ro", "nosuid", "nodev", "noexec"] {
            assert!(opts.iter().any(|x| x == o), "{opts:?}");
        }
        let env = spec.process().as_ref().unwrap().env().clone().unwrap();
        assert_eq!(env, vec!["A=1", "NOTIFY_SOCKET=/run/notify/notify.sock"]);
    }

    #[test]
    fn ready_is_any_line_of_the_datagram() {
        assert_eq!(ready_line(b"READY=1"), Some(&b"READY=1"[..]));
        assert_eq!(ready_line(b"STATUS=up\nREADY=1\n"), Some(&b"READY=1"[..]));
        assert_eq!(ready_line(b"STATUS=READY=1"), None);
        assert_eq!(ready_line(b""), None);
    }
}

//! Terminals: a pty created inside the container, its peer made the process's stdio and
//! controlling terminal (and, for the init, bound onto /dev/console from the fd), and the
//! master sent over the console socket with SCM_RIGHTS, as runc does.

use crate::error::Result;
use crate::plan::ProcessPlan;
use crate::sys::{self, fs as sfs, socket};
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// Called in the child after setsid. `console` is the path to bind the peer onto
/// (`/dev/console` for the init; none for exec).
pub fn setup(console_socket: &impl AsFd, p: &ProcessPlan, console: Option<&Path>) -> Result<()> {
    let (master, peer) = sys::tty::open_pty(Path::new("/dev/ptmx"))?;
    if let Some((rows, cols)) = p.console_size {
        sys::tty::set_winsize(&peer, rows, cols)?;
    }
    if let Some(dest) = console {
        // An empty regular file to mount over; the mount source is the verified pty fd.
        let _ = sfs::open_mode(
            dest,
            OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW,
            0o600,
        )?;
        sfs::mount(
            Some(Path::new(&sys::fd_path(&peer))),
            dest,
            None,
            MsFlags::MS_BIND,
            None,
            dest,
        )?;
    }
    for n in 0..3 {
        sys::dup2(&peer, n)?;
    }
    sys::tty::set_controlling_tty(&peer)?;
    drop(peer);
    use std::os::fd::AsRawFd;
    socket::send_frame(console_socket, b"/dev/ptmx", &[master.as_raw_fd()])
}

/// Receive a pty master sent by `setup` (the other end of a console socket).
pub fn recv_master(sock: &impl AsFd) -> Result<OwnedFd> {
    let (_, mut fds) = socket::recv_frame(sock)?;
    fds.pop().ok_or_else(|| {
        crate::error::Error::Child("no pty master received on the console socket".into())
    })
}

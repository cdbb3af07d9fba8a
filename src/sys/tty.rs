//! Terminals: the container's pty pair (opened through the master, never by a /dev/pts
//! path), window sizes and the controlling terminal.

use super::{fs, own_fd};
use crate::error::{Error, Result};
use nix::errno::Errno;
use std::os::fd::{AsRawFd, OwnedFd};

/// A pty master from `ptmx` (an fd on the container's /dev/ptmx) and its peer, opened
/// through the master with TIOCGPTPEER so no /dev/pts path is ever resolved
/// (CVE-2025-52565).
pub fn open_pty(ptmx: &std::path::Path) -> Result<(OwnedFd, OwnedFd)> {
    use nix::fcntl::OFlag;
    let master = fs::open(ptmx, OFlag::O_RDWR | OFlag::O_NOCTTY)?;
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to an int.
    let ret = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) };
    Errno::result(ret).map_err(|e| Error::sys("unlockpt", ptmx, e))?;
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd.
    let peer = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    let peer = Errno::result(peer).map_err(|e| Error::sys("open pty peer", ptmx, e))?;
    // SAFETY: the fd the syscall above just returned, owned by nobody.
    Ok((master, unsafe { own_fd(peer) }))
}

/// Set a terminal's window size.
pub fn set_winsize(fd: &impl AsRawFd, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    Errno::result(ret)
        .map(drop)
        .map_err(|e| Error::sys_nopath("TIOCSWINSZ", e))
}

/// A terminal's window size, if `fd` is one.
pub fn get_winsize(fd: &impl AsRawFd) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (ret == 0).then_some((ws.ws_row, ws.ws_col))
}

/// Make `fd` (a terminal) the controlling terminal of the calling session leader.
pub fn set_controlling_tty(fd: &impl AsRawFd) -> Result<()> {
    // SAFETY: TIOCSCTTY with arg 0.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) };
    Errno::result(ret)
        .map(drop)
        .map_err(|e| Error::sys_nopath("TIOCSCTTY", e))
}

/// Our stdin put in raw mode (cfmakeraw) while this lives; its settings come back when
/// it is dropped. Not a terminal: nothing changes.
pub struct RawStdin {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawStdin {
    pub fn enter() -> RawStdin {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        use std::os::fd::AsFd;
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            cfmakeraw(&mut raw);
            let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        RawStdin { saved }
    }
}

impl Drop for RawStdin {
    fn drop(&mut self) {
        use std::os::fd::AsFd;
        if let Some(t) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin().as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}

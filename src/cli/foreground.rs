//! Waiting in the foreground for a container process (`run`, `exec` without --detach):
//! forward every signal to it, reap it, and with a terminal proxy stdin/stdout to the
//! pty master (raw mode on our own terminal, window size kept in sync).

use crate::error::Result;
use crate::sys::{self, proc};
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// Block every signal in this thread (call before the child can exit, after it is cloned
/// or with the child restoring its mask). Returns the previous mask.
pub fn block_signals() -> Result<sys::signals::SavedMask> {
    sys::signals::block_all()
}

/// Wait for `pid` with every signal blocked (see `block_signals`); returns its exit code
/// (128+N for a signal).
pub fn wait(pid: i32, master: Option<OwnedFd>) -> Result<i32> {
    let sfd = sys::signals::SignalQueue::new()?;
    let _raw = master.as_ref().map(|_| sys::tty::RawStdin::enter());
    if let Some(m) = &master {
        if let Some((r, c)) = sys::tty::get_winsize(&std::io::stdout()) {
            let _ = sys::tty::set_winsize(m, r, c);
        }
    }
    let stdin = std::io::stdin();
    let mut stdin_open = master.is_some();
    let mut buf = [0u8; 8192];
    let code = loop {
        if let st @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..)) = proc::waitpid(pid, true)?
        {
            break proc::exit_code(st).unwrap_or(0);
        }
        let mut fds = vec![sfd.as_fd()];
        if let Some(m) = &master {
            fds.push(m.as_fd());
            if stdin_open {
                fds.push(stdin.as_fd());
            }
        }
        let Some(ready) = sys::poll::wait_any_once(&fds, Path::new("signalfd and terminal"))?
        else {
            continue;
        };
        if ready[0] {
            if let Some(sig) = sfd.next_signal() {
                if sig == Signal::SIGWINCH as i32 {
                    if let (Some(m), Some((r, c))) =
                        (&master, sys::tty::get_winsize(&std::io::stdout()))
                    {
                        let _ = sys::tty::set_winsize(m, r, c);
                    }
                } else if sig != Signal::SIGCHLD as i32 {
                    let _ = proc::kill_raw(pid, sig);
                }
            }
        }
        if let Some(m) = &master {
            if ready.get(1) == Some(&true) && !copy(m.as_fd(), std::io::stdout().as_fd(), &mut buf)
            {
                // The pty closed: the process is exiting; waitpid will see it.
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            if ready.get(2) == Some(&true) && !copy(stdin.as_fd(), m.as_fd(), &mut buf) {
                stdin_open = false;
            }
        }
    };
    if let Some(m) = &master {
        // Drain what the process wrote before it exited.
        let _ = sys::fs::set_nonblocking(m, Path::new("the pty master"));
        while copy(m.as_fd(), std::io::stdout().as_fd(), &mut buf) {}
    }
    Ok(code)
}

/// Copy one read's worth from `from` to `to`; false on EOF or error.
fn copy(from: BorrowedFd, to: BorrowedFd, buf: &mut [u8]) -> bool {
    match sys::fs::read_fd(&from, buf, Path::new("the terminal")) {
        Ok(0) | Err(_) => false,
        Ok(n) => crate::sys::socket::write_all(&to, &buf[..n]).is_ok(),
    }
}

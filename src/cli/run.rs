//! `rsrun run` in the foreground: create, start, forward signals to the init (proxying its
//! terminal when it has one and no console socket was given), reap it, delete the
//! container, and return its exit status (128+N for a signal).

use super::foreground;
use crate::container::notify::Relay;
use crate::container::{CreateOpts, Runtime};
use crate::error::Result;
use crate::logger::Logger;

pub fn run(rt: &Runtime, id: &str, mut opts: CreateOpts, detach: bool, keep: bool) -> Result<i32> {
    let proxy = if !detach && opts.console_socket.is_none() && rt.wants_terminal(&opts.bundle) {
        let (ours, theirs) = crate::sys::socket::stream_pair()?;
        opts.console_fd = Some(theirs);
        Some(ours)
    } else {
        None
    };
    let pid = rt.create(id, &opts)?;
    if detach {
        // As runc: a container that cannot be started is not left behind (unless --keep).
        if let Err(e) = rt.start(id) {
            if !keep {
                let _ = rt.delete(id, true);
            }
            return Err(e);
        }
        return Ok(0);
    }
    let master = match &proxy {
        Some(sock) => match crate::process::tty::recv_master(sock) {
            Ok(m) => Some(m),
            Err(e) => {
                let _ = rt.delete(id, true);
                return Err(e);
            }
        },
        None => None,
    };
    // Every signal is blocked before the user process can exit, so SIGCHLD is never lost
    // and everything else is forwarded. The init was cloned with our old mask.
    let old = foreground::block_signals()?;
    let result = rt.release(id).and_then(|relay| {
        let relaying = relay.map(|r| relay_in_background(r, rt.log.clone()));
        let code = foreground::wait(pid, master);
        // The init is gone (its pidfd ends the relay's wait) unless the wait failed.
        if let (Some(t), Ok(_)) = (relaying, &code) {
            let _ = t.join();
        }
        code
    });
    old.restore();
    if result.is_err() || !keep {
        let del = rt.delete(id, true);
        if result.is_ok() {
            del?;
        }
    }
    result
}

/// The READY relay (NOTIFY_SOCKET) beside the foreground wait, so signals are forwarded
/// while the container gets ready. In the foreground rsrun is the main process a service
/// manager watches: MAINPID is its own pid. The thread ends on READY or when the init
/// exits. It inherits this thread's mask, every signal blocked: they reach the signalfd.
fn relay_in_background(relay: Relay, log: Logger) -> std::thread::JoinHandle<()> {
    let me = crate::sys::proc::getpid();
    std::thread::spawn(move || {
        if let Err(e) = relay.wait(Some(me), &mut |w| log.warn(w)) {
            log.warn(&format!("NOTIFY_SOCKET: {e}"));
        }
    })
}

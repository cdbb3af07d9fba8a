//! `rsrun run` in the foreground: create, start, forward signals to the init, reap it,
//! delete the container, and return its exit status (128+N for a signal).

use crate::container::{CreateOpts, Runtime};
use crate::error::{Error, Result};
use crate::sys::proc;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::WaitStatus;

pub fn run(rt: &Runtime, id: &str, opts: &CreateOpts, detach: bool, keep: bool) -> Result<i32> {
    let pid = rt.create(id, opts)?;
    if detach {
        rt.start(id)?;
        return Ok(0);
    }
    // Block every signal before the user process can exit, so SIGCHLD is never lost and
    // everything else is forwarded.
    let all = SigSet::all();
    let old = all
        .thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)
        .map_err(|e| Error::sys_nopath("sigprocmask", e))?;
    let result = rt.start(id).and_then(|()| wait_forwarding(&all, pid));
    let _ = old.thread_set_mask();
    if result.is_err() || !keep {
        let del = rt.delete(id, true);
        if result.is_ok() {
            del?;
        }
    }
    result
}

fn wait_forwarding(set: &SigSet, pid: i32) -> Result<i32> {
    loop {
        if let Some(code) = reaped(pid)? {
            return Ok(code);
        }
        let sig = set.wait().map_err(|e| Error::sys_nopath("sigwait", e))?;
        if sig != Signal::SIGCHLD {
            let _ = proc::kill(pid, sig);
        }
    }
}

fn reaped(pid: i32) -> Result<Option<i32>> {
    match proc::waitpid(pid, true)? {
        WaitStatus::StillAlive => Ok(None),
        st => Ok(proc::exit_code(st)),
    }
}

//! Signals: the dispositions of the container's init (reset before execve, an exit on
//! termination signals while it waits for `start`), the signal mask, and the signalfd
//! a foreground wait reads every signal from.

use crate::error::{Error, Result};

/// Every signal back to its default action before execve: an ignored one (SIGPIPE,
/// which rsrun ignores, or whatever its caller ignored) would stay ignored in the
/// container process; caught ones are reset by execve anyway.
pub fn reset_signal_dispositions() {
    /// The kernel's `struct sigaction` (glibc's wrapper refuses its reserved 32 and 33).
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads a live struct of the kernel's layout; SIG_DFL has
        // no handler to run.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
    }
}

/// A created container's init, waiting for `start`, ends on SIGHUP, SIGINT, SIGTERM or
/// SIGQUIT as runc's does (`kill ID TERM`, or a signal through the init's pidfd). As
/// the init of a pid namespace it would otherwise ignore them: the kernel does not
/// deliver a signal left at its default action to a namespace's init. execve puts them
/// back to their default action.
pub fn exit_on_termination_signals() -> Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    extern "C" fn exit_by(sig: libc::c_int) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + sig) }
    }
    let action = SigAction::new(
        SigHandler::Handler(exit_by),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGQUIT,
    ] {
        // SAFETY: the handler only calls _exit.
        unsafe { sigaction(sig, &action) }
            .map_err(|e| Error::sys_nopath(format!("sigaction {sig}"), e))?;
    }
    Ok(())
}

/// The signal mask this thread had before `block_all`.
pub struct SavedMask(nix::sys::signal::SigSet);

impl SavedMask {
    /// Put the mask back (pthread_sigmask SIG_SETMASK; it cannot fail on a mask
    /// `block_all` read).
    pub fn restore(&self) {
        let _ = self.0.thread_set_mask();
    }
}

/// Block every signal in this thread; returns the mask it had.
pub fn block_all() -> Result<SavedMask> {
    use nix::sys::signal::{SigSet, SigmaskHow};
    SigSet::all()
        .thread_swap_mask(SigmaskHow::SIG_BLOCK)
        .map(SavedMask)
        .map_err(|e| Error::sys_nopath("sigprocmask", e))
}

/// Unblock every signal in this thread (the user process starts with none blocked).
pub fn unblock_all() {
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
}

/// Every signal, read from an fd (signalfd(2), CLOEXEC) instead of being delivered:
/// for a thread that blocks them all (`block_all`) and polls the fd.
pub struct SignalQueue(nix::sys::signalfd::SignalFd);

impl SignalQueue {
    pub fn new() -> Result<SignalQueue> {
        use nix::sys::signalfd::{SfdFlags, SignalFd};
        SignalFd::with_flags(&nix::sys::signal::SigSet::all(), SfdFlags::SFD_CLOEXEC)
            .map(SignalQueue)
            .map_err(|e| Error::sys_nopath("signalfd", e))
    }

    /// The number of the next pending signal, None when there is none or the read fails.
    pub fn next_signal(&self) -> Option<i32> {
        match self.0.read_signal() {
            Ok(Some(info)) => Some(info.ssi_signo as i32),
            _ => None,
        }
    }
}

impl std::os::fd::AsFd for SignalQueue {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

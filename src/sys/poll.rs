//! Waiting on several fds at once (poll(2)).

use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// Wait, without a timeout, until one of `fds` is readable, hung up or in error (EINTR
/// retried); returns which are. `shown` names what is waited on in an error.
pub fn wait_any<const N: usize>(fds: [BorrowedFd<'_>; N], shown: &Path) -> Result<[bool; N]> {
    let mut fds = fds.map(|fd| PollFd::new(fd, PollFlags::POLLIN));
    loop {
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll", shown, e)),
        }
    }
    Ok(fds.map(|f| f.revents().is_some_and(|r| !r.is_empty())))
}

/// Wait until every one of `fds` is readable, hung up or in error, or `timeout` passes
/// (EINTR retried); true if all are. For pidfds: until every process has exited.
pub fn wait_all<F: AsFd>(fds: &[F], timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    let mut waiting: Vec<PollFd<'_>> = fds
        .iter()
        .map(|f| PollFd::new(f.as_fd(), PollFlags::POLLIN))
        .collect();
    while !waiting.is_empty() {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let ms = PollTimeout::try_from(left.as_millis().clamp(1, 60_000) as i32)
            .unwrap_or(PollTimeout::MAX);
        match poll(&mut waiting, ms) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return false,
        }
        waiting.retain(|f| !f.revents().is_some_and(|r| !r.is_empty()));
    }
    true
}

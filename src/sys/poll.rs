//! Waiting on several fds at once (poll(2)).

use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::os::fd::BorrowedFd;
use std::path::Path;

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

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

/// One poll(2), without a timeout, until one of `fds` is readable, hung up or in error:
/// which are, or None when a signal interrupted it (EINTR), for a caller that checks
/// something else before it waits again.
pub fn wait_any_once(fds: &[BorrowedFd<'_>], shown: &Path) -> Result<Option<Vec<bool>>> {
    let mut fds: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
        .collect();
    match poll(&mut fds, PollTimeout::NONE) {
        Ok(_) => Ok(Some(
            fds.iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect(),
        )),
        Err(Errno::EINTR) => Ok(None),
        Err(e) => Err(Error::sys("poll", shown, e)),
    }
}

/// `wait_any` until `deadline` (EINTR retried): None when it passes with none of `fds`
/// ready.
pub fn wait_any_until<const N: usize>(
    fds: [BorrowedFd<'_>; N],
    deadline: Instant,
    shown: &Path,
) -> Result<Option<[bool; N]>> {
    let mut fds = fds.map(|fd| PollFd::new(fd, PollFlags::POLLIN));
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms =
            PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, ms) {
            Ok(0) if left.is_zero() => return Ok(None),
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {
                return Ok(Some(
                    fds.map(|f| f.revents().is_some_and(|r| !r.is_empty())),
                ))
            }
            Err(e) => return Err(Error::sys("poll", shown, e)),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_say_which_fds_are_ready_and_when_none_became() {
        let shown = Path::new("test pipe");
        let (r1, w1) = nix::unistd::pipe().unwrap();
        let (r2, _w2) = nix::unistd::pipe().unwrap();
        let soon = || Instant::now() + Duration::from_millis(20);
        let none = wait_any_until([r1.as_fd(), r2.as_fd()], soon(), shown).unwrap();
        assert_eq!(none, None);
        nix::unistd::write(&w1, b"x").unwrap();
        let both = [r1.as_fd(), r2.as_fd()];
        assert_eq!(wait_any(both, shown).unwrap(), [true, false]);
        let swapped = [r2.as_fd(), r1.as_fd()];
        let ready = wait_any_until(swapped, soon(), shown).unwrap();
        assert_eq!(ready, Some([false, true]));
        // A pipe whose writer is gone is ready too (hung up).
        drop(w1);
        let mut b = [0u8; 1];
        nix::unistd::read(&r1, &mut b).unwrap();
        assert_eq!(wait_any([r1.as_fd()], shown).unwrap(), [true]);
        let once = wait_any_once(&[r2.as_fd(), r1.as_fd()], shown).unwrap();
        assert_eq!(once, Some(vec![false, true]));
    }
}

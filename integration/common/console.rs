//! The other end of a console socket: receiving the pty master a runtime sends, and
//! reading from it under a real deadline.

use super::recv_with_fd;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

/// Accept one connection and receive the fd sent with SCM_RIGHTS.
pub fn receive_master(l: &UnixListener) -> (String, OwnedFd) {
    let (conn, _) = l.accept().unwrap();
    let (data, fd) = recv_with_fd(&conn);
    (String::from_utf8_lossy(&data).into_owned(), fd)
}

/// Read from the master until `want` appears; fails after 10 s even if nothing arrives
/// (each read waits in poll(2) for what is left of the deadline).
pub fn read_until(master: &mut std::fs::File, want: &str) -> String {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let end = Instant::now() + Duration::from_secs(10);
    let mut out = String::new();
    let mut buf = [0u8; 1024];
    while !out.contains(want) {
        let left = end.saturating_duration_since(Instant::now());
        let ms = PollTimeout::try_from(left.as_millis().min(10_000) as i32).unwrap();
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut fds, ms).unwrap_or(0);
        assert!(
            ready > 0 && Instant::now() < end,
            "timed out waiting for {want:?}, got {out:?}"
        );
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => break,
        }
    }
    out
}

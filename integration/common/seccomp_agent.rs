//! A seccomp notify agent, as runc's seccompagent: it listens on a profile's
//! `listenerPath`, takes the listener fd rsrun sends with the container's state, and
//! answers the filter's notifications in one of a few ways.

use super::recv_with_fd;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::thread::JoinHandle;

#[repr(C)]
#[derive(Default)]
struct SeccompData {
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

/// `struct seccomp_notif`.
#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    data: SeccompData,
}

/// `struct seccomp_notif_resp`.
#[repr(C)]
#[derive(Default)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

const NOTIF_RECV: u64 = 0xC050_2100;
const NOTIF_SEND: u64 = 0xC018_2101;
const SECCOMP_USER_NOTIF_FLAG_CONTINUE: u32 = 1;

/// How the agent answers the notifications.
pub enum Answer {
    /// Every one with "continue", until none comes for 20 s or the filter is gone.
    Continue,
    /// The first one fails with this errno; then the agent is done (it keeps no fd).
    FirstFailsWith(i32),
    /// None: it holds the fd (so notifications stay pending) until no process uses the
    /// filter any more.
    Never,
    /// None: it closes the fd at once (the agent is gone before the first one).
    Leave,
}

/// What the agent was sent and asked.
pub struct Seen {
    /// The container state document sent with the fd.
    pub state: serde_json::Value,
    /// The syscall numbers it was notified of.
    pub syscalls: Vec<i32>,
}

/// An agent bound on `sock` now (so the runtime finds it), serving one connection in a
/// thread.
pub fn agent(sock: &Path, answer: Answer) -> JoinHandle<Seen> {
    serve(UnixListener::bind(sock).unwrap(), answer)
}

/// The agent on a socket bound already (one in the abstract namespace, say).
pub fn serve(l: UnixListener, answer: Answer) -> JoinHandle<Seen> {
    std::thread::spawn(move || {
        let (conn, _) = l.accept().unwrap();
        let (data, fd) = recv_with_fd(&conn);
        let state = serde_json::from_slice(&data).unwrap();
        let syscalls = match answer {
            Answer::Continue => continue_all(&fd),
            Answer::FirstFailsWith(errno) => vec![fail_first(&fd, errno)],
            Answer::Never => {
                wait_hangup(&fd);
                Vec::new()
            }
            Answer::Leave => {
                drop(fd);
                Vec::new()
            }
        };
        Seen { state, syscalls }
    })
}

fn continue_all(fd: &OwnedFd) -> Vec<i32> {
    let mut seen = Vec::new();
    loop {
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let n = unsafe { libc::poll(&mut p, 1, 20_000) };
        if n <= 0 || p.revents & libc::POLLIN == 0 {
            return seen;
        }
        let mut req = Notif::default();
        if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV as _, &mut req) } != 0 {
            continue;
        }
        seen.push(req.data.nr);
        let resp = NotifResp {
            id: req.id,
            val: 0,
            error: 0,
            flags: SECCOMP_USER_NOTIF_FLAG_CONTINUE,
        };
        unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND as _, &resp) };
    }
}

/// Answer the next notification with `-errno`; its syscall number.
fn fail_first(fd: &OwnedFd, errno: i32) -> i32 {
    let mut req = Notif::default();
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV as _, &mut req) };
    assert_eq!(r, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
    let resp = NotifResp {
        id: req.id,
        val: 0,
        error: -errno,
        flags: 0,
    };
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND as _, &resp) };
    assert_eq!(r, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
    req.data.nr
}

/// Block until no process uses the filter any more (POLLHUP), at most 60 s.
fn wait_hangup(fd: &OwnedFd) {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: 0,
        revents: 0,
    };
    unsafe { libc::poll(&mut p, 1, 60_000) };
}

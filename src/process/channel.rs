//! The typed messages between `rsrun create` (parent) and the container's init (child),
//! carried as bounded JSON frames on one SEQPACKET socketpair.
//!
//! | step | direction      | message     | meaning                                                    |
//! |------|----------------|-------------|------------------------------------------------------------|
//! | 0    | child → parent | `TimeNsMade` | the init made its time namespace (only with a new user namespace, `NamespacePlan::time_made_by_init`); the parent writes its offsets before `Proceed` |
//! | 1a   | parent → child | `MountSource`/`DeviceSource` + fd | a bind source (or host device node) opened by the parent in the child's mount namespace, before its user namespace applies (only for a user-namespaced init; one per source it could open) |
//! | 1    | parent → child | `Proceed`   | id maps written, child placed in its cgroup                |
//! | 2    | child → parent | `NsReady`   | namespaces joined/created, rootfs mounted, /dev set up, not pivoted (only when prestart/createRuntime hooks exist) |
//! | 3    | parent → child | `HooksDone` | prestart and createRuntime hooks ran                       |
//! | 3b   | child → parent | `SeccompListener{fd}` | the notify filter is loaded; its listener is our fd `fd`, which the parent takes with pidfd_getfd (only with SCMP_ACT_NOTIFY; sent with write(2), see `send_by_write`) |
//! | 4    | child → parent | `Ready`     | rootfs built, privileges dropped, waiting for `start`      |
//! | any  | child → parent | `Log`       | a log line from the child, forwarded to rsrun's log        |
//! | any  | child → parent | `Failed`    | a step failed; the child exits, the parent reports it      |
//!
//! After `Ready`, the init waits on the container's start socket; `start` connects and
//! reads until EOF (the init exec'd, CLOEXEC closed the socket) or a `Failed` frame.

use crate::error::{Error, Result};
use crate::sys::socket;
use serde::{Deserialize, Serialize};
use std::os::fd::{AsFd, OwnedFd};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Msg {
    TimeNsMade,
    /// Carries the init's pid as the host sees it (for hook state).
    Proceed {
        pid: i32,
    },
    /// Comes with an O_PATH fd on the source of `mounts[index]` (a bind).
    MountSource {
        index: usize,
    },
    /// Comes with an O_PATH fd on the host node of `linux.devices[index]`.
    DeviceSource {
        index: usize,
    },
    NsReady,
    HooksDone,
    Ready,
    SeccompListener {
        fd: i32,
    },
    Log {
        level: String,
        msg: String,
    },
    /// A step failed: its message, and for a failed syscall its parts, so the parent's
    /// error keeps the errno (`Msg::failed`, `Msg::error`).
    Failed {
        msg: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        op: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        errno: Option<i32>,
    },
}

/// The start of the error when the init closed the socket without a word (it died):
/// `create` replaces it with how it died (`process::create`).
pub const INIT_GONE: &str = "container init exited before";

/// The most of any one string a `Failed` carries: a value from the config (a 1 MiB
/// hostname, cwd or argument) must not make the report itself too big to send.
const MAX_FAILED_TEXT: usize = 1024;

/// `s`, or its start and end around how long it was (so a cause at the end survives).
fn capped(s: &str) -> String {
    if s.len() <= MAX_FAILED_TEXT {
        return s.to_string();
    }
    let mut head = MAX_FAILED_TEXT * 2 / 3;
    while !s.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = s.len() - MAX_FAILED_TEXT / 4;
    while !s.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}…[{} bytes]…{}", &s[..head], s.len(), &s[tail..])
}

impl Msg {
    /// The report of a failed step, bounded in size, with op, path and errno kept.
    pub fn failed(e: &Error) -> Msg {
        match e {
            Error::Sys { op, path, errno } => {
                let short = Error::Sys {
                    op: capped(op),
                    path: path.as_deref().map(capped),
                    errno: *errno,
                };
                Msg::Failed {
                    msg: short.to_string(),
                    op: Some(capped(op)),
                    path: path.as_deref().map(capped),
                    errno: Some(*errno as i32),
                }
            }
            e => Msg::Failed {
                msg: capped(&e.to_string()),
                op: None,
                path: None,
                errno: e.errno().map(|n| n as i32),
            },
        }
    }

    /// The error a `Failed` reports (a syscall failure again as one, errno included).
    pub fn error(self) -> Error {
        match self {
            Msg::Failed {
                op: Some(op),
                path,
                errno: Some(n),
                ..
            } => Error::Sys {
                op,
                path,
                errno: nix::errno::Errno::from_raw(n),
            },
            Msg::Failed { msg, .. } => Error::Child(msg),
            m => Error::Child(format!("protocol error: unexpected {}", m.name())),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Msg::TimeNsMade => "TimeNsMade",
            Msg::Proceed { .. } => "Proceed",
            Msg::MountSource { .. } => "MountSource",
            Msg::DeviceSource { .. } => "DeviceSource",
            Msg::NsReady => "NsReady",
            Msg::HooksDone => "HooksDone",
            Msg::Ready => "Ready",
            Msg::SeccompListener { .. } => "SeccompListener",
            Msg::Log { .. } => "Log",
            Msg::Failed { .. } => "Failed",
        }
    }
}

/// What the parent opened for the init before `Proceed`: fds by index in `mounts` and
/// in `linux.devices`.
#[derive(Default)]
pub struct Sources {
    pub mounts: Vec<(usize, OwnedFd)>,
    pub devices: Vec<(usize, OwnedFd)>,
}

pub struct Channel {
    fd: OwnedFd,
}

impl Channel {
    pub fn new(fd: OwnedFd) -> Self {
        Channel { fd }
    }

    pub fn send(&self, m: &Msg) -> Result<()> {
        let data = serde_json::to_vec(m).map_err(|e| Error::Child(e.to_string()))?;
        socket::send_frame(&self.fd, &data, &[])
    }

    /// Send a message with one fd attached (SCM_RIGHTS).
    pub fn send_fd(&self, m: &Msg, fd: &impl std::os::fd::AsRawFd) -> Result<()> {
        let data = serde_json::to_vec(m).map_err(|e| Error::Child(e.to_string()))?;
        socket::send_frame(&self.fd, &data, &[fd.as_raw_fd()])
    }

    /// Send with write(2) instead of sendmsg(2): the one message sent right after a
    /// seccomp notify filter is loaded, before anyone holds its listener. A filter that
    /// notifies the syscall carrying this message would deadlock, so that syscall is the
    /// one notify filters may not cover; write is runc's choice of it (its init writes the
    /// fd number on a pipe), which keeps rsrun's rule the same as runc's.
    pub fn send_by_write(&self, m: &Msg) -> Result<()> {
        let data = serde_json::to_vec(m).map_err(|e| Error::Child(e.to_string()))?;
        socket::write_all(&self.fd, &data)
    }

    /// Expect `Proceed`, collecting the `MountSource` and `DeviceSource` fds that come
    /// before it. Returns the pid `Proceed` carries and the fds.
    pub fn expect_proceed(&self) -> Result<(i32, Sources)> {
        let mut sources = Sources::default();
        loop {
            let (data, mut fds) = socket::recv_frame(&self.fd)?;
            if data.is_empty() {
                return Err(Error::Child("the parent exited before Proceed".into()));
            }
            match decode(&data)? {
                Msg::Proceed { pid } => return Ok((pid, sources)),
                Msg::MountSource { index } if fds.len() == 1 => {
                    sources.mounts.push((index, fds.remove(0)))
                }
                Msg::DeviceSource { index } if fds.len() == 1 => {
                    sources.devices.push((index, fds.remove(0)))
                }
                m => {
                    return Err(Error::Child(format!(
                        "protocol error: expected Proceed, got {}",
                        m.name()
                    )))
                }
            }
        }
    }

    /// The next message, or `None` when the peer closed the socket.
    fn recv(&self) -> Result<Option<Msg>> {
        let (data, _fds) = socket::recv_frame(&self.fd)?;
        if data.is_empty() {
            return Ok(None);
        }
        decode(&data).map(Some)
    }

    /// Receive, forwarding `Log` lines to `log`, until a message arrives. `take` returns
    /// the payload of the kind named `want` or gives any other message back: a `Failed`
    /// becomes the error it reports, anything else is a protocol error.
    fn next_of<T>(
        &self,
        want: &'static str,
        log: &mut dyn FnMut(&str, &str),
        take: fn(Msg) -> std::result::Result<T, Msg>,
    ) -> Result<T> {
        loop {
            let m = match self.recv()? {
                Some(Msg::Log { level, msg }) => {
                    log(&level, &msg);
                    continue;
                }
                Some(m) => m,
                None => return Err(Error::Child(format!("{INIT_GONE} {want}"))),
            };
            return match take(m) {
                Ok(payload) => Ok(payload),
                Err(m @ Msg::Failed { .. }) => Err(m.error()),
                Err(m) => Err(Error::Child(format!(
                    "protocol error: expected {want}, got {}",
                    m.name()
                ))),
            };
        }
    }

    /// The parent waits for `TimeNsMade` (step 0).
    pub fn expect_time_ns_made(&self, log: &mut dyn FnMut(&str, &str)) -> Result<()> {
        self.next_of("TimeNsMade", log, |m| match m {
            Msg::TimeNsMade => Ok(()),
            m => Err(m),
        })
    }

    /// The parent waits for `NsReady` (step 2).
    pub fn expect_ns_ready(&self, log: &mut dyn FnMut(&str, &str)) -> Result<()> {
        self.next_of("NsReady", log, |m| match m {
            Msg::NsReady => Ok(()),
            m => Err(m),
        })
    }

    /// The child waits for `HooksDone` (step 3).
    pub fn expect_hooks_done(&self) -> Result<()> {
        self.next_of("HooksDone", &mut |_, _| {}, |m| match m {
            Msg::HooksDone => Ok(()),
            m => Err(m),
        })
    }

    /// The parent waits for `Ready` (step 4).
    pub fn expect_ready(&self, log: &mut dyn FnMut(&str, &str)) -> Result<()> {
        self.next_of("Ready", log, |m| match m {
            Msg::Ready => Ok(()),
            m => Err(m),
        })
    }

    /// The parent waits for `SeccompListener` (step 3b) and returns the fd number it
    /// names in the child.
    pub fn expect_seccomp_listener(&self, log: &mut dyn FnMut(&str, &str)) -> Result<i32> {
        self.next_of("SeccompListener", log, |m| match m {
            Msg::SeccompListener { fd } => Ok(fd),
            m => Err(m),
        })
    }

    /// After `Ready` from a process `exec` started (and not held by an exec fifo): the
    /// socket closes when its execve succeeds (CLOEXEC), or a `Failed` says why not.
    pub fn expect_execve(&self) -> Result<()> {
        match self.recv()? {
            None => Ok(()),
            Some(m) => Err(m.error()),
        }
    }

    pub fn fd(&self) -> impl AsFd + '_ {
        self.fd.as_fd()
    }
}

/// What the init wrote on the start connection before it closed: nothing when its execve
/// succeeded (the socket is CLOEXEC), else a `Failed` saying why; any other message is a
/// protocol error.
pub fn start_reply(data: &[u8]) -> Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    Err(decode(data)?.error())
}

pub fn decode(data: &[u8]) -> Result<Msg> {
    serde_json::from_slice(data).map_err(|e| Error::Child(format!("bad message from peer: {e}")))
}

pub fn encode(m: &Msg) -> Vec<u8> {
    serde_json::to_vec(m).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_reply_is_empty_or_the_failure() {
        assert!(start_reply(b"").is_ok());
        let failed = encode(&Msg::failed(&Error::sys(
            "execve",
            "/bin/x",
            nix::errno::Errno::ENOENT,
        )));
        let e = start_reply(&failed).unwrap_err();
        assert_eq!(e.errno(), Some(nix::errno::Errno::ENOENT));
        let e = start_reply(&encode(&Msg::Ready)).unwrap_err();
        assert!(e.to_string().contains("unexpected Ready"), "{e}");
        assert!(start_reply(b"{").is_err());
    }

    #[test]
    fn protocol_order_and_errors() {
        let (a, b) = socket::seqpacket_pair().unwrap();
        let parent = Channel::new(a);
        let child = Channel::new(b);
        child
            .send(&Msg::Log {
                level: "warning".into(),
                msg: "w".into(),
            })
            .unwrap();
        child.send(&Msg::Ready).unwrap();
        let mut logs = Vec::new();
        parent
            .expect_ready(&mut |l, m| logs.push(format!("{l}:{m}")))
            .unwrap();
        assert_eq!(logs, vec!["warning:w"]);

        child.send(&Msg::NsReady).unwrap();
        let err = parent.expect_ready(&mut |_, _| {}).unwrap_err();
        assert!(err.to_string().contains("expected Ready, got NsReady"));

        child
            .send(&Msg::failed(&Error::sys(
                "mount \"proc\" on",
                "/proc",
                nix::errno::Errno::EPERM,
            )))
            .unwrap();
        let err = parent.expect_ready(&mut |_, _| {}).unwrap_err();
        assert_eq!(err.errno(), Some(nix::errno::Errno::EPERM));
        assert!(err
            .to_string()
            .starts_with("mount \"proc\" on \"/proc\": EPERM"));

        drop(child);
        let err = parent.expect_ready(&mut |_, _| {}).unwrap_err();
        assert!(err.to_string().contains("exited before Ready"));
    }

    #[test]
    fn each_receive_returns_its_own_payload_and_refuses_the_others() {
        let (a, b) = socket::seqpacket_pair().unwrap();
        let (parent, child) = (Channel::new(a), Channel::new(b));
        child.send(&Msg::SeccompListener { fd: 7 }).unwrap();
        assert_eq!(parent.expect_seccomp_listener(&mut |_, _| {}).unwrap(), 7);
        child.send(&Msg::Ready).unwrap();
        let err = parent.expect_seccomp_listener(&mut |_, _| {}).unwrap_err();
        assert!(err
            .to_string()
            .contains("expected SeccompListener, got Ready"));
        parent.send(&Msg::HooksDone).unwrap();
        child.expect_hooks_done().unwrap();
    }

    #[test]
    fn execve_is_the_socket_closing_and_anything_said_is_an_error() {
        let (a, b) = socket::seqpacket_pair().unwrap();
        let (parent, child) = (Channel::new(a), Channel::new(b));
        child
            .send(&Msg::failed(&Error::sys(
                "execve",
                "/bin/x",
                nix::errno::Errno::ENOENT,
            )))
            .unwrap();
        let err = parent.expect_execve().unwrap_err();
        assert_eq!(err.errno(), Some(nix::errno::Errno::ENOENT));
        child.send(&Msg::Ready).unwrap();
        let err = parent.expect_execve().unwrap_err();
        assert!(err.to_string().contains("unexpected Ready"), "{err}");
        drop(child);
        parent.expect_execve().unwrap();
    }

    #[test]
    fn a_failure_with_a_huge_value_still_fits_a_frame() {
        let huge = "x".repeat(1 << 20);
        let m = Msg::failed(&Error::sys(
            "mkdir",
            format!("/{huge}"),
            nix::errno::Errno::ENAMETOOLONG,
        ));
        let bytes = encode(&m);
        assert!(bytes.len() < socket::MAX_FRAME, "{} bytes", bytes.len());
        let e = m.error();
        assert_eq!(e.errno(), Some(nix::errno::Errno::ENAMETOOLONG));
        assert!(e.to_string().contains("[1048577 bytes]"), "{e}");
        assert!(
            e.to_string().ends_with("ENAMETOOLONG (File name too long)"),
            "{e}"
        );
    }

    #[test]
    fn oversized_frame_refused() {
        let (a, _b) = socket::seqpacket_pair().unwrap();
        let big = vec![b'x'; socket::MAX_FRAME + 1];
        assert!(socket::send_frame(&a, &big, &[]).is_err());
    }
}

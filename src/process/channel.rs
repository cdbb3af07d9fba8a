//! The typed messages between `rsrun create` (parent) and the container's init (child),
//! carried as bounded JSON frames on one SEQPACKET socketpair.
//!
//! | step | direction      | message     | meaning                                                    |
//! |------|----------------|-------------|------------------------------------------------------------|
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
    Failed {
        msg: String,
    },
}

impl Msg {
    pub fn name(&self) -> &'static str {
        match self {
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
    pub fn recv(&self) -> Result<Option<Msg>> {
        let (data, _fds) = socket::recv_frame(&self.fd)?;
        if data.is_empty() {
            return Ok(None);
        }
        decode(&data).map(Some)
    }

    /// Receive, forwarding `Log` lines to `log`, until a message arrives; it must be of
    /// `want`'s kind (a `Failed` becomes the error it reports).
    pub fn expect(&self, want: &Msg, log: &mut dyn FnMut(&str, &str)) -> Result<Msg> {
        loop {
            match self.recv()? {
                Some(Msg::Log { level, msg }) => log(&level, &msg),
                Some(Msg::Failed { msg }) => return Err(Error::Child(msg)),
                Some(m) if m.name() == want.name() => return Ok(m),
                Some(m) => {
                    return Err(Error::Child(format!(
                        "protocol error: expected {}, got {}",
                        want.name(),
                        m.name()
                    )))
                }
                None => {
                    return Err(Error::Child(format!(
                        "container init exited before {}",
                        want.name()
                    )))
                }
            }
        }
    }

    pub fn fd(&self) -> impl AsFd + '_ {
        self.fd.as_fd()
    }
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
            .expect(&Msg::Ready, &mut |l, m| logs.push(format!("{l}:{m}")))
            .unwrap();
        assert_eq!(logs, vec!["warning:w"]);

        child.send(&Msg::NsReady).unwrap();
        let err = parent.expect(&Msg::Ready, &mut |_, _| {}).unwrap_err();
        assert!(err.to_string().contains("expected Ready, got NsReady"));

        child
            .send(&Msg::Failed {
                msg: "mount \"proc\": EPERM".into(),
            })
            .unwrap();
        let err = parent.expect(&Msg::Ready, &mut |_, _| {}).unwrap_err();
        assert_eq!(err.to_string(), "mount \"proc\": EPERM");

        drop(child);
        let err = parent.expect(&Msg::Ready, &mut |_, _| {}).unwrap_err();
        assert!(err.to_string().contains("exited before Ready"));
    }

    #[test]
    fn oversized_frame_refused() {
        let (a, _b) = socket::seqpacket_pair().unwrap();
        let big = vec![b'x'; socket::MAX_FRAME + 1];
        assert!(socket::send_frame(&a, &big, &[]).is_err());
    }
}

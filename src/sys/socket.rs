//! Sockets: the SEQPACKET pair between runtime and init (frames + SCM_RIGHTS fds, always
//! received CLOEXEC) and the unix listener `start` connects to.

use crate::error::{Error, Result, SysContext};
use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
    UnixAddr,
};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::Path;

/// The largest frame either side accepts (CVE-2021-43784: bounded messages).
pub const MAX_FRAME: usize = 64 * 1024;

pub fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd)> {
    socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .op0("socketpair")
}

pub fn send_frame(fd: &impl AsFd, data: &[u8], fds: &[RawFd]) -> Result<()> {
    if data.len() > MAX_FRAME {
        return Err(Error::sys_nopath("send message", Errno::EMSGSIZE));
    }
    let iov = [IoSlice::new(data)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
    loop {
        match socket::sendmsg::<()>(
            fd.as_fd().as_raw_fd(),
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys_nopath("send message", e)),
        }
    }
}

/// Receive one frame. An empty result means the peer closed the socket.
pub fn recv_frame(fd: &impl AsFd) -> Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut buf = vec![0u8; MAX_FRAME];
    let mut cmsg_space = nix::cmsg_space!([RawFd; 4]);
    loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match socket::recvmsg::<()>(
            fd.as_fd().as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                if msg.flags.contains(MsgFlags::MSG_TRUNC) {
                    return Err(Error::sys_nopath("receive message", Errno::EMSGSIZE));
                }
                let mut fds = Vec::new();
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::ScmRights(raw) = c {
                            // SAFETY: the fds the kernel just passed us.
                            fds.extend(raw.into_iter().map(|fd| unsafe { super::own_fd(fd) }));
                        }
                    }
                }
                let n = msg.bytes;
                buf.truncate(n);
                return Ok((buf, fds));
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys_nopath("receive message", e)),
        }
    }
}

fn unix_stream(shown: &Path) -> Result<OwnedFd> {
    socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .op("socket", shown)
}

/// A listening unix stream socket at `dir`/`name`, reached through the directory fd so the
/// path length limit of sockaddr_un never bites.
pub fn listen_in(dir: &impl AsFd, name: &str, shown: &Path) -> Result<OwnedFd> {
    let fd = unix_stream(shown)?;
    let addr = UnixAddr::new(format!("{}/{name}", super::fd_path(&dir.as_fd())).as_str())
        .op("bind", shown)?;
    socket::bind(fd.as_raw_fd(), &addr).op("bind", shown)?;
    socket::listen(
        &fd,
        socket::Backlog::new(1).unwrap_or(socket::Backlog::MAXCONN),
    )
    .op("listen", shown)?;
    Ok(fd)
}

pub fn connect_in(dir: &impl AsFd, name: &str, shown: &Path) -> Result<OwnedFd> {
    let fd = unix_stream(shown)?;
    let addr = UnixAddr::new(format!("{}/{name}", super::fd_path(&dir.as_fd())).as_str())
        .op("connect", shown)?;
    connect(fd, &addr, shown)
}

/// connect(2), retried on EINTR.
fn connect(fd: OwnedFd, addr: &UnixAddr, shown: &Path) -> Result<OwnedFd> {
    loop {
        match socket::connect(fd.as_raw_fd(), addr) {
            Ok(()) => return Ok(fd),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("connect", shown, e)),
        }
    }
}

/// Connect to a unix stream socket by name: a path, or, with a leading `@`, a name in the
/// abstract namespace (Go's convention for unix addresses, so runc's for listenerPath).
pub fn connect_name(name: &Path) -> Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let Some(abstract_name) = name.as_os_str().as_bytes().strip_prefix(b"@") else {
        return connect_path(name);
    };
    let fd = unix_stream(name)?;
    let addr = UnixAddr::new_abstract(abstract_name).op("connect", name)?;
    connect(fd, &addr, name)
}

pub fn connect_path(path: &Path) -> Result<OwnedFd> {
    let fd = unix_stream(path)?;
    let addr = UnixAddr::new(path).op("connect", path)?;
    socket::connect(fd.as_raw_fd(), &addr).op("connect", path)?;
    Ok(fd)
}

/// A unix stream connected to `path` whose reads and writes fail after `timeout`
/// (SO_RCVTIMEO, SO_SNDTIMEO): std's stream, for a caller speaking a protocol over it.
/// `what` names the peer in errors (`connect to the system bus "/run/...": ENOENT`).
pub fn connect_timed(
    path: &Path,
    timeout: std::time::Duration,
    what: &str,
) -> Result<std::os::unix::net::UnixStream> {
    let sock =
        std::os::unix::net::UnixStream::connect(path).op(&format!("connect to {what}"), path)?;
    let talk = format!("talk to {what}");
    sock.set_read_timeout(Some(timeout)).op(&talk, path)?;
    sock.set_write_timeout(Some(timeout)).op(&talk, path)?;
    Ok(sock)
}

pub fn accept(fd: &impl AsFd) -> Result<OwnedFd> {
    loop {
        match socket::accept4(fd.as_fd().as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
            // SAFETY: the fd the syscall above just returned, owned by nobody.
            Ok(c) => return Ok(unsafe { super::own_fd(c) }),
            Err(Errno::EINTR) | Err(Errno::ECONNABORTED) => continue,
            Err(e) => return Err(Error::sys_nopath("accept", e)),
        }
    }
}

/// Write all of `data` to a stream fd.
pub fn write_all(fd: &impl AsFd, mut data: &[u8]) -> Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys_nopath("write", e)),
        }
    }
    Ok(())
}

/// Read a stream fd to EOF, up to MAX_FRAME bytes.
pub fn read_to_end(fd: &impl AsFd) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > MAX_FRAME {
                    return Err(Error::sys_nopath("read", Errno::EMSGSIZE));
                }
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys_nopath("read", e)),
        }
    }
}

/// Receive one byte (or EOF) from a stream socket. recv(2), not read(2): the init waits
/// here for `start` with its seccomp filter loaded, and a notify filter may cover read.
pub fn recv_byte(fd: &impl AsFd) -> Result<Option<u8>> {
    let mut b = [0u8; 1];
    loop {
        match socket::recv(fd.as_fd().as_raw_fd(), &mut b, MsgFlags::empty()) {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(b[0])),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys_nopath("recv", e)),
        }
    }
}

/// A connected pair of unix stream sockets (CLOEXEC).
pub fn stream_pair() -> Result<(OwnedFd, OwnedFd)> {
    socket::socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .op0("socketpair")
}

/// A pipe, both ends CLOEXEC: (read end, write end).
pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).op0("pipe2")
}

fn unix_datagram(shown: &Path) -> Result<OwnedFd> {
    socket::socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .op("socket", shown)
}

/// A unix datagram socket bound at `dir`/`name` (through the directory fd, as
/// `listen_in`), writable by every user: the sd_notify socket a container's processes,
/// whatever their uid, send to.
pub fn datagram_bind_in(dir: &impl AsFd, name: &str, shown: &Path) -> Result<OwnedFd> {
    use std::os::unix::fs::PermissionsExt;
    let fd = unix_datagram(shown)?;
    let at = format!("{}/{name}", super::fd_path(&dir.as_fd()));
    let addr = UnixAddr::new(at.as_str()).op("bind", shown)?;
    socket::bind(fd.as_raw_fd(), &addr).op("bind", shown)?;
    std::fs::set_permissions(&at, std::fs::Permissions::from_mode(0o777)).op("chmod", shown)?;
    Ok(fd)
}

/// A unix datagram socket connected to `path`; a leading `@` names an abstract socket
/// (as systemd's NOTIFY_SOCKET may).
pub fn datagram_connect(path: &Path) -> Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let fd = unix_datagram(path)?;
    let bytes = path.as_os_str().as_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => UnixAddr::new_abstract(name),
        None => UnixAddr::new(path),
    }
    .op("connect", path)?;
    connect(fd, &addr, path)
}

/// Receive one waiting datagram into `buf`, without blocking: its length (a longer one is
/// cut), 0 when none waits. fds passed with it are not accepted: the kernel closes them.
pub fn recv_datagram(fd: &impl AsFd, buf: &mut [u8], shown: &Path) -> Result<usize> {
    loop {
        match socket::recv(fd.as_fd().as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT) {
            Ok(n) => return Ok(n),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Ok(0),
            Err(e) => return Err(Error::sys("recv", shown, e)),
        }
    }
}

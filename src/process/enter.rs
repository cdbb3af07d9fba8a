//! Entering a running container (what `rsrun exec` does): a new process in it. The
//! parent opens the init's namespaces (those that differ from its own), joins the pid and
//! time ones for its children, clones the child into the container's cgroup and releases
//! it; the child joins the rest (user first, mount last), becomes the process the plan
//! describes and execs.
//!
//! Protocol on the socketpair: parent → `Proceed{pid}` (cgroup joined); child → `Ready`
//! (about to exec) or `Failed`; the parent then reads EOF (exec closed the socket) or
//! `Failed` (execve itself failed).

use super::channel::{Channel, Msg};
use crate::cgroups::Cgroup;
use crate::error::{Error, Result};
use crate::namespaces::Join;
use crate::plan::ProcessPlan;
use crate::sys::{self, fs as sfs, proc};
use nix::fcntl::OFlag;
use oci_spec::runtime::LinuxNamespaceType as T;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub struct EnterPlan {
    pub process: ProcessPlan,
    pub cgroup: Cgroup,
    /// The container's state, for a seccomp notify listener.
    pub state: crate::state::OciState,
}

/// The namespaces of `pid` that differ from ours, opened now (user first, mount last).
fn open_namespaces(pid: i32) -> Result<(Vec<Join>, Vec<Join>, bool)> {
    const ORDER: [T; 8] = [
        T::User,
        T::Pid,
        T::Time,
        T::Cgroup,
        T::Ipc,
        T::Uts,
        T::Network,
        T::Mount,
    ];
    let mut child = Vec::new();
    let mut parent = Vec::new();
    let mut user = false;
    for t in ORDER {
        let name = crate::namespaces::proc_name(t);
        let theirs = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
        let ours = PathBuf::from(format!("/proc/self/ns/{name}"));
        let (Ok(a), Ok(b)) = (
            sfs::read_link(&theirs, &theirs),
            sfs::read_link(&ours, &ours),
        ) else {
            continue;
        };
        if a == b {
            continue;
        }
        let j = Join {
            typ: t,
            fd: sfs::open(&theirs, OFlag::O_RDONLY)?,
            path: theirs,
        };
        match t {
            T::Pid | T::Time => parent.push(j),
            T::User => {
                user = true;
                child.push(j)
            }
            _ => child.push(j),
        }
    }
    Ok((child, parent, user))
}

/// Spawn the process; returns its host pid once it has exec'd. `still_ours` re-checks
/// that the init we opened namespaces of is the container's (not a reused pid).
pub fn spawn(
    plan: &EnterPlan,
    init_pid: i32,
    still_ours: &dyn Fn() -> bool,
    console: Option<OwnedFd>,
    wait_fifo: Option<OwnedFd>,
) -> Result<i32> {
    let (mut joins, parent_joins, in_user_ns) = open_namespaces(init_pid)?;
    // The container's root as its init sees it: after joining the mount namespace the
    // child chroots here, because setns puts it at the namespace's topmost mount, which
    // is not the pivoted root when the host itself runs from a chroot (an initramfs).
    let root = sfs::open(
        Path::new(&format!("/proc/{init_pid}/root")),
        OFlag::O_PATH | OFlag::O_DIRECTORY,
    )?;
    if !still_ours() {
        return Err(Error::container("container not running"));
    }
    // A user who is not root may join the container's pid (and time) namespace only
    // from inside its user namespace: this process joins that first (it holds no host
    // privilege to lose; its files stay the user's), the child is born in it.
    if in_user_ns && proc::geteuid() != 0 {
        if let Some(i) = joins.iter().position(|j| j.typ == T::User) {
            let user = joins.remove(i);
            proc::setns(&user.fd, crate::namespaces::flag(T::User), &user.path)?;
        }
    }
    for j in &parent_joins {
        proc::setns(&j.fd, crate::namespaces::flag(j.typ), &j.path)?;
    }
    let cgroup = plan.cgroup.open_entry_existing()?;
    let (parent_sock, child_sock) = sys::socket::seqpacket_pair()?;
    // The child is born in the container's pid namespace: it must never be dumpable,
    // not even before its first instruction (CVE-2016-9962).
    sys::privilege::set_dumpable(false)?;
    let into = |fd: Option<&OwnedFd>| sys::clone::CloneArgs {
        flags: 0,
        cgroup_fd: fd.map(|f| f.as_raw_fd()),
    };
    let pid = match sys::clone::clone3(&into(cgroup.into.as_ref())) {
        Err(e) if e.errno() == Some(nix::errno::Errno::EBUSY) && cgroup.into.is_some() => {
            // The container's cgroup takes no process (its init moved to a sub-cgroup
            // and domain controllers are on for it): into the init's, as runc.
            match plan.cgroup.open_v2_dir_holding(init_pid)? {
                Some(fd) => sys::clone::clone3(&into(Some(&fd)))?,
                None => return Err(e),
            }
        }
        r => r?,
    };
    if pid == 0 {
        drop(parent_sock);
        let handed = Handed {
            joins,
            root,
            cgroup,
            console,
            wait_fifo: wait_fifo.as_ref(),
        };
        child(plan, Channel::new(child_sock), handed, in_user_ns);
    }
    drop(cgroup);
    drop(child_sock);
    drop(console);
    let chan = Channel::new(parent_sock);
    let r = drive(plan, &chan, pid, wait_fifo.is_some());
    if r.is_err() {
        let _ = proc::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = proc::waitpid(pid, false);
    }
    r.map(|()| pid)
}

/// `--exec-wait-fifo`: the fifo (O_PATH) and the directory of the child's fds in the
/// host's procfs, opened by the child before it enters the container (whose /proc the
/// container controls); through it the child opens the fifo for writing.
struct WaitFifo<'a> {
    fds: OwnedFd,
    fifo: &'a OwnedFd,
}

impl WaitFifo<'_> {
    fn open(fifo: &OwnedFd) -> Result<WaitFifo<'_>> {
        let fds = sfs::open(
            Path::new("/proc/self/fd"),
            OFlag::O_DIRECTORY | OFlag::O_RDONLY,
        )?;
        Ok(WaitFifo { fds, fifo })
    }

    /// Block until the fifo has a reader, then close our end (the reader sees EOF).
    fn wait(&self) -> Result<()> {
        let name = self.fifo.as_raw_fd().to_string();
        let shown = format!("exec wait fifo /proc/self/fd/{name}");
        sfs::openat(
            &self.fds,
            Path::new(&name),
            OFlag::O_WRONLY,
            0,
            Path::new(&shown),
        )
        .map(drop)
    }
}

/// With an exec wait fifo the process is left waiting for a reader: `exec` returns
/// once it is ready (an execve failure then is the process's exit status).
fn drive(plan: &EnterPlan, chan: &Channel, pid: i32, waits_on_fifo: bool) -> Result<()> {
    chan.send(&Msg::Proceed { pid })?;
    if let Some(l) = plan
        .process
        .seccomp
        .as_ref()
        .and_then(|f| f.listener.as_ref())
    {
        crate::seccomp::forward_listener(l, chan, &plan.state, pid, &mut |_, _| {})?;
    }
    chan.expect_ready(&mut |_, _| {})?;
    if waits_on_fifo {
        return Ok(());
    }
    chan.expect_execve()
}

/// What the parent opened for the child, beside the plan.
struct Handed<'a> {
    joins: Vec<Join>,
    root: OwnedFd,
    cgroup: crate::cgroups::Entry,
    console: Option<OwnedFd>,
    wait_fifo: Option<&'a OwnedFd>,
}

fn child(plan: &EnterPlan, chan: Channel, handed: Handed, in_user_ns: bool) -> ! {
    let Handed {
        joins,
        root,
        mut cgroup,
        console,
        wait_fifo,
    } = handed;
    let r = (|| -> Result<std::convert::Infallible> {
        sys::privilege::set_pdeathsig(Some(nix::sys::signal::Signal::SIGKILL))?;
        // Non-dumpable (cloned so) until execve: container processes cannot ptrace us
        // (CVE-2016-9962).
        cgroup.enter_self()?;
        drop(cgroup);
        chan.expect_proceed()?;
        let wait_fifo = wait_fifo.map(WaitFifo::open).transpose()?;
        for j in &joins {
            proc::setns(&j.fd, crate::namespaces::flag(j.typ), &j.path)?;
        }
        drop(joins);
        sfs::fchdir(&root, Path::new("/"))?;
        sfs::chroot(Path::new("."))?;
        sfs::chdir(Path::new("/"))?;
        drop(root);
        proc::setsid()?;
        if let Some(sock) = &console {
            super::tty::setup(sock, &plan.process, None)?;
        }
        drop(console);
        let mut ready = super::finish::prepare(&plan.process, in_user_ns, &chan)?;
        sys::privilege::set_pdeathsig(None)?;
        chan.send(&Msg::Ready)?;
        if let Some(w) = &wait_fifo {
            w.wait()?;
        }
        Err(super::finish::execve(&plan.process, &mut ready))
    })();
    let Err(e) = r;
    let _ = chan.send(&Msg::failed(&e));
    sys::clone::exit_now(1)
}

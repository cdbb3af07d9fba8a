//! The parent side of `create`: open what the child needs, clone3 the init into its new
//! namespaces (and its cgroup: see `cgroups::Entry`), write its id maps, then drive the protocol until
//! the init reports Ready (or a failure, which is returned with the init killed).

use super::channel::{Channel, Msg};
use super::init::{self, Join};
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::sys::{self, fs as sfs, proc};
use nix::fcntl::OFlag;
use oci_spec::runtime::LinuxNamespaceType;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

pub struct Spawned {
    pub pid: i32,
}

/// Everything opened before clone.
pub struct Prepared {
    joins: Vec<Join>,
    parent_joins: Vec<(LinuxNamespaceType, OwnedFd, std::path::PathBuf)>,
    cgroup: crate::cgroups::Entry,
    /// User namespaces of id-mapped mounts, by mount index.
    idmaps: Vec<(usize, OwnedFd)>,
}

/// Open every namespace path and the cgroup directory (plan before fork).
pub fn prepare(plan: &Plan) -> Result<Prepared> {
    let open_ns = |t: LinuxNamespaceType, p: &Path| -> Result<OwnedFd> {
        sfs::open(p, OFlag::O_RDONLY).map_err(|e| match e {
            Error::Sys { errno, .. } => Error::config(
                format!("linux.namespaces[{}].path", crate::namespaces::proc_name(t)),
                format!("open {p:?}: {}", crate::error::ErrnoName(errno)),
            ),
            e => e,
        })
    };
    let mut joins = Vec::new();
    for (t, p) in &plan.ns.join_in_child {
        joins.push(Join {
            typ: *t,
            fd: open_ns(*t, p)?,
            path: p.clone(),
        });
    }
    let mut parent_joins = Vec::new();
    for (t, p) in &plan.ns.join_in_parent {
        parent_joins.push((*t, open_ns(*t, p)?, p.clone()));
    }
    let cgroup = plan.rootfs.cgroup.open_entry()?;
    let mut idmaps = Vec::new();
    for m in &plan.rootfs.mounts {
        if let Some(map) = &m.idmap {
            idmaps.push((m.index, proc::userns_with_maps(&map.uid_map, &map.gid_map)?));
        }
    }
    Ok(Prepared {
        joins,
        parent_joins,
        cgroup,
        idmaps,
    })
}

/// Clone the init and run the protocol up to Ready. `listener` is the start socket,
/// `lock_fd` the container lock the child must not keep.
pub fn spawn(
    plan: &Plan,
    prep: Prepared,
    listener: OwnedFd,
    console: Option<OwnedFd>,
    lock_fd: RawFd,
    log: &mut dyn FnMut(&str, &str),
) -> Result<Spawned> {
    // Namespaces that apply to children only are entered here, in the parent.
    for (t, fd, p) in &prep.parent_joins {
        proc::setns(fd, crate::namespaces::flag(*t), p)?;
    }
    if plan.ns.new_time {
        proc::unshare(crate::namespaces::flag(LinuxNamespaceType::Time))?;
        if let Some(off) = &plan.time_offsets {
            sfs::write_file(Path::new("/proc/self/timens_offsets"), off.as_bytes())?;
        }
    }
    let (parent_sock, child_sock) = sys::socket::seqpacket_pair()?;
    // Non-dumpable before the clone, so the child is never dumpable, not even for the
    // instant before its first step (CVE-2016-9962).
    sys::set_dumpable(false)?;
    let args = sys::CloneArgs {
        flags: plan.ns.clone_flags.bits() as u64,
        cgroup_fd: prep.cgroup.into.as_ref().map(|f| f.as_raw_fd()),
    };
    let pid = sys::clone3(&args)?;
    if pid == 0 {
        // The child: drop what belongs to the parent, then the step list.
        let _ = nix::unistd::close(lock_fd);
        drop(parent_sock);
        init::run(
            plan,
            Channel::new(child_sock),
            listener,
            prep.joins,
            prep.idmaps,
            prep.cgroup,
            console,
        );
    }
    drop(child_sock);
    drop(console);
    drop(listener);
    drop(prep.joins);
    drop(prep.cgroup);
    let chan = Channel::new(parent_sock);
    let result = drive(plan, &chan, pid, log);
    if result.is_err() {
        let _ = proc::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = proc::waitpid(pid, false);
    }
    result.map(|()| Spawned { pid })
}

fn drive(plan: &Plan, chan: &Channel, pid: i32, log: &mut dyn FnMut(&str, &str)) -> Result<()> {
    if let Some(m) = &plan.uid_map {
        let f = format!("/proc/{pid}/uid_map");
        sfs::write_file(Path::new(&f), m.as_bytes())?;
    }
    if let Some(m) = &plan.gid_map {
        let f = format!("/proc/{pid}/gid_map");
        sfs::write_file(Path::new(&f), m.as_bytes())?;
    }
    chan.send(&Msg::Proceed { pid })?;
    if plan.has_runtime_hooks() {
        chan.expect(&Msg::NsReady, log)?;
        // In the bundle, as with runc (which runs `create` from there).
        let st = plan.hook_state(pid, "creating");
        let hooks = plan.hooks.as_ref();
        let ctx = crate::hooks::Context {
            env: &[],
            cwd: Some(&plan.bundle),
        };
        let prestart = hooks.and_then(|h| h.prestart().as_ref());
        crate::hooks::run_all_in("prestart", prestart, &st, &ctx)?;
        let create_runtime = hooks.and_then(|h| h.create_runtime().as_ref());
        crate::hooks::run_all_in("createRuntime", create_runtime, &st, &ctx)?;
        chan.send(&Msg::HooksDone)?;
    }
    if let Some(l) = plan
        .process
        .seccomp
        .as_ref()
        .and_then(|f| f.listener.as_ref())
    {
        let fd = chan.expect_fd(&Msg::SeccompListener, log)?;
        crate::seccomp::send_listener(l, &plan.hook_state(pid, "creating"), pid, &fd)?;
    }
    chan.expect(&Msg::Ready, log)?;
    Ok(())
}

//! The parent side of `create`: open what the child needs, clone3 the init into its new
//! namespaces (and its cgroup: see `cgroups::Entry`), write its id maps, then drive the protocol until
//! the init reports Ready (or a failure, which is returned with the init killed).

use super::channel::{Channel, Msg};
use super::init;
use crate::error::{Error, Result};
use crate::namespaces::Join;
use crate::plan::Plan;
use crate::rootfs::{setup, IdMapUsers};
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
    /// The user namespace joined before the clone (`NamespacePlan::join_user_before_clone`).
    user_first: Option<(OwnedFd, std::path::PathBuf)>,
    cgroup: crate::cgroups::Entry,
    /// User namespaces of id-mapped mounts, by mount index.
    idmaps: Vec<(usize, OwnedFd)>,
}

/// Open every namespace path and the cgroup directory (plan before fork).
pub fn prepare(plan: &Plan) -> Result<Prepared> {
    let open_ns = |t: LinuxNamespaceType, p: &Path| -> Result<OwnedFd> {
        let field = format!("linux.namespaces[{}].path", crate::namespaces::proc_name(t));
        // O_NONBLOCK: a FIFO given as the path opens at once instead of blocking create
        // forever; anything but a namespace file is then refused by name.
        let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
        let fd = sfs::open(p, flags).map_err(|e| match e {
            Error::Sys { errno, .. } => Error::config(
                field.clone(),
                format!("open {p:?}: {}", crate::error::ErrnoName(errno)),
            ),
            e => e,
        })?;
        const NSFS_MAGIC: i64 = 0x6e73_6673;
        if sfs::fs_type(&fd, p)? != NSFS_MAGIC {
            return Err(Error::config(
                field,
                format!("{p:?} is not a namespace file"),
            ));
        }
        Ok(fd)
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
    let user_first = match &plan.ns.join_user_before_clone {
        Some(p) => Some((open_ns(LinuxNamespaceType::User, p)?, p.clone())),
        None => None,
    };
    let cgroup = plan.rootfs.cgroup.open_entry()?;
    let mut idmaps = Vec::new();
    for m in &plan.rootfs.mounts {
        let ns = match m.idmap.as_ref().map(|map| &map.users) {
            None => continue,
            Some(IdMapUsers::Maps { uid_map, gid_map }) => {
                proc::userns_with_maps(uid_map, gid_map)?
            }
            Some(IdMapUsers::Joined(path)) => open_ns(LinuxNamespaceType::User, path)?,
        };
        idmaps.push((m.index, ns));
    }
    Ok(Prepared {
        joins,
        parent_joins,
        user_first,
        cgroup,
        idmaps,
    })
}

/// Clone the init and run the protocol up to Ready. `listener` is the start socket,
/// `lock_fd` the container lock the child must not keep. `record` is called with the
/// init's pid as soon as it exists, before it is let go on: until it returns, the init
/// dies with this process (it waits for `Proceed`, and has a parent-death signal).
pub fn spawn(
    plan: &Plan,
    prep: Prepared,
    listener: OwnedFd,
    console: Option<OwnedFd>,
    lock_fd: RawFd,
    record: &mut dyn FnMut(i32) -> Result<()>,
    log: &mut dyn FnMut(&str, &str),
) -> Result<Spawned> {
    let (parent_sock, child_sock) = sys::socket::seqpacket_pair()?;
    // Non-dumpable before the clone, so the child is never dumpable, not even for the
    // instant before its first step (CVE-2016-9962). Except when a user who is not root
    // writes the id maps: only a dumpable child's /proc files are the user's to write
    // (as runc, the child turns non-dumpable once they are written, before it does
    // anything in the container).
    let user_writes_maps = maps_written_by_user(plan);
    if !user_writes_maps {
        sys::privilege::set_dumpable(false)?;
    }
    let args = sys::clone::CloneArgs {
        flags: plan.ns.clone_flags.bits() as u64,
        cgroup_fd: prep.cgroup.into.as_ref().map(|f| f.as_raw_fd()),
    };
    let pid = match &prep.user_first {
        None => {
            enter_for_children(plan, &prep, &[])?;
            sys::clone::clone3(&args).map_err(|e| userns_refused(plan, e))?
        }
        Some(user) => clone_in_user_ns(plan, &prep, user, &args)?,
    };
    if pid == 0 {
        // The child: drop what belongs to the parent, then the step list.
        sfs::close_inherited(lock_fd);
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
    if user_writes_maps {
        sys::privilege::set_dumpable(false)?;
    }
    drop(child_sock);
    drop(console);
    drop(listener);
    drop(prep.joins);
    drop(prep.cgroup);
    let chan = Channel::new(parent_sock);
    match record(pid).and_then(|()| drive(plan, &chan, pid, &prep.idmaps, log)) {
        Ok(()) => Ok(Spawned { pid }),
        Err(e) => Err(match how_it_died(pid, &e) {
            Some(died) => died,
            None => {
                let _ = proc::kill(pid, nix::sys::signal::Signal::SIGKILL);
                let _ = proc::waitpid(pid, false);
                e
            }
        }),
    }
}

/// A user namespace the kernel would not make for a user who is not root: say which
/// host setting decides it.
fn userns_refused(plan: &Plan, e: Error) -> Error {
    use nix::errno::Errno;
    let root = proc::geteuid() == 0;
    match e.errno() {
        Some(errno @ (Errno::EPERM | Errno::EACCES | Errno::ENOSPC | Errno::EUSERS))
            if plan.ns.new_user && !root =>
        {
            Error::container(format!(
                "rootless: the kernel refused a new user namespace to uid {} (clone3: {}): check the sysctls kernel.unprivileged_userns_clone (must be 1 where it exists) and user.max_user_namespaces (must be above 0), and any AppArmor or seccomp policy restricting unprivileged user namespaces",
                proc::geteuid(),
                crate::error::ErrnoName(errno)
            ))
        }
        _ => e,
    }
}

/// Whether the init's id maps are written by a user who is not root (see `spawn`).
pub fn maps_written_by_user(plan: &Plan) -> bool {
    plan.ns.new_user && proc::geteuid() != 0
}

/// When the init went away without a word (the protocol socket ended, or broke under a
/// send), reap it and say how it died (its exit status or the signal that killed it)
/// instead of the socket's end. `None` when `e` is another failure, or the init is not
/// dead after all.
fn how_it_died(pid: i32, e: &Error) -> Option<Error> {
    use nix::errno::Errno;
    use nix::sys::wait::WaitStatus;
    let when = match e {
        Error::Child(msg) => {
            let before = msg.strip_prefix(super::channel::INIT_GONE)?;
            format!("before{before}")
        }
        Error::Sys {
            errno: Errno::EPIPE | Errno::ECONNRESET,
            ..
        } => "while it was being set up".to_string(),
        _ => return None,
    };
    let end = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::time::Instant::now() < end {
        match proc::waitpid(pid, true) {
            Ok(WaitStatus::Exited(_, code)) => {
                return Some(Error::Child(format!(
                    "container init exited with status {code} {when}"
                )))
            }
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                return Some(Error::Child(format!(
                    "container init was killed by {sig} {when}"
                )))
            }
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            Err(_) => break,
        }
    }
    None
}

/// Namespaces that apply to children only (pid and time, joined or new), entered by the
/// process about to clone the init; `joined[i]`: the i-th join is done already.
fn enter_for_children(plan: &Plan, prep: &Prepared, joined: &[bool]) -> Result<()> {
    for (i, (t, fd, p)) in prep.parent_joins.iter().enumerate() {
        if !joined.get(i).copied().unwrap_or(false) {
            proc::setns(fd, crate::namespaces::flag(*t), p)?;
        }
    }
    if plan.ns.new_time && !plan.ns.time_made_by_init() {
        proc::unshare(crate::namespaces::flag(LinuxNamespaceType::Time))?;
        if let Some(off) = &plan.time_offsets {
            sfs::write_file(Path::new("/proc/self/timens_offsets"), off.as_bytes())?;
        }
    }
    Ok(())
}

/// Clone the init from inside a joined user namespace, so the namespaces it is born in
/// belong to that user namespace: a helper forked from us joins it (and the pid and time
/// namespaces), clones the init as our child (CLONE_PARENT), tells us its pid and exits.
/// Returns 0 in the init, the init's pid here.
fn clone_in_user_ns(
    plan: &Plan,
    prep: &Prepared,
    user: &(OwnedFd, std::path::PathBuf),
    args: &sys::clone::CloneArgs,
) -> Result<i32> {
    let pipe = Path::new("the clone helper's pipe");
    let (r, w) = sys::socket::pipe()?;
    let helper = sys::clone::clone3(&sys::clone::CloneArgs {
        flags: 0,
        cgroup_fd: None,
    })?;
    if helper == 0 {
        drop(r);
        // Pid and time namespaces joined by path are entered before the user namespace
        // where our privilege allows it: one another container's init made before its
        // user namespace existed (a new time namespace) belongs to ours, and inside the
        // joined user namespace we would have no privilege over it (EPERM). What is
        // refused here (a runtime without privilege in its own user namespace) is
        // entered after, with the joined one's.
        let joined: Vec<bool> = prep
            .parent_joins
            .iter()
            .map(|(t, fd, p)| proc::setns(fd, crate::namespaces::flag(*t), p).is_ok())
            .collect();
        let cloned = proc::setns(
            &user.0,
            crate::namespaces::flag(LinuxNamespaceType::User),
            &user.1,
        )
        .and_then(|()| enter_for_children(plan, prep, &joined))
        .and_then(|()| {
            sys::clone::clone3(&sys::clone::CloneArgs {
                flags: args.flags | sys::clone::CLONE_PARENT,
                cgroup_fd: args.cgroup_fd,
            })
        });
        let msg = match cloned {
            Ok(0) => return Ok(0),
            Ok(pid) => format!("{pid}"),
            Err(e) => format!("!{e}"),
        };
        let _ = sfs::write_fd(&w, msg.as_bytes(), pipe);
        sys::clone::exit_now(0);
    }
    drop(w);
    let mut buf = [0u8; 4096];
    let n = sfs::read_fd(&r, &mut buf, pipe)?;
    let _ = proc::waitpid(helper, false);
    let text = String::from_utf8_lossy(&buf[..n]);
    match text.strip_prefix('!') {
        Some(err) => Err(Error::Child(err.to_string())),
        None => text
            .parse()
            .map_err(|_| Error::container("the clone helper died before the init was made")),
    }
}

/// For an init in a user namespace: open every bind source (and every host node of
/// `linux.devices`, which it binds) in its mount namespace (its root,
/// `/proc/<pid>/root`) with our credentials, and send the fds. The init binds
/// from one where its own credentials cannot reach the source (a directory only host
/// root may traverse), as runc does with its mount-source fds. An id-mapped bind is
/// made here whole (a detached, id-mapped clone of the source): only a process
/// privileged over the source's filesystem may id-map it, which the init is not. A
/// source that cannot be opened here is left to the init, which reports it. Not done
/// when the init joins a mount namespace (its sources are resolved there) or has none.
fn send_mount_sources(
    plan: &Plan,
    chan: &Channel,
    pid: i32,
    idmaps: &[(usize, OwnedFd)],
) -> Result<()> {
    let joins_mount_ns = plan
        .ns
        .join_in_child
        .iter()
        .any(|(t, _)| *t == LinuxNamespaceType::Mount);
    if !plan.ns.in_user_ns() || plan.rootfs.host_mount_ns || joins_mount_ns {
        return Ok(());
    }
    let root = sfs::open(
        Path::new(&format!("/proc/{pid}/root")),
        OFlag::O_PATH | OFlag::O_DIRECTORY,
    )?;
    for op in &plan.rootfs.mounts {
        let crate::rootfs::MountKind::Bind { source } = &op.kind else {
            continue;
        };
        let userns = idmaps.iter().find(|(i, _)| *i == op.index);
        let fd = match (&op.idmap, userns) {
            // Only we can make it: its failure is the error (the init's would be a
            // misleading one, EACCES or EPERM from its own credentials).
            (Some(m), Some((_, ns))) => setup::idmapped_tree(op, source, m, ns)?,
            _ => match sfs::open_in_root(&root, source, OFlag::O_PATH, 0) {
                Ok(fd) => fd,
                // Left to the init, which names the mount in its error.
                Err(_) => continue,
            },
        };
        chan.send_fd(&Msg::MountSource { index: op.index }, &fd)?;
    }
    if plan.rootfs.bind_devices {
        for (index, d) in plan.rootfs.devices.iter().enumerate() {
            if let Ok(fd) = sfs::open_in_root(&root, &d.path, OFlag::O_PATH, 0) {
                chan.send_fd(&Msg::DeviceSource { index }, &fd)?;
            }
        }
    }
    Ok(())
}

fn drive(
    plan: &Plan,
    chan: &Channel,
    pid: i32,
    idmaps: &[(usize, OwnedFd)],
    log: &mut dyn FnMut(&str, &str),
) -> Result<()> {
    if plan.ns.new_user {
        crate::namespaces::idmap::write(pid, &plan.uid_mappings, &plan.gid_mappings)?;
    }
    if plan.ns.time_made_by_init() {
        // Before `Proceed`: the init is still dumpable where the runtime's user is not
        // root, so its /proc files are that user's to write.
        chan.expect_time_ns_made(log)?;
        if let Some(off) = &plan.time_offsets {
            sfs::write_file(
                Path::new(&format!("/proc/{pid}/timens_offsets")),
                off.as_bytes(),
            )?;
        }
    }
    send_mount_sources(plan, chan, pid, idmaps)?;
    chan.send(&Msg::Proceed { pid })?;
    if plan.has_runtime_hooks() {
        chan.expect_ns_ready(log)?;
        // In the bundle, as with runc (which runs `create` from there).
        let st = plan.hook_state(pid, "created");
        let ctx = crate::hooks::Context {
            env: &[],
            cwd: Some(&plan.bundle),
        };
        crate::hooks::run_all_in("prestart", &plan.hooks.prestart, &st, &ctx)?;
        crate::hooks::run_all_in("createRuntime", &plan.hooks.create_runtime, &st, &ctx)?;
        chan.send(&Msg::HooksDone)?;
    }
    if let Some(l) = plan
        .process
        .seccomp
        .as_ref()
        .and_then(|f| f.listener.as_ref())
    {
        crate::seccomp::forward_listener(l, chan, &plan.hook_state(pid, "creating"), pid, log)?;
    }
    chan.expect_ready(log)?;
    Ok(())
}

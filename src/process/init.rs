//! The container's init between clone and execve. The steps are one ordered list; the
//! order is the security argument (namespaces → rootfs → hooks → pivot → uts → masked/read-only
//! paths → rlimits → user and capabilities → no_new_privs → wait for start → seccomp →
//! startContainer hooks → exec).
//! Nothing here panics: a failing step is reported to the parent and the child exits.

use super::channel::{self, Channel, Msg};
use crate::cgroups::Entry;
use crate::error::{Error, Result};
use crate::namespaces;
use crate::namespaces::Join;
use crate::plan::Plan;
use crate::rootfs::setup;
use crate::sys::{self, proc, socket};
use nix::sched::CloneFlags;
use std::convert::Infallible;

use std::os::fd::OwnedFd;

/// Entry point of the cloned child. Never returns.
pub fn run(
    plan: &Plan,
    chan: Channel,
    listener: OwnedFd,
    joins: Vec<Join>,
    idmaps: Vec<(usize, OwnedFd)>,
    cgroup: Entry,
    console: Option<OwnedFd>,
) -> ! {
    match steps(plan, &chan, listener, joins, idmaps, cgroup, console) {
        Ok(never) => match never {},
        Err(e) => {
            let _ = chan.send(&Msg::failed(&e));
            sys::clone::exit_now(1)
        }
    }
}

/// The steps, numbered as in docs/design.md ("The child's steps, and why in this
/// order"): the order is the security argument. Each fd the parent handed over is closed
/// once its step is done.
fn steps(
    plan: &Plan,
    chan: &Channel,
    listener: OwnedFd,
    joins: Vec<Join>,
    idmaps: Vec<(usize, OwnedFd)>,
    cgroup: Entry,
    console: Option<OwnedFd>,
) -> Result<Infallible> {
    // 1. Parent-death signal, cgroup.
    die_with_create_and_enter_cgroup(cgroup)?;
    // 2. Namespaces: a new time namespace under the new user namespace, the id maps
    // written, then the joins.
    make_time_namespace(plan, chan)?;
    let (host_pid, sources) = wait_for_id_maps(plan, chan)?;
    enter_time_namespace(plan)?;
    join_namespaces_and_keyring(plan, joins)?;
    new_cgroup_namespace(plan)?;
    // 3. The root filesystem, then the hooks that see it before pivot.
    build_rootfs(plan, idmaps, sources)?;
    run_create_hooks(plan, chan, host_pid)?;
    // 4. pivot_root.
    enter_rootfs(plan)?;
    // 5. hostname, sysctls, masked and read-only paths.
    set_uts_names(plan)?;
    sysctls_and_protected_paths(plan)?;
    // 6. Terminal.
    new_session_and_terminal(plan, console)?;
    // 7. Process resources and identity (shared with exec); a notify filter now, its
    // listener to the parent as soon as it is loaded.
    let mut ready = super::finish::prepare(&plan.process, plan.ns.in_user_ns(), chan)?;
    // 8. Ready; wait for start.
    let start = report_ready_and_wait_for_start(chan, &listener)?;
    // 9, 10. Seccomp, startContainer hooks, execve.
    confine_hooks_and_exec(plan, host_pid, &start, &mut ready)
}

/// Die with `rsrun create` while it sets us up; then into the container's cgroup (v1
/// hierarchies; v2 was clone3's CLONE_INTO_CGROUP). Nobody may ptrace or read our
/// memory: we were cloned non-dumpable (the flag belongs to the memory, copied at clone).
fn die_with_create_and_enter_cgroup(mut cgroup: Entry) -> Result<()> {
    sys::privilege::set_pdeathsig(Some(nix::sys::signal::Signal::SIGKILL))?;
    cgroup.enter_self()
}

/// A time namespace under the user namespace clone3 made, so it belongs to that one (as
/// runc's): made now, its offsets written by the parent, entered after `Proceed`.
fn make_time_namespace(plan: &Plan, chan: &Channel) -> Result<()> {
    if plan.ns.time_made_by_init() {
        proc::unshare(namespaces::flag(
            oci_spec::runtime::LinuxNamespaceType::Time,
        ))?;
        chan.send(&Msg::TimeNsMade)?;
    }
    Ok(())
}

/// Into the time namespace `make_time_namespace` made, its offsets now written.
fn enter_time_namespace(plan: &Plan) -> Result<()> {
    if plan.ns.time_made_by_init() {
        let p = std::path::Path::new("/proc/self/ns/time_for_children");
        let ns = sys::fs::open(p, nix::fcntl::OFlag::O_RDONLY)?;
        proc::setns(
            &ns,
            namespaces::flag(oci_spec::runtime::LinuxNamespaceType::Time),
            p,
        )?;
    }
    Ok(())
}

/// The parent writes our id maps (and sends the bind sources it opened for us): the
/// host's pid of the init, and those sources.
fn wait_for_id_maps(plan: &Plan, chan: &Channel) -> Result<(i32, channel::Sources)> {
    let (host_pid, sources) = chan.expect_proceed()?;
    if super::create::maps_written_by_user(plan) {
        sys::privilege::set_dumpable(false)?;
    }
    Ok((host_pid, sources))
}

/// Join namespaces by path, the user namespace first; then become root of the user
/// namespace, or the ids `setup_ids` chose where 0 is not mapped (coming from an id the
/// namespace does not map, the change keeps the capabilities); then a session keyring
/// of its own, so the container cannot read the host's keys.
fn join_namespaces_and_keyring(plan: &Plan, joins: Vec<Join>) -> Result<()> {
    for j in &joins {
        proc::setns(&j.fd, namespaces::flag(j.typ), &j.path)?;
    }
    drop(joins);
    if plan.ns.in_user_ns() {
        proc::setresgid(plan.setup_ids.1)?;
        proc::setresuid(plan.setup_ids.0)?;
    }
    if plan.process.new_keyring {
        proc::join_session_keyring(&format!("_ses.{}", plan.id))?;
    }
    Ok(())
}

/// A cgroup namespace rooted at the cgroup we were just placed in.
fn new_cgroup_namespace(plan: &Plan) -> Result<()> {
    if plan.ns.new_cgroup {
        proc::unshare(CloneFlags::CLONE_NEWCGROUP)?;
    }
    Ok(())
}

/// The root filesystem: mounts, /dev, the cwd.
fn build_rootfs(
    plan: &Plan,
    idmaps: Vec<(usize, OwnedFd)>,
    sources: channel::Sources,
) -> Result<()> {
    let root = setup::prepare(&plan.rootfs)?;
    setup::mount_all(&root, &plan.rootfs, &idmaps, &sources.mounts)?;
    drop(idmaps);
    setup::devices(&root, &plan.rootfs, &sources.devices)?;
    drop(sources);
    setup::create_cwd(&root, &plan.process.cwd)
}

/// prestart and createRuntime hooks run in the parent now, with the rootfs built
/// and not yet pivoted into (a hook may enter our mount namespace and add to it);
/// then createContainer hooks here, in the rootfs (runc's working directory).
fn run_create_hooks(plan: &Plan, chan: &Channel, host_pid: i32) -> Result<()> {
    if plan.has_runtime_hooks() {
        chan.send(&Msg::NsReady)?;
        chan.expect_hooks_done()?;
    }
    if !plan.hooks.create_container.is_empty() {
        crate::hooks::run_all_with(
            "createContainer",
            &plan.hooks.create_container,
            &plan.init_hook_state.json(host_pid),
            &crate::hooks::Context {
                env: &[],
                cwd: Some(&plan.rootfs.root),
            },
        )?;
    }
    Ok(())
}

/// pivot_root (or the move with --no-pivot) into the rootfs. Stdio on the host's
/// /dev/null moves to the container's (so CRIU can dump it).
fn enter_rootfs(plan: &Plan) -> Result<()> {
    setup::enter(&plan.rootfs)?;
    sys::fs::reopen_null_stdio()
}

/// uts: hostname and domainname.
fn set_uts_names(plan: &Plan) -> Result<()> {
    if let Some(h) = &plan.hostname {
        proc::sethostname(h)?;
    }
    if let Some(d) = &plan.domainname {
        proc::set_domainname(d)?;
    }
    Ok(())
}

/// sysctls (through a private procfs no container mount covers), then read-only and
/// masked paths (which include /proc/sys), read-only root.
fn sysctls_and_protected_paths(plan: &Plan) -> Result<()> {
    super::sysctl::write_all(&plan.sysctl)?;
    setup::finalize(&plan.rootfs)
}

/// A session of our own; with a terminal, a pty from the container's devpts as stdio
/// and controlling terminal, bound onto /dev/console, its master sent to the socket.
fn new_session_and_terminal(plan: &Plan, console: Option<OwnedFd>) -> Result<()> {
    crate::sys::proc::setsid()?;
    if let Some(sock) = &console {
        super::tty::setup(
            sock,
            &plan.process,
            Some(std::path::Path::new("/dev/console")),
        )?;
    }
    Ok(())
}

/// Ready: `create` returns; we wait for `start`, whose connection this returns. From
/// here on the seccomp filter may be in place: no read or close of ours (the start
/// socket stays open, CLOEXEC).
fn report_ready_and_wait_for_start(chan: &Channel, listener: &OwnedFd) -> Result<OwnedFd> {
    sys::privilege::set_pdeathsig(None)?;
    sys::signals::exit_on_termination_signals()?;
    chan.send(&Msg::Ready)?;
    let conn = socket::accept(listener)?;
    let _ = socket::recv_byte(&conn);
    Ok(conn)
}

/// The seccomp filter: from here on only the hooks and execve. Then startContainer
/// hooks, in the container, confined as its process is; without an `env` of their own
/// they get the process's environment (runc's behaviour). Then execve. A failure goes to
/// `start` on its connection.
fn confine_hooks_and_exec(
    plan: &Plan,
    host_pid: i32,
    start: &OwnedFd,
    ready: &mut super::finish::Prepared,
) -> Result<Infallible> {
    let fail = |e: Error| -> Error {
        let _ = socket::write_all(start, &channel::encode(&Msg::failed(&e)));
        e
    };
    let p = &plan.process;
    super::finish::confine(p, ready, None).map_err(fail)?;
    if !plan.hooks.start_container.is_empty() {
        let st = plan.init_hook_state.json(host_pid);
        let ctx = crate::hooks::Context {
            env: &ready.env,
            cwd: None,
        };
        crate::hooks::run_all_with("startContainer", &plan.hooks.start_container, &st, &ctx)
            .map_err(fail)?;
    }
    Err(fail(super::finish::execve(p, ready)))
}

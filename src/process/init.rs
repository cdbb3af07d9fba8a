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
            sys::exit_now(1)
        }
    }
}

fn steps(
    plan: &Plan,
    chan: &Channel,
    listener: OwnedFd,
    joins: Vec<Join>,
    idmaps: Vec<(usize, OwnedFd)>,
    mut cgroup: Entry,
    console: Option<OwnedFd>,
) -> Result<Infallible> {
    // Die with `rsrun create` while it sets us up. Nobody may ptrace or read our memory:
    // we were cloned non-dumpable (the flag belongs to the memory, copied at clone).
    sys::privilege::set_pdeathsig(Some(nix::sys::signal::Signal::SIGKILL))?;

    // 0. Into the container's cgroup (v1 hierarchies; v2 was clone3's CLONE_INTO_CGROUP).
    cgroup.enter_self()?;
    drop(cgroup);
    // A time namespace under the user namespace clone3 made, so it belongs to that one
    // (as runc's): made now, its offsets written by the parent, entered after `Proceed`.
    if plan.ns.time_made_by_init() {
        proc::unshare(namespaces::flag(
            oci_spec::runtime::LinuxNamespaceType::Time,
        ))?;
        chan.send(&Msg::TimeNsMade)?;
    }

    // 1. The parent writes our id maps (and sends the bind sources it opened for us).
    let (host_pid, sources) = chan.expect_proceed()?;
    if super::create::maps_written_by_user(plan) {
        sys::privilege::set_dumpable(false)?;
    }
    if plan.ns.time_made_by_init() {
        let p = std::path::Path::new("/proc/self/ns/time_for_children");
        let ns = sys::fs::open(p, nix::fcntl::OFlag::O_RDONLY)?;
        proc::setns(
            &ns,
            namespaces::flag(oci_spec::runtime::LinuxNamespaceType::Time),
            p,
        )?;
    }

    // 2. Join namespaces by path, the user namespace first.
    for j in &joins {
        proc::setns(&j.fd, namespaces::flag(j.typ), &j.path)?;
    }
    drop(joins);
    // Root of the user namespace, or the ids `setup_ids` chose where 0 is not mapped:
    // coming from an id the namespace does not map, the change keeps the capabilities.
    if plan.ns.in_user_ns() {
        proc::setresgid(plan.setup_ids.1)?;
        proc::setresuid(plan.setup_ids.0)?;
    }
    // A session keyring of its own, so the container cannot read the host's keys.
    if plan.process.new_keyring {
        sys::join_session_keyring(&format!("_ses.{}", plan.id))?;
    }
    // 3. A cgroup namespace rooted at the cgroup we were just placed in.
    if plan.ns.new_cgroup {
        proc::unshare(CloneFlags::CLONE_NEWCGROUP)?;
    }
    // 4. The root filesystem: mounts, /dev, the cwd.
    let root = setup::prepare(&plan.rootfs)?;
    setup::mount_all(&root, &plan.rootfs, &idmaps, &sources.mounts)?;
    drop(idmaps);
    setup::devices(&root, &plan.rootfs, &sources.devices)?;
    drop(sources);
    setup::create_cwd(&root, &plan.process.cwd)?;
    drop(root);

    // 5. prestart and createRuntime hooks run in the parent now, with the rootfs built
    // and not yet pivoted into (a hook may enter our mount namespace and add to it);
    // then createContainer hooks here, in the rootfs (runc's working directory).
    if plan.has_runtime_hooks() {
        chan.send(&Msg::NsReady)?;
        chan.expect_hooks_done()?;
    }
    if !plan.hooks.create_container.is_empty() {
        crate::hooks::run_all_in(
            "createContainer",
            &plan.hooks.create_container,
            &plan.hook_state(host_pid, "created"),
            &crate::hooks::Context {
                env: &[],
                cwd: Some(&plan.rootfs.root),
            },
        )?;
    }
    setup::enter(&plan.rootfs)?;
    // Stdio on the host's /dev/null moves to the container's (so CRIU can dump it).
    sys::fs::reopen_null_stdio()?;

    // 6. uts
    if let Some(h) = &plan.hostname {
        proc::sethostname(h)?;
    }
    if let Some(d) = &plan.domainname {
        sys::set_domainname(d)?;
    }

    // 7. sysctls (through a private procfs no container mount covers), then read-only
    // and masked paths (which include /proc/sys), read-only root.
    super::sysctl::write_all(&plan.sysctl)?;
    setup::finalize(&plan.rootfs)?;

    // A session of our own; with a terminal, a pty from the container's devpts as stdio
    // and controlling terminal, bound onto /dev/console, its master sent to the socket.
    nix::unistd::setsid().map_err(|e| Error::sys_nopath("setsid", e))?;
    if let Some(sock) = &console {
        super::tty::setup(
            sock,
            &plan.process,
            Some(std::path::Path::new("/dev/console")),
        )?;
    }
    drop(console);

    // 8. Resources, identity, capabilities, cwd, executable, fds, signals (shared with
    // exec); a notify filter now, its listener to the runtime.
    let p = &plan.process;
    // A notify filter's listener goes to the parent as soon as the filter is loaded.
    let mut ready = super::finish::prepare(p, plan.ns.in_user_ns(), chan)?;

    // 9. Ready: `create` returns; we wait for `start`. From here on the seccomp filter may
    // be in place: no read or close of ours (the start socket stays open, CLOEXEC).
    sys::privilege::set_pdeathsig(None)?;
    sys::exit_on_termination_signals()?;
    chan.send(&Msg::Ready)?;
    let conn = socket::accept(&listener)?;
    let _ = socket::recv_byte(&conn);

    let fail = |e: Error| -> Error {
        let _ = socket::write_all(&conn, &channel::encode(&Msg::failed(&e)));
        e
    };
    // 10. The seccomp filter: from here on only the hooks and execve.
    super::finish::confine(p, &mut ready, None).map_err(fail)?;
    // 11. startContainer hooks, in the container, confined as its process is; without
    // an `env` of their own they get the process's environment (runc's behaviour).
    if !plan.hooks.start_container.is_empty() {
        let st = plan.hook_state(host_pid, "created");
        let ctx = crate::hooks::Context {
            env: &ready.env,
            cwd: None,
        };
        crate::hooks::run_all_in("startContainer", &plan.hooks.start_container, &st, &ctx)
            .map_err(fail)?;
    }
    // 12. exec.
    Err(fail(super::finish::execve(p, &mut ready)))
}

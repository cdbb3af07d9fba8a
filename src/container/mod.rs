//! The lifecycle operations behind the commands: create, start, state, kill, delete,
//! pause/resume, update, list (and exec, in `exec`). Each takes the container's lock for
//! as long as it acts.

use crate::cgroups::{freezer, Cgroup};
use crate::error::{Error, Result};
use crate::logger::Logger;
use crate::plan::{self, PlanOptions};
use crate::state::{self, ContainerDir, State, Status, START_SOCKET};
use crate::sys::{proc, socket};
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod checkpoint;
mod checkpoint_namespaces;
mod exec;
mod new_container;
pub mod notify;
mod restore_hooks;
pub use exec::{ExecOpts, ExecTarget};
use new_container::NewContainer;

pub struct Runtime {
    pub root: PathBuf,
    /// Rootless (`rootless::Rootless`, decided when first asked): cgroups and privileges
    /// the caller may lack are done without, as runc does.
    pub rootless: crate::rootless::Rootless,
    pub log: Logger,
    /// `--systemd-cgroup`: the systemd cgroup driver (`cgroups::systemd`).
    pub systemd_cgroup: bool,
}

#[derive(Default)]
pub struct CreateOpts {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// A connected console socket made by `run` to proxy the terminal itself.
    pub console_fd: Option<std::os::fd::OwnedFd>,
    /// `--pidfd-socket`: where the init's pidfd goes (`PidfdSocket`).
    pub pidfd_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
}

impl Runtime {
    /// A new container (create, restore) may not take an id in use, nor a cgroup holding
    /// another container's processes: they would be ours to kill on delete (runc refuses
    /// too). A duplicate id is the better answer when it is one (the directory is made,
    /// atomically, later).
    pub(crate) fn refuse_taken(&self, id: &str, cgroup: &Cgroup) -> Result<()> {
        if crate::sys::fs::exists(&self.root.join(id)) {
            return Err(Error::container(format!(
                "container with id {id:?} already exists"
            )));
        }
        if cgroup.has_processes() {
            return Err(Error::config(
                "linux.cgroupsPath",
                format!(
                    "container's cgroup is not empty: {} has processes",
                    cgroup
                        .dirs
                        .first()
                        .map(|d| d.path.display().to_string())
                        .unwrap_or_default()
                ),
            ));
        }
        Ok(())
    }

    /// The cgroup of a new container (`create`, `restore`), by the driver rsrun runs
    /// with: a systemd scope (`--systemd-cgroup`, `linux.cgroupsPath` as
    /// `slice:prefix:name`), a rootless container's path without the hierarchies the
    /// caller cannot write (returned, for `fit_plan_to_driver`), or a cgroupfs path. A
    /// frozen cgroup or one holding another container's processes is refused.
    fn resolve_cgroup(
        &self,
        spec: &oci_spec::runtime::Spec,
        id: &str,
    ) -> Result<(Cgroup, Vec<String>)> {
        let cgroups_path = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned());
        let mut left_out = Vec::new();
        let cgroup = if self.systemd_cgroup {
            Cgroup::resolve_systemd(cgroups_path.as_deref(), id)?
        } else if self.rootless.get() {
            crate::cgroups::systemd::check_driver(cgroups_path.as_deref())?;
            let (cg, out) = Cgroup::resolve_rootless(cgroups_path.as_deref(), id)?;
            left_out = out;
            cg
        } else {
            crate::cgroups::systemd::check_driver(cgroups_path.as_deref())?;
            Cgroup::resolve(cgroups_path.as_deref(), id)?
        };
        freezer::refuse_frozen(&cgroup)?;
        self.refuse_taken(id, &cgroup)?;
        Ok((cgroup, left_out))
    }

    /// What the driver adds to a new container's plan: a rootless container does
    /// without the cgroups left out (`resolve_cgroup`); a systemd scope carries the
    /// spec's resources and devices as unit properties.
    fn fit_plan_to_driver(
        &self,
        plan: &mut plan::Plan,
        spec: &oci_spec::runtime::Spec,
        left_out: &[String],
    ) -> Result<()> {
        if self.rootless.get() {
            crate::rootless::adapt_plan(plan, left_out, &self.log)?;
        }
        if let Some(unit) = plan.rootfs.cgroup.systemd.as_mut() {
            use crate::cgroups::systemd;
            let mode = plan.rootfs.cgroup.mode;
            let res = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
            let devices = crate::sys::fs::read_pseudo("/proc/devices").unwrap_or_default();
            unit.props = systemd::resource_properties(res, mode);
            unit.props.extend(systemd::device_properties(
                &plan.device_rules,
                mode,
                &devices,
            ));
            unit.description = format!("rsrun container {} ({})", plan.id, self.root.display());
        }
        Ok(())
    }

    /// The plan of a new container (`create`, `restore`): its cgroup resolved by the
    /// driver, the spec made a plan, and the plan fitted to the driver.
    fn plan_new(
        &self,
        spec: &oci_spec::runtime::Spec,
        id: &str,
        bundle: &Path,
        options: &PlanOptions,
    ) -> Result<plan::Plan> {
        let (cgroup, left_out) = self.resolve_cgroup(spec, id)?;
        let mut plan = plan::build(spec, id, bundle, cgroup, options)?;
        self.fit_plan_to_driver(&mut plan, spec, &left_out)?;
        Ok(plan)
    }

    /// Create a container: it is left waiting for `start`. Returns the init's pid.
    pub fn create(&self, id: &str, o: &CreateOpts) -> Result<i32> {
        state::validate_id(id)?;
        let (bundle, loaded, config) = load_bundle(&o.bundle)?;
        let mut spec = loaded.spec;
        let notify = self.add_notify_socket(&mut spec, id)?;
        check_console(&spec, o.console_socket.is_some() || o.console_fd.is_some())?;
        let wait_killable = loaded.seccomp_wait_killable_recv;
        let mut plan = self.create_plan(&spec, id, &bundle, o, wait_killable)?;
        let mut new = NewContainer::begin(&self.root, &mut plan)?;
        let r = self.spawn(&mut new, &mut plan, &config, o, notify.is_some());
        if r.is_err() {
            new.abandon(false);
        }
        r
    }

    /// With NOTIFY_SOCKET set (see `notify`): the host's socket, checked, and the spec
    /// given the mount of the container's own socket directory.
    fn add_notify_socket(
        &self,
        spec: &mut oci_spec::runtime::Spec,
        id: &str,
    ) -> Result<Option<PathBuf>> {
        let Some(host) = notify::host_socket() else {
            return Ok(None);
        };
        let root = std::path::absolute(&self.root)
            .map_err(|e| Error::sys("getcwd", &self.root, crate::error::io_errno(&e)))?;
        notify::check_host(&host)?;
        notify::add_to_spec(spec, &root.join(id));
        Ok(Some(host))
    }

    /// `create`'s plan: the caller's options, the fds it passes on (`--preserve-fds` and
    /// socket activation's LISTEN_FDS, whose variables the process gets); its warnings
    /// logged.
    fn create_plan(
        &self,
        spec: &oci_spec::runtime::Spec,
        id: &str,
        bundle: &Path,
        o: &CreateOpts,
        seccomp_wait_killable_recv: bool,
    ) -> Result<plan::Plan> {
        let listen = listen_fds();
        let options = PlanOptions {
            no_pivot: o.no_pivot,
            preserve_fds: o.preserve_fds.saturating_add(listen),
            new_keyring: !o.no_new_keyring,
            seccomp_wait_killable_recv,
        };
        let mut plan = self.plan_new(spec, id, bundle, &options)?;
        if listen > 0 {
            plan.process.add_env(&format!("LISTEN_FDS={listen}"));
            plan.process.add_env("LISTEN_PID=1");
        }
        for w in &plan.warnings {
            self.log.warn(w);
        }
        self.log.debug(&format!(
            "create {id}: bundle {}, rootfs {}, cgroup {}",
            bundle.display(),
            plan.rootfs.root.display(),
            plan.rootfs
                .cgroup
                .dirs
                .first()
                .map(|d| d.path.display().to_string())
                .unwrap_or_default()
        ));
        Ok(plan)
    }

    /// Save the new container's record (and with `notify` make its socket directory),
    /// make its cgroups and its init, and record the init once it is ready.
    fn spawn(
        &self,
        new: &mut NewContainer,
        plan: &mut plan::Plan,
        config: &[u8],
        o: &CreateOpts,
        notify: bool,
    ) -> Result<i32> {
        use std::os::fd::AsRawFd;
        let NewContainer { dir, st, own } = new;
        dir.save(st)?;
        if notify {
            notify::make_dir(dir)?;
        }
        let own = own.as_ref();
        let after_join = self.make_cgroups(plan)?;
        let prep = crate::process::create::prepare(plan)?;
        let listener = socket::listen_in(&dir.fd, START_SOCKET, &dir.path.join(START_SOCKET))?;
        let console = console_conn(&o.console_socket, &o.console_fd)?;
        let pidfd_socket = PidfdSocket::connect(&o.pidfd_socket)?;
        state::atomic_write(&dir.path.join("config.json"), config, 0o600)?;
        let log = self.log.clone();
        let spawned = crate::process::create::spawn(
            plan,
            prep,
            listener,
            console,
            dir.fd.as_raw_fd(),
            &mut |pid| {
                if let Some(own) = own {
                    own.restore()?;
                }
                st.pid = pid;
                st.start_time = proc::stat(pid).map(|s| s.start_time).unwrap_or(0);
                dir.save(st)
            },
            &mut |level, msg| log.log(level, msg),
        )
        .map_err(|e| after_join.explain(&plan.rootfs.cgroup, e))?;
        let pid = spawned.pid;
        let limited = after_join.apply(&plan.rootfs.cgroup);
        self.log
            .debug(&format!("create {}: init {pid} is ready", plan.id));
        record_init(dir, st, pid, limited, &o.pid_file, || {
            PidfdSocket::send(&pidfd_socket, pid, PidfdSocket::INIT)
        })
    }

    /// Whether the bundle's process asks for a terminal (for `run`'s proxy). Only that
    /// field is read: `create` parses and validates the whole file next.
    pub fn wants_terminal(&self, bundle: &Path) -> bool {
        #[derive(serde::Deserialize)]
        struct Config {
            process: Option<Process>,
        }
        #[derive(serde::Deserialize)]
        struct Process {
            terminal: Option<bool>,
        }
        crate::spec::read_json_file(&bundle.join("config.json"))
            .ok()
            .and_then(|t| serde_json::from_slice::<Config>(&t).ok())
            .and_then(|c| c.process?.terminal)
            .unwrap_or(false)
    }

    /// Release a created container's init to exec the user process. With NOTIFY_SOCKET
    /// set, return once the container has said READY (relayed with the init as MAINPID)
    /// or its init has exited (see `notify`).
    pub fn start(&self, id: &str) -> Result<()> {
        match self.release(id)? {
            Some(r) => r.wait(None, &mut |w| self.log.warn(w)),
            None => Ok(()),
        }
    }

    /// `start` up to the wait for the container's READY: the relay still to wait for, if
    /// NOTIFY_SOCKET asks for one.
    pub fn release(&self, id: &str) -> Result<Option<notify::Relay>> {
        let dir = ContainerDir::open(&self.root, id)?;
        let st = dir.load()?;
        match state::status(&dir.path, &st) {
            Status::Created => {}
            // A frozen init cannot take the start request (runc's message).
            Status::Paused => {
                return Err(Error::container(
                    "cannot start a container in the paused state",
                ))
            }
            Status::Stopped => {
                return Err(Error::container(
                    "cannot start a container that has stopped",
                ))
            }
            _ => {
                return Err(Error::container(
                    "cannot start an already running container",
                ))
            }
        }
        let relay = notify::listen(&dir, st.pid)?;
        let sock = dir.path.join(START_SOCKET);
        let conn = socket::connect_in(&dir.fd, START_SOCKET, &sock)?;
        socket::write_all(&conn, b"s")?;
        // The socket's removal is the created → running transition: no state rewrite.
        crate::sys::fs::unlink(&sock)?;
        // The init now runs startContainer hooks and execs the process, whose execve a
        // seccomp agent may hold: wait for that without the lock, so the container can
        // still be killed and deleted. The wait ends when the init execs or dies.
        drop(dir);
        let reply = socket::read_to_end(&conn)?;
        self.log
            .debug(&format!("start {id}: init {} released", st.pid));
        crate::process::channel::start_reply(&reply)?;
        if let Some(h) = &st.hooks {
            crate::hooks::run_all_warn(
                "poststart",
                &h.poststart,
                &st.oci(Status::Running),
                &mut |w| self.log.warn(&w),
            );
        }
        Ok(relay)
    }

    pub fn state(&self, id: &str) -> Result<state::OciState> {
        let st = state::load_unlocked(&self.root, id)?;
        let status = state::status(&self.root.join(id), &st);
        Ok(st.oci(status))
    }

    /// Signal the init, or with `all` every process in the container's cgroup.
    pub fn kill(&self, id: &str, sig: i32, all: bool) -> Result<()> {
        let dir = ContainerDir::open(&self.root, id)?;
        let st = dir.load()?;
        let status = state::status(&dir.path, &st);
        // Without a pid namespace of its own, SIGKILL to the init would leave the rest
        // running (and the init may be gone already): every process of the cgroup is
        // killed, as runc does.
        let all = all || (sig == libc::SIGKILL && st.shared_pid_ns);
        if status == Status::Stopped && !all {
            return Err(Error::container("container not running"));
        }
        if all && st.cgroup.dirs.is_empty() {
            // A rootless container without a cgroup (none the user could write): its
            // processes cannot be listed. Its init is signalled, as runc does then; with a
            // pid namespace of its own, SIGKILL to the init ends them all.
            self.log.warn(&format!(
                "kill --all {id}: the container has no cgroup (rootless, none writable): only its init is signalled"
            ));
            if status == Status::Stopped || !st.init_alive() {
                return Ok(());
            }
            return proc::kill_raw(st.pid, sig);
        }
        if all {
            for pid in st.cgroup.pids() {
                let _ = proc::kill_raw(pid, sig);
            }
            if status == Status::Paused && sig == libc::SIGKILL {
                let _ = freezer::set_frozen(&st.cgroup, false);
            }
            return Ok(());
        }
        proc::kill_raw(st.pid, sig)
    }

    /// Delete a container; with `force` a running one is killed first. Whatever state a
    /// killed rsrun left (see `state`), `delete --force` removes all of it.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let dir = match ContainerDir::open(&self.root, id) {
            Ok(d) => d,
            Err(e) if force && e.to_string().ends_with("does not exist") => return Ok(()),
            Err(e) => return Err(e),
        };
        let st = dir.load()?;
        match dir.status(&st) {
            Status::Stopped | Status::Created => {}
            _ if force => {}
            s => {
                return Err(Error::container(format!(
                    "cannot delete container {id} that is not stopped: {s}"
                )))
            }
        }
        self.destroy(dir, &st)
    }

    /// Remove everything the container owns: every process of its init and cgroup tree
    /// (processes may outlive a stopped init), its cgroups, then (poststop hooks) its
    /// state. If a cgroup cannot be removed the state stays, so a retry can finish.
    pub fn destroy(&self, dir: ContainerDir, st: &State) -> Result<()> {
        self.log
            .debug(&format!("delete {}: removing cgroup and state", st.id));
        // The init's death takes its pid namespace with it, so its cgroup tree is usually
        // empty by the time it is read; a paused init dies only once kill_all thaws it.
        let init = st.init_pidfd();
        let end = std::time::Instant::now() + Duration::from_secs(10);
        let wait_init = |fd: &std::os::fd::OwnedFd| {
            let left = end.saturating_duration_since(std::time::Instant::now());
            crate::sys::poll::wait_all(std::slice::from_ref(fd), left)
        };
        if let Some(fd) = &init {
            let _ = proc::pidfd_kill(fd, libc::SIGKILL);
            if !freezer::is_frozen(&st.cgroup) {
                wait_init(fd);
            }
        }
        st.cgroup.kill_all();
        if let Some(fd) = &init {
            wait_init(fd);
        }
        if let Some(m) = &st.host_mounts {
            m.undo()?;
        }
        st.cgroup.destroy()?;
        if let Some(h) = &st.hooks {
            crate::hooks::run_all_warn(
                "poststop",
                &h.poststop,
                &st.oci(Status::Stopped),
                &mut |w| self.log.warn(&w),
            );
        }
        dir.remove()
    }

    /// Apply new resource limits to a running (or created, or paused) container.
    pub fn update(&self, id: &str, res: &oci_spec::runtime::LinuxResources) -> Result<()> {
        use crate::cgroups::{resources, Mode};
        let dir = ContainerDir::open(&self.root, id)?;
        let st = dir.load()?;
        if state::status(&dir.path, &st) == Status::Stopped {
            return Err(Error::container("cannot update a stopped container"));
        }
        resources::check_cpusets(res)?;
        check_before_update(&st.cgroup, res)?;
        let writes = match st.cgroup.mode {
            Mode::V2 => resources::v2(res)?,
            _ => resources::v1(res, false)?,
        };
        if let Some(unit) = &st.cgroup.systemd {
            let props = crate::cgroups::systemd::resource_properties(Some(res), st.cgroup.mode);
            crate::cgroups::systemd::set_properties(unit, &props)?;
        }
        resources::apply(&st.cgroup, &writes)
    }

    /// Host pids of every process in the container's cgroup.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let st = state::load_unlocked(&self.root, id)?;
        if state::status(&self.root.join(id), &st) == Status::Stopped {
            return Ok(Vec::new());
        }
        if st.cgroup.dirs.is_empty() {
            return Err(without_cgroup(id, "its processes cannot be listed"));
        }
        let mut p = st.cgroup.pids();
        p.sort_unstable();
        Ok(p)
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        let dir = ContainerDir::open(&self.root, id)?;
        let st = dir.load()?;
        match state::status(&dir.path, &st) {
            Status::Running | Status::Created if st.cgroup.dirs.is_empty() => {
                Err(without_cgroup(id, "it cannot be paused (frozen)"))
            }
            Status::Running | Status::Created => freezer::set_frozen(&st.cgroup, true),
            _ => Err(Error::container("container not running")),
        }
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        let dir = ContainerDir::open(&self.root, id)?;
        let st = dir.load()?;
        match state::status(&dir.path, &st) {
            Status::Paused => freezer::set_frozen(&st.cgroup, false),
            _ => Err(Error::container("container not paused")),
        }
    }

    /// Every container under the root, sorted by id.
    pub fn list(&self) -> Result<Vec<state::OciState>> {
        let mut out = Vec::new();
        let entries = match crate::sys::fs::dir_entries(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) => return Ok(out),
            Err(e) => return Err(e),
        };
        for (path, _) in entries {
            let Some(name) = path.file_name() else {
                continue;
            };
            let id = name.to_string_lossy().into_owned();
            if let Ok(st) = state::load_unlocked(&self.root, &id) {
                let status = state::status(&path, &st);
                out.push(st.oci(status));
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

/// The container's init runs (created, or restored): the record says so (no longer
/// `creating`), then `--pid-file`, then `then` (`--pidfd-socket`). If the limits applied
/// after the init joined (`limited`) or any step failed, the init is killed and reaped.
fn record_init(
    dir: &ContainerDir,
    st: &mut State,
    pid: i32,
    limited: Result<()>,
    pid_file: &Option<PathBuf>,
    then: impl FnOnce() -> Result<()>,
) -> Result<i32> {
    st.creating = false;
    let saved = limited
        .and_then(|()| dir.save(st))
        .and_then(|()| match pid_file {
            Some(f) => write_pid_file(f, pid),
            None => Ok(()),
        })
        .and_then(|()| then());
    if let Err(e) = saved {
        let _ = proc::kill(pid, Signal::SIGKILL);
        let _ = proc::waitpid(pid, false);
        return Err(e);
    }
    Ok(pid)
}

/// The console socket connection for a terminal: `--console-socket PATH`, or the
/// socket `run`/`exec` made to proxy the terminal themselves.
impl Runtime {
    /// Make the container's cgroups and write the limits that may be written before
    /// its first process joins (`create` and `restore`); the rest come back as
    /// `AfterJoin`.
    fn make_cgroups(&self, plan: &plan::Plan) -> Result<crate::cgroups::resources::AfterJoin> {
        let cg = &plan.rootfs.cgroup;
        cg.create()?;
        let (before, after_join) =
            crate::cgroups::resources::split_after_join(cg, &plan.cgroup_writes);
        crate::cgroups::resources::apply(cg, &before)?;
        if cg.mode == crate::cgroups::Mode::V2 {
            match crate::cgroups::devices_bpf::attach(cg, &plan.device_rules) {
                // Loading a device filter needs host privilege: a rootless container goes
                // without one, as runc ignores device rules there (its device nodes are
                // the host's, bound).
                Err(e)
                    if self.rootless.get()
                        && matches!(
                            e.errno(),
                            Some(nix::errno::Errno::EPERM | nix::errno::Errno::EACCES)
                        ) =>
                {
                    self.log.debug(&format!("rootless: no device filter: {e}"));
                }
                r => r?,
            }
        }
        Ok(after_join)
    }
}

/// A new container's bundle (`create`, `restore`): its absolute path, its config parsed
/// and validated, and the config's bytes (kept as the container's config, so that what
/// `exec` reads later is what was validated).
fn load_bundle(bundle: &Path) -> Result<(PathBuf, crate::spec::Loaded, Vec<u8>)> {
    let bundle = crate::spec::absolute_bundle(bundle)?;
    let (loaded, config) = crate::spec::load_text(&bundle)?;
    crate::spec::validate::validate(&loaded.spec)?;
    Ok((bundle, loaded, config))
}

/// A terminal (`process.terminal`) needs a console socket to send its master to, and a
/// console socket is only for a terminal. Returns whether there is a terminal.
fn check_console(spec: &oci_spec::runtime::Spec, has_socket: bool) -> Result<bool> {
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal && !has_socket {
        return Err(Error::config(
            "process.terminal",
            "a terminal needs --console-socket to receive the pty master",
        ));
    }
    if !terminal && has_socket {
        return Err(Error::container(
            "--console-socket given but process.terminal is false",
        ));
    }
    Ok(terminal)
}

fn console_conn(
    path: &Option<PathBuf>,
    fd: &Option<std::os::fd::OwnedFd>,
) -> Result<Option<std::os::fd::OwnedFd>> {
    Ok(match (path, fd) {
        (Some(path), _) => Some(socket::connect_path(path)?),
        (None, Some(fd)) => Some(
            fd.try_clone()
                .map_err(|e| Error::sys_nopath("dup", crate::error::io_errno(&e)))?,
        ),
        (None, None) => None,
    })
}

/// `--pidfd-socket PATH` (runc's): the socket is connected before the process is made,
/// so a bad path fails first, and the process's pidfd is sent on it (SCM_RIGHTS) once it
/// runs, while it is still our child (no pid reuse in between), with runc's word for the
/// kind of process as the message.
pub struct PidfdSocket {
    conn: std::os::fd::OwnedFd,
    path: PathBuf,
}

impl PidfdSocket {
    pub const INIT: &'static str = "standard";
    pub const EXEC: &'static str = "setns";

    pub fn connect(path: &Option<PathBuf>) -> Result<Option<PidfdSocket>> {
        path.as_ref()
            .map(|p| {
                Ok(PidfdSocket {
                    conn: socket::connect_path(p)?,
                    path: p.clone(),
                })
            })
            .transpose()
    }

    pub fn send(this: &Option<PidfdSocket>, pid: i32, kind: &str) -> Result<()> {
        use std::os::fd::AsRawFd;
        let Some(s) = this else {
            return Ok(());
        };
        let pidfd = proc::pidfd_open(pid)?;
        socket::send_frame(&s.conn, kind.as_bytes(), &[pidfd.as_raw_fd()]).map_err(|e| {
            Error::sys(
                "send pidfd on",
                &s.path,
                e.errno().unwrap_or(nix::errno::Errno::EIO),
            )
        })
    }
}

/// `memory.checkBeforeUpdate`: refuse a new memory limit below what the container uses
/// now, instead of letting the kernel OOM-kill it (runc's behaviour on v2).
fn check_before_update(cg: &Cgroup, res: &oci_spec::runtime::LinuxResources) -> Result<()> {
    let Some(m) = res.memory() else {
        return Ok(());
    };
    let Some(limit) = m.limit().filter(|l| *l >= 0) else {
        return Ok(());
    };
    if m.check_before_update() != Some(true) {
        return Ok(());
    }
    let usage = crate::cgroups::stats::memory_usage(cg);
    if usage > limit as u64 {
        return Err(Error::config(
            "linux.resources.memory.limit",
            format!("{limit} is below the current usage {usage} (checkBeforeUpdate)"),
        ));
    }
    Ok(())
}

/// Socket activation (sd_listen_fds): when rsrun is started with LISTEN_FDS=N and
/// LISTEN_PID set to its own pid, fds 3..3+N go to the container (before any
/// --preserve-fds), which sees LISTEN_FDS=N and LISTEN_PID=1, as with runc.
pub fn listen_fds() -> u32 {
    let n = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .is_some_and(|p| p == proc::getpid());
    if pid_ok {
        n
    } else {
        0
    }
}

/// `--pid-file`, written atomically (runc: tmp file + rename).
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::sys("getcwd", path, crate::error::io_errno(&e)))?
            .join(path)
    };
    state::atomic_write(&abs, pid.to_string().as_bytes(), 0o644)
}

/// Parse a signal as runc does: `KILL`, `SIGKILL`, `9`; `0` only checks that the init
/// exists (kill(2) with signal 0).
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (0..=64).contains(&n) {
            return Ok(n);
        }
        return Err(Error::container(format!("invalid signal {s:?}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    if let Some(rt) = name.strip_prefix("SIGRTMIN") {
        let base = libc::SIGRTMIN();
        let off: i32 = if rt.is_empty() {
            0
        } else {
            rt.trim_start_matches('+').parse().unwrap_or(-1)
        };
        if off >= 0 && base + off <= libc::SIGRTMAX() {
            return Ok(base + off);
        }
    }
    name.parse::<Signal>()
        .map(|s| s as i32)
        .map_err(|_| Error::container(format!("invalid signal {s:?}")))
}

/// A container without a cgroup of its own (rootless, where the user could write none,
/// as runc's rootless cgroup manager leaves it): what cannot be done and why, where runc
/// warns that the command "may fail if you don't have the full access to cgroups".
fn without_cgroup(id: &str, what: &str) -> Error {
    Error::container(format!(
        "{id}: the container has no cgroup (rootless: none was writable by uid {}), so {what}",
        crate::sys::proc::geteuid()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("term").unwrap(), 15);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("NOPE").is_err());
        assert_eq!(parse_signal("0").unwrap(), 0);
        assert!(parse_signal("65").is_err());
        assert!(parse_signal("-1").is_err());
    }
}

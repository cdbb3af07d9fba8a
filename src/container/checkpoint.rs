//! `checkpoint` and `restore` (runc's semantics, with CRIU: see `crate::criu`).
//!
//! checkpoint: a running (or paused) container's process tree is dumped into the image
//! directory; without `--leave-running` CRIU kills it and the container is deleted, as
//! runc does. A failed dump leaves the container as it was, and so does a checkpoint
//! killed mid-dump (CRIU runs to its end holding the container's lock).
//!
//! restore: a new container is made from a bundle, as `create` makes one (the same
//! record, written before anything exists, crash-consistent as `state` describes), but
//! its init is CRIU's restored tree instead of a fresh process. The restored container
//! is then an ordinary rsrun container: `state`, `exec`, `kill`, `delete` work on it.
//!
//! What CRIU cannot see for itself comes from the container's config, as runc gives it:
//! - mounts whose source is on the host (binds, cgroup binds on v1, device binds in a
//!   user namespace, file masks bound from /dev/null) are external mounts
//!   (`--ext-mount-map`: on dump the destination names itself; on restore that name
//!   maps to the bundle's source);
//! - namespaces joined by path: network and pid ones are external on dump and handed to
//!   CRIU as inherited fds on restore, the others are joined (`--join-ns`);
//! - cgroups: CRIU freezes the container's freezer cgroup to dump it; on restore the
//!   container's cgroups are made and limited first, CRIU runs inside them and puts the
//!   restored tree there (`--cgroup-root`);
//! - stdio: the targets of the init's fds 0–2 are saved with the images
//!   (`descriptors.json`, runc's file); pipes among them are replaced on restore by the
//!   restoring rsrun's own stdio (`--inherit-fd`), which is what engines expect;
//! - a terminal (`process.terminal`): the init's pty has its master outside the container
//!   (with whoever took it from the console socket), so the pty is external on dump
//!   (`--external tty[rdev:dev]`, the key saved with the images); on restore a new pty
//!   takes its place (`--inherit-fd`) and its master goes to `--console-socket`, as
//!   runc's restore hands CRIU's new master on.

use super::restore_hooks::HookGate;
use super::{NewContainer, Runtime};
use crate::cgroups::{Cgroup, Mode};
use crate::criu::{self, Invocation};
use crate::error::{Error, Result, SysContext};
use crate::plan::{self, Plan, PlanOptions};
use crate::rootfs::MountKind;
use crate::spec::Loaded;
use crate::state::{self, ContainerDir, State, Status};
use crate::sys::{fs as sfs, proc};
use oci_spec::runtime::LinuxNamespaceType as Ns;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// `--manage-cgroups-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupsMode {
    Soft,
    Full,
    Strict,
    Ignore,
}

impl CgroupsMode {
    fn criu(self) -> &'static str {
        match self {
            CgroupsMode::Soft => "soft",
            CgroupsMode::Full => "full",
            CgroupsMode::Strict => "strict",
            CgroupsMode::Ignore => "ignore",
        }
    }
}

#[derive(Debug, Clone)]
pub struct CheckpointOpts {
    /// Absolute.
    pub image_path: PathBuf,
    /// Absolute.
    pub work_path: Option<PathBuf>,
    pub leave_running: bool,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub cgroups_mode: CgroupsMode,
    /// `--empty-ns network`.
    pub empty_net: bool,
}

#[derive(Debug, Clone)]
pub struct RestoreOpts {
    pub criu: CheckpointOpts,
    pub bundle: PathBuf,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_subreaper: bool,
}

/// The file with the init's stdio targets, in the image directory (runc's name).
const DESCRIPTORS: &str = "descriptors.json";
/// The file with CRIU's key of the init's terminal (`tty[rdev:dev]`), in the image
/// directory, for a container with `process.terminal`.
const TERMINAL_KEY: &str = "rsrun-terminal";
/// Where the init's terminal peer is bound in the container.
const CONSOLE: &str = "/dev/console";
/// CRIU's `--root` for a restore: the rootfs is bound here in CRIU's own mount namespace.
const CRIU_ROOT: &str = "criu-root";
const RESTORED_PID: &str = "restored.pid";
const DUMP_LOG: &str = "dump.log";
const RESTORE_LOG: &str = "restore.log";

impl CheckpointOpts {
    /// Make the image directory and the work directory, if missing.
    fn make_dirs(&self) -> Result<()> {
        criu::ensure_dir(&self.image_path)?;
        if let Some(w) = &self.work_path {
            criu::ensure_dir(w)?;
        }
        Ok(())
    }

    /// Where CRIU's log goes: the work directory, else the image directory.
    fn log_dir(&self) -> PathBuf {
        self.work_path
            .clone()
            .unwrap_or_else(|| self.image_path.clone())
    }
}

impl Runtime {
    pub fn checkpoint(&self, id: &str, o: &CheckpointOpts) -> Result<()> {
        let dir = ContainerDir::open(&self.root, id)?;
        let st = dir.load()?;
        refuse_checkpoint(&dir, &st, id)?;
        let stored = crate::spec::load_full(&dir.path)?;
        let plan = stored_plan(&stored, &st)?;
        let config = criu::Config::for_container(&st.annotations)?;
        o.make_dirs()?;
        let terminal = save_beside_images(&stored.spec, &plan, &st, &o.image_path)?;
        let (args, log_name) = dump_args(o, &plan, &st, terminal, config.as_ref())?;
        self.log.debug(&format!(
            "checkpoint {id}: criu dump of init {} into {}",
            st.pid,
            o.image_path.display()
        ));
        // CRIU runs to its end even if rsrun is killed, and holds the container's lock
        // (a copy of the locked directory fd) until then: no other command acts on the
        // container while its tree is frozen and seized.
        let lock = dir.fd.try_clone().op("dup", &dir.path)?;
        Invocation {
            action: "dump",
            args,
            log_dir: o.log_dir(),
            log_name,
            fds: vec![(3, lock)],
            cgroup_procs: Vec::new(),
            private_root: None,
            inherit_stdio: false,
            outlive: true,
        }
        .run()
        .map_err(|e| Error::container(format!("checkpoint {id}: {e}")))?;
        if o.leave_running {
            return Ok(());
        }
        // CRIU killed the tree once it was dumped: the container is gone (runc deletes it).
        self.destroy(dir, &st)
    }

    /// Restore a container from a checkpoint; returns the restored init's exit status
    /// when not detached (the container is then deleted, as with `run`), else 0.
    pub fn restore(&self, id: &str, o: &RestoreOpts) -> Result<i32> {
        state::validate_id(id)?;
        let (bundle, loaded, config) = super::load_bundle(&o.bundle)?;
        let options = plan_options(&loaded);
        let spec = loaded.spec;
        let stdio = RestoredStdio::load(&spec, o)?;
        super::checkpoint_namespaces::check(&spec, &o.criu.image_path)?;
        let mut plan = self.restore_plan(&spec, id, &bundle, &options)?;
        // The systemd driver starts the scope with rsrun in it (CRIU, rsrun's child,
        // starts there too): rsrun leaves it once the tree is restored, or on failure
        // before the scope is stopped.
        let mut new = NewContainer::begin(&self.root, &mut plan)?;
        let mut old_mask = None;
        let pid = match self.restore_new(&mut new, &plan, &config, o, stdio, &mut old_mask) {
            Ok(pid) => pid,
            Err(e) => {
                new.abandon(true);
                if let Some(m) = old_mask {
                    m.restore();
                }
                return Err(e);
            }
        };
        match old_mask {
            None => Ok(0),
            Some(old_mask) => {
                drop(new);
                self.wait_restored(id, pid, old_mask, o.no_subreaper)
            }
        }
    }

    /// `restore`'s plan, as `create` makes one; refused before anything exists when the
    /// container's CRIU configuration file is bad (`restore_tree` reads it again to run
    /// CRIU) or the container has no mount namespace of its own.
    fn restore_plan(
        &self,
        spec: &oci_spec::runtime::Spec,
        id: &str,
        bundle: &Path,
        options: &PlanOptions,
    ) -> Result<Plan> {
        let plan = self.plan_new(spec, id, bundle, options)?;
        criu::Config::for_container(&plan.annotations)?;
        if plan.rootfs.host_mount_ns {
            return Err(Error::config(
                "linux.namespaces",
                "a container without a mount namespace of its own cannot be restored",
            ));
        }
        Ok(plan)
    }

    /// Save the new container's record and config, block signals when restore waits
    /// in the foreground (`old_mask` is then the mask to set back), and restore the tree.
    fn restore_new(
        &self,
        new: &mut NewContainer,
        plan: &Plan,
        config: &[u8],
        o: &RestoreOpts,
        stdio: RestoredStdio,
        old_mask: &mut Option<crate::sys::signals::SavedMask>,
    ) -> Result<i32> {
        new.dir.save(&new.st)?;
        if !o.detach {
            *old_mask = Some(crate::cli::foreground::block_signals()?);
        }
        state::atomic_write(&new.dir.path.join("config.json"), config, 0o600)?;
        self.restore_tree(new, plan, o, stdio)
    }

    /// In the foreground: the restored init is our child (CRIU restored it as its
    /// sibling); wait for it, then delete the container, as `run` does.
    fn wait_restored(
        &self,
        id: &str,
        pid: i32,
        old_mask: crate::sys::signals::SavedMask,
        no_subreaper: bool,
    ) -> Result<i32> {
        if !no_subreaper {
            crate::sys::privilege::set_child_subreaper()?;
        }
        let result = crate::cli::foreground::wait(pid, None);
        old_mask.restore();
        let del = self.delete(id, true);
        let code = result?;
        del?;
        Ok(code)
    }

    /// The container's cgroups made and limited and its mount points made, CRIU's
    /// restore run (with the hooks), the terminal's master sent on, the restored init
    /// recorded.
    fn restore_tree(
        &self,
        new: &mut NewContainer,
        plan: &Plan,
        o: &RestoreOpts,
        stdio: RestoredStdio,
    ) -> Result<i32> {
        let c = &o.criu;
        let cg = &plan.rootfs.cgroup;
        let after_join = self.make_cgroups(plan)?;
        make_mountpoints(plan)?;
        c.make_dirs()?;
        let dirs = RestoreDirs::make(&new.dir)?;
        // The restored tree's terminal: a new pty whose peer takes the dumped one's place
        // (its fds and the /dev/console bind); its master goes to the console socket
        // once the tree is back.
        let new_tty = match &stdio.terminal {
            Some(_) => Some(NewTerminal::open(plan)?),
            None => None,
        };
        let (cmd, log_name, master) = restore_command(plan, c, &dirs, &stdio, new_tty)?;
        let procs = open_cgroup_procs(cg)?;
        let id = &new.st.id;
        self.log.debug(&format!(
            "restore {id}: criu restore from {}",
            c.image_path.display()
        ));
        let criu = Invocation {
            action: "restore",
            args: cmd.args,
            log_dir: c.log_dir(),
            log_name,
            fds: cmd.fds,
            cgroup_procs: procs,
            private_root: Some((
                crate::sys::fs::cstr(&new.st.rootfs)?,
                crate::sys::fs::cstr(&dirs.root)?,
            )),
            inherit_stdio: true,
            outlive: false,
        };
        run_with_hooks(criu, &new.dir, plan)
            .map_err(|e| Error::container(format!("restore {id}: {e}")))?;
        if let (Some(t), Some(master)) = (&stdio.terminal, &master) {
            use std::os::fd::AsRawFd;
            crate::sys::socket::send_frame(&t.socket, b"/dev/ptmx", &[master.as_raw_fd()])?;
        }
        drop(master);
        if let Some(own) = &new.own {
            own.restore()?;
        }
        let pid = read_pid(&dirs.pid_file)?;
        new.st.pid = pid;
        new.st.start_time = proc::stat(pid).map(|s| s.start_time).unwrap_or(0);
        dirs.remove();
        let limited = after_join.apply(cg);
        super::record_init(&new.dir, &mut new.st, pid, limited, &o.pid_file, || Ok(()))
    }
}

/// A container that can be checkpointed: running or paused, in a mount namespace of
/// its own.
fn refuse_checkpoint(dir: &ContainerDir, st: &State, id: &str) -> Result<()> {
    match dir.status(st) {
        Status::Running | Status::Paused => {}
        s => {
            return Err(Error::container(format!(
                "container {id} cannot be checkpointed in the {s} state"
            )))
        }
    }
    if st.host_mounts.is_some() {
        return Err(Error::container(
            "a container without a mount namespace of its own cannot be checkpointed",
        ));
    }
    Ok(())
}

/// What a restore needs beside CRIU's images, saved with them: the init's stdio
/// targets, the container's namespaces and, with a terminal, CRIU's key of its pty
/// (returned).
fn save_beside_images(
    spec: &oci_spec::runtime::Spec,
    plan: &Plan,
    st: &State,
    images: &Path,
) -> Result<Option<String>> {
    save_descriptors(st.pid, images)?;
    super::checkpoint_namespaces::save(spec, images)?;
    match plan.process.terminal {
        true => Ok(Some(save_terminal_key(st.pid, images)?)),
        false => Ok(None),
    }
}

/// CRIU's dump command line and the name of its log: `common_args`, the terminal's pty
/// as external, the tree, its root and freezer, the external mounts and namespaces.
fn dump_args(
    o: &CheckpointOpts,
    plan: &Plan,
    st: &State,
    terminal: Option<String>,
    config: Option<&criu::Config>,
) -> Result<(Vec<OsString>, PathBuf)> {
    let (mut a, log_name) = common_args(o, DUMP_LOG, config);
    if let Some(key) = terminal {
        a.push("--external".into());
        a.push(key.into());
    }
    a.push("--tree".into());
    a.push(st.pid.to_string().into());
    a.push("--root".into());
    a.push(st.rootfs.clone().into());
    if o.leave_running {
        a.push("--leave-running".into());
    }
    if let Some(f) = freezer_dir(&st.cgroup) {
        a.push("--freeze-cgroup".into());
        a.push(f.into());
    }
    let console = plan.process.terminal.then_some(Path::new(CONSOLE));
    for m in external_mounts(plan, &st.cgroup, console) {
        a.push("--ext-mount-map".into());
        a.push(map_arg(&m.dest, &m.name));
    }
    for (t, path) in joined_namespaces(plan) {
        if matches!(t, Ns::Network | Ns::Pid) {
            let ino = crate::sys::fs::stat(&path)?.st_ino;
            a.push("--external".into());
            a.push(format!("{}[{ino}]:{}", ns_name(t), external_key(t)).into());
        }
    }
    Ok((a, log_name))
}

/// Where a restore works, in the container's state directory: CRIU's root (made) and
/// the file CRIU writes the restored init's pid to.
struct RestoreDirs {
    root: PathBuf,
    pid_file: PathBuf,
}

impl RestoreDirs {
    fn make(dir: &ContainerDir) -> Result<RestoreDirs> {
        let root = dir.path.join(CRIU_ROOT);
        criu::ensure_dir(&root)?;
        Ok(RestoreDirs {
            root,
            pid_file: dir.path.join(RESTORED_PID),
        })
    }

    /// Once the pid is read.
    fn remove(&self) {
        let _ = sfs::remove_file(&self.pid_file);
        let _ = sfs::remove_dir(&self.root);
    }
}

/// CRIU's restore command line and the name of its log: `common_args`, the restore's
/// own flags, where the tree goes (root, pid file, cgroups, external mounts,
/// namespaces) and what its stdio becomes (the restoring rsrun's pipes, the new pty's
/// peer); and the new pty's master.
fn restore_command(
    plan: &Plan,
    c: &CheckpointOpts,
    dirs: &RestoreDirs,
    stdio: &RestoredStdio,
    new_tty: Option<NewTerminal>,
) -> Result<(CriuCommand, PathBuf, Option<std::os::fd::OwnedFd>)> {
    let cg = &plan.rootfs.cgroup;
    let config = criu::Config::for_container(&plan.annotations)?;
    let (args, log_name) = common_args(c, RESTORE_LOG, config.as_ref());
    let mut cmd = CriuCommand::new(args);
    for flag in [
        "--restore-detached",
        "--restore-sibling",
        "--evasive-devices",
    ] {
        cmd.args.push(flag.into());
    }
    cmd.pair("--root", dirs.root.clone().into());
    cmd.pair("--pidfile", dirs.pid_file.clone().into());
    for root in cgroup_roots(cg) {
        cmd.pair("--cgroup-root", root);
    }
    let console = new_tty.as_ref().map(|t| t.path.as_path());
    for m in external_mounts(plan, cg, console) {
        cmd.pair("--ext-mount-map", map_arg(&m.name, &m.source));
    }
    cmd.namespaces(plan)?;
    for (i, d) in stdio.descriptors.iter().enumerate().take(3) {
        if d.starts_with("pipe:") {
            cmd.pair("--inherit-fd", format!("fd[{i}]:{d}").into());
        }
    }
    let master = match (new_tty, &stdio.terminal) {
        (Some(tty), Some(t)) => {
            cmd.inherit(&t.key, tty.peer);
            Some(tty.master)
        }
        _ => None,
    };
    Ok((cmd, log_name, master))
}

/// The container's `cgroup.procs` files, opened for CRIU to put the restored tree in.
fn open_cgroup_procs(cg: &Cgroup) -> Result<Vec<std::os::fd::OwnedFd>> {
    cg.dirs
        .iter()
        .map(|d| {
            let f = d.path.join("cgroup.procs");
            crate::sys::fs::open(&f, nix::fcntl::OFlag::O_WRONLY)
        })
        .collect()
}

/// CRIU's command line for a restore and the fds it inherits (`--inherit-fd fd[N]`,
/// numbered from 3).
struct CriuCommand {
    args: Vec<OsString>,
    fds: Vec<(std::os::fd::RawFd, std::os::fd::OwnedFd)>,
}

impl CriuCommand {
    fn new(args: Vec<OsString>) -> CriuCommand {
        CriuCommand {
            args,
            fds: Vec::new(),
        }
    }

    fn pair(&mut self, flag: &str, value: OsString) {
        self.args.push(flag.into());
        self.args.push(value);
    }

    /// `fd` given to CRIU for what the images call `key`.
    fn inherit(&mut self, key: &str, fd: std::os::fd::OwnedFd) {
        let n = 3 + self.fds.len() as std::os::fd::RawFd;
        self.pair("--inherit-fd", format!("fd[{n}]:{key}").into());
        self.fds.push((n, fd));
    }

    /// The namespaces the container joins by path: network and pid ones as inherited
    /// fds (they were external on dump), the others joined (`--join-ns`).
    fn namespaces(&mut self, plan: &Plan) -> Result<()> {
        for (t, path) in joined_namespaces(plan) {
            match t {
                Ns::Network | Ns::Pid => {
                    let fd = crate::sys::fs::open(&path, nix::fcntl::OFlag::O_RDONLY)?;
                    self.inherit(external_key(t), fd);
                }
                Ns::Cgroup => {
                    return Err(Error::config(
                        "linux.namespaces",
                        "CRIU cannot restore into a cgroup namespace joined by path",
                    ))
                }
                t => {
                    let mut arg = OsString::from(format!("{}:", ns_name(t)));
                    arg.push(&path);
                    self.pair("--join-ns", arg);
                }
            }
        }
        Ok(())
    }
}

/// `--cgroup-root` values: each hierarchy's container cgroup, as CRIU names it.
fn cgroup_roots(cg: &Cgroup) -> Vec<OsString> {
    cg.dirs
        .iter()
        .map(|d| {
            let inner = d.path.strip_prefix(&d.mountpoint).unwrap_or(&d.path);
            let inner = Path::new("/").join(inner);
            if d.controllers.is_empty() {
                inner.into()
            } else {
                format!("{}:{}", d.controllers, inner.display()).into()
            }
        })
        .collect()
}

/// The pty a restored terminal container gets: its master, its peer and the peer's
/// path (the source of the container's /dev/console).
struct NewTerminal {
    master: std::os::fd::OwnedFd,
    peer: std::os::fd::OwnedFd,
    path: PathBuf,
}

impl NewTerminal {
    fn open(plan: &Plan) -> Result<NewTerminal> {
        let (master, peer) = crate::sys::tty::open_pty(Path::new("/dev/ptmx"))?;
        if let Some((rows, cols)) = plan.process.console_size {
            crate::sys::tty::set_winsize(&peer, rows, cols)?;
        }
        let link = PathBuf::from(crate::sys::fd_path(&peer));
        let path = sfs::read_link(&link, &link)?;
        Ok(NewTerminal { master, peer, path })
    }
}

/// Run CRIU's restore; with prestart or createRuntime hooks, run them when CRIU has
/// made the namespaces (see `restore_hooks`). A failed hook is the error reported (it
/// made CRIU fail).
fn run_with_hooks(criu: Invocation, dir: &ContainerDir, plan: &Plan) -> Result<()> {
    let mut criu = criu;
    let gate = match plan.has_runtime_hooks() {
        true => Some(HookGate::new(&dir.path)?),
        false => None,
    };
    if let Some(g) = &gate {
        criu.args.extend(g.criu_args());
    }
    let child = criu.spawn()?;
    let hooks = match &gate {
        Some(g) => g.serve(child.id(), |pid| run_restore_hooks(plan, pid)),
        None => Ok(()),
    };
    let restored = criu.finish(child);
    if let Some(g) = gate {
        g.remove();
    }
    hooks.and(restored)
}

/// The restored init's pid, as CRIU's `--pidfile` holds it.
fn read_pid(path: &Path) -> Result<i32> {
    let text = sfs::read_text(path)?;
    text.trim()
        .parse()
        .map_err(|_| Error::container(format!("{}: not a pid: {text:?}", path.display())))
}

/// prestart then createRuntime, as `create` runs them (in the bundle, with the
/// restored init's pid), while CRIU holds the restored tree before it resumes.
fn run_restore_hooks(plan: &Plan, pid: i32) -> Result<()> {
    let st = plan.hook_state(pid, "created");
    let ctx = crate::hooks::Context {
        env: &[],
        cwd: Some(&plan.bundle),
    };
    crate::hooks::run_all_in("prestart", &plan.hooks.prestart, &st, &ctx)?;
    crate::hooks::run_all_in("createRuntime", &plan.hooks.create_runtime, &st, &ctx)
}

/// Options both dump and restore take, and the name of CRIU's log: `log_name` unless
/// the container's CRIU configuration file names another. What that file sets, rsrun
/// leaves out (CRIU would take rsrun's command line over the file; runc's RPC options
/// give way to the file).
fn common_args(
    o: &CheckpointOpts,
    log_name: &str,
    config: Option<&criu::Config>,
) -> (Vec<OsString>, PathBuf) {
    let sets = |name: &str| config.is_some_and(|c| c.sets(name));
    let mut a: Vec<OsString> = vec!["--images-dir".into(), o.image_path.clone().into()];
    let log = match config.and_then(|c| c.value("log-file")) {
        Some(l) if !l.is_empty() => PathBuf::from(l),
        _ => {
            a.push("--log-file".into());
            a.push(log_name.into());
            PathBuf::from(log_name)
        }
    };
    if !sets("verbosity") && !sets("v") {
        a.push("-v4".into());
    }
    if !sets("manage-cgroups") {
        a.push(format!("--manage-cgroups={}", o.cgroups_mode.criu()).into());
    }
    if let Some(c) = config {
        a.push("--config".into());
        a.push(c.path.clone().into());
    }
    if let Some(w) = &o.work_path {
        a.push("--work-dir".into());
        a.push(w.clone().into());
    }
    for (set, flag) in [
        (o.tcp_established, "--tcp-established"),
        (o.ext_unix_sk, "--ext-unix-sk"),
        (o.shell_job, "--shell-job"),
        (o.file_locks, "--file-locks"),
    ] {
        if set {
            a.push(flag.into());
        }
    }
    // rsrun does not manage network devices: a new network namespace is made empty on
    // restore (lo as the image has it is not restored), as runc does it always.
    let _ = o.empty_net;
    a.push("--empty-ns".into());
    a.push("net".into());
    (a, log)
}

/// `KEY:VALUE` for `--ext-mount-map`.
fn map_arg(key: &Path, value: &Path) -> OsString {
    let mut s = OsString::from(key);
    s.push(":");
    s.push(value);
    s
}

/// A mount whose source is outside the container: where it is, the name it has in the
/// images, and its source on the host.
struct ExternalMount {
    dest: PathBuf,
    name: PathBuf,
    source: PathBuf,
}

/// `console`: where the container's /dev/console (the bind of its terminal's peer)
/// comes from, for a container with a terminal (on dump only its name counts).
fn external_mounts(plan: &Plan, cg: &Cgroup, console: Option<&Path>) -> Vec<ExternalMount> {
    let r = &plan.rootfs;
    let root = RootResolver::open(&r.root);
    // The mount is where its destination leads in the rootfs (a symlink followed
    // inside the root, as it was mounted): that is where CRIU sees it, and its name.
    let same = |dest: &Path, source: &Path| {
        let dest = root.resolve(dest);
        ExternalMount {
            name: dest.clone(),
            dest,
            source: source.to_path_buf(),
        }
    };
    let mut out = Vec::new();
    for m in &r.mounts {
        match &m.kind {
            MountKind::Bind { source } => out.push(same(&m.dest, source)),
            MountKind::Cgroup if !r.cgroup_ns => {
                if cg.mode == Mode::V2 {
                    if let Some(d) = cg.dirs.first() {
                        out.push(same(&m.dest, &d.path));
                    }
                } else {
                    for d in cg.dirs.iter().filter(|d| !d.controllers.is_empty()) {
                        let name = d.mountpoint.file_name().unwrap_or_default();
                        out.push(same(&m.dest.join(name), &d.path));
                    }
                }
            }
            _ => {}
        }
    }
    if r.bind_devices {
        let defaults = if r.setup_dev {
            crate::rootfs::devices::defaults()
        } else {
            Vec::new()
        };
        for d in defaults.iter().chain(r.devices.iter()) {
            out.push(same(&d.path, &d.path));
        }
    }
    if let Some(source) = console {
        out.push(ExternalMount {
            dest: PathBuf::from(CONSOLE),
            name: PathBuf::from(CONSOLE),
            source: source.to_path_buf(),
        });
    }
    // Masked files are /dev/null bound over them: one name in the images.
    let null = Path::new("/dev/null");
    let rootfs = &r.root;
    for p in &r.masked_paths {
        let inside = rootfs.join(p.strip_prefix("/").unwrap_or(p));
        if sfs::lstat(&inside).is_ok_and(|m| m.st_mode & libc::S_IFMT != libc::S_IFDIR) {
            out.push(ExternalMount {
                dest: p.clone(),
                name: null.to_path_buf(),
                source: null.to_path_buf(),
            });
        }
    }
    out
}

/// Resolves paths in a rootfs as the container's mounts were placed: symlinks followed
/// inside the root.
struct RootResolver {
    /// The rootfs, opened, and its path as the kernel names it.
    root: Option<(std::os::fd::OwnedFd, PathBuf)>,
}

impl RootResolver {
    fn open(root: &Path) -> RootResolver {
        let flags = nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY;
        let root = crate::sys::fs::open(root, flags)
            .ok()
            .and_then(|fd| Some((Self::path_of(&fd)?, fd)))
            .map(|(path, fd)| (fd, path));
        RootResolver { root }
    }

    fn path_of(fd: &std::os::fd::OwnedFd) -> Option<PathBuf> {
        let link = PathBuf::from(crate::sys::fd_path(fd));
        sfs::read_link(&link, &link).ok()
    }

    /// Where `dest` (absolute, in the container) leads in the rootfs; `dest` itself
    /// when it does not exist there.
    fn resolve(&self, dest: &Path) -> PathBuf {
        let Some((fd, root)) = &self.root else {
            return dest.to_path_buf();
        };
        crate::sys::fs::open_in_root(fd, dest, nix::fcntl::OFlag::O_PATH, 0)
            .ok()
            .and_then(|f| Self::path_of(&f))
            .and_then(|p| p.strip_prefix(root).ok().map(|r| Path::new("/").join(r)))
            .unwrap_or_else(|| dest.to_path_buf())
    }
}

/// The namespaces the container joins by path.
fn joined_namespaces(plan: &Plan) -> Vec<(Ns, PathBuf)> {
    let mut v: Vec<(Ns, PathBuf)> = plan
        .ns
        .join_in_parent
        .iter()
        .chain(plan.ns.join_in_child.iter())
        .cloned()
        .collect();
    if let Some(u) = &plan.ns.join_user_before_clone {
        v.push((Ns::User, u.clone()));
    }
    v
}

/// CRIU's name for a namespace type (`--join-ns`, `--external`).
fn ns_name(t: Ns) -> &'static str {
    crate::namespaces::proc_name(t)
}

/// The key an external namespace has in the images (runc's: `extRootNetNS`).
fn external_key(t: Ns) -> &'static str {
    match t {
        Ns::Pid => "extRootPidNS",
        _ => "extRootNetNS",
    }
}

/// The freezer CRIU uses to stop the tree: the v1 freezer hierarchy, or the v2 cgroup.
fn freezer_dir(cg: &Cgroup) -> Option<PathBuf> {
    cg.dirs
        .iter()
        .find(|d| d.controllers.split(',').any(|c| c == "freezer"))
        .or_else(|| match cg.mode {
            Mode::V2 => cg.dirs.first(),
            _ => None,
        })
        .map(|d| d.path.clone())
}

/// The plan of a running container, from the config it was created with (`stored`).
fn stored_plan(stored: &Loaded, st: &State) -> Result<Plan> {
    plan::build(
        &stored.spec,
        &st.id,
        &st.bundle,
        st.cgroup.clone(),
        &plan_options(stored),
    )
}

/// The plan options of a checkpointed or restored container: `create`'s defaults (no
/// preserved fds, a new session keyring, pivot_root).
fn plan_options(loaded: &Loaded) -> PlanOptions {
    PlanOptions {
        no_pivot: false,
        preserve_fds: 0,
        new_keyring: true,
        seccomp_wait_killable_recv: loaded.seccomp_wait_killable_recv,
    }
}

/// Record where the init's stdio leads (`pipe:[123]`, `/dev/null`, ...).
fn save_descriptors(pid: i32, images: &Path) -> Result<()> {
    let mut v = Vec::new();
    for fd in 0..3 {
        let link = PathBuf::from(format!("/proc/{pid}/fd/{fd}"));
        v.push(
            sfs::read_link(&link, &link)
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
    }
    let text = serde_json::to_vec(&v).map_err(|e| Error::container(e.to_string()))?;
    state::atomic_write(&images.join(DESCRIPTORS), &text, 0o600)
}

/// Where the restored tree's stdio comes from: the dumped init's stdio targets
/// (`descriptors.json`) and, with a terminal, what takes the dumped pty's place.
struct RestoredStdio {
    descriptors: Vec<String>,
    terminal: Option<RestoredTerminal>,
}

impl RestoredStdio {
    /// For the bundle's process: a terminal needs `--console-socket` (connected here)
    /// and a checkpoint taken with one (its pty's key read from the images).
    fn load(spec: &oci_spec::runtime::Spec, o: &RestoreOpts) -> Result<RestoredStdio> {
        let terminal = match (
            super::check_console(spec, o.console_socket.is_some())?,
            &o.console_socket,
        ) {
            (true, Some(path)) => Some(RestoredTerminal {
                key: load_terminal_key(&o.criu.image_path)?,
                socket: crate::sys::socket::connect_path(path)?,
            }),
            _ => None,
        };
        Ok(RestoredStdio {
            descriptors: load_descriptors(&o.criu.image_path)?,
            terminal,
        })
    }
}

/// The restore's side of a terminal: CRIU's key of the dumped pty and the connected
/// console socket.
struct RestoredTerminal {
    key: String,
    socket: std::os::fd::OwnedFd,
}

/// CRIU's key (`tty[rdev:dev]`) of the pty the init's stdio is on, saved in the images;
/// an error when none of fds 0–2 is a pty.
fn save_terminal_key(pid: i32, images: &Path) -> Result<String> {
    use nix::sys::stat::SFlag;
    for fd in 0..3 {
        let link = PathBuf::from(format!("/proc/{pid}/fd/{fd}"));
        let Ok(st) = crate::sys::fs::stat(&link) else {
            continue;
        };
        let char_device = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
        // Unix98 pty peers: majors 136–143.
        if char_device && (136..=143).contains(&nix::sys::stat::major(st.st_rdev)) {
            let key = format!("tty[{:x}:{:x}]", st.st_rdev, st.st_dev);
            state::atomic_write(&images.join(TERMINAL_KEY), key.as_bytes(), 0o600)?;
            return Ok(key);
        }
    }
    Err(Error::container(format!(
        "process.terminal is set but the init (pid {pid}) has no pty on fds 0-2"
    )))
}

fn load_terminal_key(images: &Path) -> Result<String> {
    let path = images.join(TERMINAL_KEY);
    let key = match sfs::read_text(&path) {
        Ok(k) => k,
        Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) => {
            return Err(Error::config(
                "process.terminal",
                format!(
                    "the checkpoint in {} was taken of a container without a terminal",
                    images.display()
                ),
            ))
        }
        Err(e) => return Err(e),
    };
    let ok = key
        .strip_prefix("tty[")
        .and_then(|k| k.strip_suffix(']'))
        .is_some_and(|k| {
            k.split_once(':').is_some_and(|(a, b)| {
                [a, b]
                    .iter()
                    .all(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
            })
        });
    if !ok {
        return Err(Error::container(format!(
            "{}: not a terminal key: {key:?}",
            path.display()
        )));
    }
    Ok(key)
}

fn load_descriptors(images: &Path) -> Result<Vec<String>> {
    let path = images.join(DESCRIPTORS);
    let text = crate::spec::read_json_file(&path)?;
    serde_json::from_slice(&text).map_err(|e| Error::container(format!("{}: {e}", path.display())))
}

/// CRIU restores mounts onto the rootfs: every mount point must exist there (as `create`
/// made it in the original container's rootfs; a fresh snapshot of an image lacks
/// them), except under a tmpfs, whose content CRIU restores, and the cgroup mount, which
/// sysfs brings.
fn make_mountpoints(plan: &Plan) -> Result<()> {
    use crate::sys::fs::Leaf;
    let r = &plan.rootfs;
    let tmpfs: Vec<&Path> = r
        .mounts
        .iter()
        .filter(|m| matches!(&m.kind, MountKind::Fs { fstype, .. } if fstype == "tmpfs"))
        .map(|m| m.dest.as_path())
        .collect();
    let root = crate::sys::fs::open(
        &r.root,
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY,
    )?;
    for m in &r.mounts {
        if tmpfs.iter().any(|t| m.dest.starts_with(t) && m.dest != *t) {
            continue;
        }
        let leaf = match &m.kind {
            MountKind::Cgroup => continue,
            MountKind::Bind { source } if !sfs::is_dir(source) => Leaf::File,
            _ => Leaf::Dir,
        };
        crate::sys::fs::mkdir_in_root(&root, &m.dest, leaf, 0o755)?;
    }
    Ok(())
}

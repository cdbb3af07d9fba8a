//! `exec`: the process to run (the container's own with runc's flag rules, or
//! `--process FILE`) and starting it in a running container (`process::enter` does the
//! joining).

use super::{console_conn, write_pid_file, PidfdSocket, Runtime};
use crate::error::{Error, Result};
use crate::plan::{self, PlanOptions};
use crate::spec::validate::check_id;
use crate::state::{self, ContainerDir, Status};
use oci_spec::runtime::Process;
use std::path::{Path, PathBuf};

/// `exec` options (runc's flags).
#[derive(Default)]
pub struct ExecOpts {
    pub process: Option<PathBuf>,
    pub args: Vec<String>,
    pub tty: bool,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub console_fd: Option<std::os::fd::OwnedFd>,
    /// `--pidfd-socket`: where the process's pidfd goes (`PidfdSocket`).
    pub pidfd_socket: Option<PathBuf>,
    /// `--exec-wait-fifo`: the process opens this fifo for writing, which blocks until
    /// a reader opens it, before it runs its program.
    pub exec_wait_fifo: Option<PathBuf>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// `--cgroup`: sub-cgroups of the container's cgroup to run in.
    pub cgroup: Vec<String>,
}

/// What `exec` runs, worked out once: the process, and the container's stored config
/// (its `linux` section applies to the process too).
pub struct ExecTarget {
    pub process: Process,
    config: crate::spec::Loaded,
}

impl Runtime {
    /// The process `exec` runs: `--process FILE`, or the container's own process with
    /// the flags applied (runc's rules).
    pub fn exec_process(&self, id: &str, o: &ExecOpts) -> Result<ExecTarget> {
        state::load_unlocked(&self.root, id)?;
        let config = crate::spec::load_full(&self.root.join(id))?;
        let process = match &o.process {
            Some(f) => process_file(f)?,
            None if o.args.is_empty() => {
                return Err(Error::container("exec needs a command (or --process FILE)"))
            }
            None => process_from_flags(&config.spec, o)?,
        };
        crate::spec::validate::process_fields(&process)?;
        Ok(ExecTarget { process, config })
    }

    /// Start a process in a running container; returns its pid once it has exec'd.
    pub fn exec(&self, id: &str, o: &ExecOpts, target: ExecTarget) -> Result<i32> {
        let st = self.exec_state(id, o.ignore_paused)?;
        let ExecTarget { process, config } = target;
        refuse_exec_options(&process, o)?;
        let pplan = self.exec_process_plan(&process, &config, o.preserve_fds)?;
        let console = console_conn(&o.console_socket, &o.console_fd)?;
        let pidfd_socket = PidfdSocket::connect(&o.pidfd_socket)?;
        let wait_fifo = o
            .exec_wait_fifo
            .as_deref()
            .map(open_wait_fifo)
            .transpose()?;
        let xplan = crate::process::enter::EnterPlan {
            process: pplan,
            cgroup: st.cgroup.sub(&o.cgroup)?,
            state: st.oci(Status::Running),
        };
        let pid =
            crate::process::enter::spawn(&xplan, st.pid, &|| st.init_alive(), console, wait_fifo)?;
        self.log.debug(&format!("exec {id}: process {pid} started"));
        let told = match &o.pid_file {
            Some(f) => write_pid_file(f, pid),
            None => Ok(()),
        }
        .and_then(|()| PidfdSocket::send(&pidfd_socket, pid, PidfdSocket::EXEC));
        if let Err(e) = told {
            // Nobody would know of the process: it is not left running.
            let _ = crate::sys::proc::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = crate::sys::proc::waitpid(pid, false);
            return Err(e);
        }
        Ok(pid)
    }

    /// The record of a container `exec` may run in: not stopped, not paused unless
    /// `ignore_paused`. The lock guards the state read, not the spawn: the new process
    /// may sit frozen (`--ignore-paused`) or wait on a seccomp agent, and `resume`,
    /// `kill` and `delete` must still get through. The spawn checks the init is still
    /// the container's (pid and start time) before it joins anything.
    fn exec_state(&self, id: &str, ignore_paused: bool) -> Result<state::State> {
        let dir = ContainerDir::open(&self.root, id)?;
        let st = dir.load()?;
        match state::status(&dir.path, &st) {
            Status::Stopped => Err(Error::container("cannot exec in a stopped container")),
            Status::Paused if !ignore_paused => Err(Error::container(
                "cannot exec in a paused container (see --ignore-paused)",
            )),
            _ => Ok(st),
        }
    }

    /// The process's plan, with the container's `linux` section; its warnings logged.
    fn exec_process_plan(
        &self,
        process: &Process,
        config: &crate::spec::Loaded,
        preserve_fds: u32,
    ) -> Result<plan::ProcessPlan> {
        let mut warnings = Vec::new();
        let pplan = plan::process_plan(
            process,
            &PlanOptions {
                no_pivot: false,
                preserve_fds,
                new_keyring: false,
                seccomp_wait_killable_recv: config.seccomp_wait_killable_recv,
            },
            config.spec.linux().as_ref(),
            &mut warnings,
        )?;
        for w in &warnings {
            self.log.warn(w);
        }
        Ok(pplan)
    }
}

/// What `exec` refuses of its process and flags: an AppArmor profile or SELinux label
/// (neither is enabled on hosts rsrun runs on), a terminal without a console socket
/// and a console socket without a terminal.
fn refuse_exec_options(process: &Process, o: &ExecOpts) -> Result<()> {
    let label = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    if label(&o.apparmor) || label(process.apparmor_profile()) {
        return Err(Error::container(
            "apparmor profile given, but AppArmor is not enabled on this host",
        ));
    }
    if label(&o.process_label) || label(process.selinux_label()) {
        return Err(Error::container(
            "process label given, but SELinux is not enabled on this host",
        ));
    }
    let terminal = process.terminal().unwrap_or(false);
    let has_socket = o.console_socket.is_some() || o.console_fd.is_some();
    if terminal && !has_socket {
        return Err(Error::container(
            "--tty needs --console-socket when detached",
        ));
    }
    if !terminal && has_socket {
        return Err(Error::container("--console-socket given without --tty"));
    }
    Ok(())
}

/// `--exec-wait-fifo PATH`, opened (O_PATH: neither end yet) and checked to be a fifo.
fn open_wait_fifo(path: &Path) -> Result<std::os::fd::OwnedFd> {
    use nix::sys::stat::SFlag;
    let fd = crate::sys::fs::open(path, nix::fcntl::OFlag::O_PATH)
        .map_err(|e| Error::container(format!("failed to open exec wait fifo: {e}")))?;
    let st = crate::sys::fs::fstat(&fd, path)?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFIFO {
        return Err(Error::container(format!(
            "exec wait fifo {:?} is not a fifo",
            path.display().to_string()
        )));
    }
    Ok(fd)
}

/// `--process FILE`: a runtime-spec process object; errors name the JSON field.
fn process_file(f: &Path) -> Result<Process> {
    let text = crate::spec::read_json_file(f)?;
    // runc accepts a process without `user` (uid and gid 0); the runtime-spec type
    // requires it.
    let mut v: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| Error::config(f.display().to_string(), e.to_string()))?;
    if let Some(o) = v.as_object_mut() {
        o.entry("user")
            .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
    }
    let text = serde_json::to_vec(&v).map_err(|e| Error::container(e.to_string()))?;
    crate::spec::parse_json(&text, f)
}

/// The container's own process with exec's flags applied.
fn process_from_flags(spec: &oci_spec::runtime::Spec, o: &ExecOpts) -> Result<Process> {
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(o.args.clone()));
    p.set_terminal(Some(o.tty));
    if let Some(cwd) = &o.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(o.env.iter().cloned());
    p.set_env(Some(env));
    let mut user = p.user().clone();
    if let Some(u) = &o.user {
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (u.as_str(), None),
        };
        let id = |s: &str| -> Result<u32> {
            let id = s.parse().map_err(|_| {
                Error::container(format!("--user {u:?}: expected UID[:GID] as numbers"))
            })?;
            check_id(&format!("--user {u:?}"), id)?;
            Ok(id)
        };
        user.set_uid(id(uid)?);
        if let Some(g) = gid {
            user.set_gid(id(g)?);
        }
    }
    for g in &o.additional_gids {
        check_id("--additional-gids", *g)?;
    }
    if !o.additional_gids.is_empty() {
        user.set_additional_gids(Some(o.additional_gids.clone()));
    }
    p.set_user(user);
    if !o.caps.is_empty() {
        let mut c = p.capabilities().clone().unwrap_or_default();
        let parse = |name: &str| -> Result<oci_spec::runtime::Capability> {
            serde_json::from_value(serde_json::Value::String(name.to_string()))
                .map_err(|_| Error::container(format!("--cap {name:?}: unknown capability")))
        };
        for name in &o.caps {
            let cap = parse(name)?;
            let add = |set: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = set.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            c.set_bounding(add(c.bounding()));
            c.set_effective(add(c.effective()));
            c.set_permitted(add(c.permitted()));
            if c.inheritable().as_ref().is_some_and(|i| !i.is_empty()) {
                c.set_ambient(add(c.ambient()));
            }
        }
        p.set_capabilities(Some(c));
    }
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}

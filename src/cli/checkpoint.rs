//! `checkpoint` and `restore`: runc's flags. Every flag accepted here works; runc's
//! others (pre-dump, page server, lazy pages, auto-dedup, parent path, status fd, LSM
//! options) are refused by name, as rsrun does not drive CRIU that way (and this host
//! lacks the soft-dirty tracking pre-dump needs).

use crate::container::checkpoint::{CgroupsMode, CheckpointOpts, RestoreOpts};
use crate::error::{Error, Result};
use clap::Args;
use std::path::PathBuf;

/// The CRIU options both commands share.
#[derive(Args, Debug, Clone)]
pub struct CriuArgs {
    /// Directory for CRIU's image files (default: ./checkpoint)
    #[arg(long = "image-path")]
    pub image_path: Option<PathBuf>,
    /// Directory for CRIU's work files and log (default: the image directory)
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// Allow open TCP connections
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// Allow shell jobs
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// Handle file locks
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// cgroups mode: soft (default), full, strict or ignore
    #[arg(long = "manage-cgroups-mode")]
    pub manage_cgroups_mode: Option<String>,
    /// Create a namespace, but do not restore its properties (only "network")
    #[arg(long = "empty-ns")]
    pub empty_ns: Vec<String>,
    /// runc's options rsrun refuses (named in the error)
    #[command(flatten)]
    pub refused: RefusedArgs,
}

/// runc's CRIU options that rsrun does not implement: accepted by the parser so the
/// error names them, then refused.
#[derive(Args, Debug, Clone, Default)]
pub struct RefusedArgs {
    #[arg(long = "pre-dump", hide = true)]
    pub pre_dump: bool,
    #[arg(long = "parent-path", hide = true)]
    pub parent_path: Option<String>,
    #[arg(long = "page-server", hide = true)]
    pub page_server: Option<String>,
    #[arg(long = "lazy-pages", hide = true)]
    pub lazy_pages: bool,
    #[arg(long = "status-fd", hide = true)]
    pub status_fd: Option<i32>,
    #[arg(long = "auto-dedup", hide = true)]
    pub auto_dedup: bool,
    #[arg(long = "lsm-profile", hide = true)]
    pub lsm_profile: Option<String>,
    #[arg(long = "lsm-mount-context", hide = true)]
    pub lsm_mount_context: Option<String>,
}

impl RefusedArgs {
    fn check(&self) -> Result<()> {
        let named = [
            (
                self.pre_dump,
                "--pre-dump (this host has no soft-dirty page tracking)",
            ),
            (self.parent_path.is_some(), "--parent-path (no pre-dump)"),
            (self.page_server.is_some(), "--page-server"),
            (self.lazy_pages, "--lazy-pages"),
            (self.status_fd.is_some(), "--status-fd (no lazy pages)"),
            (self.auto_dedup, "--auto-dedup"),
            (
                self.lsm_profile.is_some(),
                "--lsm-profile (no LSM on this host)",
            ),
            (
                self.lsm_mount_context.is_some(),
                "--lsm-mount-context (no LSM on this host)",
            ),
        ];
        match named.iter().find(|(set, _)| *set) {
            Some((_, what)) => Err(Error::container(format!("{what} is not supported"))),
            None => Ok(()),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Leave the container running after the checkpoint
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// Container id
    pub id: String,
}

#[derive(Args, Debug, Clone)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Path to the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Return once the container is restored instead of waiting for it
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// File to write the restored init's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to receive the pty master of a container with a terminal
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Do not make rsrun a subreaper while it waits (the restored init is its child)
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// Do not use pivot_root (CRIU restores the root; accepted for compatibility)
    #[arg(long = "no-pivot", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub no_pivot: Option<bool>,
    /// Container id
    pub id: String,
}

fn cgroups_mode(v: &Option<String>) -> Result<CgroupsMode> {
    Ok(match v.as_deref() {
        None | Some("") | Some("soft") => CgroupsMode::Soft,
        Some("full") => CgroupsMode::Full,
        Some("strict") => CgroupsMode::Strict,
        Some("ignore") => CgroupsMode::Ignore,
        Some(o) => {
            return Err(Error::container(format!(
                "--manage-cgroups-mode {o:?}: invalid (soft, full, strict or ignore)"
            )))
        }
    })
}

fn empty_net(v: &[String]) -> Result<bool> {
    for ns in v {
        if ns != "network" {
            return Err(Error::container(format!(
                "--empty-ns {ns:?}: only \"network\" is supported"
            )));
        }
    }
    Ok(!v.is_empty())
}

fn image_path(v: &Option<PathBuf>) -> Result<PathBuf> {
    let p = v.clone().unwrap_or_else(|| PathBuf::from("checkpoint"));
    if p.is_absolute() {
        return Ok(p);
    }
    std::env::current_dir()
        .map(|d| d.join(&p))
        .map_err(|e| Error::sys("getcwd", &p, crate::error::io_errno(&e)))
}

impl CriuArgs {
    fn opts(&self, leave_running: bool) -> Result<CheckpointOpts> {
        self.refused.check()?;
        let work_path = match &self.work_path {
            Some(w) => Some(image_path(&Some(w.clone()))?),
            None => None,
        };
        Ok(CheckpointOpts {
            image_path: image_path(&self.image_path)?,
            work_path,
            leave_running,
            tcp_established: self.tcp_established,
            ext_unix_sk: self.ext_unix_sk,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            cgroups_mode: cgroups_mode(&self.manage_cgroups_mode)?,
            empty_net: empty_net(&self.empty_ns)?,
        })
    }
}

impl CheckpointArgs {
    pub fn opts(&self) -> Result<CheckpointOpts> {
        self.criu.opts(self.leave_running)
    }
}

impl RestoreArgs {
    pub fn opts(&self) -> Result<RestoreOpts> {
        Ok(RestoreOpts {
            criu: self.criu.opts(false)?,
            bundle: self.bundle.clone(),
            detach: self.detach,
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_subreaper: self.no_subreaper,
        })
    }
}

//! runc's command line: global flags, one subcommand per verb. Thin adapters over
//! `container::Runtime`; `main` prints errors and picks exit codes.

pub mod checkpoint;
pub mod events;
pub mod exec;
pub mod features;
pub mod foreground;
pub mod list;
pub mod ps;
pub mod run;
pub mod update;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "rsrun",
    about = "a low-level OCI container runtime",
    disable_version_flag = true
)]
pub struct Cli {
    /// Root directory for container state (default /run/rsrun, or $XDG_RUNTIME_DIR/rsrun
    /// for a user who is not root)
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Log file (default: stderr)
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Log format
    #[arg(long = "log-format", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Enable debug logging
    #[arg(long)]
    pub debug: bool,
    /// Use systemd for cgroups: a transient scope unit per container (cgroupsPath slice:prefix:name)
    #[arg(long = "systemd-cgroup")]
    pub systemd_cgroup: bool,
    /// Rootless mode: true, false or auto (auto: not root, or root in a user namespace
    /// that is not the host's)
    #[arg(long)]
    pub rootless: Option<String>,
    /// Print the version
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
}

/// What the caller of `create` or `exec` is handed of the new process (its pid, its
/// pty master, a pidfd) and what it passes on to it (fds).
#[derive(Args, Debug, Clone)]
pub struct ProcessHandoffArgs {
    /// Unix socket to receive the pty master of a terminal process
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// File to write the process's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to receive a pidfd of the process (SCM_RIGHTS)
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// Pass N extra fds (3..3+N) to the process
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// Path to the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    #[command(flatten)]
    pub handoff: ProcessHandoffArgs,
    /// Do not use pivot_root (for a rootfs on a ramdisk)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Container id
    pub id: String,
}

#[derive(Args, Debug, Clone)]
pub struct ExecArgs {
    /// The process as a JSON file (runtime-spec `process`); the command line is ignored
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Working directory in the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Add an environment variable (KEY=VALUE)
    #[arg(short = 'e', long)]
    pub env: Vec<String>,
    /// UID[:GID] to run as
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Additional group ids
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability (CAP_NAME)
    #[arg(short = 'c', long = "cap")]
    pub cap: Vec<String>,
    /// Set no_new_privs
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// AppArmor profile (refused: this host has no AppArmor)
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux label (refused: this host has no SELinux)
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// Return once the process has started
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[command(flatten)]
    pub handoff: ProcessHandoffArgs,
    /// A fifo: the process does not run its program until the fifo's read end is opened
    #[arg(long = "exec-wait-fifo")]
    pub exec_wait_fifo: Option<PathBuf>,
    /// Allow exec in a paused container
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Run in an existing sub-cgroup of the container: PATH, or CONTROLLERS:PATH on v1
    #[arg(long = "cgroup")]
    pub cgroup: Vec<String>,
    /// Container id
    pub id: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container, ready to start
    Create(CreateArgs),
    /// Start a created container
    Start { id: String },
    /// Print a container's state as JSON
    State { id: String },
    /// Send a signal to a container's init (or to all its processes)
    Kill {
        /// Signal every process in the container
        #[arg(short = 'a', long)]
        all: bool,
        id: String,
        /// Signal name (TERM, SIGTERM) or number (0 checks the init exists)
        #[arg(default_value = "SIGTERM", allow_negative_numbers = true)]
        signal: String,
    },
    /// Delete containers and what they hold
    Delete {
        /// Kill a running container first
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Create and start a container, wait for it and return its exit status
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return after start instead of waiting
        #[arg(short = 'd', long)]
        detach: bool,
        /// Keep the container's state after it exits
        #[arg(long)]
        keep: bool,
    },
    /// List containers
    List {
        #[arg(short = 'f', long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// Print only ids
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Write a default config.json
    Spec {
        #[arg(short = 'b', long, default_value = ".")]
        bundle: PathBuf,
        /// A spec for a rootless container (a user namespace mapping the caller to root)
        #[arg(long = "rootless", id = "spec_rootless")]
        rootless: bool,
    },
    /// Run a new process in a running container
    Exec(ExecArgs),
    /// List the processes of a container
    Ps {
        #[arg(short = 'f', long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        id: String,
        /// Arguments for ps(1) (default -ef)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Resource usage and OOM events of a container
    Events {
        /// Print one stats event and exit
        #[arg(long)]
        stats: bool,
        /// Time between stats events
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Update a container's resource limits
    Update(update::UpdateArgs),
    /// Print the features this runtime implements (runtime-spec features document)
    Features,
    /// Freeze every process of a container
    Pause { id: String },
    /// Thaw a paused container
    Resume { id: String },
    /// Checkpoint a running container with CRIU
    Checkpoint(checkpoint::CheckpointArgs),
    /// Restore a container from a checkpoint
    Restore(checkpoint::RestoreArgs),
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}

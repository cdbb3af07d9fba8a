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

/// A subcommand's arguments, built only when that subcommand is the one given
/// (`clap::Command::defer`): a call builds the flags of one subcommand, not of all 17,
/// which keeps every call's start-up (heap and the code pages it touches) from growing
/// with the command line.
#[derive(Debug)]
pub struct Deferred<T>(pub T);

impl<T> std::ops::Deref for Deferred<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: clap::FromArgMatches> clap::FromArgMatches for Deferred<T> {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(m).map(Deferred)
    }
    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(m)
    }
}

impl<T: Args> Args for Deferred<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.defer(|c| keep_about(c, T::augment_args))
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(|c| keep_about(c, T::augment_args_for_update))
    }
}

/// `augment` applied to `cmd`, keeping the subcommand's own about text (the doc comment
/// of a flattened struct would replace it when applied late).
fn keep_about(cmd: clap::Command, augment: fn(clap::Command) -> clap::Command) -> clap::Command {
    let about = cmd.get_about().cloned();
    let long_about = cmd.get_long_about().cloned();
    let mut cmd = augment(cmd);
    if let Some(a) = about {
        cmd = cmd.about(a);
    }
    if let Some(a) = long_about {
        cmd = cmd.long_about(a);
    }
    cmd
}

/// `run`: create's flags and its own.
#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return after start instead of waiting
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container, ready to start
    Create(Deferred<CreateArgs>),
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
    Run(Deferred<RunArgs>),
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
    Exec(Deferred<ExecArgs>),
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
    Update(Deferred<update::UpdateArgs>),
    /// Print the features this runtime implements (runtime-spec features document)
    Features,
    /// Freeze every process of a container
    Pause { id: String },
    /// Thaw a paused container
    Resume { id: String },
    /// Checkpoint a running container with CRIU
    Checkpoint(Deferred<checkpoint::CheckpointArgs>),
    /// Restore a container from a checkpoint
    Restore(Deferred<checkpoint::RestoreArgs>),
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

    /// A deferred subcommand still has its own about text and all its flags once it is
    /// the one given, and parses them.
    #[test]
    fn deferred_subcommands_keep_their_flags_and_about() {
        use super::{Cli, Command};
        use clap::{CommandFactory, Parser};
        let mut cli = Cli::command();
        for (name, about, flags) in [
            (
                "run",
                "Create and start",
                &["--bundle", "--detach", "--keep", "--pid-file"][..],
            ),
            (
                "create",
                "Create a container",
                &["--bundle", "--console-socket", "--preserve-fds"],
            ),
            (
                "exec",
                "Run a new process",
                &["--tty", "--process", "--detach", "--cap"],
            ),
            (
                "update",
                "Update a container",
                &["--memory", "--cpu-share", "--pids-limit"],
            ),
            (
                "checkpoint",
                "Checkpoint",
                &["--image-path", "--leave-running"],
            ),
            (
                "restore",
                "Restore",
                &["--image-path", "--bundle", "--detach"],
            ),
        ] {
            let sub = cli.find_subcommand_mut(name).unwrap();
            let help = sub.render_long_help().to_string();
            assert!(help.starts_with(about), "{name}: {help}");
            for f in flags {
                assert!(help.contains(f), "{name} lacks {f}: {help}");
            }
        }
        let cli = Cli::try_parse_from(["rsrun", "run", "-d", "--keep", "-b", "/b", "c1"]).unwrap();
        match cli.command {
            Some(Command::Run(a)) => {
                assert!(a.detach && a.keep);
                assert_eq!(
                    (a.create.id.as_str(), a.create.bundle.to_str()),
                    ("c1", Some("/b"))
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["rsrun", "exec", "--no-such-flag", "c1", "true"]).is_err());
    }
}

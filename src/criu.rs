//! Driving CRIU for `checkpoint` and `restore`: finding the binary, running one `criu
//! dump` or `criu restore` with its command line, and turning a failure into an error
//! that says what CRIU said (the failing line of its log, and the log's path).
//!
//! rsrun runs the `criu` command line, not `criu swrk` (the protobuf RPC runc uses): the
//! CLI has every option rsrun needs (external mounts, cgroup roots, namespaces joined by
//! path or inherited as fds, `--restore-detached --restore-sibling` with a pid file), the
//! restored tree becomes rsrun's child either way, and the RPC would bring a protobuf
//! stack and a notification loop into the binary for what rsrun does not use (lazy
//! pages, page servers, pre-dump, orphan pty masters). The one thing the CLI lacks is a
//! callback between CRIU's steps, which rsrun does without: the cgroup is made before
//! CRIU runs and CRIU itself runs in it (see `Invocation::cgroup_procs`).

use crate::error::{Error, Result};
use crate::sys::fs as sfs;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Where the project's installer (scripts/criu.sh) puts CRIU 4.1: Debian 12's own 3.17
/// cannot start on kernels from 6.13 on.
pub const PRIVATE_INSTALL: &str = "/opt/rsrun-criu/criu";

/// The CRIU to run: `$RSRUN_CRIU`, else the private install when present, else `criu`
/// on PATH.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("RSRUN_CRIU").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if sfs::exists(Path::new(PRIVATE_INSTALL)) {
        return PathBuf::from(PRIVATE_INSTALL);
    }
    PathBuf::from("criu")
}

/// The annotation naming a container's own CRIU configuration file (runc's); set to
/// the empty string, no configuration file is given at all.
pub const CONFIG_ANNOTATION: &str = "org.criu.config";

/// Without the annotation: rsrun's own configuration file when it exists, else runc's
/// (a host set up for runc keeps its settings), as crun picks them.
pub const DEFAULT_CONFIGS: [&str; 2] = ["/etc/criu/rsrun.conf", "/etc/criu/runc.conf"];

/// The largest CRIU configuration file rsrun reads.
pub const CONFIG_MAX: u64 = 1 << 20;

/// The CRIU configuration file a container's checkpoint or restore uses (`--config`),
/// from its annotations; CRIU ignores a named file that does not exist, as with runc.
/// Its settings win over rsrun's own, as runc has them win over its RPC options:
/// rsrun leaves out what the file sets (see `Config::sets`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub path: PathBuf,
    /// The options the file sets, by CRIU's long name, with their values.
    pub options: Vec<(String, String)>,
}

impl Config {
    /// None for the annotation set to "" or, without it, when neither default file
    /// exists. A named file that exists must be a regular file of at most
    /// `CONFIG_MAX` bytes (rsrun reads it, and so would CRIU: a FIFO or a device would
    /// hang both), else the error names the annotation.
    pub fn for_container(
        annotations: &std::collections::BTreeMap<String, String>,
    ) -> Result<Option<Config>> {
        let path = match annotations.get(CONFIG_ANNOTATION) {
            Some(p) if p.is_empty() => return Ok(None),
            Some(p) => PathBuf::from(p),
            None => match DEFAULT_CONFIGS.iter().find(|p| sfs::exists(Path::new(p))) {
                Some(p) => PathBuf::from(p),
                None => return Ok(None),
            },
        };
        let options = match crate::sys::fs::read_regular(&path, CONFIG_MAX) {
            Ok(text) => parse_config(&String::from_utf8_lossy(&text)),
            Err(_) if !sfs::exists(&path) => Vec::new(),
            Err(e) => {
                return Err(Error::config(
                    format!("annotations[{CONFIG_ANNOTATION:?}]"),
                    format!("CRIU's configuration file: {e}"),
                ))
            }
        };
        Ok(Some(Config { path, options }))
    }

    /// Whether the file sets the option `name` (long name, without dashes).
    pub fn sets(&self, name: &str) -> bool {
        self.options.iter().any(|(k, _)| k == name)
    }

    /// The value the file gives `name` last (CRIU takes the last).
    pub fn value(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// CRIU's configuration format: one option a line, its long name without dashes,
/// then its value after `=` (taken as it is) or after blanks (quotes around it
/// dropped); `#` starts a comment.
pub fn parse_config(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let end = line
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(line.len());
        let (key, rest) = line.split_at(end);
        let value = match rest.strip_prefix('=') {
            Some(v) => v,
            None => {
                let v = rest.trim();
                v.strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v)
            }
        };
        out.push((key.to_string(), value.to_string()));
    }
    out
}

/// One run of CRIU. A `restore`'s CRIU gets a parent-death signal, which it does not
/// always keep: a killed `restore` leaves a record marked `creating` and processes,
/// CRIU's among them, in the container's cgroup, which `delete` removes. A `dump`'s
/// runs to its end (see `outlive`).
pub struct Invocation {
    /// `dump` or `restore`.
    pub action: &'static str,
    pub args: Vec<OsString>,
    /// Where CRIU writes its log (`--work-dir`, else `--images-dir`) and the log's name.
    pub log_dir: PathBuf,
    pub log_name: PathBuf,
    /// Fds CRIU inherits, at the number each is given (`--inherit-fd fd[N]:…`).
    pub fds: Vec<(std::os::fd::RawFd, std::os::fd::OwnedFd)>,
    /// Opened `cgroup.procs`/`tasks` files CRIU writes itself into before it starts
    /// (runc places CRIU in the container's cgroup too: what it restores starts there).
    pub cgroup_procs: Vec<std::os::fd::OwnedFd>,
    /// Run CRIU in a mount namespace of its own where `bind` (rootfs → mount point) is
    /// a bind mount: CRIU's `--root` must be a mount point, and the bind then never
    /// exists in the host's mount namespace (nothing to undo if rsrun is killed).
    pub private_root: Option<(std::ffi::CString, std::ffi::CString)>,
    /// Stdio for CRIU (and, on restore, what the restored process inherits).
    pub inherit_stdio: bool,
    /// CRIU outlives rsrun: killed mid-dump, it would leave the container's tree frozen,
    /// seized or with its parasite in it; run to its end it thaws and resumes the tree
    /// (or, without --leave-running, kills it after a complete dump, as asked).
    pub outlive: bool,
}

impl Invocation {
    pub fn log_path(&self) -> PathBuf {
        self.log_dir.join(&self.log_name)
    }

    /// Run CRIU to the end. A failure names CRIU's exit, its first error line and its
    /// log file.
    pub fn run(self) -> Result<()> {
        let child = self.spawn()?;
        self.finish(child)
    }

    /// Start CRIU; `finish` waits for it.
    pub fn spawn(&self) -> Result<std::process::Child> {
        let bin = binary();
        let mut cmd = std::process::Command::new(&bin);
        cmd.arg(self.action).args(&self.args);
        // On restore the restored process may inherit CRIU's stdio (`--inherit-fd
        // fd[1]:pipe:[…]`): CRIU gets rsrun's own, and speaks through its log only.
        if !self.inherit_stdio {
            cmd.stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
        } else {
            cmd.stdin(std::process::Stdio::inherit())
                .stdout(std::process::Stdio::inherit())
                .stderr(std::process::Stdio::inherit());
        }
        let fds: Vec<(i32, i32)> = {
            use std::os::fd::AsRawFd;
            self.fds
                .iter()
                .map(|(n, fd)| (*n, fd.as_raw_fd()))
                .collect()
        };
        let procs: Vec<i32> = {
            use std::os::fd::AsRawFd;
            self.cgroup_procs.iter().map(|fd| fd.as_raw_fd()).collect()
        };
        crate::sys::spawn::set_child_setup(
            &mut cmd,
            crate::sys::spawn::ChildSetup {
                fds,
                write_zero: procs,
                parent: (!self.outlive).then(crate::sys::proc::getpid),
                private_bind: self.private_root.clone(),
            },
        )?;
        cmd.spawn().map_err(|e| {
            Error::container(format!(
                "run {}: {} (install CRIU 4.1 or later: scripts/criu.sh)",
                bin.display(),
                e
            ))
        })
    }

    /// Wait for CRIU started by `spawn`. A failure names CRIU's exit, its first error
    /// line and its log file.
    pub fn finish(&self, child: std::process::Child) -> Result<()> {
        let out = child
            .wait_with_output()
            .map_err(|e| Error::sys_nopath("wait for criu", crate::error::io_errno(&e)))?;
        if out.status.success() {
            return Ok(());
        }
        let log = self.log_path();
        let failing = first_error(&log).unwrap_or_else(|| {
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no message")
                .to_string()
        });
        Err(Error::container(format!(
            "criu {} failed ({}): {} (log: {})",
            self.action,
            out.status,
            failing.trim(),
            log.display()
        )))
    }
}

/// The first line of a CRIU log that reports an error (`(00.012) Error (file:line): …`),
/// without its timestamp. CRIU also logs errors it goes on after: raising its own
/// RLIMIT_NOFILE fails where root lacks CAP_SYS_RESOURCE (this host), and is skipped.
pub fn first_error(log: &Path) -> Option<String> {
    let text = sfs::read_file(log).ok()?;
    let text = String::from_utf8_lossy(&text);
    text.lines()
        .filter(|l| l.contains("Error (") && !l.contains("rlimit:"))
        .map(|l| l.find("Error (").map_or(l, |i| &l[i..]).to_string())
        .next()
}

/// Make `dir` (mode 0700) unless it exists; the parent must exist.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    sfs::mkdir(dir, 0o700).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criu_config_lines() {
        let v = parse_config(
            "# comment\nlog-file=/tmp/a.log\n  tcp-established\nmanage-cgroups \"ignore\" # why\n\nwork-dir=\"w\"\n",
        );
        let want = [
            ("log-file", "/tmp/a.log"),
            ("tcp-established", ""),
            ("manage-cgroups", "ignore"),
            ("work-dir", "\"w\""),
        ];
        assert_eq!(v.len(), want.len());
        for ((k, v), (wk, wv)) in v.iter().zip(want) {
            assert_eq!((k.as_str(), v.as_str()), (wk, wv));
        }
    }

    #[test]
    fn criu_config_from_the_annotation_or_none() {
        let mut a = std::collections::BTreeMap::new();
        a.insert(CONFIG_ANNOTATION.to_string(), String::new());
        assert_eq!(Config::for_container(&a).unwrap(), None);
        a.insert(
            CONFIG_ANNOTATION.to_string(),
            "/nonexistent/c.conf".to_string(),
        );
        let c = Config::for_container(&a).unwrap().unwrap();
        assert_eq!(c.path, Path::new("/nonexistent/c.conf"));
        assert!(c.options.is_empty());
        a.insert(CONFIG_ANNOTATION.to_string(), "/dev/zero".to_string());
        let e = Config::for_container(&a).unwrap_err().to_string();
        assert!(
            e.contains("org.criu.config") && e.contains("character device"),
            "{e}"
        );
    }

    #[test]
    fn first_error_line_of_a_criu_log() {
        let dir = std::env::temp_dir().join(format!("rsrun-criu-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("dump.log");
        std::fs::write(
            &log,
            "(00.001) Version: 4.1.1\n(00.002) Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted\n(00.020) Error (criu/files-reg.c:1757): Can't dump /x\n(00.021) Error (criu/cr-dump.c:2000): Dumping FAILED.\n",
        )
        .unwrap();
        assert_eq!(
            first_error(&log).unwrap(),
            "Error (criu/files-reg.c:1757): Can't dump /x"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

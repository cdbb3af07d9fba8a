//! Container state on disk: `<root>/<id>/state.json`, written tmp + rename; a lock per
//! container; the init's pid *and start time*, so a reused pid is never signalled.

use crate::cgroups::Cgroup;
use crate::error::{Error, Result, SysContext};
use crate::sys;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use oci_spec::runtime::Hooks;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";
/// The socket the waiting init listens on; `start` connects to it. Its presence means the
/// container has not been started yet.
pub const START_SOCKET: &str = "start.sock";

/// runc's rule for container ids: `^[\w+-\.]+$`, not `.` or `..`, at most 1024 bytes.
pub fn validate_id(id: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::container(format!(
            "invalid container id {id:?}: {why}"
        )))
    };
    if id.is_empty() {
        return bad("empty");
    }
    if id == "." || id == ".." {
        return bad("must not be . or ..");
    }
    if id.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'))
    {
        return bad("only letters, digits and _ + - . are allowed");
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What rsrun remembers about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub pid: i32,
    /// /proc/<pid>/stat starttime of the init when it was created.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 UTC creation time.
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub cgroup: Cgroup,
    #[serde(default)]
    pub hooks: Option<Hooks>,
}

/// The runtime-spec state document (plus runc's `rootfs`, `created`, `owner`), as
/// `rsrun state` prints it and hooks receive it on stdin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OciState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: String,
    pub bundle: String,
    pub rootfs: String,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "HashMap::is_empty", default)]
    pub annotations: HashMap<String, String>,
}

pub const OCI_VERSION: &str = "1.2.0";

impl State {
    pub fn oci(&self, status: Status) -> OciState {
        OciState {
            oci_version: OCI_VERSION.into(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status: status.to_string(),
            bundle: self.bundle.display().to_string(),
            rootfs: self.rootfs.display().to_string(),
            created: self.created.clone(),
            owner: String::new(),
            annotations: self.annotations.clone(),
        }
    }

    /// True while the recorded init (same pid, same start time) exists and is not a zombie.
    pub fn init_alive(&self) -> bool {
        match sys::proc::stat(self.pid) {
            Some(st) => st.start_time == self.start_time && st.state != 'Z' && st.state != 'X',
            None => false,
        }
    }
}

/// A container's directory under the runtime root, locked for the life of this value.
pub struct ContainerDir {
    pub path: PathBuf,
    pub fd: OwnedFd,
}

impl ContainerDir {
    /// Create `<root>/<id>` for a new container; EEXIST means a duplicate id.
    pub fn create(root: &Path, id: &str) -> Result<Self> {
        std::fs::create_dir_all(root).op("mkdir", root)?;
        let path = root.join(id);
        match nix::unistd::mkdir(&path, nix::sys::stat::Mode::from_bits_truncate(0o711)) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                return Err(Error::container(format!(
                    "container with id {id:?} already exists"
                )))
            }
            Err(e) => return Err(Error::sys("mkdir", &path, e)),
        }
        let fd = sys::fs::open(&path, OFlag::O_DIRECTORY | OFlag::O_RDONLY)?;
        sys::fs::lock_exclusive(&fd, &path)?;
        Ok(ContainerDir { path, fd })
    }

    /// Open and lock an existing container's directory.
    pub fn open(root: &Path, id: &str) -> Result<Self> {
        validate_id(id)?;
        let path = root.join(id);
        let fd = match sys::fs::open(&path, OFlag::O_DIRECTORY | OFlag::O_RDONLY) {
            Ok(fd) => fd,
            Err(e) if e.errno() == Some(Errno::ENOENT) => return Err(not_exist(id)),
            Err(e) => return Err(e),
        };
        sys::fs::lock_exclusive(&fd, &path)?;
        // It may have been deleted while we waited for the lock.
        if !path.join(STATE_FILE).exists() {
            return Err(not_exist(id));
        }
        Ok(ContainerDir { path, fd })
    }

    pub fn load(&self) -> Result<State> {
        load_file(&self.path.join(STATE_FILE))
    }

    /// Write state.json atomically (tmp + rename).
    pub fn save(&self, st: &State) -> Result<()> {
        let data = serde_json::to_vec(st).map_err(|e| Error::container(e.to_string()))?;
        atomic_write(&self.path.join(STATE_FILE), &data)
    }

    pub fn remove(self) -> Result<()> {
        std::fs::remove_dir_all(&self.path).op("remove", &self.path)
    }
}

pub fn not_exist(id: &str) -> Error {
    Error::container(format!("container {id:?} does not exist"))
}

pub fn load_file(path: &Path) -> Result<State> {
    let data = std::fs::read(path).op("read", path)?;
    serde_json::from_slice(&data)
        .map_err(|e| Error::container(format!("{}: corrupt state: {e}", path.display())))
}

/// Read a container's state without taking its lock (for `state` and `list`).
pub fn load_unlocked(root: &Path, id: &str) -> Result<State> {
    validate_id(id)?;
    let path = root.join(id).join(STATE_FILE);
    match load_file(&path) {
        Err(e) if e.errno() == Some(Errno::ENOENT) => Err(not_exist(id)),
        r => r,
    }
}

/// The container's status as seen now.
pub fn status(dir: &Path, st: &State) -> Status {
    if !st.init_alive() {
        return Status::Stopped;
    }
    // A created container can be paused too (runc shows it paused, and resume thaws it).
    if crate::cgroups::freezer::is_frozen(&st.cgroup) {
        return Status::Paused;
    }
    if dir.join(START_SOCKET).exists() {
        return Status::Created;
    }
    Status::Running
}

/// Write `path` atomically: a temporary file in the same directory, then rename.
pub fn atomic_write(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, data).op("write", &tmp)?;
    std::fs::rename(&tmp, path).op("rename", path)
}

/// Current UTC time in RFC 3339 with nanoseconds (`2026-11-22T08:01:18.123456789Z`).
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86400);
    let sod = secs.rem_euclid(86400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "abc-1.2_x+y", "A"] {
            validate_id(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "../../etc", "a b", &"x".repeat(1025)] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn time_format() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(1_795_334_478, 5), "2026-11-22T08:01:18.000000005Z");
    }
}

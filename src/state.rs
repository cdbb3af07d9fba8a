//! Container state on disk: `<root>/<id>/state.json`, written tmp + rename; a lock per
//! container; the init's pid *and start time*, so a reused pid is never signalled.
//!
//! The crash-consistency rule: `state.json` names everything a container owns (its cgroup
//! directories, its init) *before* any of it exists, and is removed only after all of it
//! is gone. So whenever `rsrun` is killed, the directory either has a `state.json` that
//! `delete --force` can act on, or has none and owns nothing (a create killed before its
//! first record, a delete killed after its last step): both are listed as `stopped` and
//! removed by `delete`. A record with `creating` set whose lock nobody holds is a create
//! that died: it is `stopped`, and `delete` undoes what it made.
//!
//! The root, every container directory and every file in them are private to the owner
//! (0700 / 0600, whatever the umask): the stored config holds the container's environment.

use crate::cgroups::Cgroup;
use crate::error::{Error, Result};
use crate::sys;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    pub annotations: BTreeMap<String, String>,
    pub cgroup: Cgroup,
    #[serde(default)]
    pub hooks: Option<crate::hooks::Hooks>,
    /// Set from the first record until `create` returns: with nobody holding the lock,
    /// the create died and the container is `stopped`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub creating: bool,
    /// Mounts made in the runtime's mount namespace (a container without one of its
    /// own), recorded before they exist; `delete` detaches them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_mounts: Option<crate::rootfs::HostMounts>,
    /// No pid namespace of its own (`NamespacePlan::private_pid_ns`): `kill` with SIGKILL
    /// reaches every process in the cgroup, not only the init. Records written before
    /// the field existed read as false (the init alone, as then).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared_pid_ns: bool,
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
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub annotations: BTreeMap<String, String>,
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

    /// What is known of a directory that has no `state.json`: it owns nothing.
    pub fn remnant(id: &str) -> State {
        State {
            id: id.to_string(),
            pid: 0,
            start_time: 0,
            bundle: PathBuf::new(),
            rootfs: PathBuf::new(),
            created: String::new(),
            annotations: BTreeMap::new(),
            cgroup: Cgroup::none(),
            hooks: None,
            creating: false,
            host_mounts: None,
            shared_pid_ns: false,
        }
    }

    /// True while the recorded init (same pid, same start time) exists and is not a zombie.
    /// A pidfd of the container's init while it runs: opened, then checked to be the
    /// init by its start time (so a later process with the init's pid is never signalled
    /// or waited on through it).
    pub fn init_pidfd(&self) -> Option<std::os::fd::OwnedFd> {
        if !self.init_alive() {
            return None;
        }
        let fd = sys::proc::pidfd_open(self.pid).ok()?;
        self.init_alive().then_some(fd)
    }

    pub fn init_alive(&self) -> bool {
        if self.pid <= 0 {
            return false;
        }
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
    /// Create `<root>/<id>` for a new container, locked; EEXIST means a duplicate id.
    /// The directory starts empty: the caller's first `save` makes it a container.
    pub fn create(root: &Path, id: &str) -> Result<Self> {
        make_private_root(root)?;
        let path = root.join(id);
        loop {
            if !sys::fs::mkdir(&path, 0o700)? {
                return Err(Error::container(format!(
                    "container with id {id:?} already exists"
                )));
            }
            let fd = sys::fs::open(&path, OFlag::O_DIRECTORY | OFlag::O_RDONLY)?;
            sys::fs::lock_exclusive(&fd, &path)?;
            // A `delete` may have removed the empty directory between our mkdir and our
            // lock (it owns nothing yet): make it again.
            if sys::fs::fstat(&fd, &path)?.st_nlink > 0 {
                return Ok(ContainerDir { path, fd });
            }
        }
    }

    /// Open and lock an existing container's directory (with or without a state.json).
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
        if sys::fs::fstat(&fd, &path)?.st_nlink == 0 {
            return Err(not_exist(id));
        }
        Ok(ContainerDir { path, fd })
    }

    /// The container's record; a directory without one owns nothing (see the module doc).
    pub fn load(&self) -> Result<State> {
        let id = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match load_file(&self.path.join(STATE_FILE)) {
            Err(e) if e.errno() == Some(Errno::ENOENT) => Ok(State::remnant(&id)),
            r => r,
        }
    }

    /// The status, as seen by the holder of the lock: a record still marked `creating`
    /// is a create that died.
    pub fn status(&self, st: &State) -> Status {
        if st.creating {
            return Status::Stopped;
        }
        status(&self.path, st)
    }

    /// Write state.json atomically (tmp + rename).
    pub fn save(&self, st: &State) -> Result<()> {
        let data = serde_json::to_vec(st).map_err(|e| Error::container(e.to_string()))?;
        atomic_write(&self.path.join(STATE_FILE), &data, 0o600)
    }

    /// Remove the directory: every other file first, `state.json` last, so a removal cut
    /// short leaves either the record or a directory that owns nothing.
    pub fn remove(self) -> Result<()> {
        for (p, is_dir) in sys::fs::dir_entries(&self.path)? {
            if p.file_name() == Some(STATE_FILE.as_ref()) {
                continue;
            }
            if is_dir {
                sys::fs::remove_tree(&p)?;
            } else {
                sys::fs::remove_file(&p)?;
            }
        }
        sys::fs::remove_file(&self.path.join(STATE_FILE))?;
        sys::fs::remove_dir(&self.path)
    }
}

/// The state root, made 0700 (whatever the umask); an existing one is tightened to 0700,
/// and one that another user owns is refused.
fn make_private_root(root: &Path) -> Result<()> {
    sys::fs::mkdir_all(root, 0o700)?;
    let md = sys::fs::lstat(root)?;
    if md.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(Error::sys("mkdir", root, Errno::ENOTDIR));
    }
    if md.st_uid != sys::proc::geteuid() {
        return Err(Error::container(format!(
            "--root {}: owned by uid {}, not by the user running rsrun",
            root.display(),
            md.st_uid
        )));
    }
    if md.st_mode & 0o077 != 0 {
        sys::fs::chmod(root, 0o700)?;
    }
    Ok(())
}

pub fn not_exist(id: &str) -> Error {
    Error::container(format!("container {id:?} does not exist"))
}

pub fn load_file(path: &Path) -> Result<State> {
    let data = sys::fs::read_file(path)?;
    serde_json::from_slice(&data)
        .map_err(|e| Error::container(format!("{}: corrupt state: {e}", path.display())))
}

/// Read a container's state without taking its lock (for `state` and `list`).
pub fn load_unlocked(root: &Path, id: &str) -> Result<State> {
    validate_id(id)?;
    let dir = root.join(id);
    match load_file(&dir.join(STATE_FILE)) {
        Err(e) if e.errno() == Some(Errno::ENOENT) => {
            if sys::fs::is_dir(&dir) {
                Ok(State::remnant(id))
            } else {
                Err(not_exist(id))
            }
        }
        r => r,
    }
}

/// The container's status as seen now by a command that does not hold its lock: a
/// record marked `creating` is `creating` while its create holds the lock, `stopped` once
/// that create is gone.
pub fn status(dir: &Path, st: &State) -> Status {
    if st.creating {
        return if sys::fs::is_locked(dir) {
            Status::Creating
        } else {
            Status::Stopped
        };
    }
    if !st.init_alive() {
        return Status::Stopped;
    }
    // A created container can be paused too (runc shows it paused, and resume thaws it).
    if crate::cgroups::freezer::is_frozen(&st.cgroup) {
        return Status::Paused;
    }
    if sys::fs::exists(&dir.join(START_SOCKET)) {
        return Status::Created;
    }
    Status::Running
}

/// Write `path` atomically with `mode` (whatever the umask may add): a temporary file in
/// the same directory, then rename.
pub fn atomic_write(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    sys::fs::write_new(&tmp, data, mode)?;
    sys::fs::rename(&tmp, path)
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
    fn shared_pid_ns_is_optional_in_the_record() {
        let mut st = State::remnant("x");
        let text = serde_json::to_string(&st).unwrap();
        assert!(!text.contains("shared_pid_ns"), "{text}");
        // A record written before the field existed.
        let old: State = serde_json::from_str(&text).unwrap();
        assert!(!old.shared_pid_ns);
        st.shared_pid_ns = true;
        let back: State = serde_json::from_str(&serde_json::to_string(&st).unwrap()).unwrap();
        assert!(back.shared_pid_ns);
    }
}

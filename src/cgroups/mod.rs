//! cgroups: one interface over v1, hybrid (v1 controllers + a cgroup2 `unified` mount) and
//! pure v2. A container's cgroup is a set of directories, one per hierarchy; rsrun creates
//! the missing ones, places the init in all of them before its code runs, and removes
//! the ones it created on delete.

pub mod dbus;
pub mod device_rules;
pub mod devices_bpf;
pub mod freezer;
pub mod hierarchy;
pub mod resources;
pub mod stats;
pub mod systemd;

use crate::error::{Error, Result, SysContext};
use crate::sys::fs as sfs;
use hierarchy::Hierarchy;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use serde::{Deserialize, Serialize};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    V1,
    Hybrid,
    V2,
}

/// A container's cgroup: the directory in each hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    pub mode: Mode,
    /// The path inside each hierarchy (`/user.slice/abc` or `/process_api/x/abc`), as the
    /// container's `/proc/self/cgroup` shows it on the host.
    pub dirs: Vec<CgroupDir>,
    /// Directories rsrun created (deepest last), removed on delete.
    #[serde(default)]
    pub created: Vec<PathBuf>,
    /// With the systemd driver, the scope unit that owns the cgroup (see `systemd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<systemd::Unit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupDir {
    /// `memory`, `cpu,cpuacct`, `name=systemd`, or `` for the v2 hierarchy.
    pub controllers: String,
    /// The host directory.
    pub path: PathBuf,
    /// The mount point of the hierarchy on the host.
    pub mountpoint: PathBuf,
}

/// The container's cgroup path inside a hierarchy, as runc interprets `linux.cgroupsPath`:
/// absolute paths are used as they are; a relative path, or the container id when the path
/// is absent, is placed under the runtime's own cgroup in that hierarchy.
pub fn inner_path(spec_path: Option<&str>, id: &str, own: &str) -> Result<String> {
    let p = match spec_path {
        Some(p) if !p.is_empty() => p,
        _ => id,
    };
    let joined = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{}/{}", own.trim_end_matches('/'), p)
    };
    let mut out = Vec::new();
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(Error::config(
                    "linux.cgroupsPath",
                    format!("{p:?} must not contain \"..\""),
                ))
            }
            c => out.push(c),
        }
    }
    Ok(format!("/{}", out.join("/")))
}

impl Cgroup {
    /// Work out the container's directories on this host (nothing is created).
    pub fn resolve(spec_path: Option<&str>, id: &str) -> Result<Cgroup> {
        let mountinfo =
            sfs::read_pseudo("/proc/self/mountinfo").op("read", "/proc/self/mountinfo")?;
        let own = sfs::read_pseudo("/proc/self/cgroup").op("read", "/proc/self/cgroup")?;
        Self::resolve_with(&hierarchy::parse_mountinfo(&mountinfo), &own, spec_path, id)
    }

    /// `resolve` for a rootless container: on pure v2 a relative path goes beside the
    /// runtime's own cgroup, as runc puts it (a delegated user cgroup has processes, and
    /// a cgroup with processes cannot give its children controllers); then every
    /// hierarchy the caller may not write is left out (`keep_writable`).
    pub fn resolve_rootless(spec_path: Option<&str>, id: &str) -> Result<(Cgroup, Vec<String>)> {
        let mountinfo =
            sfs::read_pseudo("/proc/self/mountinfo").op("read", "/proc/self/mountinfo")?;
        let own = sfs::read_pseudo("/proc/self/cgroup").op("read", "/proc/self/cgroup")?;
        let hs = hierarchy::parse_mountinfo(&mountinfo);
        let beside = hierarchy::mode(&hs) == Mode::V2;
        let mut cg = Self::resolve_in(&hs, &own, spec_path, id, beside)?;
        let left_out = cg.keep_writable();
        Ok((cg, left_out))
    }

    pub fn resolve_with(
        hs: &[Hierarchy],
        own_cgroup: &str,
        spec_path: Option<&str>,
        id: &str,
    ) -> Result<Cgroup> {
        Self::resolve_in(hs, own_cgroup, spec_path, id, false)
    }

    /// `beside_own`: a relative path is placed in the parent of the runtime's own v2
    /// cgroup rather than in it.
    fn resolve_in(
        hs: &[Hierarchy],
        own_cgroup: &str,
        spec_path: Option<&str>,
        id: &str,
        beside_own: bool,
    ) -> Result<Cgroup> {
        let mode = hierarchy::mode(hs);
        let own = hierarchy::parse_proc_cgroup(own_cgroup);
        let mut dirs = Vec::new();
        for h in hs {
            if mode == Mode::V1 && h.v2 {
                continue;
            }
            let key = if h.v2 {
                String::new()
            } else {
                h.controllers.join(",")
            };
            let mut own_path = own.get(&key).cloned().unwrap_or_else(|| "/".into());
            if beside_own && h.v2 {
                own_path = Path::new(&own_path)
                    .parent()
                    .map_or("/".into(), |p| p.to_string_lossy().into_owned());
            }
            let inner = inner_path(spec_path, id, &own_path)?;
            // The mount shows the hierarchy from `h.root`; strip it from the path.
            let rel = inner
                .strip_prefix(h.root.to_string_lossy().trim_end_matches('/'))
                .unwrap_or(&inner);
            dirs.push(CgroupDir {
                controllers: key,
                path: h.mountpoint.join(rel.trim_start_matches('/')),
                mountpoint: h.mountpoint.clone(),
            });
        }
        if dirs.is_empty() {
            return Err(Error::container("no cgroup hierarchy is mounted"));
        }
        Ok(Cgroup {
            mode,
            dirs,
            created: Vec::new(),
            systemd: None,
        })
    }

    /// The systemd driver: the scope unit `linux.cgroupsPath` names (`slice:prefix:name`)
    /// and its directory, the same path in every hierarchy (nothing is created).
    pub fn resolve_systemd(spec_path: Option<&str>, id: &str) -> Result<Cgroup> {
        let (unit, path) = systemd::parse_cgroups_path(spec_path, id)?;
        let mut cg = Self::resolve(Some(&path), id)?;
        cg.systemd = Some(unit);
        Ok(cg)
    }

    /// Leave out every hierarchy where the caller can neither make the container's
    /// directory nor (when it exists) move a process into it: a rootless container
    /// lives without those controllers, as runc's. Returns what was left out and why
    /// (`memory: mkdir in /sys/fs/cgroup/memory: EACCES`), for the log and for the
    /// error when a resource needs one of them.
    pub fn keep_writable(&mut self) -> Vec<String> {
        let mut left_out = Vec::new();
        self.dirs.retain(|d| {
            let (what, at) = if sfs::exists(&d.path) {
                let f = if d.controllers.is_empty() && self.mode != Mode::V1 {
                    "cgroup.procs"
                } else {
                    "tasks"
                };
                ("write", d.path.join(f))
            } else {
                let mut p = d.path.as_path();
                while !sfs::exists(p) && p != d.mountpoint {
                    p = p.parent().unwrap_or(&d.mountpoint);
                }
                ("mkdir in", p.to_path_buf())
            };
            match sfs::may_write(&at) {
                Ok(()) => true,
                Err(e) => {
                    let name = match d.controllers.as_str() {
                        "" => "cgroup2",
                        c => c,
                    };
                    left_out.push(format!(
                        "{name}: {what} {}: {}",
                        at.display(),
                        crate::error::ErrnoName(e)
                    ));
                    false
                }
            }
        });
        left_out
    }

    /// No cgroup at all (a container directory that owns nothing).
    pub fn none() -> Cgroup {
        Cgroup {
            mode: Mode::V2,
            dirs: Vec::new(),
            created: Vec::new(),
            systemd: None,
        }
    }

    /// Record which directories `create` will make (every missing one, top down), so the
    /// container's state can name them before they exist.
    ///
    /// With the systemd driver, systemd makes (and removes) its own hierarchies'
    /// directories; in the others every directory of the path is listed, existing or not:
    /// on v1 systemd may remove a slice's directory in a hierarchy it uses for other units
    /// (devices) at any time, so `create` may have to make it again.
    pub fn plan_create(&mut self) {
        self.created.clear();
        let systemd = self.systemd.is_some();
        for d in &self.dirs {
            if systemd && systemd::owns_hierarchy(&d.controllers) {
                continue;
            }
            let mut missing = Vec::new();
            let mut p = d.path.as_path();
            while p.starts_with(&d.mountpoint) && p != d.mountpoint && (systemd || !sfs::exists(p))
            {
                missing.push(p.to_path_buf());
                p = match p.parent() {
                    Some(pp) => pp,
                    None => break,
                };
            }
            self.created.extend(missing.into_iter().rev());
        }
    }

    /// Make the directories `plan_create` listed, top down (one that appeared meanwhile
    /// is left as it is). With the systemd driver, first start the scope unit with this
    /// process in it (see `systemd`: the caller moves itself back once the init exists).
    pub fn create(&self) -> Result<()> {
        if let Some(unit) = &self.systemd {
            systemd::start(unit, self.mode, crate::sys::proc::getpid() as u32)?;
        }
        let mut retries = 0;
        'again: loop {
            for m in &self.created {
                match sfs::mkdir(m, 0o777) {
                    Ok(_) => {}
                    // A parent systemd removed meanwhile (see `plan_create`).
                    Err(e)
                        if e.errno() == Some(Errno::ENOENT)
                            && self.systemd.is_some()
                            && retries < 3 =>
                    {
                        retries += 1;
                        continue 'again;
                    }
                    Err(e) => return Err(e),
                }
            }
            break;
        }
        for d in &self.dirs {
            if d.controllers.split(',').any(|c| c == "cpuset") {
                fill_cpusets(&d.mountpoint, &d.path)?;
            }
        }
        Ok(())
    }

    /// Open what a new process needs to enter this cgroup by itself (plan before fork):
    /// the cgroup2 directory for clone3's CLONE_INTO_CGROUP (pure v2, or the `unified`
    /// hierarchy of a hybrid host) and the `tasks` file of every v1 hierarchy.
    pub fn open_entry(&self) -> Result<Entry> {
        self.open_entry_in(false)
    }

    /// `open_entry` for a process joining a running container (`exec`): a v1 hierarchy
    /// whose directory is gone is skipped, as runc does. Under the systemd driver on a
    /// hybrid host systemd may trim a controller's directory of a unit while it runs.
    pub fn open_entry_existing(&self) -> Result<Entry> {
        self.open_entry_in(true)
    }

    fn open_entry_in(&self, skip_missing_v1: bool) -> Result<Entry> {
        let mut entry = Entry {
            into: None,
            tasks: Vec::new(),
        };
        for d in &self.dirs {
            if d.controllers.is_empty() && self.mode != Mode::V1 {
                entry.into = Some(sfs::open(&d.path, OFlag::O_DIRECTORY | OFlag::O_PATH)?);
            } else {
                let f = d.path.join("tasks");
                match sfs::open(&f, OFlag::O_WRONLY) {
                    Ok(fd) => entry.tasks.push((fd, f)),
                    Err(Error::Sys {
                        errno: Errno::ENOENT,
                        ..
                    }) if skip_missing_v1 => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(entry)
    }

    /// `exec --cgroup`: the same cgroup with some (or all) hierarchies pointing at an
    /// existing sub-cgroup. Each spec is `PATH` (every hierarchy) or `CTRL[,CTRL]:PATH`.
    pub fn sub(&self, specs: &[String]) -> Result<Cgroup> {
        let mut out = self.clone();
        out.created.clear();
        for spec in specs {
            let (ctrls, path) = match spec.split_once(':') {
                Some((c, p)) => (Some(c.split(',').collect::<Vec<_>>()), p),
                None => (None, spec.as_str()),
            };
            let rel = Path::new(path.trim_start_matches('/'));
            if rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
                || path.is_empty()
            {
                return Err(Error::container(format!(
                    "--cgroup {spec:?}: not a sub-cgroup path"
                )));
            }
            let mut matched = false;
            for d in out.dirs.iter_mut() {
                let hit = match &ctrls {
                    None => true,
                    Some(cs) => {
                        let here: Vec<&str> = d.controllers.split(',').collect();
                        cs.iter()
                            .any(|c| here.contains(c) || (c.is_empty() && d.controllers.is_empty()))
                    }
                };
                if hit {
                    let p = d.path.join(rel);
                    if !sfs::is_dir(&p) {
                        return Err(Error::sys("--cgroup", &p, Errno::ENOENT));
                    }
                    d.path = p;
                    matched = true;
                }
            }
            if !matched {
                return Err(Error::container(format!(
                    "--cgroup {spec:?}: no such controller for this container"
                )));
            }
        }
        Ok(out)
    }

    /// The v2 directory, for clone3's CLONE_INTO_CGROUP on a pure v2 host.
    pub fn v2_dir(&self) -> Option<&Path> {
        (self.mode == Mode::V2).then(|| self.dirs.first().map(|d| d.path.as_path()))?
    }

    /// The directory whose cgroup.procs lists the container's processes: the v2 one, or
    /// the first of the v1 controllers that every process is charged to.
    fn procs_dir(&self) -> Option<&Path> {
        for want in ["", "pids", "freezer", "memory", "cpu,cpuacct", "cpu"] {
            if let Some(d) = self.dirs.iter().find(|d| d.controllers == want) {
                return Some(&d.path);
            }
        }
        self.dirs.first().map(|d| d.path.as_path())
    }

    /// Every pid in the container's cgroup and the sub-cgroups its processes made.
    pub fn pids(&self) -> Vec<i32> {
        let Some(dir) = self.procs_dir() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for d in tree::depth_first(dir) {
            tree::procs(&d, &mut out);
        }
        out
    }

    /// Every pid in any of the container's hierarchies (a process may have moved to a
    /// sub-cgroup of one hierarchy only).
    fn all_pids(&self) -> Vec<i32> {
        let mut out = Vec::new();
        for d in &self.dirs {
            for sub in tree::depth_first(&d.path) {
                tree::procs(&sub, &mut out);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// SIGKILL every process of the container's cgroup tree and wait (bounded) until the
    /// tree is empty: `cgroup.kill` where the kernel has it, otherwise freeze the tree,
    /// signal every process, thaw (so nothing forks away between the read and the kill).
    pub fn kill_all(&self) {
        // A container placed at a hierarchy's root is not killed by its cgroup.
        if self.dirs.is_empty() || self.dirs.iter().any(|d| d.path == d.mountpoint) {
            return;
        }
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let v2 = self.v2_entry_dir();
        // Usually the tree is empty already (the init's death took the rest with it).
        if v2.is_some() && !self.populated() {
            return;
        }
        let killed =
            v2.is_some_and(|d| sfs::write_existing(&d.path.join("cgroup.kill"), b"1").is_ok());
        // A frozen process dies only once thawed (a paused container; v1's freezer is
        // not cgroup2's, which cgroup.kill thaws itself).
        if killed && freezer::is_frozen(self) {
            let _ = freezer::set_frozen(self, false);
        }
        // cgroup2's cgroup.events changes when the last process leaves: waited on, not
        // polled.
        if let Some(d) = v2 {
            let watch = crate::sys::inotify::ModifyWatch::new(&d.path.join("cgroup.events"));
            while self.populated() {
                let now = std::time::Instant::now();
                if now > end {
                    return;
                }
                if !killed {
                    self.kill_listed();
                }
                match &watch {
                    Ok(w) => {
                        w.wait(end - now);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
                }
            }
            return;
        }
        // v1 alone has no such file: every process signalled is waited on by its pidfd,
        // then the lists are read again (for what a process forked before the freeze).
        while !self.all_pids().is_empty() {
            let signalled = self.kill_listed();
            let left = end.saturating_duration_since(std::time::Instant::now());
            if !crate::sys::poll::wait_all(&signalled, left) {
                return;
            }
        }
    }

    /// SIGKILL every process in any of the container's hierarchies, listed and signalled
    /// under the freezer (nothing forks or exits between the read and the kill); returns
    /// the pidfds of the processes signalled, readable once each has exited.
    fn kill_listed(&self) -> Vec<OwnedFd> {
        let frozen = freezer::set_frozen(self, true).is_ok();
        let mut signalled = Vec::new();
        for pid in self.all_pids() {
            match crate::sys::proc::pidfd_open(pid) {
                Ok(fd) => {
                    if crate::sys::proc::pidfd_kill(&fd, libc::SIGKILL).is_ok() {
                        signalled.push(fd);
                    }
                }
                // Without pidfds (before Linux 5.3) the pid itself is signalled.
                Err(_) => {
                    let _ = crate::sys::proc::kill_raw(pid, libc::SIGKILL);
                }
            }
        }
        if frozen {
            let _ = freezer::set_frozen(self, false);
        }
        signalled
    }

    /// The container's cgroup2 directory (or one below it) that holds `pid`, opened for
    /// CLONE_INTO_CGROUP: where `exec` goes when the container's own directory takes no
    /// process (EBUSY: the container enabled domain controllers for sub-cgroups it made
    /// and moved its init into one), as runc's exec falls back to the init's cgroup.
    pub fn open_v2_dir_holding(&self, pid: i32) -> Result<Option<OwnedFd>> {
        let Some(top) = self.v2_entry_dir() else {
            return Ok(None);
        };
        for dir in tree::depth_first(&top.path) {
            let mut pids = Vec::new();
            tree::procs(&dir, &mut pids);
            if pids.contains(&pid) {
                return sfs::open(&dir, OFlag::O_DIRECTORY | OFlag::O_PATH).map(Some);
            }
        }
        Ok(None)
    }

    /// The cgroup2 directory of the container, on pure v2 and hybrid hosts.
    fn v2_entry_dir(&self) -> Option<&CgroupDir> {
        self.dirs
            .iter()
            .find(|d| d.controllers.is_empty() && self.mode != Mode::V1)
    }

    /// Whether any process is left in the container's cgroup tree: one read of the
    /// cgroup2 `cgroup.events` where there is a cgroup2 directory (every process of the
    /// container is in it), else the v1 process lists.
    fn populated(&self) -> bool {
        if let Some(d) = self.v2_entry_dir() {
            if let Ok(ev) = sfs::read_pseudo(d.path.join("cgroup.events")) {
                return ev.lines().any(|l| l.trim() == "populated 1");
            }
        }
        !self.all_pids().is_empty()
    }

    /// Whether the container's own cgroup (if it exists already) has processes: one read
    /// of cgroup2's `cgroup.events`, or of the v1 process list.
    pub fn has_processes(&self) -> bool {
        if let Some(d) = self.v2_entry_dir() {
            return sfs::read_pseudo(d.path.join("cgroup.events"))
                .is_ok_and(|ev| ev.lines().any(|l| l.trim() == "populated 1"));
        }
        self.procs_dir().is_some_and(|d| {
            sfs::read_pseudo(d.join("cgroup.procs")).is_ok_and(|p| !p.trim().is_empty())
        })
    }

    /// Remove the container's cgroups: in every hierarchy the sub-cgroups its processes
    /// made (deepest first) and the container's own directory (also when it existed
    /// before the container, as runc does: a directory that once had `cgroup.kill`
    /// written must not be reused, some kernels kill every process later cloned into
    /// it), then the parents rsrun created if they are empty. Every hierarchy is tried
    /// before the first failure is returned, so a retry finishes the job. Processes must
    /// be gone already (`kill_all`); the last ones may still be draining (EBUSY).
    pub fn destroy(&self) -> Result<()> {
        // The unit first (systemd removes its own directories), then what rsrun made;
        // nothing at all if the unit of that name is another container's.
        let mut first_err = None;
        if let Some(unit) = &self.systemd {
            match systemd::stop(unit) {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(e) => first_err = Some(e),
            }
        }
        for d in self.dirs.iter().filter(|d| d.path != d.mountpoint) {
            // One rmdir when there is nothing below; the walk only when there is.
            match sfs::remove_dir(&d.path).map_err(|e| e.errno()) {
                Ok(()) | Err(Some(Errno::ENOENT)) => continue,
                Err(_) => {}
            }
            for sub in tree::depth_first(&d.path) {
                if let Err(e) = tree::rmdir_draining(&sub) {
                    first_err.get_or_insert(e);
                }
            }
        }
        let mut parents: Vec<&PathBuf> = self
            .created
            .iter()
            .filter(|p| !self.dirs.iter().any(|d| &d.path == *p))
            .collect();
        parents.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for d in parents {
            // Shared with other containers (a pod): removed only if empty now.
            match sfs::remove_dir(d).map_err(|e| e.errno().unwrap_or(Errno::EIO)) {
                Ok(()) | Err(Errno::ENOENT | Errno::EBUSY | Errno::ENOTEMPTY) => {}
                Err(e) => {
                    first_err.get_or_insert(Error::sys("rmdir", d, e));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Walking a cgroup directory and its sub-cgroups.
mod tree {
    use crate::error::{Error, Result};
    use nix::errno::Errno;
    use std::path::{Path, PathBuf};

    /// `dir` and every directory below it, deepest first (`dir` last); empty when `dir`
    /// does not exist.
    pub fn depth_first(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(dir, &mut out, 0);
        out
    }

    fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
        let Ok(entries) = crate::sys::fs::dir_entries(dir) else {
            return;
        };
        if depth < 64 {
            for (path, is_dir) in entries {
                if is_dir {
                    walk(&path, out, depth + 1);
                }
            }
        }
        out.push(dir.to_path_buf());
    }

    /// The pids in `dir/cgroup.procs`, appended to `out`.
    pub fn procs(dir: &Path, out: &mut Vec<i32>) {
        if let Ok(text) = crate::sys::fs::read_pseudo(dir.join("cgroup.procs")) {
            out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
    }

    /// rmdir, retrying (bounded) while the last processes drain out (EBUSY).
    pub fn rmdir_draining(d: &Path) -> Result<()> {
        let mut delay = std::time::Duration::from_millis(1);
        let mut tries = 0;
        loop {
            match crate::sys::fs::remove_dir(d).map_err(|e| e.errno().unwrap_or(Errno::EIO)) {
                Ok(()) | Err(Errno::ENOENT) => return Ok(()),
                Err(Errno::EBUSY) if tries < 200 => {
                    tries += 1;
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(Error::sys("rmdir", d, e)),
            }
        }
    }
}

/// A container's cgroup, opened for a process about to be cloned into it.
///
/// On v1 the new process moves itself: a single thread writing "0" to `tasks` skips the
/// global threadgroup lock whose write side waits for an RCU grace period, ~5 ms per
/// `cgroup.procs` write on this kind of host (the files were opened by the runtime, and
/// the kernel checks the opener's credentials, so this works from a new user namespace).
pub struct Entry {
    /// For clone3's CLONE_INTO_CGROUP.
    pub into: Option<OwnedFd>,
    /// v1 `tasks` files, written by the child itself.
    pub tasks: Vec<(OwnedFd, PathBuf)>,
}

impl Entry {
    /// In the cloned child, first thing: enter every v1 hierarchy. Consumes the files.
    pub fn enter_self(&mut self) -> Result<()> {
        for (fd, path) in self.tasks.drain(..) {
            sfs::write_fd(&fd, b"0", &path)?;
        }
        Ok(())
    }
}

/// On v2, enable `controllers` in the subtree_control of every ancestor of the
/// container's cgroup, from the top down, so its limit files exist.
pub fn enable_controllers(cg: &Cgroup, controllers: &[String]) -> Result<()> {
    let Some(dir) = cg.dirs.first() else {
        return Ok(());
    };
    if controllers.is_empty() {
        return Ok(());
    }
    let rel = dir
        .path
        .strip_prefix(&dir.mountpoint)
        .unwrap_or(Path::new(""));
    let mut cur = dir.mountpoint.clone();
    for part in rel.components() {
        let available = sfs::read_text(&cur.join("cgroup.controllers")).unwrap_or_default();
        let enabled = sfs::read_text(&cur.join("cgroup.subtree_control")).unwrap_or_default();
        for c in controllers {
            if enabled.split_whitespace().any(|e| e == c) {
                continue;
            }
            if !available.split_whitespace().any(|a| a == c) {
                return Err(Error::container(format!(
                    "cgroup controller {c:?} is not available in {}",
                    cur.display()
                )));
            }
            let f = cur.join("cgroup.subtree_control");
            sfs::write_existing(&f, format!("+{c}").as_bytes())?;
        }
        cur.push(part);
    }
    Ok(())
}

/// A v1 cpuset cgroup with empty `cpuset.cpus` or `cpuset.mems` takes no task (ENOSPC),
/// and a new one starts empty. As runc does, fill every directory from the hierarchy's
/// root down to `dir` (existing ones too: an engine's pod cgroup may have been made with
/// empty files), top down, each from its parent.
fn fill_cpusets(mountpoint: &Path, dir: &Path) -> Result<()> {
    let Ok(rel) = dir.strip_prefix(mountpoint) else {
        return Ok(());
    };
    let mut parent = mountpoint.to_path_buf();
    for part in rel.components() {
        let cur = parent.join(part);
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let mine = cur.join(f);
            let now = sfs::read_pseudo(&mine).op("read", &mine)?;
            if now.trim().is_empty() {
                let from = parent.join(f);
                let val = sfs::read_pseudo(&from).op("read", &from)?;
                sfs::write_existing(&mine, val.trim().as_bytes())?;
            }
        }
        parent = cur;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const OWN: &str = "9:name=systemd:/\n4:memory:/api/x\n1:cpu:/\n0::/\n";

    #[test]
    fn inner_path_rules() {
        assert_eq!(inner_path(None, "c1", "/api/x").unwrap(), "/api/x/c1");
        assert_eq!(inner_path(Some("a/b"), "c1", "/").unwrap(), "/a/b");
        assert_eq!(inner_path(Some("/abs/p"), "c1", "/api").unwrap(), "/abs/p");
        assert!(inner_path(Some("/a/../b"), "c1", "/").is_err());
    }

    #[test]
    fn hybrid_paths_follow_own_cgroup_per_controller() {
        let hs = hierarchy::parse_mountinfo(HYBRID);
        let cg = Cgroup::resolve_with(&hs, OWN, None, "c1").unwrap();
        assert_eq!(cg.mode, Mode::Hybrid);
        let paths: Vec<_> = cg
            .dirs
            .iter()
            .map(|d| d.path.display().to_string())
            .collect();
        assert_eq!(
            paths,
            vec![
                "/sys/fs/cgroup/cpu/c1",
                "/sys/fs/cgroup/memory/api/x/c1",
                "/sys/fs/cgroup/systemd/c1",
                "/sys/fs/cgroup/unified/c1",
            ]
        );
    }

    #[test]
    fn pure_v2() {
        let hs = hierarchy::parse_mountinfo(
            "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
        );
        let cg = Cgroup::resolve_with(&hs, "0::/user.slice\n", Some("/k8s/pod1"), "c1").unwrap();
        assert_eq!(cg.mode, Mode::V2);
        assert_eq!(cg.v2_dir(), Some(Path::new("/sys/fs/cgroup/k8s/pod1")));
    }

    #[test]
    fn create_and_destroy_only_what_was_made() {
        let tmp = std::env::temp_dir().join(format!("rsrun-cg-{}", std::process::id()));
        std::fs::create_dir_all(tmp.join("existing")).unwrap();
        let mut cg = Cgroup {
            mode: Mode::V2,
            dirs: vec![CgroupDir {
                controllers: String::new(),
                path: tmp.join("existing/a/b"),
                mountpoint: tmp.clone(),
            }],
            created: vec![],
            systemd: None,
        };
        cg.plan_create();
        cg.create().unwrap();
        assert_eq!(
            cg.created,
            vec![tmp.join("existing/a"), tmp.join("existing/a/b")]
        );
        cg.destroy().unwrap();
        assert!(tmp.join("existing").exists());
        assert!(!tmp.join("existing/a").exists());
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}

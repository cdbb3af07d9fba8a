//! Writing a new user namespace's uid and gid maps: directly when the writer may (host
//! root, root of the parent user namespace, or a user mapping only their own ids, one
//! each, with setgroups denied first), else through the setuid helpers newuidmap and
//! newgidmap, which map what /etc/subuid and /etc/subgid grant the user.

use super::IdMapping;
use crate::error::{Error, Result};
use crate::sys::fs as sfs;
use std::path::Path;

/// Which map: uid or gid.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Uid,
    Gid,
}

impl Kind {
    fn file(self) -> &'static str {
        match self {
            Kind::Uid => "uid_map",
            Kind::Gid => "gid_map",
        }
    }
    fn helper(self) -> &'static str {
        match self {
            Kind::Uid => "newuidmap",
            Kind::Gid => "newgidmap",
        }
    }
    fn ranges_file(self) -> &'static str {
        match self {
            Kind::Uid => "/etc/subuid",
            Kind::Gid => "/etc/subgid",
        }
    }
}

/// How a map is written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum How {
    /// Written to /proc/<pid>/{uid,gid}_map by rsrun (privileged over the parent user
    /// namespace).
    Direct,
    /// Written by rsrun as an unprivileged user mapping only its own id: the gid map
    /// needs `setgroups` denied first.
    OwnIdOnly,
    /// newuidmap / newgidmap.
    Helper,
}

/// How a writer with effective id `own` (uid or gid) and root or not (`root`) writes
/// `maps`.
pub fn how(maps: &[IdMapping], own: u32, root: bool) -> How {
    if root {
        return How::Direct;
    }
    match maps {
        [m] if m.size == 1 && m.host == own => How::OwnIdOnly,
        _ => How::Helper,
    }
}

/// Write the uid and gid maps of the process `pid` (in its new user namespace).
pub fn write(pid: i32, uids: &[IdMapping], gids: &[IdMapping]) -> Result<()> {
    let euid = crate::sys::proc::geteuid();
    let egid = crate::sys::proc::getegid();
    let root = euid == 0;
    write_one(pid, Kind::Uid, uids, how(uids, euid, root))?;
    write_one(pid, Kind::Gid, gids, how(gids, egid, root))
}

fn write_one(pid: i32, kind: Kind, maps: &[IdMapping], how: How) -> Result<()> {
    let text = super::id_map_text(maps);
    let file = format!("/proc/{pid}/{}", kind.file());
    match how {
        How::Direct => sfs::write_file(Path::new(&file), text.as_bytes()),
        How::OwnIdOnly => {
            if kind == Kind::Gid {
                let f = format!("/proc/{pid}/setgroups");
                sfs::write_file(Path::new(&f), b"deny")?;
            }
            sfs::write_file(Path::new(&file), text.as_bytes())
        }
        How::Helper => helper(pid, kind, maps),
    }
}

/// Where newuidmap and newgidmap are looked for.
const HELPER_DIRS: [&str; 4] = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"];

/// Run newuidmap/newgidmap `pid` `container host size`... Its failure names the tool,
/// its stderr, and, when the user has no range in /etc/subuid (/etc/subgid), that.
fn helper(pid: i32, kind: Kind, maps: &[IdMapping]) -> Result<()> {
    let tool = kind.helper();
    // rsrun runs with an environment of its own (no PATH): the helper is looked for
    // where distributions install it.
    let Some(path) = HELPER_DIRS
        .iter()
        .map(|d| Path::new(d).join(tool))
        .find(|p| sfs::exists(p))
    else {
        return Err(Error::container(format!(
            "rootless: mapping more than the caller's own id needs {tool} (package uidmap), not found in {}",
            HELPER_DIRS.join(", ")
        )));
    };
    let mut cmd = std::process::Command::new(&path);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([
            m.container.to_string(),
            m.host.to_string(),
            m.size.to_string(),
        ]);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    let out = cmd
        .output()
        .map_err(|e| Error::container(format!("rootless: run {}: {e}", path.display())))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let mut msg = format!(
        "rootless: {tool} {pid} {} failed ({}): {stderr}",
        super::id_map_text(maps).trim().replace('\n', " "),
        out.status
    );
    if !has_range(kind) {
        msg.push_str(&format!(
            "; the user has no range in {} (add one, e.g. with usermod --add-subuids/--add-subgids)",
            kind.ranges_file()
        ));
    }
    Err(Error::container(msg))
}

/// Whether /etc/subuid (/etc/subgid) has a line for the caller (by name or number).
fn has_range(kind: Kind) -> bool {
    let uid = crate::sys::proc::getuid();
    let name = crate::sys::proc::user_name(uid);
    let text = sfs::read_text(Path::new(kind.ranges_file())).unwrap_or_default();
    text.lines().any(|l| {
        let who = l.split(':').next().unwrap_or("");
        who == uid.to_string() || Some(who) == name.as_deref()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(c: u32, h: u32, n: u32) -> IdMapping {
        IdMapping {
            container: c,
            host: h,
            size: n,
        }
    }

    #[test]
    fn one_own_id_is_written_directly_more_needs_the_helper() {
        assert_eq!(how(&[map(0, 1000, 1)], 1000, false), How::OwnIdOnly);
        assert_eq!(how(&[map(0, 1001, 1)], 1000, false), How::Helper);
        assert_eq!(
            how(&[map(0, 1000, 1), map(1, 300000, 65536)], 1000, false),
            How::Helper
        );
        assert_eq!(how(&[map(0, 300000, 65536)], 0, true), How::Direct);
    }
}

//! A private procfs instance for the runtime's own procfs writes (sysctls,
//! oom_score_adj): a fresh `proc` mounted with fsopen/fsmount in the caller's namespaces,
//! or, where that is refused, a non-recursive clone of the `/proc` mount. It is attached
//! nowhere, so no mount in the container can cover any file under it, and files are
//! opened beneath it with no symlink, magic link or mount crossing (CVE-2025-52881: a
//! bind mount of another procfs file over the target passed a mere "is it procfs" check).

use super::fs as sfs;
use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub const PROC_SUPER_MAGIC: i64 = 0x9fa0;
/// The inode number of every procfs instance's root directory.
const PROC_ROOT_INO: u64 = 1;

pub struct ProcFs {
    root: OwnedFd,
}

impl ProcFs {
    /// A procfs that nothing in the mount namespace covers. runc 1.3's order: a fresh
    /// instance first; where the kernel refuses it (in a user namespace whose procfs
    /// mounts are not fully visible), a clone of `/proc` without its submounts.
    pub fn private() -> Result<ProcFs> {
        match fresh() {
            Ok(fd) => ProcFs::checked(fd),
            Err(_) => ProcFs::cloned(),
        }
    }

    /// The `/proc` mount alone (OPEN_TREE_CLONE without AT_RECURSIVE: nothing mounted
    /// under it comes along), detached.
    fn cloned() -> Result<ProcFs> {
        let fd = sfs::open_tree(Path::new("/proc"), libc::AT_SYMLINK_NOFOLLOW as u32)?;
        ProcFs::checked(fd)
    }

    /// Refuse anything but the root of a procfs (not a fake `/proc`, not a bind of a
    /// procfs subdirectory).
    fn checked(root: OwnedFd) -> Result<ProcFs> {
        let shown = Path::new("/proc");
        let st = sfs::fstat(&root, shown)?;
        if sfs::fs_type(&root, shown)? != PROC_SUPER_MAGIC || st.st_ino != PROC_ROOT_INO {
            return Err(Error::sys("private procfs", shown, Errno::EXDEV));
        }
        Ok(ProcFs { root })
    }

    /// Open `rel` (relative to the procfs root, e.g. `sys/kernel/domainname`).
    pub fn open(&self, rel: &Path, flags: OFlag) -> Result<OwnedFd> {
        sfs::open_beneath(&self.root, rel, flags, &Path::new("/proc").join(rel))
    }

    /// `/proc/self/<rel>` of the calling process: `self` is read (it is a symlink, which
    /// the open itself does not follow) and `<pid>/<rel>` opened.
    pub fn open_self(&self, rel: &Path, flags: OFlag) -> Result<OwnedFd> {
        let pid = nix::fcntl::readlinkat(&self.root, "self")
            .map_err(|e| Error::sys("readlink", "/proc/self", e))?;
        self.open(&PathBuf::from(pid).join(rel), flags)
    }

    /// One write of `data` to `/proc/self/<rel>`.
    pub fn write_self(&self, rel: &str, data: &[u8]) -> Result<()> {
        let fd = self.open_self(Path::new(rel), OFlag::O_WRONLY)?;
        sfs::write_fd(&fd, data, &Path::new("/proc/self").join(rel))
    }
}

/// fsopen("proc") → FSCONFIG_CMD_CREATE → fsmount(nosuid, nodev, noexec): a detached
/// procfs of the caller's pid namespace.
fn fresh() -> Result<OwnedFd> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    const ATTRS: libc::c_uint = 0x2 | 0x4 | 0x8; // MOUNT_ATTR_NOSUID | NODEV | NOEXEC
                                                 // SAFETY: a valid C string and flags.
    let ctx = unsafe { libc::syscall(libc::SYS_fsopen, c"proc".as_ptr(), FSOPEN_CLOEXEC) };
    let ctx = Errno::result(ctx).map_err(|e| Error::sys("fsopen", "proc", e))?;
    // SAFETY: the fd the syscall above just returned, owned by nobody.
    let ctx = unsafe { super::own_fd(ctx as i32) };
    // SAFETY: FSCONFIG_CMD_CREATE takes no key, value or aux.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            ctx.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    Errno::result(ret).map_err(|e| Error::sys("fsconfig create", "proc", e))?;
    // SAFETY: a valid fs context fd and flags.
    let mnt = unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            ctx.as_fd().as_raw_fd(),
            FSMOUNT_CLOEXEC,
            ATTRS,
        )
    };
    let mnt = Errno::result(mnt).map_err(|e| Error::sys("fsmount", "proc", e))?;
    // SAFETY: the fd the syscall above just returned, owned by nobody.
    Ok(unsafe { super::own_fd(mnt as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ways to a private procfs reach procfs files and follow no symlink in them.
    #[test]
    fn fresh_and_cloned_procfs() {
        for p in [ProcFs::private().unwrap(), ProcFs::cloned().unwrap()] {
            p.open(Path::new("sys/kernel/ostype"), OFlag::O_RDONLY)
                .unwrap();
            p.open_self(Path::new("status"), OFlag::O_RDONLY).unwrap();
            let e = p
                .open(Path::new("self/status"), OFlag::O_RDONLY)
                .unwrap_err();
            assert_eq!(e.errno(), Some(Errno::ELOOP), "{e}");
            let e = p.open(Path::new("../etc"), OFlag::O_RDONLY).unwrap_err();
            assert_eq!(e.errno(), Some(Errno::EXDEV), "{e}");
        }
    }
}

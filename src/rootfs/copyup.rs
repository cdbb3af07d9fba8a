//! `tmpcopyup`: a fresh tmpfs over a directory starts with a copy of what the directory
//! held (runc's tmpfs copy-up, which Podman asks for with every `--tmpfs`). The
//! directory is opened before the tmpfs covers it; its fd still reaches the covered
//! content, which is copied into the tmpfs entry by entry: directories, regular files,
//! symlinks, fifos and device nodes, each with its mode and owner. Every step is
//! relative to an fd and follows no symlink, so nothing in the image can send the copy
//! outside either tree.

use crate::error::Result;
use crate::sys::fs as sfs;
use nix::fcntl::OFlag;
use nix::sys::stat::SFlag;
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Copy the content of directory `from` into directory `to`; `shown` names `to` in
/// errors (the destination inside the container).
pub fn copy_tree(from: &OwnedFd, to: &OwnedFd, shown: &Path) -> Result<()> {
    for name in sfs::dir_names(from, shown)? {
        let name = Path::new(OsStr::from_bytes(&name));
        copy_entry(from, to, name, &shown.join(name))?;
    }
    Ok(())
}

fn copy_entry(from: &OwnedFd, to: &OwnedFd, name: &Path, shown: &Path) -> Result<()> {
    let st = sfs::lstat_at(from, name, shown)?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let perm = st.st_mode & 0o7777;
    let (uid, gid) = (st.st_uid, st.st_gid);
    match kind {
        SFlag::S_IFDIR => {
            sfs::mkdirat(to, name, 0o700, shown)?;
            let src = open_at(from, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY, shown)?;
            let dst = open_at(to, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY, shown)?;
            copy_tree(&src, &dst, shown)?;
            own(&dst, (uid, gid), perm, shown)
        }
        SFlag::S_IFREG => {
            let src = open_at(from, name, OFlag::O_RDONLY, shown)?;
            let create = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
            let dst = sfs::openat(to, name, create, 0o600, shown)?;
            let dst = sfs::copy_contents(src, dst, shown)?;
            own(&dst, (uid, gid), perm, shown)
        }
        SFlag::S_IFLNK => {
            let target = sfs::readlinkat(from, name, shown)?;
            sfs::symlinkat(Path::new(&target), to, name, shown)?;
            sfs::lchown_at(to, name, uid, gid, shown)
        }
        SFlag::S_IFIFO | SFlag::S_IFCHR | SFlag::S_IFBLK => {
            // Made without permissions, so it is reachable by nobody until chmod.
            sfs::mknodat(to, name, kind, 0, st.st_rdev, shown)?;
            sfs::lchown_at(to, name, uid, gid, shown)?;
            sfs::fchmodat(to, name, perm, shown)
        }
        // A socket is bound to the process that made it: there is nothing to copy.
        _ => Ok(()),
    }
}

/// The owner first, then the mode: chown clears the set-id bits.
fn own(fd: &OwnedFd, (uid, gid): (u32, u32), perm: u32, shown: &Path) -> Result<()> {
    sfs::chown_open(fd, uid, gid, shown)?;
    sfs::fchmod(fd, perm, shown)
}

fn open_at(dir: &OwnedFd, name: &Path, flags: OFlag, shown: &Path) -> Result<OwnedFd> {
    sfs::openat(dir, name, flags | OFlag::O_NOFOLLOW, 0, shown)
}

//! `tmpcopyup`: a fresh tmpfs over a directory starts with a copy of what the directory
//! held (runc's tmpfs copy-up, which Podman asks for with every `--tmpfs`). The
//! directory is opened before the tmpfs covers it; its fd still reaches the covered
//! content, which is copied into the tmpfs entry by entry: directories, regular files,
//! symlinks, fifos and device nodes, each with its mode and owner. Every step is
//! relative to an fd and follows no symlink, so nothing in the image can send the copy
//! outside either tree.

use crate::error::{Error, Result};
use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fchmod, fchmodat, fstatat, mkdirat, mknodat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, Gid, Uid};
use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Copy the content of directory `from` into directory `to`; `shown` names `to` in
/// errors (the destination inside the container).
pub fn copy_tree(from: &OwnedFd, to: &OwnedFd, shown: &Path) -> Result<()> {
    let listed = from.try_clone().map_err(|e| io(e, "dup", shown))?;
    let mut dir = Dir::from_fd(listed).map_err(|e| Error::sys("opendir", shown, e))?;
    let mut names = Vec::new();
    for entry in dir.iter() {
        let entry = entry.map_err(|e| Error::sys("readdir", shown, e))?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    for name in names {
        let name = Path::new(OsStr::from_bytes(&name));
        copy_entry(from, to, name, &shown.join(name))?;
    }
    Ok(())
}

fn copy_entry(from: &OwnedFd, to: &OwnedFd, name: &Path, shown: &Path) -> Result<()> {
    let st = fstatat(from, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| Error::sys("stat", shown, e))?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let perm = Mode::from_bits_truncate(st.st_mode & 0o7777);
    let owner = (
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    );
    match kind {
        SFlag::S_IFDIR => {
            mkdirat(to, name, Mode::S_IRWXU).map_err(|e| Error::sys("mkdir", shown, e))?;
            let src = open_at(from, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY, shown)?;
            let dst = open_at(to, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY, shown)?;
            copy_tree(&src, &dst, shown)?;
            own(&dst, owner, perm, shown)
        }
        SFlag::S_IFREG => {
            let src = open_at(from, name, OFlag::O_RDONLY, shown)?;
            let create = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL;
            let dst = nix::fcntl::openat(
                to,
                name,
                create | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::S_IRUSR | Mode::S_IWUSR,
            )
            .map_err(|e| Error::sys("create", shown, e))?;
            let mut r = std::fs::File::from(src);
            let mut w = std::fs::File::from(dst);
            std::io::copy(&mut r, &mut w).map_err(|e| io(e, "copy", shown))?;
            own(&OwnedFd::from(w), owner, perm, shown)
        }
        SFlag::S_IFLNK => {
            let target =
                nix::fcntl::readlinkat(from, name).map_err(|e| Error::sys("readlink", shown, e))?;
            symlinkat(target.as_os_str(), to, name).map_err(|e| Error::sys("symlink", shown, e))?;
            fchownat(to, name, owner.0, owner.1, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(|e| Error::sys("chown", shown, e))
        }
        SFlag::S_IFIFO | SFlag::S_IFCHR | SFlag::S_IFBLK => {
            // Made without permissions, so it is reachable by nobody until chmod.
            mknodat(to, name, kind, Mode::empty(), st.st_rdev)
                .map_err(|e| Error::sys("mknod", shown, e))?;
            fchownat(to, name, owner.0, owner.1, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(|e| Error::sys("chown", shown, e))?;
            fchmodat(to, name, perm, FchmodatFlags::FollowSymlink)
                .map_err(|e| Error::sys("chmod", shown, e))
        }
        // A socket is bound to the process that made it: there is nothing to copy.
        _ => Ok(()),
    }
}

/// The owner first, then the mode: chown clears the set-id bits.
fn own(fd: &OwnedFd, owner: (Option<Uid>, Option<Gid>), perm: Mode, shown: &Path) -> Result<()> {
    nix::unistd::fchown(fd, owner.0, owner.1).map_err(|e| Error::sys("chown", shown, e))?;
    fchmod(fd, perm).map_err(|e| Error::sys("chmod", shown, e))
}

fn open_at(dir: &OwnedFd, name: &Path, flags: OFlag, shown: &Path) -> Result<OwnedFd> {
    nix::fcntl::openat(
        dir.as_fd(),
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("open", shown, e))
}

fn io(e: std::io::Error, op: &str, shown: &Path) -> Error {
    let errno = Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    Error::sys(op, PathBuf::from(shown), errno)
}

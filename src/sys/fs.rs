//! File-system syscalls: opening inside a root without escaping it, mounts, pivot_root.

use crate::error::{Error, Result, SysContext};
use nix::errno::Errno;
use nix::fcntl::{OFlag, AT_FDCWD};
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

/// mount_setattr(2) attributes (linux/mount.h).
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR__ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_IDMAP: u64 = 0x10_0000;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x20_0000;

pub fn open(path: &Path, flags: OFlag) -> Result<OwnedFd> {
    nix::fcntl::open(path, flags | OFlag::O_CLOEXEC, Mode::empty()).op("open", path)
}

pub fn open_mode(path: &Path, flags: OFlag, mode: u32) -> Result<OwnedFd> {
    nix::fcntl::open(
        path,
        flags | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(mode as libc::mode_t),
    )
    .op("open", path)
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}
const RESOLVE_NO_XDEV: u64 = 0x01;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// openat2(root, path, RESOLVE_IN_ROOT): `path` is resolved as if `root` were `/`, so no
/// symlink or `..` in it can reach outside the root (CVE-2021-30465, CVE-2024-45310).
pub fn open_in_root(root: &impl AsFd, path: &Path, flags: OFlag, mode: u32) -> Result<OwnedFd> {
    openat2(
        root,
        path,
        flags,
        mode,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        path,
    )
}

/// openat2(dir, path) that stays on the file system and mount of `dir` and follows no
/// symlink at all: what a procfs file must be opened with, so that no mount over it and
/// no link in it can send the open elsewhere (CVE-2025-52881).
pub fn open_beneath(dir: &impl AsFd, path: &Path, flags: OFlag, shown: &Path) -> Result<OwnedFd> {
    openat2(
        dir,
        path,
        flags,
        0,
        RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS,
        shown,
    )
}

fn openat2(
    dir: &impl AsFd,
    path: &Path,
    flags: OFlag,
    mode: u32,
    resolve: u64,
    shown: &Path,
) -> Result<OwnedFd> {
    let c = cstr(path)?;
    let how = OpenHow {
        flags: (flags | OFlag::O_CLOEXEC).bits() as u64,
        mode: if flags.contains(OFlag::O_CREAT) {
            mode as u64
        } else {
            0
        },
        resolve,
    };
    loop {
        // SAFETY: all pointers reference live values for the duration of the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_fd().as_raw_fd(),
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if ret >= 0 {
            // SAFETY: the fd the syscall above just returned, owned by nobody.
            return Ok(unsafe { super::own_fd(ret as i32) });
        }
        match Errno::last() {
            Errno::EINTR | Errno::EAGAIN => continue,
            e => return Err(Error::sys("openat2", shown, e)),
        }
    }
}

/// Whether two fds name the same inode on the same mount (statx STATX_MNT_ID): a path
/// that resolves to a root is the root itself only when both agree.
pub fn same_place(a: &impl AsFd, b: &impl AsFd, shown: &Path) -> Result<bool> {
    let id = |fd: &BorrowedFd| -> Result<(u64, u32, u32, u64)> {
        // SAFETY: statx is plain data, valid when zeroed.
        let mut st: libc::statx = unsafe { std::mem::zeroed() };
        // SAFETY: statx fills the struct; an empty path with AT_EMPTY_PATH.
        let ret = unsafe {
            libc::statx(
                fd.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
                libc::STATX_INO | libc::STATX_MNT_ID,
                &mut st,
            )
        };
        Errno::result(ret).map_err(|e| Error::sys("statx", shown, e))?;
        if st.stx_mask & libc::STATX_MNT_ID == 0 {
            return Err(Error::sys("statx mount id", shown, Errno::ENOSYS));
        }
        Ok((
            st.stx_ino,
            st.stx_dev_major,
            st.stx_dev_minor,
            st.stx_mnt_id,
        ))
    };
    Ok(id(&a.as_fd())? == id(&b.as_fd())?)
}

/// What to create at the end of `mkdir_in_root` when it is missing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Leaf {
    Dir,
    File,
}

/// Create every missing component of `path` inside `root` (directories, and the last one
/// as `leaf`), resolving each step inside the root, and return an O_PATH fd on the result.
pub fn mkdir_in_root(root: &impl AsFd, path: &Path, leaf: Leaf, mode: u32) -> Result<OwnedFd> {
    mkdir_following(root, path, leaf, mode, 0)
}

/// How many dangling symlinks one `mkdir_in_root` follows before giving up (ELOOP), as
/// the kernel does for a path.
const MAX_LINKS: u32 = 40;

/// `mkdir_in_root` after `links` dangling symlinks: a component that is a symlink to
/// nothing yet is followed (inside the root) and its target made, as runc's securejoin
/// does (`/var/run -> /run` in an image without `/run`).
fn mkdir_following(
    root: &impl AsFd,
    path: &Path,
    leaf: Leaf,
    mode: u32,
    links: u32,
) -> Result<OwnedFd> {
    // Most destinations exist already: one resolution.
    match open_in_root(root, path, OFlag::O_PATH, 0) {
        Err(e) if e.errno() == Some(Errno::ENOENT) => {}
        r => return r,
    }
    let parts: Vec<&std::ffi::OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p),
            _ => None,
        })
        .collect();
    let prefix = |n: usize| -> std::path::PathBuf {
        let mut p = std::path::PathBuf::from("/");
        p.extend(&parts[..n]);
        p
    };
    // The deepest ancestor that exists, then each missing component created inside the
    // one before it and resolved again from the root (a component swapped for a symlink
    // meanwhile still resolves inside the root).
    let mut have = parts.len().saturating_sub(1);
    let mut dir = loop {
        match open_in_root(root, &prefix(have), OFlag::O_PATH | OFlag::O_DIRECTORY, 0) {
            Ok(fd) => break fd,
            Err(e) if e.errno() == Some(Errno::ENOENT) && have > 0 => have -= 1,
            Err(e) => return Err(e),
        }
    };
    for (i, part) in parts.iter().enumerate().skip(have) {
        let cur = prefix(i + 1);
        let last = i + 1 == parts.len();
        let name = Path::new(part);
        if last && leaf == Leaf::File {
            match nix::fcntl::openat(
                &dir,
                name,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_WRONLY
                    | OFlag::O_CLOEXEC
                    | OFlag::O_NOFOLLOW,
                Mode::from_bits_truncate(0o644),
            ) {
                Ok(_) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(Error::sys("create", &cur, e)),
            }
        } else {
            match nix::sys::stat::mkdirat(
                &dir,
                name,
                Mode::from_bits_truncate(mode as libc::mode_t),
            ) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(Error::sys("mkdir", &cur, e)),
            }
        }
        let flags = if last {
            OFlag::O_PATH
        } else {
            OFlag::O_PATH | OFlag::O_DIRECTORY
        };
        dir = match open_in_root(root, &cur, flags, 0) {
            Err(e) if e.errno() == Some(Errno::ENOENT) => {
                let Some(next) = through_dangling_link(root, &dir, name, &parts[i + 1..])? else {
                    return Err(e);
                };
                if links >= MAX_LINKS {
                    return Err(Error::sys("mkdir", path, Errno::ELOOP));
                }
                return mkdir_following(root, &next, leaf, mode, links + 1);
            }
            r => r?,
        };
    }
    Ok(dir)
}

/// Where a path goes on when its component `name` in `parent` is a symlink: its target
/// (from the root if absolute, else from `parent`), then the components after it,
/// resolved lexically and never above the root. None when `name` is no symlink.
fn through_dangling_link(
    root: &impl AsFd,
    parent: &OwnedFd,
    name: &Path,
    rest: &[&std::ffi::OsStr],
) -> Result<Option<std::path::PathBuf>> {
    use nix::fcntl::AtFlags;
    let st = nix::sys::stat::fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| Error::sys("stat", name, e))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFLNK {
        return Ok(None);
    }
    let target =
        nix::fcntl::readlinkat(parent, name).map_err(|e| Error::sys("readlink", name, e))?;
    let base = match Path::new(&target).is_absolute() {
        true => std::path::PathBuf::from("/"),
        false => in_root_path(root, parent)?,
    };
    let mut out = std::path::PathBuf::from("/");
    let joined = base.join(&target);
    for c in joined
        .components()
        .chain(rest.iter().map(|p| Component::Normal(p)))
    {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(p) => out.push(p),
            _ => {}
        }
    }
    Ok(Some(out))
}

/// The path of `dir` inside `root` (both opened in our mount namespace).
fn in_root_path(root: &impl AsFd, dir: &OwnedFd) -> Result<std::path::PathBuf> {
    let host = |fd: BorrowedFd| {
        let shown = crate::sys::fd_path(&fd);
        std::fs::read_link(&shown).op("readlink", &shown)
    };
    let (r, d) = (host(root.as_fd())?, host(dir.as_fd())?);
    Ok(Path::new("/").join(d.strip_prefix(&r).unwrap_or(Path::new(""))))
}

pub fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::sys("path contains NUL", p, Errno::EINVAL))
}

/// mount(2). `what` describes the mount in errors: `mount "proc" on "/rootfs/proc": EPERM`.
pub fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
    shown_target: &Path,
) -> Result<()> {
    nix::mount::mount(source, target, fstype, flags, data).map_err(|e| {
        let src = source
            .map(|s| s.display().to_string())
            .or_else(|| fstype.map(String::from))
            .unwrap_or_else(|| "none".into());
        Error::sys(format!("mount {src:?} on"), shown_target, e)
    })
}

pub fn umount(target: &Path, flags: MntFlags) -> Result<()> {
    nix::mount::umount2(target, flags).op("umount", target)
}

pub fn pivot_root(new: &Path, old: &Path) -> Result<()> {
    nix::unistd::pivot_root(new, old).op("pivot_root", new)
}

pub fn fchdir(fd: &impl AsFd, shown: &Path) -> Result<()> {
    nix::unistd::fchdir(fd).op("fchdir", shown)
}

pub fn chdir(p: &Path) -> Result<()> {
    nix::unistd::chdir(p).op("chdir", p)
}

pub fn chroot(p: &Path) -> Result<()> {
    nix::unistd::chroot(p).op("chroot", p)
}

pub fn mknod(path: &Path, kind: SFlag, mode: u32, dev: u64, shown: &Path) -> Result<()> {
    nix::sys::stat::mknod(
        path,
        kind,
        Mode::from_bits_truncate(mode as libc::mode_t),
        dev,
    )
    .op("mknod", shown)
}

pub fn mkfifo(path: &Path, mode: u32) -> Result<()> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(mode)).op("mkfifo", path)
}

pub fn makedev(major: u64, minor: u64) -> u64 {
    nix::sys::stat::makedev(major, minor)
}

/// chown of the file an fd refers to, O_PATH ones too (through its /proc/self/fd link).
pub fn fchown(fd: &impl AsFd, uid: u32, gid: u32, shown: &Path) -> Result<()> {
    let path = super::fd_path(&fd.as_fd());
    nix::unistd::fchownat(
        AT_FDCWD,
        Path::new(&path),
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        nix::fcntl::AtFlags::empty(),
    )
    .op("chown", shown)
}

/// Give the process's stdio (fds 0-2) to `uid` before it becomes that user, as runc
/// does, so the process can reopen them (`/dev/stdout`, its console). `/dev/null`, what
/// `uid` owns already and what cannot be changed here (an owner or group not mapped in
/// the user namespace: EINVAL, EPERM) are left as they are; the group is kept.
pub fn give_stdio_to(uid: u32) -> Result<()> {
    let null = nix::sys::stat::stat("/dev/null").ok();
    for fd in 0..3 {
        // SAFETY: fstat into a zeroed struct we own.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            continue; // a closed stdio fd
        }
        let is_null = null
            .as_ref()
            .is_some_and(|n| st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == n.st_rdev);
        if st.st_uid == uid || is_null {
            continue;
        }
        // SAFETY: fchown on an fd number; it only changes the inode's owner.
        if unsafe { libc::fchown(fd, uid, st.st_gid) } != 0 {
            match Errno::last() {
                Errno::EINVAL | Errno::EPERM => {}
                e => return Err(Error::sys("chown", format!("/proc/self/fd/{fd}"), e)),
            }
        }
    }
    Ok(())
}

/// In the container's init, once its root is entered: stdio that is a /dev/null (the
/// host's, as engines give it) is reopened on the container's own /dev/null, as runc
/// does. CRIU cannot checkpoint a file open from the host's mount namespace; the
/// container's node it can. Without a /dev/null character device in the container,
/// nothing changes.
pub fn reopen_null_stdio() -> Result<()> {
    let path = Path::new("/dev/null");
    let Ok(null) = open(path, OFlag::O_RDWR) else {
        return Ok(());
    };
    let ours = fstat(&null, path)?;
    if ours.st_mode & libc::S_IFMT != libc::S_IFCHR {
        return Ok(());
    }
    for fd in 0..3 {
        // SAFETY: fstat into a zeroed struct we own.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            continue; // a closed stdio fd
        }
        if st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == ours.st_rdev {
            // SAFETY: dup2 onto a stdio number; the copy has no CLOEXEC.
            if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
                return Err(Error::sys("dup2", path, Errno::last()));
            }
        }
    }
    Ok(())
}

pub fn symlink(target: &Path, link: &Path, shown: &Path) -> Result<()> {
    match nix::unistd::symlinkat(target, AT_FDCWD, link) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(Error::sys("symlink", shown, e)),
    }
}

// Relative to a directory fd (the *at calls): `name` is one entry of `dir`; `shown` names
// it in errors (the path the user knows).

/// openat(2) with O_CLOEXEC (EINTR retried: a fifo's open blocks). An error is `create`
/// when `flags` has O_CREAT, else `open`.
pub fn openat(
    dir: &impl AsFd,
    name: &Path,
    flags: OFlag,
    mode: u32,
    shown: &Path,
) -> Result<OwnedFd> {
    let op = if flags.contains(OFlag::O_CREAT) {
        "create"
    } else {
        "open"
    };
    let mode = Mode::from_bits_truncate(mode as libc::mode_t);
    loop {
        match nix::fcntl::openat(dir, name, flags | OFlag::O_CLOEXEC, mode) {
            Err(Errno::EINTR) => continue,
            r => return r.op(op, shown),
        }
    }
}

/// mkdirat(2): the directory `name` in `dir` with `mode` (less the umask).
pub fn mkdirat(dir: &impl AsFd, name: &Path, mode: u32, shown: &Path) -> Result<()> {
    nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(mode as libc::mode_t))
        .op("mkdir", shown)
}

/// mknodat(2): a node of `kind` (and device number `dev`) named `name` in `dir`.
pub fn mknodat(
    dir: &impl AsFd,
    name: &Path,
    kind: SFlag,
    mode: u32,
    dev: u64,
    shown: &Path,
) -> Result<()> {
    let mode = Mode::from_bits_truncate(mode as libc::mode_t);
    nix::sys::stat::mknodat(dir, name, kind, mode, dev).op("mknod", shown)
}

/// symlinkat(2): `name` in `dir` pointing at `target` (an existing name is EEXIST).
pub fn symlinkat(target: &Path, dir: &impl AsFd, name: &Path, shown: &Path) -> Result<()> {
    nix::unistd::symlinkat(target, dir, name).op("symlink", shown)
}

/// fstatat(2) without following a symlink at `name`.
pub fn lstat_at(dir: &impl AsFd, name: &Path, shown: &Path) -> Result<nix::sys::stat::FileStat> {
    nix::sys::stat::fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).op("stat", shown)
}

/// readlinkat(2): where the symlink `name` in `dir` points.
pub fn readlinkat(dir: &impl AsFd, name: &Path, shown: &Path) -> Result<std::ffi::OsString> {
    nix::fcntl::readlinkat(dir, name).op("readlink", shown)
}

/// fchownat(2) without following a symlink at `name`.
pub fn lchown_at(dir: &impl AsFd, name: &Path, uid: u32, gid: u32, shown: &Path) -> Result<()> {
    nix::unistd::fchownat(
        dir,
        name,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .op("chown", shown)
}

/// The names in the directory `dir` is open on, but `.` and `..` (read through a
/// duplicate of the fd, so `dir`'s offset is left alone).
pub fn dir_names(dir: &OwnedFd, shown: &Path) -> Result<Vec<Vec<u8>>> {
    let listed = dir.try_clone().op("dup", shown)?;
    let mut d = nix::dir::Dir::from_fd(listed).op("opendir", shown)?;
    let mut names = Vec::new();
    for entry in d.iter() {
        let entry = entry.op("readdir", shown)?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    Ok(names)
}

/// Remove the non-directory `name` from `dir` (unlinkat(2)); one already gone is fine.
pub fn remove_file_at(dir: &impl AsFd, name: &Path, shown: &Path) -> Result<()> {
    match nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(Error::sys("unlink", shown, e)),
    }
}

/// fchmodat(2), following a symlink at `name`: the exact `mode`, whatever the umask.
pub fn fchmodat(dir: &impl AsFd, name: &Path, mode: u32, shown: &Path) -> Result<()> {
    nix::sys::stat::fchmodat(
        dir,
        name,
        Mode::from_bits_truncate(mode as libc::mode_t),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .op("chmod", shown)
}

/// The mode of `path` set exactly (chmod(2)), whatever the umask.
pub fn chmod(path: &Path, mode: u32) -> Result<()> {
    nix::sys::stat::fchmodat(
        AT_FDCWD,
        path,
        Mode::from_bits_truncate(mode as libc::mode_t),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .op("chmod", path)
}

/// Read a procfs, sysfs or cgroupfs file: they report size 0, so std's reader starts
/// with a 32-byte buffer and makes a read (and, for mountinfo, a walk of the mount
/// table) per doubling; one 8 KiB read is usually the whole file.
pub fn read_pseudo(path: impl AsRef<Path>) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 8192];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(len * 2, 0);
        }
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Read a whole regular file of at most `max` bytes: a file a caller or a container
/// controls. The open cannot block (O_NONBLOCK: a FIFO opens at once and is then refused),
/// anything but a regular file is refused before a byte is read (`/dev/zero`, a FIFO, a
/// socket), and a file above `max` is refused rather than read into memory.
pub fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let fd = open(path, OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY)?;
    let st = fstat(&fd, path)?;
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    if kind != SFlag::S_IFREG {
        let what = match kind {
            SFlag::S_IFDIR => "a directory",
            SFlag::S_IFCHR => "a character device",
            SFlag::S_IFBLK => "a block device",
            SFlag::S_IFIFO => "a FIFO",
            SFlag::S_IFSOCK => "a socket",
            _ => "not a regular file",
        };
        return Err(Error::config(
            path.display().to_string(),
            format!("is {what}, not a regular file"),
        ));
    }
    let too_big = || {
        Error::config(
            path.display().to_string(),
            format!("larger than the limit of {max} bytes"),
        )
    };
    if st.st_size as u64 > max {
        return Err(too_big());
    }
    let mut data = Vec::with_capacity(st.st_size as usize);
    std::fs::File::from(fd)
        .take(max + 1)
        .read_to_end(&mut data)
        .op("read", path)?;
    if data.len() as u64 > max {
        return Err(too_big());
    }
    Ok(data)
}

/// `read_regular` for a stream (standard input): at most `max` bytes.
pub fn read_capped(r: impl std::io::Read, shown: &str, max: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut data = Vec::new();
    r.take(max + 1).read_to_end(&mut data).op("read", shown)?;
    if data.len() as u64 > max {
        return Err(Error::config(
            shown,
            format!("larger than the limit of {max} bytes"),
        ));
    }
    Ok(data)
}

/// Whether the caller's effective ids may write `path` (faccessat W_OK, AT_EACCESS): the
/// errno that says why not.
pub fn may_write(path: &Path) -> std::result::Result<(), Errno> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: faccessat reads a valid NUL-terminated path.
    let ret = unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::W_OK, libc::AT_EACCESS) };
    Errno::result(ret).map(drop)
}

/// The whole of a regular file (std's read: one fstat for the size, then reads).
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).op("read", path)
}

/// The whole of a text file (std's read_to_string: invalid UTF-8 is EINVAL).
pub fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).op("read", path)
}

/// Append `data` to `path`, created (mode 0666 less the umask) when missing.
pub fn append(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .op("open", path)?;
    f.write_all(data).op("write", path)
}

/// The absolute path `path` resolves to (realpath(3)); an error names it as `field`,
/// the configuration field or option it came from.
pub fn canonicalize(path: &Path, field: &str) -> Result<std::path::PathBuf> {
    std::fs::canonicalize(path).op(field, path)
}

/// mkdir(2) of `path` with `mode` (less the umask): true when made, false when the
/// name was taken already (EEXIST).
pub fn mkdir(path: &Path, mode: u32) -> Result<bool> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(mode).create(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).op("mkdir", path),
    }
}

/// Create (or truncate) `path` with `mode` (less the umask) and write all of `data`.
pub fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .op("open", path)?;
    f.write_all(data).op("write", path)
}

/// rename(2) `from` onto `to` (atomic within one file system); an error names `to`.
pub fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).op("rename", to)
}

/// `path` and its missing parents as directories with `mode` (less the umask); an
/// existing directory is fine.
pub fn mkdir_all(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .op("mkdir", path)
}

/// lstat(2): `path` itself, a symlink not followed.
pub fn lstat(path: &Path) -> Result<nix::sys::stat::FileStat> {
    nix::sys::stat::lstat(path).op("stat", path)
}

/// Whether `path` names something (symlinks followed), as std's `Path::exists`.
pub fn exists(path: &Path) -> bool {
    path.exists()
}

/// Whether `path` is a directory (symlinks followed), as std's `Path::is_dir`.
pub fn is_dir(path: &Path) -> bool {
    path.is_dir()
}

/// The entries of the directory `path` (`.` and `..` left out): each one's path and
/// whether it is a directory (as readdir's d_type says, a symlink not followed).
pub fn dir_entries(path: &Path) -> Result<Vec<(std::path::PathBuf, bool)>> {
    let mut out = Vec::new();
    for ent in std::fs::read_dir(path).op("read", path)? {
        let ent = ent.op("read", path)?;
        out.push((ent.path(), ent.file_type().is_ok_and(|t| t.is_dir())));
    }
    Ok(out)
}

/// Remove the file `path`; one already gone is fine.
pub fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).op("remove", path),
        _ => Ok(()),
    }
}

/// unlink(2) of `path`, which must be there.
pub fn unlink(path: &Path) -> Result<()> {
    std::fs::remove_file(path).op("remove", path)
}

/// Remove the directory `path` and all it holds; one already gone is fine.
pub fn remove_tree(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).op("remove", path),
        _ => Ok(()),
    }
}

/// rmdir(2) of the empty directory `path`.
pub fn remove_dir(path: &Path) -> Result<()> {
    std::fs::remove_dir(path).op("remove", path)
}

pub fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    std::fs::write(path, data).op("write", path)
}

/// Write `data` to a file that must already exist (cgroup, procfs and sysfs knobs): no
/// O_CREAT, so a missing knob fails with ENOENT naming it instead of the kernfs's EACCES
/// for a create.
pub fn write_existing(path: &Path, data: &[u8]) -> Result<()> {
    let fd = open(path, OFlag::O_WRONLY)?;
    write_fd(&fd, data, path)
}

/// One write(2) of `data` to an open file (kernfs and procfs take a value per write).
pub fn write_fd(fd: &impl AsFd, data: &[u8], shown: &Path) -> Result<()> {
    loop {
        match nix::unistd::write(fd, data) {
            Ok(n) if n == data.len() => return Ok(()),
            Ok(_) => return Err(Error::sys("write", shown, Errno::EIO)),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("write", shown, e)),
        }
    }
}

/// One read(2) from an open file into `buf` (EINTR retried): how many bytes came, 0 at
/// its end.
pub fn read_fd(fd: &impl AsFd, buf: &mut [u8], shown: &Path) -> Result<usize> {
    loop {
        match nix::unistd::read(fd, buf) {
            Err(Errno::EINTR) => continue,
            r => return r.map_err(|e| Error::sys("read", shown, e)),
        }
    }
}

/// fchown(2) on an fd open on the file itself (not O_PATH: see `fchown` for those).
pub fn chown_open(fd: &impl AsFd, uid: u32, gid: u32, shown: &Path) -> Result<()> {
    let (uid, gid) = (
        nix::unistd::Uid::from_raw(uid),
        nix::unistd::Gid::from_raw(gid),
    );
    nix::unistd::fchown(fd, Some(uid), Some(gid)).op("chown", shown)
}

/// fchmod(2): the exact `mode` of the file `fd` is open on.
pub fn fchmod(fd: &impl AsFd, mode: u32, shown: &Path) -> Result<()> {
    nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(mode as libc::mode_t)).op("chmod", shown)
}

/// Copy what `from` holds, from its offset on, into `to`; returns `to`.
pub fn copy_contents(from: OwnedFd, to: OwnedFd, shown: &Path) -> Result<OwnedFd> {
    let mut r = std::fs::File::from(from);
    let mut w = std::fs::File::from(to);
    std::io::copy(&mut r, &mut w).op("copy", shown)?;
    Ok(OwnedFd::from(w))
}

/// fcntl(F_SETFL, O_NONBLOCK): the fd's file status flags become O_NONBLOCK alone (a
/// pipe or a pty master has no other worth keeping; no F_GETFL first).
pub fn set_nonblocking(fd: &impl AsFd, shown: &Path) -> Result<()> {
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        .map(drop)
        .op("fcntl O_NONBLOCK", shown)
}

/// The mount flags of the mount an fd is on (fstatvfs(2)'s f_flag).
pub fn mount_flags_of(fd: &impl AsFd, shown: &Path) -> Result<nix::sys::statvfs::FsFlags> {
    let st = nix::sys::statvfs::fstatvfs(fd).op("statvfs", shown)?;
    Ok(st.flags())
}

/// readlink(2) of `path` (a symlink, or a /proc magic link); `shown` names it in an error.
pub fn read_link(path: &Path, shown: &Path) -> Result<std::path::PathBuf> {
    std::fs::read_link(path).op("readlink", shown)
}

/// The file-system type magic of an fd (statfs f_type).
pub fn fs_type(fd: &impl AsFd, shown: &Path) -> Result<i64> {
    let st = nix::sys::statfs::fstatfs(fd).op("fstatfs", shown)?;
    Ok(st.filesystem_type().0 as i64)
}

pub fn fstat(fd: &impl AsFd, shown: &Path) -> Result<nix::sys::stat::FileStat> {
    nix::sys::stat::fstat(fd).op("stat", shown)
}

pub fn stat(path: &Path) -> Result<nix::sys::stat::FileStat> {
    nix::sys::stat::stat(path).op("stat", path)
}

/// Whether `path` is a regular file (symlinks followed) that access(2) lets the real
/// uid and gid execute: what a PATH lookup accepts.
pub fn is_executable_file(path: &Path) -> bool {
    nix::sys::stat::stat(path).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
        && nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok()
}

/// getcwd(2); `shown` names what the cwd was set to in an error.
pub fn getcwd(shown: &Path) -> Result<std::path::PathBuf> {
    nix::unistd::getcwd().op("getcwd", shown)
}

/// An exclusive flock, held until the fd is closed.
pub fn lock_exclusive(fd: &impl AsFd, shown: &Path) -> Result<()> {
    loop {
        // SAFETY: flock on a valid fd.
        let ret = unsafe { libc::flock(fd.as_fd().as_raw_fd(), libc::LOCK_EX) };
        if ret == 0 {
            return Ok(());
        }
        match Errno::last() {
            Errno::EINTR => continue,
            e => return Err(Error::sys("flock", shown, e)),
        }
    }
}

/// Close an fd number this process inherited without owning it as an `OwnedFd` (the
/// container lock a cloned child must not keep); an error is ignored, as close(2)'s.
pub fn close_inherited(fd: std::os::fd::RawFd) {
    let _ = nix::unistd::close(fd);
}

/// Whether another open file holds an exclusive flock on `path` (probed with a shared,
/// non-blocking lock that is released at once). A missing path is not locked.
pub fn is_locked(path: &Path) -> bool {
    let Ok(fd) = open(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY) else {
        return false;
    };
    loop {
        // SAFETY: flock on a valid fd; closing the fd releases the probe.
        let ret = unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
        if ret == 0 {
            return false;
        }
        match Errno::last() {
            Errno::EINTR => continue,
            e => return e == Errno::EWOULDBLOCK,
        }
    }
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE]) with MOUNT_ATTR_* bits, and a
/// user namespace fd for MOUNT_ATTR_IDMAP.
pub fn mount_setattr(
    fd: &impl AsFd,
    set: u64,
    clr: u64,
    recursive: bool,
    userns: Option<&OwnedFd>,
    shown: &Path,
) -> Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: userns.map(|u| u.as_raw_fd() as u64).unwrap_or(0),
    };
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: an empty path, a valid fd and a valid mount_attr.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_fd().as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(ret)
        .map(drop)
        .map_err(|e| Error::sys("mount_setattr", shown, e))
}

/// open_tree(OPEN_TREE_CLONE): a detached copy of the mount at `path` (recursive with
/// AT_RECURSIVE).
pub fn open_tree_clone(path: &Path, recursive: bool) -> Result<OwnedFd> {
    open_tree(
        path,
        if recursive {
            libc::AT_RECURSIVE as libc::c_uint
        } else {
            0
        },
    )
}

/// open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | flags).
pub fn open_tree(path: &Path, flags: libc::c_uint) -> Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let c = cstr(path)?;
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | flags;
    // SAFETY: a valid path and flags.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    let fd = Errno::result(ret).map_err(|e| Error::sys("open_tree", path, e))?;
    // SAFETY: the fd the syscall above just returned, owned by nobody.
    Ok(unsafe { super::own_fd(fd as i32) })
}

/// move_mount a detached tree onto the directory or file `target` (an fd).
pub fn move_mount_onto(tree: &impl AsFd, target: &impl AsFd, shown: &Path) -> Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    // SAFETY: both paths are empty and the fds are valid.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_fd().as_raw_fd(),
            c"".as_ptr(),
            target.as_fd().as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(ret)
        .map(drop)
        .map_err(|e| Error::sys("move_mount onto", shown, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Missing components are created from the deepest existing ancestor, and a
    /// component that is a symlink to the host's `/` resolves inside the root.
    #[test]
    fn mkdir_in_root_follows_dangling_links_inside_the_root() {
        let base = std::env::temp_dir().join(format!("rsrun-mkdir-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let r = base.join("root");
        std::fs::create_dir_all(r.join("var")).unwrap();
        std::os::unix::fs::symlink("/run", r.join("var/run")).unwrap();
        let escape = format!("rsrun-escape-link-{}", std::process::id());
        std::os::unix::fs::symlink(format!("../../../../{escape}/x"), r.join("var/up")).unwrap();
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        let root = open(&r, OFlag::O_PATH | OFlag::O_DIRECTORY).unwrap();

        mkdir_in_root(&root, Path::new("/var/run/foo"), Leaf::Dir, 0o755).unwrap();
        assert!(r.join("run/foo").is_dir());
        mkdir_in_root(&root, Path::new("/var/up/f"), Leaf::File, 0o755).unwrap();
        let escaped = Path::new("/").join(&escape).exists();
        let _ = std::fs::remove_dir_all(Path::new("/").join(&escape));
        assert!(!escaped, "created on the host");
        assert!(r.join(&escape).join("x/f").is_file());
        let e = mkdir_in_root(&root, Path::new("/loop/a"), Leaf::Dir, 0o755).unwrap_err();
        assert!(matches!(e.errno(), Some(Errno::ELOOP)), "{e}");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn mkdir_in_root_creates_inside_the_root() {
        let base = std::env::temp_dir().join(format!("rsrun-mkdir-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("root/a")).unwrap();
        std::os::unix::fs::symlink("/", base.join("root/a/up")).unwrap();
        let root = open(&base.join("root"), OFlag::O_PATH | OFlag::O_DIRECTORY).unwrap();

        let c = mkdir_in_root(&root, Path::new("/a/b/c"), Leaf::Dir, 0o755).unwrap();
        let want = std::fs::metadata(base.join("root/a/b/c")).unwrap();
        assert!(want.is_dir());
        assert_eq!(
            fstat(&c, Path::new("c")).unwrap().st_ino,
            std::os::unix::fs::MetadataExt::ino(&want)
        );

        let escape = format!("rsrun-escape-test-{}", std::process::id());
        let r = mkdir_in_root(&root, &Path::new("/a/up").join(&escape), Leaf::File, 0o755);
        let escaped = Path::new("/").join(&escape).exists();
        let _ = std::fs::remove_file(Path::new("/").join(&escape));
        r.unwrap();
        assert!(!escaped, "created on the host");
        assert!(base.join("root").join(&escape).is_file());

        // An existing destination is returned as it is.
        let b = mkdir_in_root(&root, Path::new("/a/b"), Leaf::Dir, 0o755).unwrap();
        let want = std::fs::metadata(base.join("root/a/b")).unwrap();
        assert_eq!(
            fstat(&b, Path::new("b")).unwrap().st_ino,
            std::os::unix::fs::MetadataExt::ino(&want)
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}

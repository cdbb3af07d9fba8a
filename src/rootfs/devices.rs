//! Device nodes in the container's /dev: the default set, `linux.devices`, and the /dev
//! symlinks. mknod where allowed; inside a user namespace, a bind of the host node.

use crate::error::{Error, Result};
use crate::spec::validate::check_id;
use crate::sys::fs::{self as sfs, Leaf};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::SFlag;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePlan {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The devices every container gets (runc's default set).
pub fn defaults() -> Vec<DevicePlan> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .iter()
    .map(|(n, ma, mi)| DevicePlan {
        path: PathBuf::from("/dev").join(n),
        kind: SFlag::S_IFCHR,
        major: *ma,
        minor: *mi,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// `linux.devices[i]` → a plan entry; the error names the index and field.
pub fn from_spec(i: usize, d: &LinuxDevice) -> Result<DevicePlan> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(Error::config(
                format!("linux.devices[{i}].type"),
                "\"a\" is not a device node type",
            ))
        }
    };
    if !d.path().is_absolute() || !d.path().starts_with("/dev") {
        return Err(Error::config(
            format!("linux.devices[{i}].path"),
            format!("{:?} is not under /dev", d.path()),
        ));
    }
    // mknod takes a 32-bit dev_t: 12 bits of major, 20 of minor. A larger number would
    // be truncated into another device's (major 4097 is major 1).
    if kind != SFlag::S_IFIFO {
        for (name, v, max) in [("major", d.major(), 4095), ("minor", d.minor(), 1_048_575)] {
            if !(0..=max).contains(&v) {
                return Err(Error::config(
                    format!("linux.devices[{i}].{name}"),
                    format!("{v} is outside 0-{max}"),
                ));
            }
        }
    }
    let field = |f: &str| format!("linux.devices[{i}].{f}");
    check_id(&field("uid"), d.uid().unwrap_or(0))?;
    check_id(&field("gid"), d.gid().unwrap_or(0))?;
    Ok(DevicePlan {
        path: super::clean(d.path()),
        kind,
        major: d.major().max(0) as u64,
        minor: d.minor().max(0) as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// Create one device inside `root` (an fd on the rootfs). A bind is made from the host's
/// node, or, where our user namespace cannot reach it (EACCES), from `opened`: the fd the
/// parent opened on it before the namespace applied.
pub fn create(
    root: &impl AsFd,
    d: &DevicePlan,
    bind: bool,
    opened: Option<BorrowedFd>,
) -> Result<()> {
    let parent = d.path.parent().unwrap_or(Path::new("/dev"));
    let name = d.path.file_name().unwrap_or_default();
    if bind {
        let target = sfs::mkdir_in_root(root, &d.path, Leaf::File, 0o755)?;
        let own = match (sfs::open(&d.path, OFlag::O_PATH), opened) {
            (Ok(fd), _) => Some(fd),
            (Err(e), Some(_)) if matches!(e.errno(), Some(Errno::EACCES | Errno::EPERM)) => None,
            (Err(e), _) => return Err(e),
        };
        let src = match (&own, opened) {
            (Some(fd), _) => fd.as_fd(),
            (None, Some(fd)) => fd,
            (None, None) => return Err(Error::sys("open", &d.path, Errno::EACCES)),
        };
        return sfs::mount(
            Some(Path::new(&crate::sys::fd_path(&src))),
            Path::new(&crate::sys::fd_path(&target)),
            None,
            MsFlags::MS_BIND,
            None,
            &d.path,
        );
    }
    let dir = sfs::mkdir_in_root(root, parent, Leaf::Dir, 0o755)?;
    let dir = sfs::open(
        Path::new(&crate::sys::fd_path(&dir)),
        OFlag::O_DIRECTORY | OFlag::O_RDONLY,
    )?;
    let name = Path::new(name);
    sfs::remove_file_at(&dir, name, &d.path)?;
    let dev = sfs::makedev(d.major, d.minor);
    sfs::mknodat(&dir, name, d.kind, d.mode, dev, &d.path)?;
    let node = sfs::openat(&dir, name, OFlag::O_PATH | OFlag::O_NOFOLLOW, 0, &d.path)?;
    // mknod honours the umask: set the exact mode, then the owner.
    sfs::fchmodat(&dir, name, d.mode, &d.path)?;
    sfs::fchown(&node, d.uid, d.gid, &d.path)
}

/// The /dev symlinks runc makes.
pub fn symlinks(root: &impl AsFd) -> Result<()> {
    let dev = sfs::mkdir_in_root(root, Path::new("/dev"), Leaf::Dir, 0o755)?;
    let dev = sfs::open(
        Path::new(&crate::sys::fd_path(&dev)),
        OFlag::O_DIRECTORY | OFlag::O_RDONLY,
    )?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if sfs::exists(Path::new("/proc/kcore")) {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        let shown = Path::new("/dev").join(name);
        match sfs::symlinkat(Path::new(target), &dev, Path::new(name), &shown) {
            Err(e) if e.errno() != Some(Errno::EEXIST) => return Err(e),
            _ => {}
        }
    }
    // /dev/ptmx is the devpts instance's ptmx.
    let (ptmx, shown) = (Path::new("ptmx"), Path::new("/dev/ptmx"));
    sfs::remove_file_at(&dev, ptmx, shown)?;
    sfs::symlinkat(Path::new("pts/ptmx"), &dev, ptmx, shown)
}

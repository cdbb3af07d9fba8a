//! The child's root filesystem steps, in order: prepare (propagation, bind the root onto
//! itself), mounts, devices, pivot_root, then the finishing touches on the new root.
//! Every destination is resolved inside the root (openat2 RESOLVE_IN_ROOT) and mounted
//! through its fd, so no symlink in the rootfs can send a mount to the host.

use super::{devices, options, MountKind, MountOp, RootfsPlan};
use crate::cgroups::Mode;
use crate::error::{Error, Result, SysContext};
use crate::sys::fd_path;
use crate::sys::fs::{self as sfs, Leaf};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::SFlag;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Make the host's mounts invisible to propagation and turn the rootfs into a mount
/// point; returns an O_PATH fd on it. Without a mount namespace of its own (the
/// container shares the runtime's) the host's propagation is left alone: the rootfs is
/// bound onto itself and that bind made private, so what is mounted in it reaches no
/// other mount namespace; `delete` detaches it (`State::host_mounts`).
pub fn prepare(plan: &RootfsPlan) -> Result<OwnedFd> {
    if !plan.host_mount_ns {
        sfs::mount(
            None,
            Path::new("/"),
            None,
            plan.root_propagation,
            None,
            Path::new("/"),
        )?;
        parent_private(&plan.root)?;
    }
    rbind(&plan.root, &plan.root, &plan.root)?;
    if plan.host_mount_ns {
        sfs::mount(
            None,
            &plan.root,
            None,
            MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            None,
            &plan.root,
        )?;
    }
    sfs::open(&plan.root, OFlag::O_PATH | OFlag::O_DIRECTORY)
}

/// The mount the rootfs lies on, made private if it is shared (runc's
/// `rootfsParentMountPrivate`): with a shared `/` (`rootfsPropagation: shared`) the bind
/// of the rootfs onto itself would otherwise propagate to the host, and pivot_root
/// refuses a new root whose parent mount is shared.
fn parent_private(root: &Path) -> Result<()> {
    let mountinfo = sfs::read_pseudo("/proc/self/mountinfo").op("read", "/proc/self/mountinfo")?;
    match mount_under(&mountinfo, root) {
        Some((point, true)) => sfs::mount(None, &point, None, MsFlags::MS_PRIVATE, None, &point),
        _ => Ok(()),
    }
}

/// The mount point of the (topmost) mount `path` lies on, from a mountinfo text, and
/// whether that mount is shared.
fn mount_under(mountinfo: &str, path: &Path) -> Option<(PathBuf, bool)> {
    use crate::cgroups::hierarchy::unescape;
    let mut best: Option<(PathBuf, bool)> = None;
    for line in mountinfo.lines() {
        let Some((pre, _)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = pre.split(' ').collect();
        let Some(point) = fields.get(4).map(|p| PathBuf::from(unescape(p))) else {
            continue;
        };
        let longer = best.as_ref().map_or(true, |(b, _)| {
            point.as_os_str().len() >= b.as_os_str().len()
        });
        if path.starts_with(&point) && longer {
            let shared = fields.iter().skip(6).any(|f| f.starts_with("shared:"));
            best = Some((point, shared));
        }
    }
    best
}

/// Into the new root: pivot_root (or, with `--no-pivot`, a move over `/`); without a
/// mount namespace of its own, a chroot, as runc does (neither pivot_root nor a move
/// may touch the host's root).
pub fn enter(plan: &RootfsPlan) -> Result<()> {
    if plan.host_mount_ns {
        sfs::chdir(&plan.root)?;
        sfs::chroot(Path::new("."))?;
        sfs::chdir(Path::new("/"))
    } else if plan.no_pivot {
        move_root(plan)
    } else {
        pivot(plan)
    }
}

fn p(fd: &impl AsFd) -> PathBuf {
    PathBuf::from(fd_path(&fd.as_fd()))
}

/// A recursive bind of `src` onto `target` (errors name `shown`).
fn rbind(src: &Path, target: &Path, shown: &Path) -> Result<()> {
    sfs::mount(
        Some(src),
        target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
        shown,
    )
}

/// The mount flags a mount already has (statvfs), which a remount inside a user
/// namespace must keep (they are locked).
fn locked_flags(fd: &impl AsFd, shown: &Path) -> Result<MsFlags> {
    use nix::sys::statvfs::FsFlags;
    let f = sfs::mount_flags_of(fd, shown)?;
    let mut out = MsFlags::empty();
    for (s, m) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(s) {
            out |= m;
        }
    }
    Ok(out)
}

/// Remount a bind mount with `flags`; on EPERM retry keeping the flags the kernel locked.
fn remount_bind(target: &Path, flags: MsFlags, shown: &Path) -> Result<()> {
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    match sfs::mount(None, target, None, base | flags, None, shown) {
        Err(e) if e.errno() == Some(Errno::EPERM) => {
            let fd = sfs::open(target, OFlag::O_PATH)?;
            let locked = locked_flags(&fd, shown)?;
            sfs::mount(None, target, None, base | flags | locked, None, shown)
        }
        r => r,
    }
}

/// Remount a mount read-only keeping the flags it has (nosuid, noexec, ...), as runc does
/// for readonlyPaths and a read-only root.
fn make_read_only(target: &Path) -> Result<()> {
    let fd = sfs::open(target, OFlag::O_PATH)?;
    let current = locked_flags(&fd, target)?;
    remount_bind(target, current | MsFlags::MS_RDONLY, target)
}

/// Flags that need a remount after a bind (everything but the bind itself).
fn remount_part(flags: MsFlags) -> MsFlags {
    flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)
}

/// `userns` holds, by mount index, the user namespace fd of each id-mapped mount;
/// `sources` the bind sources the parent opened for us (`create::send_mount_sources`).
pub fn mount_all(
    root: &OwnedFd,
    plan: &RootfsPlan,
    userns: &[(usize, OwnedFd)],
    sources: &[(usize, OwnedFd)],
) -> Result<()> {
    for op in &plan.mounts {
        let ns = by_index(userns, op.index);
        let opened = by_index(sources, op.index).map(|fd| fd.as_fd());
        mount_one(root, plan, op, ns, opened).map_err(|e| match e {
            // Name the mount: `mounts[3].destination: openat2 "/x": ENOENT`.
            e @ Error::Sys { .. } => Error::config(field(op, "destination"), e.to_string()),
            e => e,
        })?;
    }
    Ok(())
}

fn by_index(fds: &[(usize, OwnedFd)], index: usize) -> Option<&OwnedFd> {
    fds.iter().find(|(i, _)| *i == index).map(|(_, fd)| fd)
}

fn field(op: &MountOp, f: &str) -> String {
    format!("mounts[{}].{f}", op.index)
}

fn mount_one(
    root: &OwnedFd,
    plan: &RootfsPlan,
    op: &MountOp,
    userns: Option<&OwnedFd>,
    opened: Option<std::os::fd::BorrowedFd>,
) -> Result<()> {
    let shown = &op.dest;
    match &op.kind {
        MountKind::Bind { source } => {
            let (source, st) = bind_source(op, source, opened)?;
            let source = &source;
            let leaf = if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
                Leaf::Dir
            } else {
                Leaf::File
            };
            let target = destination(root, plan, op, leaf)?;
            match (&op.idmap, userns, opened) {
                // Made id-mapped by the parent (an init in a user namespace may not).
                (Some(_), _, Some(tree)) => sfs::move_mount_onto(&tree, &target, shown)?,
                (Some(m), Some(ns), None) => {
                    let tree = idmapped_tree(op, source, m, ns)?;
                    sfs::move_mount_onto(&tree, &target, shown)?;
                }
                _ => sfs::mount(
                    Some(source),
                    &p(&target),
                    None,
                    MsFlags::MS_BIND | (op.opts.flags & MsFlags::MS_REC),
                    None,
                    shown,
                )?,
            }
            finish_mount(root, op, remount_part(mount_flags(op)))
        }
        MountKind::Fs { fstype, source } => {
            if fstype == "proc" || fstype == "sysfs" {
                refuse_symlink(root, &op.dest, op)?;
            }
            let covered = match fstype.as_str() {
                "tmpfs" => covered_dir(root, op)?,
                _ => None,
            };
            let target = destination(root, plan, op, Leaf::Dir)?;
            let data = fs_data(op, covered.as_ref());
            let copyup = covered.filter(|_| op.opts.copyup);
            let mut flags = mount_flags(op) & !MsFlags::MS_REMOUNT;
            if copyup.is_some() {
                // Read-only once the copy is in.
                flags &= !MsFlags::MS_RDONLY;
            }
            let mounted = sfs::mount(
                Some(Path::new(source)),
                &p(&target),
                Some(fstype),
                flags,
                (!data.is_empty()).then_some(data.as_str()),
                shown,
            );
            // A sysfs belongs to a network namespace: without one of its own, a rootless
            // container may not mount it (EPERM). As runc, bind the host's /sys instead
            // (recursive, then the mount's own flags: read-only, nosuid, ...).
            if fstype == "sysfs"
                && mounted.as_ref().err().and_then(|e| e.errno()) == Some(Errno::EPERM)
            {
                rbind(Path::new("/sys"), &p(&target), shown)?;
                return finish_mount(root, op, remount_part(flags));
            }
            mounted.map_err(|e| match e.errno() {
                Some(Errno::ENODEV) => Error::config(
                    field(op, "type"),
                    format!("unknown filesystem type {fstype:?}"),
                ),
                Some(Errno::EINVAL) if !op.opts.data.is_empty() => Error::config(
                    field(op, "options"),
                    format!("{fstype} refused {:?}: {e}", op.opts.data),
                ),
                _ => e,
            })?;
            if let Some(covered) = copyup {
                copy_up(root, op, &covered)?;
            }
            finish_mount(root, op, MsFlags::empty())
        }
        MountKind::Cgroup => mount_cgroup(root, plan, op),
    }
}

/// The directory a tmpfs is about to cover, if there is one: its mode is the tmpfs's
/// unless the options say otherwise, and `tmpcopyup` copies its content.
struct Covered {
    dir: OwnedFd,
    mode: u32,
}

fn covered_dir(root: &OwnedFd, op: &MountOp) -> Result<Option<Covered>> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    let dir = match sfs::open_in_root(root, &op.dest, flags, 0) {
        Ok(dir) => dir,
        Err(e) if matches!(e.errno(), Some(Errno::ENOENT | Errno::ENOTDIR)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mode = sfs::fstat(&dir, &op.dest)?.st_mode & 0o7777;
    Ok(Some(Covered { dir, mode }))
}

/// The filesystem data: for a tmpfs over an existing directory, that directory's mode
/// first (a `mode=` of the options comes later and wins), as runc does.
fn fs_data(op: &MountOp, covered: Option<&Covered>) -> String {
    match (covered, op.opts.data.as_str()) {
        (Some(c), "") => format!("mode={:04o}", c.mode),
        (Some(c), data) => format!("mode={:04o},{data}", c.mode),
        (None, data) => data.to_string(),
    }
}

/// `tmpcopyup`: the covered directory's content into the tmpfs just mounted over it,
/// which is then made read-only if the mount asks for it.
fn copy_up(root: &OwnedFd, op: &MountOp, covered: &Covered) -> Result<()> {
    let read = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let from = sfs::openat(&covered.dir, Path::new("."), read, 0, &op.dest)?;
    let fresh = sfs::open_in_root(root, &op.dest, read, 0)?;
    super::copyup::copy_tree(&from, &fresh, &op.dest)?;
    let own = mount_flags(op);
    if own.contains(MsFlags::MS_RDONLY) {
        let flags = MsFlags::MS_REMOUNT | own;
        sfs::mount(None, &p(&fresh), None, flags, None, &op.dest)?;
    }
    Ok(())
}

/// A detached copy of `source` (with its submounts for an `rbind`), id-mapped with the
/// user namespace `userns` (its submounts too for `ridmap`), to be moved onto the bind's
/// target. A filesystem the kernel cannot id-map (EINVAL) is named as such, as runc
/// does.
pub fn idmapped_tree(
    op: &MountOp,
    source: &Path,
    m: &super::IdMap,
    userns: &OwnedFd,
) -> Result<OwnedFd> {
    let named = |e: Error, hint: &str| Error::config(field(op, "source"), format!("{e}{hint}"));
    let tree = sfs::open_tree_clone(source, op.opts.flags.contains(MsFlags::MS_REC))
        .map_err(|e| named(e, ""))?;
    let attr = options::MOUNT_ATTR_IDMAP;
    sfs::mount_setattr(&tree, attr, 0, m.recursive, Some(userns), source).map_err(|e| {
        let hint = match e.errno() {
            Some(Errno::EINVAL) => " (its filesystem cannot be id-mapped on this kernel?)",
            _ => "",
        };
        named(e, hint)
    })?;
    Ok(tree)
}

/// Where a bind is made from, and what it is: the source path, or, where our user
/// namespace cannot reach it (EACCES: a directory only host root may traverse), the fd
/// the parent opened on it in our mount namespace before the namespace applied.
fn bind_source(
    op: &MountOp,
    source: &Path,
    opened: Option<std::os::fd::BorrowedFd>,
) -> Result<(PathBuf, nix::sys::stat::FileStat)> {
    match (sfs::stat(source), opened) {
        (Ok(st), _) => Ok((source.to_path_buf(), st)),
        (Err(e), Some(fd)) if matches!(e.errno(), Some(Errno::EACCES | Errno::EPERM)) => {
            Ok((p(&fd), sfs::fstat(&fd, source)?))
        }
        (Err(e), _) => Err(Error::config(field(op, "source"), e.to_string())),
    }
}

/// A read-only `/dev` is mounted read-write and made read-only in `finalize`, as runc
/// does: the mount points and nodes under it (/dev/pts, /dev/null, ...) come later.
fn read_only_later(op: &MountOp) -> bool {
    op.dest == Path::new("/dev") && op.opts.flags.contains(MsFlags::MS_RDONLY)
}

/// The flags a mount is made with (all of its own but a deferred read-only).
fn mount_flags(op: &MountOp) -> MsFlags {
    if read_only_later(op) {
        op.opts.flags & !MsFlags::MS_RDONLY
    } else {
        op.opts.flags
    }
}

/// The mount's destination inside the root, created if missing. One that resolves to
/// the root itself (an image symlink `/data -> /`) is refused, as runc does: a mount
/// there would replace the container's whole root.
/// A destination at or under `/proc` must pass runc's rule (`proc_destination`), both as
/// written and as resolved.
fn destination(root: &OwnedFd, plan: &RootfsPlan, op: &MountOp, leaf: Leaf) -> Result<OwnedFd> {
    proc_destination(op, &op.dest)?;
    let target = sfs::mkdir_in_root(root, &op.dest, leaf, 0o755)?;
    if sfs::same_place(&target, root, &op.dest)? {
        return Err(super::over_root(op.index, &op.dest));
    }
    let real = sfs::read_link(&p(&target), &op.dest)?;
    if let Ok(inside) = real.strip_prefix(&plan.root) {
        proc_destination(op, &Path::new("/").join(inside))?;
    }
    Ok(target)
}

/// The files lxcfs emulates: the only mounts runc accepts under `/proc`.
const PROC_FILES_MOUNTABLE: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
];

/// runc's rule for a mount whose destination is `at` (inside the container): on `/proc`
/// itself only a procfs (fresh, or a bind of one), under it only the files lxcfs
/// emulates. Anything else there would cover files the runtime and the kernel's masks
/// rely on: another procfs file over a sysctl, a directory over /proc/<pid>/fd through
/// which masks are mounted (CVE-2025-52881 and relatives).
fn proc_destination(op: &MountOp, at: &Path) -> Result<()> {
    if !at.starts_with("/proc") {
        return Ok(());
    }
    let refuse = |msg: String| {
        Err(Error::config(
            format!("{} {:?}", field(op, "destination"), op.dest),
            msg,
        ))
    };
    if at != Path::new("/proc") {
        if PROC_FILES_MOUNTABLE.iter().any(|f| Path::new(f) == at) {
            return Ok(());
        }
        return refuse(format!(
            "{} is inside /proc, where only {} can be mounted",
            at.display(),
            PROC_FILES_MOUNTABLE.join(", ")
        ));
    }
    let procfs = match &op.kind {
        MountKind::Fs { fstype, .. } => fstype == "proc",
        MountKind::Bind { source } => {
            let fd = sfs::open(source, OFlag::O_PATH)
                .map_err(|e| Error::config(field(op, "source"), e.to_string()))?;
            sfs::fs_type(&fd, source)? == crate::sys::procfs::PROC_SUPER_MAGIC
        }
        MountKind::Cgroup => false,
    };
    if procfs {
        return Ok(());
    }
    refuse("only a procfs can be mounted on /proc".into())
}

/// What is left once the mount is in place: a bind's own flags (a remount), recursive
/// attributes, propagation. They act on the new mount, so its destination is resolved
/// again, but only when there is something to do.
fn finish_mount(root: &OwnedFd, op: &MountOp, remount: MsFlags) -> Result<()> {
    if remount.is_empty()
        && op.opts.rec_set | op.opts.rec_clr == 0
        && op.opts.propagation.is_empty()
    {
        return Ok(());
    }
    let mounted = sfs::open_in_root(root, &op.dest, OFlag::O_PATH, 0)?;
    if !remount.is_empty() {
        remount_bind(&p(&mounted), remount, &op.dest)?;
    }
    recursive_attrs(&mounted, op)?;
    propagate(&mounted, op)
}

/// CVE-2019-16884 and relatives: `/proc` or `/sys` that is a symlink in the image is refused.
fn refuse_symlink(root: &OwnedFd, dest: &Path, op: &MountOp) -> Result<()> {
    match sfs::open_in_root(root, dest, OFlag::O_PATH | OFlag::O_NOFOLLOW, 0) {
        Ok(fd) => {
            let st = sfs::fstat(&fd, dest)?;
            if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK {
                return Err(Error::config(
                    field(op, "destination"),
                    format!("{} is a symlink in the rootfs", dest.display()),
                ));
            }
            Ok(())
        }
        Err(e) if e.errno() == Some(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `rro`, `rnosuid`, ...: mount_setattr with AT_RECURSIVE on the new mount.
fn recursive_attrs(mounted: &OwnedFd, op: &MountOp) -> Result<()> {
    if op.opts.rec_set | op.opts.rec_clr == 0 {
        return Ok(());
    }
    sfs::mount_setattr(
        mounted,
        op.opts.rec_set,
        op.opts.rec_clr,
        true,
        None,
        &op.dest,
    )
}

fn propagate(mounted: &OwnedFd, op: &MountOp) -> Result<()> {
    for flag in &op.opts.propagation {
        sfs::mount(None, &p(mounted), None, *flag, None, &op.dest)?;
    }
    Ok(())
}

/// The cgroup filesystem: cgroup2 on a v2 host; on v1/hybrid a tmpfs with one directory
/// per hierarchy (a fresh cgroup mount inside a cgroup namespace, else a bind of the
/// container's own cgroup). Read-only unless the mount asks otherwise (CVE-2023-25809).
fn mount_cgroup(root: &OwnedFd, plan: &RootfsPlan, op: &MountOp) -> Result<()> {
    let shown = &op.dest;
    let flags = op.opts.flags & !MsFlags::MS_REMOUNT;
    let target = destination(root, plan, op, Leaf::Dir)?;
    if plan.cgroup.mode == Mode::V2 {
        if plan.cgroup_ns {
            let mounted = sfs::mount(
                Some(Path::new("cgroup2")),
                &p(&target),
                Some("cgroup2"),
                flags,
                None,
                shown,
            );
            // In a user namespace a cgroup2 mount may be refused: EPERM, or EBUSY when
            // the namespace's root is the cgroup mounted there already (a rootless
            // container without a cgroup of its own). As runc, bind the cgroup instead.
            match mounted.as_ref().err().and_then(|e| e.errno()) {
                Some(Errno::EPERM | Errno::EBUSY) => {}
                _ => return mounted,
            }
        }
        // The container's cgroup; with none (rootless), the hierarchy, read-only by
        // the mount's flags, as runc binds it.
        let dir = match plan.cgroup.dirs.first() {
            Some(d) => d.path.as_path(),
            None => Path::new("/sys/fs/cgroup"),
        };
        rbind(dir, &p(&target), shown)?;
        let mounted = sfs::open_in_root(root, &op.dest, OFlag::O_PATH, 0)?;
        return remount_bind(&p(&mounted), remount_part(flags), shown);
    }
    sfs::mount(
        Some(Path::new("tmpfs")),
        &p(&target),
        Some("tmpfs"),
        flags & !MsFlags::MS_RDONLY,
        Some("mode=755"),
        shown,
    )?;
    for d in plan
        .cgroup
        .dirs
        .iter()
        .filter(|d| !d.controllers.is_empty())
    {
        let name = d.mountpoint.file_name().unwrap_or_default();
        let dest = op.dest.join(name);
        let sub = sfs::mkdir_in_root(root, &dest, Leaf::Dir, 0o755)?;
        if plan.cgroup_ns {
            sfs::mount(
                Some(Path::new("cgroup")),
                &p(&sub),
                Some("cgroup"),
                flags,
                Some(&d.controllers),
                &dest,
            )?;
        } else {
            sfs::mount(Some(&d.path), &p(&sub), None, MsFlags::MS_BIND, None, &dest)?;
            let mounted = sfs::open_in_root(root, &dest, OFlag::O_PATH, 0)?;
            remount_bind(&p(&mounted), remount_part(flags), &dest)?;
        }
        let name = name.to_string_lossy();
        if name.contains(',') {
            let dir = sfs::open_in_root(root, &op.dest, OFlag::O_DIRECTORY | OFlag::O_RDONLY, 0)?;
            for c in name.split(',') {
                let target = Path::new(name.as_ref() as &str);
                match sfs::symlinkat(target, &dir, Path::new(c), &op.dest.join(c)) {
                    Err(e) if e.errno() != Some(Errno::EEXIST) => return Err(e),
                    _ => {}
                }
            }
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let mounted = sfs::open_in_root(root, &op.dest, OFlag::O_PATH, 0)?;
        sfs::mount(
            None,
            &p(&mounted),
            None,
            MsFlags::MS_REMOUNT | flags,
            Some("mode=755"),
            shown,
        )?;
    }
    Ok(())
}

/// Default devices, `linux.devices`, /dev symlinks.
/// `sources` holds the host nodes the parent opened for us, by index in `linux.devices`.
pub fn devices(root: &OwnedFd, plan: &RootfsPlan, sources: &[(usize, OwnedFd)]) -> Result<()> {
    if plan.setup_dev {
        for d in devices::defaults() {
            devices::create(root, &d, plan.bind_devices, None)?;
        }
    }
    for (i, d) in plan.devices.iter().enumerate() {
        let opened = by_index(sources, i).map(|fd| fd.as_fd());
        devices::create(root, d, plan.bind_devices, opened)?;
    }
    if plan.setup_dev {
        devices::symlinks(root)?;
    }
    Ok(())
}

/// Make the process cwd exist inside the root.
pub fn create_cwd(root: &OwnedFd, cwd: &Path) -> Result<()> {
    sfs::mkdir_in_root(root, cwd, Leaf::Dir, 0o755).map(drop)
}

/// pivot_root into the rootfs and detach the old root (runc's fd-based sequence, which
/// needs no directory for the old root inside the container).
pub fn pivot(plan: &RootfsPlan) -> Result<()> {
    let old = sfs::open(Path::new("/"), OFlag::O_DIRECTORY | OFlag::O_RDONLY)?;
    let new = sfs::open(&plan.root, OFlag::O_DIRECTORY | OFlag::O_RDONLY)?;
    sfs::fchdir(&new, &plan.root)?;
    sfs::pivot_root(Path::new("."), Path::new("."))?;
    sfs::fchdir(&old, Path::new("/"))?;
    make_rslave(Path::new("."), Path::new("old root"))?;
    sfs::umount(Path::new("."), MntFlags::MNT_DETACH)?;
    sfs::chdir(Path::new("/"))
}

/// Make the mount at `path` and all below it slaves: nothing done to them reaches their
/// peers (the host's mounts) any more.
fn make_rslave(path: &Path, shown: &Path) -> Result<()> {
    sfs::mount(
        None,
        path,
        None,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None,
        shown,
    )
}

/// `--no-pivot`: move the rootfs over / and chroot (for roots on a ramdisk). Unlike
/// pivot_root, this leaves the host's mounts in the container's mount namespace, under
/// the new root; a full procfs or sysfs among them would let a nested user namespace
/// mount a fresh, unmasked one (the kernel allows it when one fully visible instance
/// exists). So, as runc does, each is detached first, or covered with an empty
/// read-only tmpfs where it cannot be.
pub fn move_root(plan: &RootfsPlan) -> Result<()> {
    // Unmounts and the move propagate through the peers of the mount they happen under:
    // with `rootfsPropagation: rshared` (a shared `/`), unmounting `/proc` here would
    // unmount the host's and the move would stack the rootfs on the host's `/` (runc
    // #1961). The old tree is hidden below the new root from here on; the new root gets
    // the propagation asked for in `finalize`.
    make_rslave(Path::new("/"), Path::new("/"))?;
    let mountinfo = sfs::read_pseudo("/proc/self/mountinfo").op("read", "/proc/self/mountinfo")?;
    for m in revealing_mounts(&mountinfo, &plan.root) {
        match sfs::umount(&m, MntFlags::MNT_DETACH) {
            // Gone with a mount detached before it.
            Err(e) if e.errno() == Some(Errno::ENOENT) => continue,
            Err(e) if matches!(e.errno(), Some(Errno::EINVAL | Errno::EPERM)) => sfs::mount(
                Some(Path::new("tmpfs")),
                &m,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None,
                &m,
            )?,
            r => r?,
        }
    }
    sfs::chdir(&plan.root)?;
    sfs::mount(
        Some(&plan.root),
        Path::new("/"),
        None,
        MsFlags::MS_MOVE,
        None,
        Path::new("/"),
    )?;
    sfs::chroot(Path::new("."))?;
    sfs::chdir(Path::new("/"))
}

/// The mount points of full procfs and sysfs mounts outside `root`, from a mountinfo
/// text.
fn revealing_mounts(mountinfo: &str, root: &Path) -> Vec<PathBuf> {
    use crate::cgroups::hierarchy::unescape;
    mountinfo
        .lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let fstype = post.split(' ').next()?;
            let (mnt_root, point) = (pre.get(3)?, PathBuf::from(unescape(pre.get(4)?)));
            let full = *mnt_root == "/" && (fstype == "proc" || fstype == "sysfs");
            (full && !point.starts_with(root)).then_some(point)
        })
        .collect()
}

/// After pivot: read-only and masked paths, a read-only /dev and root, the final
/// propagation.
pub fn finalize(plan: &RootfsPlan) -> Result<()> {
    for path in &plan.readonly_paths {
        match rbind(path, path, path) {
            Err(e) if e.errno() == Some(Errno::ENOENT) => continue,
            r => r?,
        }
        make_read_only(path)?;
    }
    if !plan.masked_paths.is_empty() {
        mask(&plan.masked_paths)?;
    }
    if plan.mounts.iter().any(read_only_later) {
        make_read_only(Path::new("/dev"))?;
    }
    if plan.readonly {
        make_read_only(Path::new("/"))?;
    }
    if let Some(f) = plan.final_propagation {
        sfs::mount(None, Path::new("/"), None, f, None, Path::new("/"))?;
    }
    Ok(())
}

/// Mask files with a verified /dev/null (CVE-2025-31133) and directories with an empty
/// read-only tmpfs.
fn mask(paths: &[PathBuf]) -> Result<()> {
    let null = sfs::open(Path::new("/dev/null"), OFlag::O_PATH | OFlag::O_NOFOLLOW)?;
    let st = sfs::fstat(&null, Path::new("/dev/null"))?;
    let is_null = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR
        && st.st_rdev == sfs::makedev(1, 3);
    if !is_null {
        return Err(Error::container(
            "/dev/null in the container is not the 1:3 character device: refusing to mask with it",
        ));
    }
    let null_path = p(&null);
    for path in paths {
        let fd = match sfs::open(path, OFlag::O_PATH | OFlag::O_NOFOLLOW) {
            Ok(fd) => fd,
            Err(e) if e.errno() == Some(Errno::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        let st = sfs::fstat(&fd, path)?;
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFDIR {
            sfs::mount(
                Some(Path::new("tmpfs")),
                &p(&fd),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None,
                path,
            )?;
        } else if kind != SFlag::S_IFLNK {
            sfs::mount(
                Some(&null_path),
                &p(&fd),
                None,
                MsFlags::MS_BIND,
                None,
                path,
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_under_is_the_longest_topmost_prefix() {
        let mi = "\
27 1 254:0 / / rw shared:1 - ext4 /dev/vda rw
45 27 0:40 / /tmp/b rw - tmpfs t rw
46 27 0:41 / /tmp/b rw shared:7 master:2 - tmpfs t rw
47 27 0:42 / /tmp/bb rw - tmpfs t rw
";
        assert_eq!(
            mount_under(mi, Path::new("/tmp/b/rootfs")),
            Some((PathBuf::from("/tmp/b"), true))
        );
        assert_eq!(
            mount_under(mi, Path::new("/tmp/c")),
            Some((PathBuf::from("/"), true))
        );
        assert_eq!(
            mount_under(&mi.replace("shared:1 ", ""), Path::new("/x")),
            Some((PathBuf::from("/"), false))
        );
    }

    #[test]
    fn revealing_mounts_are_full_proc_and_sysfs_outside_the_root() {
        let mi = "\
22 1 0:5 / /proc rw - proc proc rw
23 22 0:30 / /proc/sys/fs/binfmt_misc rw - autofs systemd-1 rw
24 1 0:21 / /sys rw - sysfs sysfs rw
25 1 0:5 /sys /mnt/procsys rw - proc proc rw
26 1 0:40 / /run/c/rootfs/proc rw - proc proc rw
27 1 0:41 / /run/c/rootfs2/proc rw - proc proc rw
28 1 0:42 / /my\\040dir rw - sysfs sysfs rw
29 1 0:43 / /tmp rw - tmpfs tmpfs rw
";
        assert_eq!(
            revealing_mounts(mi, Path::new("/run/c/rootfs")),
            vec![
                PathBuf::from("/proc"),
                PathBuf::from("/sys"),
                PathBuf::from("/run/c/rootfs2/proc"),
                PathBuf::from("/my dir"),
            ]
        );
    }
}

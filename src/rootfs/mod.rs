//! The container's root filesystem: the planned mount operations (built in the parent)
//! and the steps the child runs to build the tree and pivot into it.

pub mod copyup;
pub mod devices;
pub mod options;
pub mod setup;

use crate::cgroups::Cgroup;
use crate::error::{Error, Result};
use crate::namespaces::{id_map_text, IdMapping};
use nix::mount::MsFlags;
use oci_spec::runtime::Spec;
use options::MountOptions;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A bind (or rbind) of a host path.
    Bind { source: PathBuf },
    /// A fresh filesystem mount (`proc`, `tmpfs`, `sysfs`, ...).
    Fs { fstype: String, source: String },
    /// The cgroup filesystem at its destination, as the host's hierarchies allow.
    Cgroup,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOp {
    /// Index in `mounts[]`, for errors.
    pub index: usize,
    /// Absolute path inside the container.
    pub dest: PathBuf,
    pub kind: MountKind,
    pub opts: MountOptions,
    /// An id-mapped bind (`uidMappings`/`gidMappings`, or `idmap`/`ridmap` alone in a
    /// container with a user namespace).
    pub idmap: Option<IdMap>,
}

/// How a bind is id-mapped. As runc: an `rbind` brings its submounts along, but only
/// `ridmap` maps them too; `idmap`, or mappings without either option, map the top
/// mount only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMap {
    pub users: IdMapUsers,
    /// `ridmap`: every mount of the tree is mapped, not only its top.
    pub recursive: bool,
}

/// The user namespace whose mapping an id-mapped bind takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdMapUsers {
    /// One the runtime makes with this uid_map and gid_map text: the mount's own
    /// mappings, or those of the user namespace the container gets.
    Maps { uid_map: String, gid_map: String },
    /// The user namespace the container joins (`idmap`/`ridmap` without mappings).
    Joined(PathBuf),
}

#[derive(Debug, Clone)]
pub struct RootfsPlan {
    /// Host path of the root filesystem (absolute).
    pub root: PathBuf,
    pub readonly: bool,
    /// Propagation set on `/` before any mount (runc's default: rslave).
    pub root_propagation: MsFlags,
    /// `linux.rootfsPropagation`, re-applied on the new root after pivot.
    pub final_propagation: Option<MsFlags>,
    pub mounts: Vec<MountOp>,
    /// Create the default devices and /dev symlinks (false when /dev is a bind).
    pub setup_dev: bool,
    pub devices: Vec<devices::DevicePlan>,
    pub masked_paths: Vec<PathBuf>,
    pub readonly_paths: Vec<PathBuf>,
    pub no_pivot: bool,
    /// No mount namespace (new or joined): the container shares the runtime's, its
    /// mounts are made there and undone by `delete`, and it is chrooted, not pivoted.
    pub host_mount_ns: bool,
    /// Bind host device nodes instead of mknod (inside a user namespace).
    pub bind_devices: bool,
    pub cgroup: Cgroup,
    pub cgroup_ns: bool,
    /// process.cwd, created inside the root if missing.
    pub cwd: PathBuf,
}

/// The mounts a container without a mount namespace of its own makes in the runtime's:
/// the rootfs bound onto itself, and everything under that bind. Recorded in the state
/// before the bind exists with the number of mounts already stacked on the rootfs path
/// (`below`), so `undo` detaches only what the container added, whenever it runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostMounts {
    pub path: PathBuf,
    pub below: usize,
}

impl HostMounts {
    /// The record for a rootfs at `root`, taken before the container mounts anything.
    pub fn before(root: &Path) -> Result<HostMounts> {
        Ok(HostMounts {
            path: root.to_path_buf(),
            below: stacked_at(&read_mountinfo()?, root),
        })
    }

    /// Detach (recursively, lazily) every mount the container stacked on the rootfs.
    pub fn undo(&self) -> Result<()> {
        while stacked_at(&read_mountinfo()?, &self.path) > self.below {
            crate::sys::fs::umount(&self.path, nix::mount::MntFlags::MNT_DETACH)?;
        }
        Ok(())
    }
}

fn read_mountinfo() -> Result<String> {
    use crate::error::SysContext;
    crate::sys::fs::read_pseudo("/proc/self/mountinfo").op("read", "/proc/self/mountinfo")
}

/// How many mounts have `path` as their mount point, from a mountinfo text.
pub fn stacked_at(mountinfo: &str, path: &Path) -> usize {
    use crate::cgroups::hierarchy::unescape;
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(&unescape(p)) == path)
        .count()
}

/// The mapping of the container's user namespace, which an `idmap`/`ridmap` bind
/// without mappings of its own takes (runc's "implied mapping"): the one it joins, or
/// the one `linux.uidMappings`/`gidMappings` give the one it gets. None without a user
/// namespace.
fn container_users(spec: &Spec) -> Option<IdMapUsers> {
    let linux = spec.linux().as_ref()?;
    let userns = linux
        .namespaces()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)?;
    if let Some(path) = userns.path() {
        return Some(IdMapUsers::Joined(path.clone()));
    }
    let uids = linux.uid_mappings().as_deref().unwrap_or_default();
    let gids = linux.gid_mappings().as_deref().unwrap_or_default();
    (!uids.is_empty() && !gids.is_empty()).then(|| IdMapUsers::Maps {
        uid_map: id_map_text(&IdMapping::list(uids)),
        gid_map: id_map_text(&IdMapping::list(gids)),
    })
}

/// Build the mount list from the spec (pure: nothing is opened).
pub fn plan_mounts(spec: &Spec, bundle: &Path) -> Result<Vec<MountOp>> {
    let mut out = Vec::new();
    let container_users = container_users(spec);
    for (i, m) in spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if !m.destination().is_absolute() {
            return Err(Error::config(
                format!("mounts[{i}].destination"),
                format!("{:?} is not an absolute path", m.destination()),
            ));
        }
        if clean(m.destination()) == Path::new("/") {
            return Err(over_root(i, m.destination()));
        }
        let mut opts = options::parse(m.options().as_deref().unwrap_or_default())
            .map_err(|msg| Error::config(format!("mounts[{i}].options"), msg))?;
        let kind = mount_kind(i, m, &opts, bundle)?;
        if matches!(kind, MountKind::Bind { .. }) {
            opts.flags |= MsFlags::MS_BIND;
        }
        let idmap = id_map(i, m, &opts, &kind, &container_users)?;
        out.push(MountOp {
            index: i,
            dest: clean(m.destination()),
            kind,
            opts,
            idmap,
        });
    }
    Ok(out)
}

/// What `mounts[i]` mounts: a bind (by its type or its options; a relative source is
/// the bundle's), the cgroup filesystem, or another filesystem (its type as the source
/// when it has none).
fn mount_kind(
    i: usize,
    m: &oci_spec::runtime::Mount,
    opts: &MountOptions,
    bundle: &Path,
) -> Result<MountKind> {
    let fstype = m.typ().clone().unwrap_or_default();
    let source = m.source().clone().unwrap_or_default();
    if fstype == "bind" || opts.is_bind() {
        if source.as_os_str().is_empty() {
            return Err(Error::config(
                format!("mounts[{i}].source"),
                "a bind mount needs a source",
            ));
        }
        return Ok(MountKind::Bind {
            source: if source.is_absolute() {
                source
            } else {
                bundle.join(source)
            },
        });
    }
    if fstype == "cgroup" || fstype == "cgroup2" {
        return Ok(MountKind::Cgroup);
    }
    if fstype.is_empty() {
        return Err(Error::config(format!("mounts[{i}].type"), "missing"));
    }
    Ok(MountKind::Fs {
        source: if source.as_os_str().is_empty() {
            fstype.clone()
        } else {
            source.display().to_string()
        },
        fstype,
    })
}

/// The id mapping of `mounts[i]`, when it has one (`idmap`/`ridmap`, or uidMappings and
/// gidMappings): its own maps, else the container's user namespace's
/// (`container_users`); only a bind can have one, the whole tree with `ridmap`.
fn id_map(
    i: usize,
    m: &oci_spec::runtime::Mount,
    opts: &MountOptions,
    kind: &MountKind,
    container_users: &Option<IdMapUsers>,
) -> Result<Option<IdMap>> {
    let uids = m.uid_mappings().clone().unwrap_or_default();
    let gids = m.gid_mappings().clone().unwrap_or_default();
    let users = if uids.is_empty() && gids.is_empty() {
        match (opts.idmap, container_users) {
            (None, _) => None,
            (Some(_), Some(users)) => Some(users.clone()),
            (Some(_), None) => {
                return Err(Error::config(
                    format!("mounts[{i}].uidMappings"),
                    "idmap needs uidMappings and gidMappings, or a user namespace whose mapping it takes",
                ))
            }
        }
    } else {
        if uids.is_empty() || gids.is_empty() {
            return Err(Error::config(
                format!("mounts[{i}].uidMappings"),
                "both uidMappings and gidMappings are needed",
            ));
        }
        Some(IdMapUsers::Maps {
            uid_map: id_map_text(&IdMapping::list(&uids)),
            gid_map: id_map_text(&IdMapping::list(&gids)),
        })
    };
    if users.is_some() && !matches!(kind, MountKind::Bind { .. }) {
        return Err(Error::config(
            format!("mounts[{i}].uidMappings"),
            "id-mapped mounts must be bind mounts",
        ));
    }
    Ok(users.map(|users| IdMap {
        users,
        recursive: opts.idmap == Some(true),
    }))
}

/// The propagation set on `/` before any mount, for a `linux.rootfsPropagation` applied
/// on the new root after pivot. As runc: `shared`/`rshared` as given, so the container's
/// copies of the host's shared mounts stay in the host's peer groups and a bind of one
/// (`rshared`, `rslave`) propagates as asked (the rootfs's parent mount is made private
/// in `setup::prepare`, so nothing mounted in the rootfs reaches the host); the rootfs
/// must stay bindable onto itself (so `unbindable` starts private); runc's default is
/// rslave.
pub fn initial_propagation(rootfs_propagation: Option<MsFlags>) -> MsFlags {
    match rootfs_propagation {
        Some(f) if f.contains(MsFlags::MS_SHARED) => f,
        Some(f) if f.contains(MsFlags::MS_UNBINDABLE) => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        Some(f) => f | MsFlags::MS_REC,
        None => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    }
}

/// A mount destination that is the container's root itself (`/`, `/..`, or a symlink to
/// `/` in the image): runc refuses it ("on the top of rootfs"), and so does rsrun.
pub fn over_root(index: usize, dest: &Path) -> Error {
    Error::config(
        format!("mounts[{index}].destination {dest:?}"),
        "resolves to the container's root: refusing to mount over it",
    )
}

/// Lexically clean an absolute path (`/a/./b/../c` → `/a/c`, never above `/`).
pub fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_mounts() {
        let spec = crate::spec::parse(
            crate::spec::default::DEFAULT_SPEC.as_bytes(),
            Path::new("config.json"),
        )
        .unwrap();
        let ops = plan_mounts(&spec, Path::new("/b")).unwrap();
        assert_eq!(ops[0].dest, PathBuf::from("/proc"));
        assert!(matches!(&ops[0].kind, MountKind::Fs { fstype, .. } if fstype == "proc"));
        assert!(ops.iter().any(|o| o.kind == MountKind::Cgroup));
    }

    #[test]
    fn relative_bind_source_is_in_bundle() {
        let spec = crate::spec::parse(
            br#"{"ociVersion":"1.0.0","mounts":[{"destination":"/d","type":"none","source":"data","options":["rbind","ro"]}]}"#,
            Path::new("config.json"),
        )
        .unwrap();
        let ops = plan_mounts(&spec, Path::new("/b")).unwrap();
        assert_eq!(
            ops[0].kind,
            MountKind::Bind {
                source: "/b/data".into()
            }
        );
        assert!(ops[0]
            .opts
            .flags
            .contains(MsFlags::MS_RDONLY | MsFlags::MS_REC));
    }

    fn idmap_of(mount: &str, linux: &str) -> Result<Option<IdMap>> {
        let spec = crate::spec::parse(
            format!(r#"{{"ociVersion":"1.0.0","mounts":[{mount}],"linux":{{{linux}}}}}"#)
                .as_bytes(),
            Path::new("config.json"),
        )
        .unwrap();
        plan_mounts(&spec, Path::new("/b")).map(|ops| ops[0].idmap.clone())
    }

    const MAPS: &str = r#""uidMappings":[{"containerID":0,"hostID":1000,"size":10}],"gidMappings":[{"containerID":0,"hostID":2000,"size":10}]"#;

    #[test]
    fn only_ridmap_maps_the_submounts_of_an_rbind() {
        for (options, recursive) in [
            (r#"["rbind"]"#, false),
            (r#"["rbind","idmap"]"#, false),
            (r#"["rbind","ridmap"]"#, true),
        ] {
            let m = format!(r#"{{"destination":"/d","source":"/s","options":{options},{MAPS}}}"#);
            let idmap = idmap_of(&m, "").unwrap().unwrap();
            assert_eq!(idmap.recursive, recursive, "{options}");
            assert_eq!(
                idmap.users,
                IdMapUsers::Maps {
                    uid_map: "0 1000 10\n".into(),
                    gid_map: "0 2000 10\n".into()
                }
            );
        }
    }

    #[test]
    fn idmap_without_mappings_takes_the_containers_user_namespace() {
        let m = r#"{"destination":"/d","source":"/s","options":["bind","idmap"]}"#;
        let new = format!(r#""namespaces":[{{"type":"user"}},{{"type":"mount"}}],{MAPS}"#);
        assert_eq!(
            idmap_of(m, &new).unwrap().unwrap().users,
            IdMapUsers::Maps {
                uid_map: "0 1000 10\n".into(),
                gid_map: "0 2000 10\n".into()
            }
        );
        let joined = r#""namespaces":[{"type":"user","path":"/proc/7/ns/user"},{"type":"mount"}]"#;
        assert_eq!(
            idmap_of(m, joined).unwrap().unwrap().users,
            IdMapUsers::Joined("/proc/7/ns/user".into())
        );
        let e = idmap_of(m, r#""namespaces":[{"type":"mount"}]"#).unwrap_err();
        assert!(e.to_string().starts_with("mounts[0].uidMappings"), "{e}");
        let plain = r#"{"destination":"/d","source":"/s","options":["bind"]}"#;
        assert_eq!(idmap_of(plain, &new).unwrap(), None);
    }

    #[test]
    fn a_destination_at_the_root_is_refused() {
        for d in ["/", "/.", "/..", "//", "/a/.."] {
            let spec = crate::spec::parse(
                format!(r#"{{"ociVersion":"1.0.0","mounts":[{{"destination":"/ok","type":"tmpfs"}},{{"destination":"{d}","type":"tmpfs"}}]}}"#).as_bytes(),
                Path::new("config.json"),
            )
            .unwrap();
            let e = plan_mounts(&spec, Path::new("/b")).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("mounts[1].destination {d:?}: ")),
                "{e}"
            );
        }
    }

    #[test]
    fn initial_propagation_is_runcs_and_keeps_the_root_bindable() {
        let rec = MsFlags::MS_REC;
        for (p, want) in [
            (None, MsFlags::MS_SLAVE | rec),
            (Some("rslave"), MsFlags::MS_SLAVE | rec),
            (Some("private"), MsFlags::MS_PRIVATE | rec),
            (Some("shared"), MsFlags::MS_SHARED),
            (Some("rshared"), MsFlags::MS_SHARED | rec),
            (Some("unbindable"), MsFlags::MS_PRIVATE | rec),
            (Some("runbindable"), MsFlags::MS_PRIVATE | rec),
        ] {
            let f = p.map(|p| options::propagation(p).unwrap());
            assert_eq!(initial_propagation(f), want, "{p:?}");
        }
    }

    #[test]
    fn clean_never_leaves_root() {
        assert_eq!(clean(Path::new("/a/../../etc")), PathBuf::from("/etc"));
        assert_eq!(clean(Path::new("/a/./b")), PathBuf::from("/a/b"));
    }
}

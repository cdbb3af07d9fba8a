//! Namespaces: which are created by clone3, which the parent or the child joins by path
//! and in what order, and the uid/gid map text written for a new user namespace.

pub mod idmap;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespace, LinuxNamespaceType as T};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// The clone flag for each namespace type.
pub fn flag(t: T) -> CloneFlags {
    match t {
        T::Mount => CloneFlags::CLONE_NEWNS,
        T::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        T::Uts => CloneFlags::CLONE_NEWUTS,
        T::Ipc => CloneFlags::CLONE_NEWIPC,
        T::User => CloneFlags::CLONE_NEWUSER,
        T::Pid => CloneFlags::CLONE_NEWPID,
        T::Network => CloneFlags::CLONE_NEWNET,
        T::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The name under /proc/<pid>/ns/.
pub fn proc_name(t: T) -> &'static str {
    match t {
        T::Mount => "mnt",
        T::Cgroup => "cgroup",
        T::Uts => "uts",
        T::Ipc => "ipc",
        T::User => "user",
        T::Pid => "pid",
        T::Network => "net",
        T::Time => "time",
    }
}

/// The order in which the child joins namespaces by path: the user namespace first, so
/// the others are joined with its privileges; the mount namespace last, so the paths of
/// the others are still reachable.
const CHILD_JOIN_ORDER: [T; 6] = [T::User, T::Cgroup, T::Ipc, T::Uts, T::Network, T::Mount];

/// How each namespace of the spec comes to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespacePlan {
    /// Created by clone3 itself (user, pid, mount, uts, ipc, net).
    pub clone_flags: CloneFlags,
    /// Unshared by the child once the parent has placed it in its cgroup, so the
    /// namespace's root is the container's cgroup.
    pub new_cgroup: bool,
    /// A new time namespace. Without a new user namespace the parent unshares it before
    /// clone3, with the offsets written, so the child is born in it (a time namespace
    /// cannot get offsets once a process is inside). With one, the init makes it (see
    /// `time_made_by_init`).
    pub new_time: bool,
    pub new_user: bool,
    /// pid and time namespaces joined by the parent before clone3 (they apply to
    /// children only).
    pub join_in_parent: Vec<(T, PathBuf)>,
    /// The others, joined by the child in `CHILD_JOIN_ORDER`.
    pub join_in_child: Vec<(T, PathBuf)>,
    /// A user namespace joined by path while new namespaces are made: it is joined before
    /// the clone (by a short-lived helper process), so that the new namespaces belong to
    /// it and the init holds its capabilities over them. Joined afterwards, they would
    /// belong to the host's user namespace and the init could not mount in its own mount
    /// namespace.
    pub join_user_before_clone: Option<PathBuf>,
    /// Every namespace type the container has, new or joined.
    pub all: Vec<T>,
}

impl NamespacePlan {
    pub fn new(list: &[LinuxNamespace]) -> Self {
        let mut p = NamespacePlan {
            clone_flags: CloneFlags::empty(),
            new_cgroup: false,
            new_time: false,
            new_user: false,
            join_in_parent: Vec::new(),
            join_in_child: Vec::new(),
            join_user_before_clone: None,
            all: Vec::new(),
        };
        for ns in list {
            p.all.push(ns.typ());
            match (ns.typ(), ns.path()) {
                (t @ (T::Pid | T::Time), Some(path)) => p.join_in_parent.push((t, path.clone())),
                (t, Some(path)) => p.join_in_child.push((t, path.clone())),
                (T::Cgroup, None) => p.new_cgroup = true,
                (T::Time, None) => p.new_time = true,
                (t, None) => {
                    if t == T::User {
                        p.new_user = true;
                    }
                    p.clone_flags |= flag(t);
                }
            }
        }
        if !p.clone_flags.is_empty() || p.new_time || !p.join_in_parent.is_empty() {
            if let Some(i) = p.join_in_child.iter().position(|(t, _)| *t == T::User) {
                p.join_user_before_clone = Some(p.join_in_child.remove(i).1);
            }
        }
        p.join_in_child
            .sort_by_key(|(t, _)| CHILD_JOIN_ORDER.iter().position(|o| o == t));
        p
    }

    pub fn has(&self, t: T) -> bool {
        self.all.contains(&t)
    }

    /// True when the container has a pid namespace of its own (a new one): its init is
    /// pid 1 there, and SIGKILL to it ends every process in it. Without one (the
    /// runtime's, or another container's joined) the init is no special process.
    pub fn private_pid_ns(&self) -> bool {
        self.clone_flags.contains(CloneFlags::CLONE_NEWPID)
    }

    /// True when the init makes the time namespace itself, from inside the user
    /// namespace clone3 made, so that it belongs to the container's user namespace as
    /// runc's does (made by the parent, it would belong to the runtime's): the init
    /// unshares it at once, the parent writes the offsets, the init enters it.
    pub fn time_made_by_init(&self) -> bool {
        self.new_time && self.new_user
    }

    /// True when the container runs in a user namespace (new or joined).
    pub fn in_user_ns(&self) -> bool {
        self.has(T::User)
    }
}

/// One line of a uid or gid map: `size` ids from `container` up are the host's from
/// `host` up. The plan's form of the spec's `LinuxIdMapping`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMapping {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

impl IdMapping {
    /// The spec's mappings (`linux.uidMappings`, a mount's `uidMappings`, ...).
    pub fn list(maps: &[LinuxIdMapping]) -> Vec<IdMapping> {
        maps.iter()
            .map(|m| IdMapping {
                container: m.container_id(),
                host: m.host_id(),
                size: m.size(),
            })
            .collect()
    }
}

/// `/proc/<pid>/uid_map` text for a list of mappings.
pub fn id_map_text(maps: &[IdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container, m.host, m.size))
        .collect()
}

/// Translate a container id to the host through a mapping (for chown of created files).
pub fn to_host(maps: &[IdMapping], id: u32) -> Option<u32> {
    maps.iter().find_map(|m| {
        (id >= m.container && id - m.container < m.size).then(|| m.host + (id - m.container))
    })
}

/// A namespace to join, opened by the parent before clone.
pub struct Join {
    pub typ: T,
    pub fd: OwnedFd,
    pub path: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxIdMappingBuilder, LinuxNamespaceBuilder};

    fn ns(t: T, path: Option<&str>) -> LinuxNamespace {
        let b = LinuxNamespaceBuilder::default().typ(t);
        match path {
            Some(p) => b.path(p).build().unwrap(),
            None => b.build().unwrap(),
        }
    }

    #[test]
    fn new_and_joined_are_split() {
        let p = NamespacePlan::new(&[
            ns(T::Mount, None),
            ns(T::Network, Some("/run/netns/x")),
            ns(T::Pid, Some("/proc/1/ns/pid")),
            ns(T::Cgroup, None),
            ns(T::User, Some("/proc/2/ns/user")),
            ns(T::Time, None),
        ]);
        assert_eq!(p.clone_flags, CloneFlags::CLONE_NEWNS);
        assert!(p.new_cgroup && p.new_time && !p.new_user && p.in_user_ns());
        assert_eq!(
            p.join_in_parent,
            vec![(T::Pid, PathBuf::from("/proc/1/ns/pid"))]
        );
        // The joined user namespace comes before anything is created, so the new mount
        // and time namespaces belong to it.
        assert_eq!(
            p.join_user_before_clone,
            Some(PathBuf::from("/proc/2/ns/user"))
        );
        assert_eq!(
            p.join_in_child,
            vec![(T::Network, PathBuf::from("/run/netns/x"))]
        );
    }

    #[test]
    fn a_time_namespace_with_a_new_user_namespace_is_made_by_the_init() {
        let with_user = NamespacePlan::new(&[ns(T::User, None), ns(T::Time, None)]);
        assert!(with_user.time_made_by_init());
        let alone = NamespacePlan::new(&[ns(T::Time, None)]);
        assert!(alone.new_time && !alone.time_made_by_init());
        let joined_user =
            NamespacePlan::new(&[ns(T::User, Some("/proc/2/ns/user")), ns(T::Time, None)]);
        assert!(!joined_user.time_made_by_init());
    }

    #[test]
    fn a_user_namespace_joined_alone_is_joined_by_the_child() {
        let p = NamespacePlan::new(&[
            ns(T::Network, Some("/run/netns/x")),
            ns(T::User, Some("/proc/2/ns/user")),
        ]);
        assert!(p.clone_flags.is_empty() && p.join_user_before_clone.is_none());
        assert_eq!(p.join_in_child[0].0, T::User);
        assert_eq!(p.join_in_child[1].0, T::Network);
    }

    #[test]
    fn map_text_and_translation() {
        let m = IdMapping::list(&[LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(100000u32)
            .size(65536u32)
            .build()
            .unwrap()]);
        assert_eq!(id_map_text(&m), "0 100000 65536\n");
        assert_eq!(to_host(&m, 5), Some(100005));
        assert_eq!(to_host(&m, 70000), None);
    }
}

//! The config.json that `rsrun spec` writes: runc's default for a busybox-style rootfs,
//! or with `--rootless` runc's rootless variant of it.

/// runc's default spec (runtime-spec 1.2), with tab indentation as runc writes it.
pub const DEFAULT_SPEC: &str = include_str!("default.json");

/// runc's rootless spec (`runc spec --rootless`): the default with a user namespace
/// mapping the caller's ids to 0 (1000 here, replaced by `rootless_for_host`) and no
/// network namespace, `/sys` bound from the host (a sysfs needs a network namespace of
/// its own), no `gid=`/`uid=` mount options (those ids are not mapped) and no
/// resources (an unprivileged user may own no cgroup).
pub const ROOTLESS_SPEC: &str = include_str!("rootless.json");

/// The spec `rsrun spec` writes on this host: as runc, a cgroup namespace only where
/// cgroups are pure v2 (on v1 the container could not see its own cgroup tree in it).
pub fn for_host(pure_v2: bool) -> String {
    with_cgroup_ns(DEFAULT_SPEC, pure_v2)
}

/// The spec `rsrun spec --rootless` writes for a caller with effective ids `uid`, `gid`.
pub fn rootless_for_host(pure_v2: bool, uid: u32, gid: u32) -> String {
    let text = ROOTLESS_SPEC
        .replacen("\"hostID\": 1000", &format!("\"hostID\": {uid}"), 1)
        .replacen("\"hostID\": 1000", &format!("\"hostID\": {gid}"), 1);
    with_cgroup_ns(&text, pure_v2)
}

/// The namespace list of `text` with a cgroup namespace after the mount namespace.
fn with_cgroup_ns(text: &str, add: bool) -> String {
    if !add {
        return text.to_string();
    }
    text.replacen(
        "\t\t\t\t\"type\": \"mount\"\n\t\t\t}",
        "\t\t\t\t\"type\": \"mount\"\n\t\t\t},\n\t\t\t{\n\t\t\t\t\"type\": \"cgroup\"\n\t\t\t}",
        1,
    )
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{LinuxNamespaceType as T, Spec};

    fn parse(text: &str) -> Spec {
        let spec =
            super::super::parse(text.as_bytes(), "config.json".as_ref()).expect("spec parses");
        super::super::validate::validate(&spec).expect("spec is valid");
        spec
    }

    fn namespaces(spec: &Spec) -> Vec<T> {
        let ns = spec
            .linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap();
        ns.iter().map(|n| n.typ()).collect()
    }

    #[test]
    fn default_spec_parses_and_validates() {
        parse(super::DEFAULT_SPEC);
    }

    #[test]
    fn cgroup_namespace_only_on_pure_v2() {
        for v2 in [false, true] {
            let spec = parse(&super::for_host(v2));
            assert_eq!(namespaces(&spec).contains(&T::Cgroup), v2);
            let spec = parse(&super::rootless_for_host(v2, 1, 2));
            assert_eq!(namespaces(&spec).contains(&T::Cgroup), v2);
        }
    }

    #[test]
    fn rootless_spec_maps_the_caller_and_drops_what_needs_root() {
        let spec = parse(&super::rootless_for_host(false, 1234, 5678));
        let linux = spec.linux().as_ref().unwrap();
        let uid = &linux.uid_mappings().as_ref().unwrap()[0];
        let gid = &linux.gid_mappings().as_ref().unwrap()[0];
        assert_eq!(
            (uid.container_id(), uid.host_id(), uid.size()),
            (0, 1234, 1)
        );
        assert_eq!(
            (gid.container_id(), gid.host_id(), gid.size()),
            (0, 5678, 1)
        );
        assert_eq!(
            namespaces(&spec),
            vec![T::Pid, T::Ipc, T::Uts, T::Mount, T::User]
        );
        assert!(linux.resources().is_none());
        let mounts = spec.mounts().as_ref().unwrap();
        let sys = mounts
            .iter()
            .find(|m| m.destination().to_str() == Some("/sys"));
        assert_eq!(sys.unwrap().typ().as_deref(), Some("none"));
        let any_id_option = mounts
            .iter()
            .flat_map(|m| m.options().iter().flatten())
            .any(|o| o.starts_with("gid=") || o.starts_with("uid="));
        assert!(!any_id_option);
    }
}

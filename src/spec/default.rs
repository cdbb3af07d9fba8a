//! The config.json that `rsrun spec` writes: runc's default for a busybox-style rootfs.

/// runc's default spec (runtime-spec 1.2), with tab indentation as runc writes it.
pub const DEFAULT_SPEC: &str = include_str!("default.json");

/// The spec `rsrun spec` writes on this host: as runc, a cgroup namespace only where
/// cgroups are pure v2 (on v1 the container could not see its own cgroup tree in it).
pub fn for_host(pure_v2: bool) -> String {
    if !pure_v2 {
        return DEFAULT_SPEC.to_string();
    }
    DEFAULT_SPEC.replacen(
        "\t\t\t{\n\t\t\t\t\"type\": \"mount\"\n\t\t\t}\n",
        "\t\t\t{\n\t\t\t\t\"type\": \"mount\"\n\t\t\t},\n\t\t\t{\n\t\t\t\t\"type\": \"cgroup\"\n\t\t\t}\n",
        1,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_spec_parses_and_validates() {
        let spec = super::super::parse(super::DEFAULT_SPEC.as_bytes(), "config.json".as_ref())
            .expect("default spec parses");
        super::super::validate::validate(&spec).expect("default spec is valid");
    }

    #[test]
    fn cgroup_namespace_only_on_pure_v2() {
        for v2 in [false, true] {
            let text = super::for_host(v2);
            let spec = super::super::parse(text.as_bytes(), "config.json".as_ref()).unwrap();
            let has = spec
                .linux()
                .as_ref()
                .unwrap()
                .namespaces()
                .as_ref()
                .unwrap()
                .iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Cgroup);
            assert_eq!(has, v2);
        }
    }
}

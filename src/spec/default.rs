//! The config.json that `rsrun spec` writes: runc's default for a busybox-style rootfs.

/// runc's default spec (runtime-spec 1.2), with tab indentation as runc writes it.
pub const DEFAULT_SPEC: &str = include_str!("default.json");

#[cfg(test)]
mod tests {
    #[test]
    fn default_spec_parses_and_validates() {
        let spec = super::super::parse(super::DEFAULT_SPEC.as_bytes(), "config.json".as_ref())
            .expect("default spec parses");
        super::super::validate::validate(&spec).expect("default spec is valid");
    }
}

//! Loading a bundle's config.json into oci-spec types, and validating it.

pub mod default;
pub mod validate;

use crate::error::{Error, Result, SysContext};
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};

/// Read and parse `<bundle>/config.json`. Parse errors name the JSON field
/// (`config.json: linux.namespaces[1].type: unknown variant ...`).
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).op("open", &path)?;
    parse(&text, &path)
}

pub fn parse(text: &[u8], shown: &Path) -> Result<Spec> {
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let field = if field == "." || field.is_empty() {
            shown.display().to_string()
        } else {
            format!("{}: {field}", shown.display())
        };
        Error::config(field, inner.to_string())
    })
}

/// The absolute bundle directory (runc records the bundle as an absolute path).
pub fn absolute_bundle(bundle: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(bundle).op("bundle", bundle)
}

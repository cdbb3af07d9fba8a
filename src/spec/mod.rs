//! Loading a bundle's config.json into oci-spec types, and validating it.

pub mod default;
pub mod validate;

use crate::error::{Error, Result};
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};

/// Read and parse `<bundle>/config.json`. Parse errors name the JSON field
/// (`config.json: linux.namespaces[1].type: unknown variant ...`).
pub fn load(bundle: &Path) -> Result<Spec> {
    load_full(bundle).map(|l| l.spec)
}

/// A parsed config with what oci-spec's types cannot carry.
pub struct Loaded {
    pub spec: Spec,
    /// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` in `linux.seccomp.flags`.
    pub seccomp_wait_killable_recv: bool,
}

pub const WAIT_KILLABLE_RECV: &str = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV";

/// The most rsrun reads of a JSON document a caller hands it (config.json, `exec
/// --process`, `update --resources`): configs are kilobytes, and this leaves room for
/// large seccomp profiles and annotations.
pub const MAX_JSON_BYTES: u64 = 16 << 20;

/// Read a JSON document a caller controls: a regular file only (not a FIFO, a device or a
/// directory), at most `MAX_JSON_BYTES`, failing fast with the path in the error.
pub fn read_json_file(path: &Path) -> Result<Vec<u8>> {
    crate::sys::fs::read_regular(path, MAX_JSON_BYTES)
}

pub fn load_full(bundle: &Path) -> Result<Loaded> {
    load_text(bundle).map(|(l, _)| l)
}

/// `load_full`, and the bytes it parsed (what `create` keeps as the container's config,
/// so that what `exec` reads later is what was validated, whatever the bundle became).
pub fn load_text(bundle: &Path) -> Result<(Loaded, Vec<u8>)> {
    let path = bundle.join("config.json");
    let text = read_json_file(&path)?;
    Ok((parse_full(&text, &path)?, text))
}

/// Parse, lifting out the seccomp flag oci-spec does not know.
pub fn parse_full(text: &[u8], shown: &Path) -> Result<Loaded> {
    let needle = WAIT_KILLABLE_RECV.as_bytes();
    if !text.windows(needle.len()).any(|w| w == needle) {
        return Ok(Loaded {
            spec: parse(text, shown)?,
            seccomp_wait_killable_recv: false,
        });
    }
    let mut v: serde_json::Value = serde_json::from_slice(text)
        .map_err(|e| Error::config(shown.display().to_string(), e.to_string()))?;
    let mut found = false;
    if let Some(flags) = v
        .pointer_mut("/linux/seccomp/flags")
        .and_then(|f| f.as_array_mut())
    {
        let before = flags.len();
        flags.retain(|f| f.as_str() != Some(WAIT_KILLABLE_RECV));
        found = flags.len() != before;
    }
    let cleaned = serde_json::to_vec(&v)
        .map_err(|e| Error::config(shown.display().to_string(), e.to_string()))?;
    Ok(Loaded {
        spec: parse(&cleaned, shown)?,
        seccomp_wait_killable_recv: found,
    })
}

pub fn parse(text: &[u8], shown: &Path) -> Result<Spec> {
    parse_json(text, shown)
}

/// `shown: field`, or `shown` alone for the whole document.
fn field_in(shown: &Path, field: &str) -> String {
    if field == "." || field.is_empty() {
        shown.display().to_string()
    } else {
        format!("{}: {field}", shown.display())
    }
}

/// Parse a JSON document of the runtime spec (config.json, a process, resources); errors
/// name the field. Wrong JSON types are refused, as runc does, including the one serde
/// lets through: a struct read from an array, field by field in order (`"capabilities":
/// []` was a process with no capabilities, `"user": [0, 0]` root).
pub fn parse_json<T: serde::de::DeserializeOwned + serde::Serialize>(
    text: &[u8],
    shown: &Path,
) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(text);
    let parsed: T = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = field_in(shown, &e.path().to_string());
        Error::config(field, e.into_inner().to_string())
    })?;
    let input: serde_json::Value = serde_json::from_slice(text)
        .map_err(|e| Error::config(shown.display().to_string(), e.to_string()))?;
    refuse_arrays_for_objects(&input, &parsed, shown)?;
    Ok(parsed)
}

/// Refuse a document `input` that has an array where `parsed`, its typed reading, has an
/// object: serde filled that struct from the array's elements in field order.
pub fn refuse_arrays_for_objects(
    input: &serde_json::Value,
    parsed: &impl serde::Serialize,
    shown: &Path,
) -> Result<()> {
    use serde_json::Value;
    fn find(i: &Value, o: &Value, path: &str) -> Option<String> {
        let join = |k: &str| {
            if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            }
        };
        match (i, o) {
            (Value::Array(_), Value::Object(_)) => Some(path.to_string()),
            (Value::Object(a), Value::Object(b)) => a
                .iter()
                .find_map(|(k, iv)| b.get(k).and_then(|ov| find(iv, ov, &join(k)))),
            (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
                .iter()
                .zip(b)
                .enumerate()
                .find_map(|(n, (iv, ov))| find(iv, ov, &format!("{path}[{n}]"))),
            _ => None,
        }
    }
    let output = serde_json::to_value(parsed)
        .map_err(|e| Error::config(shown.display().to_string(), e.to_string()))?;
    match find(input, &output, "") {
        Some(field) => Err(Error::config(
            field_in(shown, &field),
            "invalid type: array, expected an object",
        )),
        None => Ok(()),
    }
}

/// The absolute bundle directory (runc records the bundle as an absolute path).
pub fn absolute_bundle(bundle: &Path) -> Result<PathBuf> {
    crate::sys::fs::canonicalize(bundle, "bundle")
}

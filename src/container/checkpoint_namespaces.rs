//! The namespaces a checkpoint was taken with, saved beside its images and checked on
//! restore. CRIU restores namespaces (and a user namespace's id maps) as the images
//! have them, whatever the bundle says: restoring a checkpoint taken without a user
//! namespace under a bundle that asks for one would run the tree as host root while the
//! container's record says it is mapped. So `restore` refuses a bundle whose namespace
//! types or id maps differ from the checkpoint's, before anything exists. Images
//! without the file (another runtime's) are not checked.

use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxIdMapping, Spec};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The file, in the image directory.
const FILE: &str = "rsrun-namespaces.json";

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Namespaces {
    /// The namespace types the container made or joined, sorted.
    types: Vec<String>,
    /// (containerID, hostID, size) of each map, as the config lists them.
    uid_mappings: Vec<(u32, u32, u32)>,
    gid_mappings: Vec<(u32, u32, u32)>,
}

fn of(spec: &Spec) -> Namespaces {
    let linux = spec.linux().as_ref();
    let mut types: Vec<String> = linux
        .and_then(|l| l.namespaces().as_ref())
        .map(|ns| {
            ns.iter()
                .map(|n| crate::namespaces::proc_name(n.typ()).to_string())
                .collect()
        })
        .unwrap_or_default();
    types.sort();
    types.dedup();
    let maps = |m: Option<&Vec<LinuxIdMapping>>| {
        m.map(|v| {
            v.iter()
                .map(|m| (m.container_id(), m.host_id(), m.size()))
                .collect()
        })
        .unwrap_or_default()
    };
    Namespaces {
        types,
        uid_mappings: maps(linux.and_then(|l| l.uid_mappings().as_ref())),
        gid_mappings: maps(linux.and_then(|l| l.gid_mappings().as_ref())),
    }
}

/// For `checkpoint`: record the container's namespaces (from its stored config) with the
/// images.
pub fn save(spec: &Spec, images: &Path) -> Result<()> {
    let text = serde_json::to_vec(&of(spec)).map_err(|e| Error::container(e.to_string()))?;
    crate::state::atomic_write(&images.join(FILE), &text, 0o600)
}

/// For `restore`, before anything exists: the bundle's namespaces are the checkpoint's.
pub fn check(spec: &Spec, images: &Path) -> Result<()> {
    let path = images.join(FILE);
    let text = match crate::spec::read_json_file(&path) {
        Ok(t) => t,
        Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    let saved: Namespaces = serde_json::from_slice(&text)
        .map_err(|e| Error::container(format!("{}: {e}", path.display())))?;
    let now = of(spec);
    let differs = |field: &str, was: String, is: String| {
        Err(Error::config(
            field,
            format!(
                "the checkpoint in {} was taken with {was}, the bundle has {is}: CRIU would restore the checkpoint's",
                images.display()
            ),
        ))
    };
    if saved.types != now.types {
        return differs(
            "linux.namespaces",
            format!("namespaces {:?}", saved.types),
            format!("{:?}", now.types),
        );
    }
    if saved.uid_mappings != now.uid_mappings {
        return differs(
            "linux.uidMappings",
            format!("{:?}", saved.uid_mappings),
            format!("{:?}", now.uid_mappings),
        );
    }
    if saved.gid_mappings != now.gid_mappings {
        return differs(
            "linux.gidMappings",
            format!("{:?}", saved.gid_mappings),
            format!("{:?}", now.gid_mappings),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(userns: bool) -> Spec {
        let mut v = serde_json::to_value(Spec::default()).unwrap();
        if userns {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"type": "user"}));
            v["linux"]["uidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_bundle_with_other_namespaces_than_the_checkpoint_is_refused() {
        let dir = std::env::temp_dir().join(format!("rsrun-ck-ns-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        check(&spec(true), &dir).unwrap();
        save(&spec(false), &dir).unwrap();
        check(&spec(false), &dir).unwrap();
        let e = check(&spec(true), &dir).unwrap_err().to_string();
        assert!(e.contains("linux.namespaces") && e.contains("user"), "{e}");
        save(&spec(true), &dir).unwrap();
        let mut other = serde_json::to_value(spec(true)).unwrap();
        other["linux"]["uidMappings"][0]["hostID"] = serde_json::json!(200000);
        let other: Spec = serde_json::from_value(other).unwrap();
        let e = check(&other, &dir).unwrap_err().to_string();
        assert!(
            e.contains("linux.uidMappings") && e.contains("200000"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

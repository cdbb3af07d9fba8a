//! Writing `linux.sysctl` inside the container. Every file is opened beneath a private
//! procfs instance (`sys::procfs`) that no mount of the container can cover, with no
//! symlink or mount crossing on the way, so neither a crafted `/proc` nor a bind mount
//! of another procfs file over `/proc/sys/<key>` can redirect the write
//! (CVE-2025-52881, CVE-2019-16884 and relatives).

use crate::error::{Error, Result};
use crate::sys::fs as sfs;
use crate::sys::procfs::ProcFs;
use nix::fcntl::OFlag;
use std::path::{Path, PathBuf};

/// `net.ipv4.ip_forward` → `sys/net/ipv4/ip_forward`, relative to a procfs root (a `/`
/// in the key is kept as the separator runc accepts too).
pub fn proc_path(key: &str) -> PathBuf {
    let rel = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    PathBuf::from("sys").join(rel)
}

/// Write every sysctl, in order, through one private procfs.
pub fn write_all(sysctls: &[(String, String)]) -> Result<()> {
    if sysctls.is_empty() {
        return Ok(());
    }
    let proc = ProcFs::private()?;
    for (k, v) in sysctls {
        write(&proc, k, v)?;
    }
    Ok(())
}

fn write(proc: &ProcFs, key: &str, value: &str) -> Result<()> {
    let rel = proc_path(key);
    let shown = Path::new("/proc").join(&rel);
    let field = format!("linux.sysctl.{key}");
    let fd = proc
        .open(&rel, OFlag::O_WRONLY)
        .map_err(|e| Error::config(field.clone(), e.to_string()))?;
    sfs::write_fd(&fd, value.as_bytes(), &shown).map_err(|e| Error::config(field, e.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths() {
        assert_eq!(
            super::proc_path("net.ipv4.ip_forward").to_str(),
            Some("sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            super::proc_path("net/ipv4/conf/eth0.1/rp_filter").to_str(),
            Some("sys/net/ipv4/conf/eth0.1/rp_filter")
        );
    }
}

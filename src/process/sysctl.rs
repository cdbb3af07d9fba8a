//! Writing `linux.sysctl` inside the container: through an fd opened without following
//! symlinks, checked with fstatfs to be on procfs, so a crafted /proc cannot redirect
//! the write (CVE-2025-52881 and relatives).

use crate::error::{Error, Result};
use crate::sys::fs as sfs;
use nix::fcntl::OFlag;
use std::path::PathBuf;

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// `net.ipv4.ip_forward` → `/proc/sys/net/ipv4/ip_forward` (a `/` in the key is kept as
/// the separator runc accepts too).
pub fn proc_path(key: &str) -> PathBuf {
    let rel = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    PathBuf::from("/proc/sys").join(rel)
}

pub fn write(key: &str, value: &str) -> Result<()> {
    let path = proc_path(key);
    let field = format!("linux.sysctl.{key}");
    let fd = sfs::open(&path, OFlag::O_WRONLY | OFlag::O_NOFOLLOW)
        .map_err(|e| Error::config(field.clone(), e.to_string()))?;
    if sfs::fs_type(&fd, &path)? != PROC_SUPER_MAGIC {
        return Err(Error::config(
            field,
            format!("{} is not on procfs", path.display()),
        ));
    }
    crate::sys::socket::write_all(&fd, value.as_bytes())
        .map_err(|e| Error::config(field, format!("write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths() {
        assert_eq!(
            super::proc_path("net.ipv4.ip_forward").to_str(),
            Some("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            super::proc_path("net/ipv4/conf/eth0.1/rp_filter").to_str(),
            Some("/proc/sys/net/ipv4/conf/eth0.1/rp_filter")
        );
    }
}

//! The library's error type: every failure names the operation, the path or field it
//! concerned and, for syscalls, the errno — `mount "proc" on "/proc": EPERM`.

use nix::errno::Errno;
use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A syscall failed: `op "path": ERRNO (text)`.
    #[error("{}", fmt_sys(.op, .path.as_deref(), *.errno))]
    Sys {
        op: String,
        path: Option<String>,
        errno: Errno,
    },
    /// The bundle's config.json is malformed or asks for something invalid.
    #[error("{field}: {msg}")]
    Config { field: String, msg: String },
    /// The command does not fit the container (bad id, wrong state, duplicate id, ...).
    #[error("{0}")]
    Container(String),
    /// A hook failed: runc's words (`error running prestart hook #1: …`, counted from 0
    /// in its list), then its path.
    #[error("error running {kind} hook #{index}: {path:?}: {msg}")]
    Hook {
        kind: &'static str,
        index: usize,
        path: String,
        msg: String,
    },
    /// Anything reported by the container's init before it exec'd.
    #[error("{0}")]
    Child(String),
}

fn fmt_sys(op: &str, path: Option<&str>, errno: Errno) -> String {
    let mut s = String::from(op);
    if let Some(p) = path {
        s.push_str(&format!(" {p:?}"));
    }
    s.push_str(&format!(": {}", ErrnoName(errno)));
    s
}

/// Formats an errno as `EPERM (Operation not permitted)`.
pub struct ErrnoName(pub Errno);

impl fmt::Display for ErrnoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({})", self.0, self.0.desc())
    }
}

impl Error {
    pub fn sys(op: impl Into<String>, path: impl AsRef<std::path::Path>, errno: Errno) -> Self {
        Error::Sys {
            op: op.into(),
            path: Some(path.as_ref().display().to_string()),
            errno,
        }
    }
    pub fn sys_nopath(op: impl Into<String>, errno: Errno) -> Self {
        Error::Sys {
            op: op.into(),
            path: None,
            errno,
        }
    }
    pub fn config(field: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            msg: msg.into(),
        }
    }
    pub fn container(msg: impl Into<String>) -> Self {
        Error::Container(msg.into())
    }
    /// The errno behind this error, when there is one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Sys { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// Attach an operation and path to a `nix` result.
pub trait SysContext<T> {
    fn op(self, op: &str, path: impl AsRef<std::path::Path>) -> Result<T>;
    fn op0(self, op: &str) -> Result<T>;
}

impl<T> SysContext<T> for std::result::Result<T, Errno> {
    fn op(self, op: &str, path: impl AsRef<std::path::Path>) -> Result<T> {
        self.map_err(|e| Error::sys(op, path, e))
    }
    fn op0(self, op: &str) -> Result<T> {
        self.map_err(|e| Error::sys_nopath(op, e))
    }
}

impl<T> SysContext<T> for std::io::Result<T> {
    fn op(self, op: &str, path: impl AsRef<std::path::Path>) -> Result<T> {
        self.map_err(|e| Error::sys(op, path, io_errno(&e)))
    }
    fn op0(self, op: &str) -> Result<T> {
        self.map_err(|e| Error::sys_nopath(op, io_errno(&e)))
    }
}

pub fn io_errno(e: &std::io::Error) -> Errno {
    e.raw_os_error().map(Errno::from_raw).unwrap_or(Errno::EIO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sys_error_names_op_path_and_errno() {
        let e = Error::sys("mount \"proc\" on", "/proc", Errno::EPERM);
        assert_eq!(
            e.to_string(),
            "mount \"proc\" on \"/proc\": EPERM (Operation not permitted)"
        );
    }
}

//! The container's processes: the parent/child channel, the parent's create driver, the
//! child's step list, capabilities.

pub mod attrs;
pub mod caps;
pub mod channel;
pub mod create;
pub mod enter;
pub mod finish;
pub mod init;
pub mod sysctl;
pub mod tty;

//! rsrun: a low-level OCI container runtime.
//!
//! config.json ──► spec ──► validate ──► Plan ──► clone3 ──► parent/child protocol ──► execve

pub mod cgroups;
pub mod cli;
pub mod container;
pub mod error;
pub mod hooks;
pub mod logger;
pub mod namespaces;
pub mod plan;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod sys;

//! rsrun: a low-level OCI container runtime.
//!
//! config.json ──► spec ──► validate ──► Plan ──► clone3 ──► parent/child protocol ──► execve
//!
//! `unsafe` lives in `sys` only: the rest of the crate may not use it.

#![deny(unsafe_code)]

pub mod cgroups;
pub mod cli;
pub mod clock;
pub mod container;
pub mod cpulist;
pub mod criu;
pub mod error;
pub mod hooks;
pub mod logger;
pub mod namespaces;
pub mod plan;
pub mod process;
pub mod rootfs;
pub mod rootless;
pub mod seccomp;
pub mod spec;
pub mod state;
#[allow(unsafe_code)]
pub mod sys;

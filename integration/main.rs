//! Integration tests: the real rsrun binary, as root, on busybox bundles, against the
//! real kernel. Each test has its own container ids and `--root`.

mod common;

mod bad_input;
mod clients;
mod crash;
mod escapes;
mod escapes_rootfs;
mod exec;
mod hooks;
mod lifecycle;
mod mounts;
mod namespaces;
mod process;
mod resources;
mod resources_conformance;
mod runc_cli;
mod runc_diff;
mod seccomp;
mod systemd;
mod terminal;

//! Integration tests: the real rsrun binary, as root, on busybox bundles, against the
//! real kernel. Each test has its own container ids and `--root`.

mod common;

mod bad_input;
mod checkpoint;
mod clients;
mod crash;
mod devices_v2;
mod escapes;
mod escapes_caller;
mod escapes_rootfs;
mod exec;
mod exec_failures;
mod hangs;
mod hooks;
mod hostile_input;
mod idmap_mounts;
mod lifecycle;
mod mounts;
mod mounts_conformance;
mod namespaces;
mod process;
mod resources;
mod resources_conformance;
mod rootless;
mod runc_cgroups;
mod runc_cli;
mod runc_diff;
mod runc_parity;
mod runc_scenarios;
mod runc_update;
mod sd_notify;
mod seccomp;
mod systemd;
mod systemd_engines;
mod terminal;

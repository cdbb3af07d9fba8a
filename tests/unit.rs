//! Pure-logic tests through the library's public API: validation of every bad input the
//! lifecycle refuses, and the plan built from a spec. Nothing here touches the system
//! beyond reading the current process's cgroup layout (and, in `docs`, the repository's
//! own files).

use rsrun::spec::{default::DEFAULT_SPEC, parse, validate::validate};
use serde_json::{json, Value};
use std::path::Path;

fn default() -> Value {
    serde_json::from_str(DEFAULT_SPEC).unwrap()
}

/// Parse + validate a spec and return the error text (panics when it is accepted).
fn refused(v: &Value) -> String {
    let text = serde_json::to_vec(v).unwrap();
    match parse(&text, Path::new("config.json")).and_then(|s| validate(&s)) {
        Ok(()) => panic!("accepted: {v}"),
        Err(e) => e.to_string(),
    }
}

fn accepted(v: &Value) {
    let text = serde_json::to_vec(v).unwrap();
    let spec = parse(&text, Path::new("config.json")).unwrap();
    validate(&spec).unwrap();
}

#[test]
fn default_spec_is_valid() {
    accepted(&default());
}

#[test]
fn malformed_json_names_the_file() {
    let e = parse(b"{\"ociVersion\": ", Path::new("/b/config.json"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/b/config.json"), "{e}");
}

#[test]
fn missing_process_args() {
    let mut v = default();
    v["process"].as_object_mut().unwrap().remove("args");
    assert!(refused(&v).contains("process.args"));
    v["process"]["args"] = json!([]);
    assert!(refused(&v).contains("process.args"));
    v.as_object_mut().unwrap().remove("process");
    assert!(refused(&v).starts_with("process"));
}

#[test]
fn missing_root_path() {
    let mut v = default();
    v["root"]["path"] = json!("");
    assert!(refused(&v).contains("root.path"));
    v.as_object_mut().unwrap().remove("root");
    assert!(refused(&v).starts_with("root"));
}

#[test]
fn oci_version_major() {
    let mut v = default();
    v["ociVersion"] = json!("2.0.0");
    assert!(refused(&v).starts_with("ociVersion"));
    v["ociVersion"] = json!("1.0.2-dev");
    accepted(&v);
}

#[test]
fn unknown_namespace_type_names_the_index() {
    let mut v = default();
    v["linux"]["namespaces"][2] = json!({"type": "bogus"});
    let e = refused(&v);
    assert!(e.contains("linux.namespaces[2].type"), "{e}");
}

#[test]
fn namespace_listed_twice() {
    let mut v = default();
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "uts"}));
    let e = refused(&v);
    assert!(
        e.contains("linux.namespaces[5]") && e.contains("twice"),
        "{e}"
    );
}

#[test]
fn user_namespace_needs_maps_and_maps_need_it() {
    let mut v = default();
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    assert!(refused(&v).contains("linux.uidMappings"));
    let mut v = default();
    v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    assert!(refused(&v).contains("without a user namespace"));
}

#[test]
fn time_offsets_need_a_time_namespace() {
    let mut v = default();
    v["linux"]["timeOffsets"] = json!({"boottime": {"secs": 1}});
    assert!(refused(&v).contains("linux.timeOffsets"));
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    accepted(&v);
    v["linux"]["timeOffsets"] = json!({"realtime": {"secs": 1}});
    assert!(refused(&v).contains("linux.timeOffsets.realtime"));
}

#[test]
fn hostname_needs_uts() {
    let mut v = default();
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "uts");
    assert!(refused(&v).starts_with("hostname"));
}

#[test]
fn without_a_mount_namespace_sys_entries_cannot_be_restricted() {
    let mut v = default();
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "mount");
    let e = refused(&v);
    assert!(
        e.starts_with("linux.maskedPaths: ") && e.contains("mount namespace"),
        "{e}"
    );
    v["linux"]["maskedPaths"] = json!([]);
    assert!(refused(&v).starts_with("linux.readonlyPaths: "));
    v["linux"].as_object_mut().unwrap().remove("readonlyPaths");
    accepted(&v);
}

#[test]
fn relative_mount_destination_and_cwd() {
    let mut v = default();
    v["mounts"][0]["destination"] = json!("proc");
    assert!(refused(&v).contains("mounts[0].destination"));
    let mut v = default();
    v["process"]["cwd"] = json!("work");
    assert!(refused(&v).contains("process.cwd"));
}

#[test]
fn rlimits_are_checked() {
    let mut v = default();
    v["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]);
    assert!(refused(&v).contains("process.rlimits[0]"));
    v["process"]["rlimits"] = json!([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]);
    assert!(refused(&v).contains("process.rlimits[0].type"));
}

#[test]
fn unknown_capability_is_an_error() {
    let mut v = default();
    v["process"]["capabilities"]["bounding"] = json!(["CAP_NOT_A_CAP"]);
    assert!(refused(&v).contains("process.capabilities.bounding"));
}

#[test]
fn systemd_cgroup_path_is_valid() {
    // Which driver reads it is the runtime's flag (cgroups::systemd::check_driver).
    let mut v = default();
    v["linux"]["cgroupsPath"] = json!("system.slice:rsrun:abc");
    accepted(&v);
    v["linux"]["cgroupsPath"] = json!("/a/b");
    accepted(&v);
}

#[test]
fn plan_from_default_spec() {
    use rsrun::cgroups::{Cgroup, CgroupDir, Mode};
    let text = DEFAULT_SPEC.as_bytes();
    let spec = parse(text, Path::new("config.json")).unwrap();
    let bundle = std::env::temp_dir().join(format!("rsrun-unit-plan-{}", std::process::id()));
    std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
    let cg = Cgroup {
        mode: Mode::V2,
        dirs: vec![CgroupDir {
            controllers: String::new(),
            path: "/sys/fs/cgroup/x".into(),
            mountpoint: "/sys/fs/cgroup".into(),
        }],
        created: vec![],
        systemd: None,
    };
    let plan = rsrun::plan::build(
        &spec,
        "x",
        &bundle,
        cg,
        &rsrun::plan::PlanOptions {
            no_pivot: false,
            preserve_fds: 0,
            new_keyring: true,
            seccomp_wait_killable_recv: false,
        },
    )
    .unwrap();
    std::fs::remove_dir_all(&bundle).unwrap();
    assert_eq!(plan.process.args[0].to_str().unwrap(), "sh");
    assert_eq!(plan.hostname.as_deref(), Some("runc"));
    assert!(plan.rootfs.readonly);
    assert!(plan.rootfs.setup_dev);
    // runc's default: a cgroup namespace only on pure v2 hosts (`spec::default::for_host`).
    assert!(!plan.rootfs.cgroup_ns);
    assert_eq!(plan.rootfs.mounts.len(), 7);
    assert_eq!(plan.rootfs.masked_paths.len(), 10);
    // CAP_AUDIT_WRITE(29), CAP_KILL(5), CAP_NET_BIND_SERVICE(10)
    let caps = plan.process.caps.unwrap();
    assert_eq!(caps.bounding, (1 << 29) | (1 << 5) | (1 << 10));
    assert_eq!(caps.inheritable, 0);
    assert!(plan.process.no_new_privs);
    assert_eq!(plan.process.rlimits[0].resource, libc::RLIMIT_NOFILE as i32);
    assert!(!plan.has_runtime_hooks());
}

#[test]
fn seccomp_flag_unknown_to_oci_spec_is_carried() {
    let mut v = default();
    v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]});
    let text = serde_json::to_vec(&v).unwrap();
    let l = rsrun::spec::parse_full(&text, Path::new("config.json")).unwrap();
    assert!(l.seccomp_wait_killable_recv);
    let flags = l
        .spec
        .linux()
        .as_ref()
        .unwrap()
        .seccomp()
        .as_ref()
        .unwrap()
        .flags()
        .clone()
        .unwrap();
    assert_eq!(flags.len(), 1);
    let f = rsrun::seccomp::compile(
        l.spec.linux().as_ref().unwrap().seccomp().as_ref().unwrap(),
        true,
    )
    .unwrap();
    assert_eq!(
        f.flags,
        rsrun::seccomp::FLAG_LOG | rsrun::seccomp::FLAG_WAIT_KILLABLE_RECV
    );
}

/// The docs and the Makefile's lists cite only tests, items and files that exist (in
/// this target so that every run of the unit tests checks it).
#[path = "unit/docs.rs"]
mod docs;

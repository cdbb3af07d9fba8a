//! Differential tests: the same bundle under Debian's runc and under rsrun; what the
//! container sees must match.

use crate::common::*;
use serde_json::json;
use std::process::Command;

fn runc() -> Option<&'static str> {
    runc_binary()
}

fn run_runc(env: &Env, id: &str) -> Run {
    let root = env.dir.join("runc-root");
    let mut c = Command::new(runc().unwrap());
    c.arg("--root")
        .arg(&root)
        .args(["run", "--bundle", env.bundle.to_str().unwrap(), id]);
    output(c)
}

/// Mount points, types and per-mount options of the container's mountinfo (the fields
/// that do not depend on mount ids or device numbers).
const PROBE: &str =
    "id; hostname; echo $$; grep -E '^(Cap|NoNewPrivs|SigBlk|SigIgn)' /proc/self/status; \
    ls -la /dev | awk '{print $1, $5, $6, $NF}'; \
    awk '{print $5, $6}' /proc/self/mountinfo; cat /proc/self/limits | grep 'open files'; \
    umask; pwd; env | sort";

#[test]
fn default_bundle_looks_the_same() {
    if runc().is_none() {
        panic!("runc is required for differential tests (apt-get install runc)");
    }
    let env = Env::new("diff-default");
    env.edit(|v| {
        // runc 1.1 mounts no cgroup namespace view for a spec it did not write; compare
        // without it.
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "cgroup");
    });
    env.set_args(&["sh", "-c", PROBE]);
    let theirs = run_runc(&env, "diff-runc");
    assert_eq!(theirs.code, 0, "runc: {}", theirs.stderr);
    let ours = env.rsrun(&[
        "run",
        "--bundle",
        env.bundle.to_str().unwrap(),
        "diff-rsrun",
    ]);
    assert_eq!(ours.code, 0, "rsrun: {}", ours.stderr);
    // Deliberate differences: runc 1.1 leaves the tmpfs that holds the v1 cgroup mounts
    // writable, rsrun mounts it read-only as the mount asks (CVE-2023-25809); runc's Go
    // runtime leaves signal 32 (glibc's reserved SIGCANCEL) ignored, rsrun ignores none.
    let norm = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| l.replace("/sys/fs/cgroup rw,nosuid", "/sys/fs/cgroup ro,nosuid"))
            .map(|l| l.replace("SigIgn:\t0000000080000000", "SigIgn:\t0000000000000000"))
            .collect()
    };
    let (a, b) = (norm(&theirs.stdout), norm(&ours.stdout));
    for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
        assert_eq!(
            x, y,
            "line {i} differs\nrunc:\n{}\nrsrun:\n{}",
            theirs.stdout, ours.stdout
        );
    }
    assert_eq!(
        a.len(),
        b.len(),
        "runc:\n{}\nrsrun:\n{}",
        theirs.stdout,
        ours.stdout
    );
    env.assert_clean("diff-rsrun", None);
}

/// Process security as runc applies it: a non-root user with inheritable and ambient
/// capabilities, rlimits, no no_new_privs, a umask, an oom_score_adj.
#[test]
fn process_security_looks_the_same() {
    let env = Env::new("diff-security");
    let caps = json!([
        "CAP_NET_BIND_SERVICE",
        "CAP_KILL",
        "CAP_CHOWN",
        "CAP_SETUID"
    ]);
    env.edit(|v| {
        v["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "cgroup");
        v["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 10], "umask": 23});
        v["process"]["capabilities"] = json!({
            "bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps, "ambient": caps
        });
        v["process"]["noNewPrivileges"] = json!(false);
        v["process"]["oomScoreAdj"] = json!(300);
        v["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 1000},
            {"type": "RLIMIT_NPROC", "hard": 500, "soft": 400},
            {"type": "RLIMIT_CORE", "hard": 0, "soft": 0}
        ]);
    });
    env.set_args(&[
        "sh",
        "-c",
        "id; umask; grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; cat /proc/self/oom_score_adj; \
         grep -E 'open files|processes|core file' /proc/self/limits",
    ]);
    let theirs = run_runc(&env, "dsec-runc");
    assert_eq!(theirs.code, 0, "runc: {}", theirs.stderr);
    let ours = env.rsrun(&[
        "run",
        "--bundle",
        env.bundle.to_str().unwrap(),
        "dsec-rsrun",
    ]);
    assert_eq!(ours.code, 0, "rsrun: {}", ours.stderr);
    assert_eq!(
        ours.stdout, theirs.stdout,
        "runc:\n{}\nrsrun:\n{}",
        theirs.stdout, ours.stdout
    );
}

/// A mount list with binds, options, propagation, devices, masked and read-only paths:
/// the container's mount table and /dev look the same under runc and rsrun.
#[test]
fn mounts_and_devices_look_the_same() {
    let env = Env::new("diff-mounts");
    let src = env.dir.join("data");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "x").unwrap();
    std::fs::write(env.dir.join("file"), "y").unwrap();
    env.edit(|v| {
        v["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "cgroup");
        let m = v["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/data", "type": "bind", "source": src.to_str().unwrap(), "options": ["rbind", "ro", "nosuid", "nodev"]}));
        m.push(json!({"destination": "/etc/file", "type": "bind", "source": env.dir.join("file").to_str().unwrap(), "options": ["bind", "rw"]}));
        m.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "noexec", "size=2m", "mode=1777"]}));
        m.push(json!({"destination": "/shared", "type": "tmpfs", "source": "tmpfs", "options": ["rshared"]}));
        v["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0}]);
        v["linux"]["maskedPaths"].as_array_mut().unwrap().push(json!("/etc/hostname"));
        v["linux"]["readonlyPaths"].as_array_mut().unwrap().push(json!("/scratch"));
    });
    env.set_args(&[
        "sh",
        "-c",
        "awk '{print $5, $6, $(NF-2), ($7 ~ /shared/ ? \"shared\" : \"-\")}' /proc/self/mountinfo; ls -l /dev | awk '{print $1, $5, $6, $NF}'",
    ]);
    let theirs = run_runc(&env, "dm-runc");
    assert_eq!(theirs.code, 0, "runc: {}", theirs.stderr);
    let ours = env.rsrun(&["run", "--bundle", env.bundle.to_str().unwrap(), "dm-rsrun"]);
    assert_eq!(ours.code, 0, "rsrun: {}", ours.stderr);
    // The one deliberate difference: rsrun keeps the v1 cgroup tmpfs read-only.
    let norm = |s: &str| s.replace("/sys/fs/cgroup rw,nosuid", "/sys/fs/cgroup ro,nosuid");
    assert_eq!(
        norm(&ours.stdout),
        norm(&theirs.stdout),
        "runc:\n{}\nrsrun:\n{}",
        theirs.stdout,
        ours.stdout
    );
}

/// The cgroup files rsrun writes for linux.resources are the ones runc writes.
#[test]
fn cgroup_files_match_runc() {
    let env = Env::new("diff-cgroup");
    let tag = std::process::id();
    let res = json!({
        "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728, "swappiness": 30},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 50},
        "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}]
    });
    env.set_args(&["sleep", "100"]);
    let run = |id: &str, path: &str, rsrun_side: bool| {
        env.edit(|v| {
            v["linux"]["resources"] = res.clone();
            v["linux"]["cgroupsPath"] = json!(path);
        });
        let r = if rsrun_side {
            env.rsrun(&["run", "-d", "--bundle", env.bundle.to_str().unwrap(), id])
        } else {
            let mut c = Command::new(runc().unwrap());
            c.arg("--root").arg(env.dir.join("runc-root")).args([
                "run",
                "-d",
                "--bundle",
                env.bundle.to_str().unwrap(),
                id,
            ]);
            output(c)
        };
        assert_eq!(r.code, 0, "{id}: {}", r.stderr);
    };
    let (ours, theirs) = (
        format!("/rsrun-diff-ours-{tag}"),
        format!("/rsrun-diff-runc-{tag}"),
    );
    run("dc-runc", &theirs, false);
    run("dc-rsrun", &ours, true);
    let files = [
        ("memory", "memory.limit_in_bytes"),
        ("memory", "memory.soft_limit_in_bytes"),
        ("memory", "memory.memsw.limit_in_bytes"),
        ("memory", "memory.swappiness"),
        ("cpu", "cpu.shares"),
        ("cpu", "cpu.cfs_quota_us"),
        ("cpu", "cpu.cfs_period_us"),
        ("cpuset", "cpuset.cpus"),
        ("cpuset", "cpuset.mems"),
        ("pids", "pids.max"),
        ("devices", "devices.list"),
    ];
    let read = |path: &str, c: &str, f: &str| {
        let p = std::path::Path::new("/sys/fs/cgroup")
            .join(c)
            .join(path.trim_start_matches('/'))
            .join(f);
        std::fs::read_to_string(&p).unwrap_or_else(|e| format!("<{e}>"))
    };
    let cleanup = || {
        let _ = env.rsrun(&["delete", "-f", "dc-rsrun"]);
        let mut c = Command::new(runc().unwrap());
        c.arg("--root")
            .arg(env.dir.join("runc-root"))
            .args(["delete", "-f", "dc-runc"]);
        let _ = output(c);
    };
    if rsrun::cgroups::Cgroup::resolve(None, "x").unwrap().mode == rsrun::cgroups::Mode::V2 {
        cleanup();
        return skip(
            "runc_diff::cgroup_files_match_runc",
            "a comparison of the v1 files: this host is pure v2",
        );
    }
    let mut diffs = Vec::new();
    for (c, f) in files {
        let sorted = |t: String| {
            let mut l: Vec<&str> = t.lines().collect();
            l.sort_unstable();
            l.join("\n")
        };
        // devices.list is a set: compare it without its order.
        let (a, b) = (sorted(read(&theirs, c, f)), sorted(read(&ours, c, f)));
        if a != b {
            diffs.push(format!("{f}: runc {a:?} rsrun {b:?}"));
        }
    }
    cleanup();
    assert!(diffs.is_empty(), "{diffs:#?}");
}

/// `rsrun spec` writes what `runc spec` writes on this host (the version field aside):
/// the same namespaces (a cgroup namespace only on pure v2), mounts, masked and
/// read-only paths, capabilities and rlimits.
#[test]
fn spec_matches_runc_spec() {
    let runc = runc().expect("runc is required for differential tests");
    let dir = std::env::temp_dir().join(format!("rsrun-it-spec-{}", std::process::id()));
    let (ours, theirs) = (dir.join("ours"), dir.join("theirs"));
    for d in [&ours, &theirs] {
        let _ = std::fs::remove_dir_all(d);
        std::fs::create_dir_all(d).unwrap();
    }
    assert_eq!(rsrun(&["spec", "--bundle", ours.to_str().unwrap()]).code, 0);
    let mut c = Command::new(runc);
    c.args(["spec", "--bundle", theirs.to_str().unwrap()]);
    assert_eq!(output(c).code, 0);
    let read = |d: &std::path::Path| -> serde_json::Value {
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("config.json")).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("ociVersion");
        v
    };
    assert_eq!(read(&ours), read(&theirs));
    let _ = std::fs::remove_dir_all(&dir);
}

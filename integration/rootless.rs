//! Rootless: rsrun run by a user who is not root (`rsrun-rootless`, made by the tests
//! with subordinate ids 300000-365535), with the state root in its XDG_RUNTIME_DIR, a
//! user namespace mapping it to root, no cgroup it may not write.

use super::common::engines::{rootfs_tar, run_image_args};
use super::common::{self, claim_id, make_rootfs, output, Run, RSRUN};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

pub const USER: &str = "rsrun-rootless";
const SUBIDS: &str = "300000-365535";

/// The test user's uid and gid, the user made first (without subordinate ids of
/// useradd's choice) and given 300000-365535 in /etc/subuid and /etc/subgid.
pub fn test_user() -> (u32, u32) {
    static ONCE: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();
    *ONCE.get_or_init(|| {
        let id = |flag: &str| Command::new("id").args([flag, USER]).output().unwrap();
        if !id("-u").status.success() {
            let r = output({
                let mut c = Command::new("useradd");
                c.args([
                    "-M",
                    "-s",
                    "/bin/sh",
                    "-K",
                    "SUB_UID_COUNT=0",
                    "-K",
                    "SUB_GID_COUNT=0",
                    USER,
                ]);
                c
            });
            assert_eq!(r.code, 0, "useradd {USER}: {}", r.stderr);
        }
        let want = format!("{USER}:300000:65536");
        let has = |f: &str| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .any(|l| l == want)
        };
        if !has("/etc/subuid") || !has("/etc/subgid") {
            let r = output({
                let mut c = Command::new("usermod");
                c.args(["--add-subuids", SUBIDS, "--add-subgids", SUBIDS, USER]);
                c
            });
            assert_eq!(r.code, 0, "usermod {USER}: {}", r.stderr);
        }
        let num = |flag: &str| {
            String::from_utf8_lossy(&id(flag).stdout)
                .trim()
                .parse::<u32>()
                .unwrap()
        };
        (num("-u"), num("-g"))
    })
}

/// A bundle the test user owns (its config.json from `rsrun spec --rootless` as the
/// user), a home and an XDG_RUNTIME_DIR of the user's own.
pub struct Rootless {
    pub dir: PathBuf,
    pub bundle: PathBuf,
    pub xdg: PathBuf,
    pub uid: u32,
    pub gid: u32,
    ids: std::cell::RefCell<Vec<String>>,
}

impl Rootless {
    pub fn new(name: &str) -> Rootless {
        let (uid, gid) = test_user();
        let dir = std::env::temp_dir().join(format!("rsrun-it-rl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let bundle = dir.join("bundle");
        let xdg = dir.join("xdg");
        make_rootfs(&bundle.join("rootfs"));
        std::fs::create_dir_all(&xdg).unwrap();
        for d in [&bundle, &xdg] {
            std::os::unix::fs::chown(d, Some(uid), Some(gid)).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&xdg, std::fs::Permissions::from_mode(0o700)).unwrap();
        let rl = Rootless {
            dir,
            bundle,
            xdg,
            uid,
            gid,
            ids: Default::default(),
        };
        let r = rl.rsrun(&[
            "spec",
            "--rootless",
            "--bundle",
            rl.bundle.to_str().unwrap(),
        ]);
        assert_eq!(r.code, 0, "spec --rootless: {}", r.stderr);
        rl.edit(|v| v["process"]["terminal"] = json!(false));
        rl
    }

    /// The state root rsrun picks for the user: $XDG_RUNTIME_DIR/rsrun.
    pub fn state_root(&self) -> PathBuf {
        self.xdg.join("rsrun")
    }

    /// `program ARGS` as the test user (setpriv: its uid, gid, no other groups, no
    /// capabilities) with HOME, XDG_RUNTIME_DIR and PATH only.
    pub fn as_user(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("setpriv");
        c.args([
            &format!("--reuid={}", self.uid),
            &format!("--regid={}", self.gid),
            "--clear-groups",
            "--",
            program,
        ])
        .args(args)
        .env_clear()
        .env("HOME", &self.dir)
        .env("XDG_RUNTIME_DIR", &self.xdg)
        .env("USER", USER)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .current_dir(&self.dir);
        c
    }

    /// rsrun ARGS as the test user, in a user namespace of the user's own (mapping only
    /// the user, to itself) whose limit on user namespaces below it is 0: the kernel
    /// refuses rsrun a new one (ENOSPC), as where user.max_user_namespaces is 0. The
    /// capabilities the user holds in that namespace are gone before rsrun starts.
    pub fn rsrun_where_user_namespaces_are_refused(&self, args: &[&str]) -> Run {
        if let Some(id) = args.last() {
            self.claim(id);
        }
        let map_user = format!("--map-user={}", self.uid);
        let map_group = format!("--map-group={}", self.gid);
        let mut full = vec![
            "--user",
            &map_user,
            &map_group,
            "--keep-caps",
            "sh",
            "-c",
            "echo 0 > /proc/sys/user/max_user_namespaces && exec setpriv --inh-caps=-all --ambient-caps=-all --bounding-set=-all -- \"$0\" \"$@\"",
            RSRUN,
        ];
        full.extend_from_slice(args);
        output(self.as_user("unshare", &full))
    }

    /// `id` is this test's, and removed at the end.
    fn claim(&self, id: &str) {
        claim_id(id, &self.dir);
        self.ids.borrow_mut().push(id.to_string());
    }

    /// rsrun ARGS as the test user, without --root.
    pub fn rsrun(&self, args: &[&str]) -> Run {
        let verb = args.iter().find(|a| !a.starts_with('-'));
        if let (Some(&"create") | Some(&"run"), Some(id)) = (verb, args.last()) {
            self.claim(id);
        }
        output(self.as_user(RSRUN, args))
    }

    pub fn config(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.bundle.join("config.json")).unwrap())
            .unwrap()
    }

    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut v = self.config();
        f(&mut v);
        std::fs::write(
            self.bundle.join("config.json"),
            serde_json::to_string_pretty(&v).unwrap(),
        )
        .unwrap();
    }

    pub fn run(&self, id: &str, args: &[&str]) -> Run {
        self.edit(|v| v["process"]["args"] = json!(args));
        self.rsrun(&["run", "--bundle", self.bundle.to_str().unwrap(), id])
    }

    pub fn state(&self, id: &str) -> Value {
        let r = self.rsrun(&["state", id]);
        assert_eq!(r.code, 0, "state {id}: {}", r.stderr);
        serde_json::from_str(&r.stdout).unwrap()
    }

    /// Nothing of `id` is left under the user's state root.
    pub fn assert_clean(&self, id: &str) {
        let left: Vec<_> = std::fs::read_dir(self.state_root())
            .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{id}: left under the state root: {left:?}");
    }
}

impl Drop for Rootless {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = output(self.as_user(RSRUN, &["delete", "--force", id]));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The hard limit of this process named `what` in /proc/self/limits (1048576 for
/// unlimited).
fn hard_limit(what: &str) -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits.lines().find(|l| l.starts_with(what)).unwrap();
    let hard = line[what.len()..].split_whitespace().nth(1).unwrap();
    hard.parse().unwrap_or(1 << 20)
}

/// The Uid: line of /proc/<pid>/status: real, effective, saved, filesystem.
fn host_uids(pid: i32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn spec_rootless_then_run_as_a_user() {
    let rl = Rootless::new("run");
    let v = rl.config();
    assert_eq!(v["linux"]["uidMappings"][0]["hostID"], json!(rl.uid));
    assert_eq!(v["linux"]["gidMappings"][0]["hostID"], json!(rl.gid));
    let r = rl.run(
        "rl-run1",
        &[
            "sh",
            "-c",
            "id -u; id -g; cat /proc/self/uid_map; cat /proc/self/setgroups",
        ],
    );
    assert_eq!(r.code, 0, "run: {}", r.stderr);
    let lines = common::words(&r.stdout);
    assert_eq!(lines[0], ["0"], "{}", r.stdout);
    assert_eq!(lines[1], ["0"], "{}", r.stdout);
    assert_eq!(lines[2], ["0", &rl.uid.to_string(), "1"], "{}", r.stdout);
    // One id mapped by the user: setgroups had to be denied first.
    assert_eq!(lines[3], ["deny"], "{}", r.stdout);
    rl.assert_clean("rl-run1");
    // The state root is the user's, private.
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(rl.state_root()).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o777), (rl.uid, 0o700));
}

#[test]
fn create_start_exec_kill_delete_as_a_user() {
    let rl = Rootless::new("life");
    let id = "rl-life1";
    rl.edit(|v| v["process"]["args"] = json!(["sleep", "1000"]));
    let r = rl.rsrun(&["create", "--bundle", rl.bundle.to_str().unwrap(), id]);
    assert_eq!(r.code, 0, "create: {}", r.stderr);
    assert!(rl.state_root().join(id).is_dir());
    assert_eq!(rl.state(id)["status"], "created");
    let r = rl.rsrun(&["start", id]);
    assert_eq!(r.code, 0, "start: {}", r.stderr);
    let st = rl.state(id);
    assert_eq!(st["status"], "running");
    let pid = st["pid"].as_i64().unwrap() as i32;
    // Root in the container, the user on the host.
    let u = rl.uid.to_string();
    assert_eq!(host_uids(pid), [u.as_str(); 4].join(" "));
    let r = rl.rsrun(&["exec", id, "sh", "-c", "id -u; cat /proc/1/cmdline"]);
    assert_eq!(r.code, 0, "exec: {}", r.stderr);
    assert_eq!(r.stdout, "0\nsleep\u{0}1000\u{0}");
    // No cgroup the user could write: a limit is refused by name; ps and pause say
    // that is why they cannot work (runc warns they may fail without cgroup access),
    // and the container keeps running.
    let r = rl.rsrun(&["update", "--memory", "100000000", id]);
    common::assert_one_line_error(&r, "no cgroup");
    for verb in ["ps", "pause"] {
        let r = rl.rsrun(&[verb, id]);
        common::assert_one_line_error(&r, "the container has no cgroup (rootless");
    }
    assert_eq!(rl.state(id)["status"], "running");
    // kill --all without a cgroup signals the init; its pid namespace takes the rest.
    let r = rl.rsrun(&["exec", "-d", id, "sleep", "999"]);
    assert_eq!(r.code, 0, "exec -d: {}", r.stderr);
    let r = rl.rsrun(&["kill", "--all", id, "KILL"]);
    assert_eq!(r.code, 0, "kill --all: {}", r.stderr);
    common::wait_dead(pid);
    let sleepers = Command::new("pgrep")
        .args(["-u", &u, "-f", "^sleep 999"])
        .output()
        .unwrap();
    assert!(
        sleepers.stdout.is_empty(),
        "exec'd process outlived kill --all"
    );
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while rl.state(id)["status"] != "stopped" {
        assert!(std::time::Instant::now() < end, "{id} never stopped");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let r = rl.rsrun(&["delete", id]);
    assert_eq!(r.code, 0, "delete: {}", r.stderr);
    rl.assert_clean(id);
}

/// Where the kernel refuses the user a new user namespace, `run` says so and names the
/// host settings that decide it (runc's rootless checks point at the same ones), and
/// leaves nothing.
#[test]
fn a_refused_user_namespace_names_the_host_settings() {
    let rl = Rootless::new("userns-refused");
    let id = "rl-nouserns1";
    rl.edit(|v| v["process"]["args"] = json!(["true"]));
    let r = rl.rsrun_where_user_namespaces_are_refused(&[
        "run",
        "--bundle",
        rl.bundle.to_str().unwrap(),
        id,
    ]);
    common::assert_one_line_error(&r, "the kernel refused a new user namespace");
    for needle in [
        "ENOSPC",
        "user.max_user_namespaces",
        "kernel.unprivileged_userns_clone",
    ] {
        assert!(r.stderr.contains(needle), "{needle}: {}", r.stderr);
    }
    rl.assert_clean(id);
}

#[test]
fn more_ids_are_mapped_through_newuidmap() {
    let rl = Rootless::new("multi");
    let (uid, gid) = (rl.uid, rl.gid);
    rl.edit(|v| {
        v["linux"]["uidMappings"] = json!([
            {"containerID": 0, "hostID": uid, "size": 1},
            {"containerID": 1, "hostID": 300000, "size": 65536}
        ]);
        v["linux"]["gidMappings"] = json!([
            {"containerID": 0, "hostID": gid, "size": 1},
            {"containerID": 1, "hostID": 300000, "size": 65536}
        ]);
        v["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [1001]});
        v["process"]["args"] = json!(["sleep", "1000"]);
    });
    let id = "rl-multi1";
    let r = rl.rsrun(&["run", "-d", "--bundle", rl.bundle.to_str().unwrap(), id]);
    assert_eq!(r.code, 0, "run -d: {}", r.stderr);
    let pid = rl.state(id)["pid"].as_i64().unwrap() as i32;
    // Container uid 1000 is host 300000 + 999.
    assert_eq!(host_uids(pid), ["300999"; 4].join(" "));
    let groups = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(groups.contains("Groups:\t301000"), "{groups}");
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let rows = common::words(&map);
    assert_eq!(
        rows,
        [
            vec!["0", &uid.to_string() as &str, "1"],
            vec!["1", "300000", "65536"]
        ]
    );
    let r = rl.rsrun(&["delete", "-f", id]);
    assert_eq!(r.code, 0, "delete -f: {}", r.stderr);
    common::wait_dead(pid);
    rl.assert_clean(id);
}

#[test]
fn ids_beyond_the_users_subordinate_range_name_newuidmap() {
    let rl = Rootless::new("norange");
    let uid = rl.uid;
    rl.edit(|v| {
        v["linux"]["uidMappings"] = json!([
            {"containerID": 0, "hostID": uid, "size": 1},
            {"containerID": 1, "hostID": 500000, "size": 10}
        ]);
    });
    let r = rl.run("rl-norange1", &["true"]);
    common::assert_one_line_error(&r, "newuidmap");
    assert!(r.stderr.contains("500000"), "{}", r.stderr);
    rl.assert_clean("rl-norange1");
}

#[test]
fn a_limit_without_a_writable_cgroup_is_refused_by_name() {
    let rl = Rootless::new("nocg");
    if !cgroup_unwritable_for(&rl) {
        common::skip(
            "rootless::a_limit_without_a_writable_cgroup_is_refused_by_name",
            "the test user may write a memory cgroup here",
        );
        return;
    }
    rl.edit(|v| v["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}}));
    let r = rl.run("rl-nocg1", &["true"]);
    common::assert_one_line_error(&r, "linux.resources.memory.limit");
    assert!(
        r.stderr.contains("no writable cgroup") && r.stderr.contains("memory"),
        "{}",
        r.stderr
    );
    rl.assert_clean("rl-nocg1");
    // Without a limit the same container runs, with no cgroup of its own.
    rl.edit(|v| v["linux"]["resources"] = json!(null));
    let r = rl.run("rl-nocg2", &["cat", "/proc/self/cgroup"]);
    assert_eq!(r.code, 0, "run: {}", r.stderr);
    assert!(!r.stdout.contains("rl-nocg2"), "{}", r.stdout);
}

/// Whether the test user can write no memory cgroup (the host's hierarchies are root's).
fn cgroup_unwritable_for(rl: &Rootless) -> bool {
    let r = output(rl.as_user(
        "sh",
        &[
            "-c",
            "test -w /sys/fs/cgroup/memory || test -w /sys/fs/cgroup/cgroup.procs",
        ],
    ));
    r.code != 0
}

/// A v2 cgroup delegated to the user (chowned to it, as systemd's user@.service is):
/// rsrun puts the container's cgroup beside the user's own there, and a memory limit
/// bites. Only on pure cgroup v2 (the v2 guest).
#[test]
fn delegated_v2_cgroup_holds_a_memory_limit_that_bites() {
    const NAME: &str = "rootless::delegated_v2_cgroup_holds_a_memory_limit_that_bites";
    if !common::pure_v2_or_skip(NAME) {
        return;
    }
    let rl = Rootless::new("deleg");
    // The delegated subtree: root enables memory for it; the user owns it and its
    // files, and starts in a leaf (its "own" cgroup) below it.
    let deleg = PathBuf::from(format!(
        "/sys/fs/cgroup/rsrun-it-deleg-{}",
        std::process::id()
    ));
    let leaf = deleg.join("session");
    std::fs::create_dir_all(&leaf).unwrap();
    let _cleanup = RemoveCgroup(deleg.clone());
    std::fs::write("/sys/fs/cgroup/cgroup.subtree_control", "+memory").unwrap();
    std::fs::write(deleg.join("cgroup.subtree_control"), "+memory").unwrap();
    for p in [&deleg, &leaf] {
        for f in [
            "",
            "cgroup.procs",
            "cgroup.subtree_control",
            "cgroup.threads",
        ] {
            let path = if f.is_empty() {
                p.to_path_buf()
            } else {
                p.join(f)
            };
            std::os::unix::fs::chown(&path, Some(rl.uid), Some(rl.gid)).unwrap();
        }
    }
    rl.edit(|v| {
        v["linux"]["cgroupsPath"] = json!("rl-deleg1");
        v["linux"]["resources"] = json!({"memory": {"limit": 32 << 20}});
        v["process"]["args"] = json!(["sh", "-c", "cat /proc/self/cgroup; cat /sys/fs/cgroup/memory.max 2>/dev/null; a=x; while :; do a=$a$a; done"]);
    });
    let mut c = Command::new("sh");
    let inner = rl.as_user(
        RSRUN,
        &["run", "--bundle", rl.bundle.to_str().unwrap(), "rl-deleg1"],
    );
    claim_id("rl-deleg1", &rl.dir);
    rl.ids.borrow_mut().push("rl-deleg1".into());
    // Into the leaf first (root moves the shell), then rsrun as the user from there.
    let mut argv = vec![inner.get_program().to_string_lossy().into_owned()];
    argv.extend(inner.get_args().map(|a| a.to_string_lossy().into_owned()));
    c.arg("-c")
        .arg(format!(
            "echo $$ > {}/cgroup.procs && exec env HOME={} XDG_RUNTIME_DIR={} USER={USER} \"$@\"",
            leaf.display(),
            rl.dir.display(),
            rl.xdg.display()
        ))
        .arg("sh")
        .args(&argv)
        .env_clear()
        .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin");
    let r = output(c);
    // The memory limit killed the shell that kept doubling its string.
    assert_eq!(r.code, 137, "run: {} {}", r.stdout, r.stderr);
    // In its own cgroup namespace, at the root of it, with the limit.
    assert!(r.stdout.starts_with("0::/\n33554432\n"), "{}", r.stdout);
    rl.assert_clean("rl-deleg1");
    assert!(
        !deleg.join("rl-deleg1").exists(),
        "the container's cgroup is left"
    );
}

struct RemoveCgroup(PathBuf);

impl Drop for RemoveCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(self.0.join("session"));
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Rootless Podman as the test user (its own user namespace from the user's subordinate
/// ids, rsrun inside it as root of that namespace, no --root): run, exec, stop, rm, a
/// bind volume and a named volume, each compared with runc.
#[test]
fn rootless_podman_runs_rsrun_as_runc() {
    let rl = Rootless::new("podman");
    let runc = common::runc_binary().expect("runc is required for differential tests");
    let home = rl.dir.join("home");
    let data = rl.dir.join("data");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f"), "from the host\n").unwrap();
    for p in [&home, &data, &data.join("f")] {
        std::os::unix::fs::chown(p, Some(rl.uid), Some(rl.gid)).unwrap();
    }
    let tar = rootfs_tar(&rl.dir);
    // Podman's default nofile (1048576) is above the hard limit here, which the user
    // cannot raise: the container gets the current hard limits.
    let conf = rl.dir.join("containers.conf");
    let (nofile, nproc) = (
        hard_limit("Max open files"),
        hard_limit("Max processes").min(32768),
    );
    std::fs::write(
        &conf,
        format!("[containers]\ndefault_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\n[engine]\ncgroup_manager = \"cgroupfs\"\n"),
    )
    .unwrap();
    let podman = |args: &[&str]| -> Run {
        let mut c = rl.as_user(
            "podman",
            &[
                "--root",
                home.join("storage").to_str().unwrap(),
                "--runroot",
                rl.xdg.join("runroot").to_str().unwrap(),
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ],
        );
        c.env("HOME", &home)
            .env("CONTAINERS_CONF", &conf)
            .args(args);
        output(c)
    };
    let r = podman(&["import", tar.to_str().unwrap(), "localhost/bb"]);
    assert_eq!(r.code, 0, "podman import: {}", r.stderr);
    let volume = format!("{}:/data", data.display());
    let scenario = |rt: &str, n: usize| -> Vec<(i32, String)> {
        let name = format!("rl-pm{n}");
        let run = |extra: &[&str], cmd: &str| -> (i32, String) {
            let mut opts = vec!["--rm", "--network", "none"];
            opts.extend_from_slice(extra);
            let r = podman(&run_image_args(&opts, rt, &["sh", "-c", cmd]));
            (r.code, r.stdout)
        };
        let mut out = vec![
            run(&[], "id -u; cat /proc/self/uid_map | wc -l; exit 3"),
            run(
                &["-v", &volume],
                "cat /data/f; echo new > /data/n; stat -c \"%u:%g %s %n\" /data/*",
            ),
            run(
                &["-v", "rl-pmvol:/v"],
                "echo x > /v/x; stat -c \"%u:%g %s %n\" /v/*",
            ),
        ];
        let r = podman(&run_image_args(
            &["-d", "--name", &name, "--network", "none"],
            rt,
            &["sleep", "1000"],
        ));
        assert_eq!(r.code, 0, "podman run -d ({rt}): {}", r.stderr);
        let r = podman(&["exec", &name, "sh", "-c", "echo exec-ok; id -u; exit 2"]);
        out.push((r.code, r.stdout));
        let r = podman(&["stop", "-t", "1", &name]);
        out.push((r.code, r.stdout.replace(&name, "NAME")));
        let r = podman(&["rm", &name]);
        out.push((r.code, r.stdout.replace(&name, "NAME")));
        let _ = podman(&["volume", "rm", "rl-pmvol"]);
        let _ = std::fs::remove_file(data.join("n"));
        out
    };
    let with_runc = scenario(runc, 0);
    let with_rsrun = scenario(RSRUN, 1);
    assert_eq!(with_rsrun, with_runc, "rootless Podman: rsrun vs runc");
    // The container was root in Podman's user namespace, its whole map there.
    assert_eq!(with_rsrun[0], (3, "0\n2\n".to_string()));
    assert!(
        with_rsrun[1].1.starts_with("from the host\n"),
        "{:?}",
        with_rsrun[1]
    );
    assert_eq!(with_rsrun[3], (2, "exec-ok\n0\n".to_string()));
    // Podman passes no --root: rsrun kept its state in the user's runtime dir, and left
    // nothing there.
    rl.assert_clean("rl-pm1");
    let _ = podman(&["system", "reset", "--force"]);
}

/// What needs host privilege is done another way: a sysfs refused (no network namespace
/// of its own) is the host's /sys bound read-only, device nodes are the host's bound,
/// an oomScoreAdj below the current one is not applied (a warning says so).
#[test]
fn what_needs_host_privilege_is_done_without_it() {
    let rl = Rootless::new("noprivs");
    let own_adj = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
    let below = own_adj.trim().parse::<i32>().unwrap() - 100;
    rl.edit(|v| {
        let mounts = v["mounts"].as_array_mut().unwrap();
        let sys = mounts
            .iter_mut()
            .find(|m| m["destination"] == "/sys")
            .unwrap();
        *sys = json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"]});
        v["process"]["oomScoreAdj"] = json!(below);
    });
    let r = rl.run(
        "rl-noprivs1",
        &[
            "sh",
            "-c",
            "grep -c ' /sys sysfs ro,' /proc/mounts; test -d /sys/class/net && echo net; \
             echo x > /dev/null && head -c 4 /dev/zero | wc -c; cat /proc/self/oom_score_adj",
        ],
    );
    assert_eq!(r.code, 0, "run: {}", r.stderr);
    assert_eq!(r.stdout, format!("1\nnet\n4\n{}", own_adj), "{}", r.stderr);
    assert!(r.stderr.contains("oomScoreAdj"), "{}", r.stderr);
    rl.assert_clean("rl-noprivs1");
}

/// An id-mapped bind needs privilege over the source's filesystem, which a user does not
/// hold: refused before anything is made, naming the mount, as runc refuses it ("id-mapped
/// mounts are not supported for rootless containers"); with and without mappings of its
/// own.
#[test]
fn an_idmapped_bind_is_refused_by_name() {
    let rl = Rootless::new("idmap");
    let src = rl.dir.join("src");
    std::fs::create_dir(&src).unwrap();
    std::os::unix::fs::chown(&src, Some(rl.uid), Some(rl.gid)).unwrap();
    std::fs::create_dir(rl.bundle.join("rootfs/mapped")).unwrap();
    let uid = rl.uid;
    for (id, maps) in [("rl-idmap1", true), ("rl-idmap2", false)] {
        rl.edit(|v| {
            let mut m = json!({"destination": "/mapped", "type": "bind",
                "source": src.to_str().unwrap(), "options": ["bind", "idmap"]});
            if maps {
                m["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
                m["gidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
            }
            let mounts = v["mounts"].as_array_mut().unwrap();
            mounts.retain(|m| m["destination"] != "/mapped");
            mounts.push(m);
        });
        let r = rl.run(id, &["true"]);
        common::assert_one_line_error(&r, "rootless");
        assert!(r.stderr.contains("mounts["), "{}", r.stderr);
        rl.assert_clean(id);
    }
}

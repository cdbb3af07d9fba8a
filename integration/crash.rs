//! Crash consistency: whatever moment rsrun is killed at, and whatever the container
//! left running or made, `delete --force` removes everything and the id can be used
//! again. Also: the state root is private whatever the umask.

use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Pids of every process whose command line mentions `needle` (a test's own --root, or a
/// marker argument of its container processes).
fn processes_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for ent in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = ent.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.rsplit(')').next().unwrap_or("").trim().starts_with('Z'))
            .unwrap_or(true);
        if cmd.contains(needle) && !zombie {
            out.push(pid);
        }
    }
    out
}

/// Every cgroup directory below `id`'s cgroups (sub-cgroups included), in any hierarchy.
fn cgroup_dirs_of(id: &str) -> Vec<String> {
    let cg = rsrun::cgroups::Cgroup::resolve(None, id).unwrap();
    cg.dirs
        .iter()
        .filter(|d| d.path.exists())
        .map(|d| d.path.display().to_string())
        .collect()
}

/// A small deterministic generator, seeded from the clock (the seed is printed so a
/// failing run can be repeated with RSRUN_CRASH_SEED).
struct Rng(u64);
impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("RSRUN_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("crash test seed: RSRUN_CRASH_SEED={seed}");
        Rng(seed | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// `rsrun ARGS` must succeed.
fn ok(env: &Env, args: &[&str]) {
    let r = env.rsrun(args);
    assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
}

/// Start `rsrun ARGS` and SIGKILL it after `delay` (if it is still running).
pub(crate) fn kill_after(env: &Env, args: &[&str], delay: Duration) {
    let mut child = env
        .cmd(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let end = Instant::now() + delay;
    while Instant::now() < end {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// After any kill, `state` and `list` still answer for the id whenever its directory
/// exists, and `delete --force` removes everything. Returns the status seen before the
/// delete (`absent` when there was no directory).
fn check_recoverable(env: &Env, id: &str) -> String {
    let exists = env.root.join(id).exists();
    let st = env.rsrun(&["state", id]);
    let mut seen = "absent".to_string();
    if exists {
        assert_eq!(st.code, 0, "state of a half-made {id}: {}", st.stderr);
        let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
        seen = v["status"].as_str().unwrap().to_string();
        let list = env.rsrun(&["list", "-q"]);
        assert!(
            list.stdout.lines().any(|l| l == id),
            "list omits the half-made {id}: {:?}",
            list.stdout
        );
    }
    let r = env.rsrun(&["delete", "--force", id]);
    assert_eq!(r.code, 0, "delete --force {id}: {}", r.stderr);
    assert!(
        !env.root.join(id).exists(),
        "delete --force left {id}'s directory"
    );
    assert_eq!(
        cgroup_dirs_of(id),
        Vec::<String>::new(),
        "cgroups of {id} left"
    );
    seen
}

#[test]
fn sigkill_at_any_moment_leaves_nothing_delete_cannot_remove() {
    let env = Env::new("crash");
    env.set_args(&["sleep", "7770001"]);
    let bundle = env.bundle.to_str().unwrap().to_string();
    let root = env.root.to_str().unwrap().to_string();
    let runs: u64 = std::env::var("RSRUN_CRASH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    // How long each command takes here uninterrupted: kills land uniformly within it.
    let timed = |args: &[&str]| {
        let t = Instant::now();
        assert_eq!(env.rsrun(args).code, 0, "{args:?}");
        t.elapsed()
    };
    let took = [
        timed(&["create", "--bundle", &bundle, "t0"]),
        timed(&["start", "t0"]),
        timed(&["exec", "--detach", "t0", "sleep", "7770002"]),
        {
            assert_eq!(env.create("t1").code, 0);
            timed(&["delete", "--force", "t1"])
        },
    ];
    assert_eq!(env.rsrun(&["delete", "--force", "t0"]).code, 0);
    eprintln!("uninterrupted create/start/exec/delete: {took:?}");
    let mut rng = Rng::new();
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..runs {
        let id = format!("k{}", i % 4);
        let op = i as usize % 4;
        let max = took[op].as_micros() as u64 * 5 / 4 + 1;
        let delay = Duration::from_micros(rng.below(max));
        match op {
            0 => kill_after(&env, &["create", "--bundle", &bundle, &id], delay),
            1 => {
                ok(&env, &["create", "--bundle", &bundle, &id]);
                kill_after(&env, &["start", &id], delay);
            }
            2 => {
                ok(&env, &["create", "--bundle", &bundle, &id]);
                ok(&env, &["start", &id]);
                kill_after(&env, &["exec", "--detach", &id, "sleep", "7770002"], delay);
            }
            _ => {
                ok(&env, &["create", "--bundle", &bundle, &id]);
                kill_after(&env, &["delete", "--force", &id], delay);
            }
        }
        let status = check_recoverable(&env, &id);
        *seen
            .entry(format!(
                "{} -> {status}",
                ["create", "start", "exec", "delete"][i as usize % 4]
            ))
            .or_default() += 1;
        // The id is reusable at once.
        let r = env.create(&id);
        assert_eq!(r.code, 0, "re-create {id} after a kill: {}", r.stderr);
        assert_eq!(env.rsrun(&["delete", "--force", &id]).code, 0);
    }
    eprintln!("killed command -> status left: {seen:?}");
    let left: Vec<_> = std::fs::read_dir(&env.root)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left under --root: {left:?}");
    for id in ["t0", "t1", "k0", "k1", "k2", "k3"] {
        assert_eq!(cgroup_dirs_of(id), Vec::<String>::new());
    }
    let procs = processes_mentioning("777000");
    assert!(procs.is_empty(), "container processes left: {procs:?}");
    let procs = processes_mentioning(&root);
    assert!(procs.is_empty(), "rsrun processes (inits) left: {procs:?}");
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.contains(&bundle), "a mount of the bundle is left");
}

/// Create and start `id`, and return the pid of its process whose command line has
/// `marker`, once it runs.
fn started(env: &Env, id: &str, marker: &str) -> i32 {
    assert_eq!(env.create(id).code, 0);
    assert_eq!(env.rsrun(&["start", id]).code, 0);
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(p) = processes_mentioning(marker).first() {
            return *p;
        }
        assert!(Instant::now() < end, "{marker} never started in {id}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn delete_kills_processes_that_outlive_a_stopped_init() {
    let env = Env::new("outlive");
    env.edit(|v| {
        let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
    });
    env.set_args(&["sh", "-c", "sleep 7770011 & echo started; exit 0"]);
    started(&env, "ol1", "7770011");
    let end = Instant::now() + Duration::from_secs(10);
    while env.status("ol1") != "stopped" {
        assert!(
            Instant::now() < end,
            "the container never reached its state"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let left = processes_mentioning("7770011");
    let r = env.rsrun(&["delete", "ol1"]);
    assert_eq!(r.code, 0, "delete: {}", r.stderr);
    for p in left {
        wait_dead(p);
    }
    env.assert_clean("ol1", None);
}

#[test]
fn delete_removes_sub_cgroups_and_their_processes() {
    let env = Env::new("subcg");
    env.set_args(&["sh", "-c", "sleep 7770021 & sleep 7770022"]);
    let moved = started(&env, "sc1", "7770021");
    // What Docker-in-Docker, systemd or a kubelet in the container does: a sub-cgroup in
    // every hierarchy (two levels deep), with a process moved into it.
    let cg = rsrun::cgroups::Cgroup::resolve(None, "sc1").unwrap();
    for d in &cg.dirs {
        let sub = d.path.join("sub/deeper");
        std::fs::create_dir_all(&sub).unwrap();
        if d.controllers.contains("cpuset") {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                for dir in [d.path.join("sub"), sub.clone()] {
                    let v = std::fs::read_to_string(dir.parent().unwrap().join(f)).unwrap();
                    std::fs::write(dir.join(f), v.trim()).unwrap();
                }
            }
        }
        std::fs::write(sub.join("cgroup.procs"), moved.to_string()).unwrap();
    }
    // ps and kill --all see the whole tree.
    let ps = env.rsrun(&["ps", "--format", "json", "sc1"]);
    assert_eq!(ps.code, 0, "{}", ps.stderr);
    let pids: Vec<i64> = serde_json::from_str(&ps.stdout).unwrap();
    assert!(
        pids.contains(&(moved as i64)),
        "ps misses {moved}: {pids:?}"
    );
    let r = env.rsrun(&["delete", "--force", "sc1"]);
    assert_eq!(r.code, 0, "delete: {}", r.stderr);
    wait_dead(moved);
    for d in &cg.dirs {
        assert!(!d.path.exists(), "{} left", d.path.display());
    }
    env.assert_clean("sc1", None);
}

#[test]
fn kill_all_reaches_processes_in_sub_cgroups() {
    let env = Env::new("killall-sub");
    env.set_args(&["sh", "-c", "sleep 7770031 & sleep 7770032"]);
    let moved = started(&env, "ka1", "7770031");
    let cg = rsrun::cgroups::Cgroup::resolve(None, "ka1").unwrap();
    let v2 = cg.mode == rsrun::cgroups::Mode::V2;
    let d = cg
        .dirs
        .iter()
        .find(|d| if v2 { true } else { d.controllers == "pids" })
        .unwrap();
    std::fs::create_dir(d.path.join("sub")).unwrap();
    std::fs::write(d.path.join("sub/cgroup.procs"), moved.to_string()).unwrap();
    let r = env.rsrun(&["kill", "--all", "ka1", "KILL"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    wait_dead(moved);
    assert_eq!(env.rsrun(&["delete", "--force", "ka1"]).code, 0);
    env.assert_clean("ka1", None);
}

#[test]
fn a_directory_without_state_is_listed_stopped_and_deleted() {
    // What a create killed right after its mkdir, or a delete killed before its rmdir,
    // leaves: an empty container directory.
    let env = Env::new("remnant");
    std::fs::create_dir_all(env.root.join("rm1")).unwrap();
    let st = env.state("rm1");
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["pid"], 0);
    let list = env.rsrun(&["list", "-q"]);
    assert!(list.stdout.lines().any(|l| l == "rm1"), "{}", list.stdout);
    let r = env.rsrun(&["create", "--bundle", env.bundle.to_str().unwrap(), "rm1"]);
    assert_one_line_error(&r, "already exists");
    assert_eq!(env.rsrun(&["delete", "rm1"]).code, 0);
    assert!(!env.root.join("rm1").exists());
    assert_eq!(env.create("rm1").code, 0);
    assert_eq!(env.rsrun(&["delete", "--force", "rm1"]).code, 0);
    env.assert_clean("rm1", None);
}

#[test]
fn churn_leaves_nothing_behind() {
    let env = Env::new("churn");
    env.set_args(&["true"]);
    let n: usize = std::env::var("RSRUN_CHURN")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let bundle = env.bundle.to_str().unwrap().to_string();
    let root = env.root.to_str().unwrap().to_string();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= n {
                    return;
                }
                let id = format!("ch{i}");
                let r = rsrun(&["--root", &root, "run", "--bundle", &bundle, &id]);
                assert_eq!(r.code, 0, "run {id}: {}", r.stderr);
            });
        }
    });
    let left: Vec<_> = std::fs::read_dir(&env.root)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left under --root: {left:?}");
    for i in 0..n {
        assert_eq!(cgroup_dirs_of(&format!("ch{i}")), Vec::<String>::new());
    }
    assert!(processes_mentioning(&root).is_empty());
}

#[test]
fn state_is_private_whatever_the_umask() {
    let env = Env::new("private");
    // A --root that exists with loose modes is tightened.
    std::fs::create_dir_all(&env.root).unwrap();
    std::fs::set_permissions(&env.root, std::fs::Permissions::from_mode(0o777)).unwrap();
    let cmd = format!(
        "umask 000; exec {RSRUN} --root {} create --bundle {} pv1",
        env.root.display(),
        env.bundle.display()
    );
    let mut c = std::process::Command::new("sh");
    c.args(["-c", &cmd]);
    let r = output(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env.root), 0o700, "--root");
    let dir = env.root.join("pv1");
    assert_eq!(mode(&dir), 0o700, "container directory");
    for ent in std::fs::read_dir(&dir).unwrap().flatten() {
        let ft = ent.file_type().unwrap();
        if ft.is_file() {
            assert_eq!(mode(&ent.path()), 0o600, "{}", ent.path().display());
        }
    }
    assert!(dir.join("state.json").exists() && dir.join("config.json").exists());
    assert_eq!(env.rsrun(&["delete", "--force", "pv1"]).code, 0);
    env.assert_clean("pv1", None);
}

/// A container whose own cgroup directory existed before it (made by an engine, or left
/// by a crash) gets a fresh one after delete: the directory is removed, and a second
/// container on the same path starts (some kernels kill every process cloned into a
/// cgroup that once had `cgroup.kill` written).
#[test]
fn a_pre_existing_own_cgroup_is_removed_and_reusable() {
    let env = Env::new("precg");
    env.edit(|v| v["linux"]["cgroupsPath"] = serde_json::json!("/rsrun-it-precg"));
    let cg = rsrun::cgroups::Cgroup::resolve(Some("/rsrun-it-precg"), "x").unwrap();
    for d in &cg.dirs {
        std::fs::create_dir_all(&d.path).unwrap();
    }
    for id in ["pc1", "pc2"] {
        let r = env.run(id, &["sh", "-c", "sleep 7770041 & echo up"]);
        assert_eq!(r.code, 0, "{id}: {}", r.stderr);
        assert_eq!(r.stdout, "up\n");
        for d in &cg.dirs {
            assert!(!d.path.exists(), "{} left after {id}", d.path.display());
        }
    }
    assert!(processes_mentioning("7770041").is_empty());
}

/// A paused container is deleted at once by `delete --force` (its frozen processes are
/// thawed to die), running or still created, and nothing is left.
#[test]
fn delete_force_of_a_paused_container() {
    let env = Env::new("delpaused");
    env.set_args(&["sh", "-c", "sleep 7770051 & sleep 7770052"]);
    let pid = started(&env, "dp1", "7770051");
    assert_eq!(env.rsrun(&["pause", "dp1"]).code, 0);
    assert_eq!(env.status("dp1"), "paused");
    let t = Instant::now();
    let r = env.rsrun(&["delete", "--force", "dp1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    wait_dead(pid);
    env.assert_clean("dp1", None);
    env.set_args(&["sleep", "7770053"]);
    assert_eq!(env.create("dp2").code, 0);
    assert_eq!(env.rsrun(&["pause", "dp2"]).code, 0);
    let r = env.rsrun(&["delete", "--force", "dp2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    env.assert_clean("dp2", None);
    assert!(processes_mentioning("777005").is_empty());
}

/// A cgroup that already holds another container's processes is refused (delete kills
/// everything in a container's cgroup: it must be the container's alone).
#[test]
fn a_cgroup_holding_another_containers_processes_is_refused() {
    let env = Env::new("sharedcg");
    env.edit(|v| v["linux"]["cgroupsPath"] = serde_json::json!("/rsrun-it-sharedcg"));
    env.set_args(&["sleep", "7770061"]);
    let pid = started(&env, "sg1", "7770061");
    let r = env.create("sg2");
    assert_one_line_error(&r, "container's cgroup is not empty");
    assert!(!env.root.join("sg2").exists());
    // The first container is untouched.
    assert_eq!(env.status("sg1"), "running");
    assert_eq!(env.rsrun(&["delete", "--force", "sg1"]).code, 0);
    wait_dead(pid);
    let cg = rsrun::cgroups::Cgroup::resolve(Some("/rsrun-it-sharedcg"), "x").unwrap();
    for d in &cg.dirs {
        assert!(!d.path.exists(), "{} left", d.path.display());
    }
}

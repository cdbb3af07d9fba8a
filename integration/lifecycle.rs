//! Every state transition, exit status and signal propagation, and cleanup.

use crate::common::*;

const WAIT_TERM: &[&str] = &[
    "sh",
    "-c",
    "trap 'exit 0' TERM; while true; do sleep 0.05; done",
];

#[test]
fn create_start_kill_delete() {
    let env = Env::new("lifecycle");
    env.set_args(WAIT_TERM);
    let pidfile = env.dir.join("init.pid");
    let r = env.rsrun(&[
        "create",
        "--bundle",
        env.bundle.to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        "lc1",
    ]);
    assert_eq!(r.code, 0, "create: {}", r.stderr);
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();

    let st = env.state("lc1");
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], "lc1");
    assert_eq!(st["pid"], pid);
    assert_eq!(st["bundle"], env.bundle.to_str().unwrap());
    assert_eq!(st["rootfs"], env.bundle.join("rootfs").to_str().unwrap());
    assert!(st["ociVersion"].as_str().unwrap().starts_with("1."));
    assert!(st["created"].as_str().unwrap().ends_with('Z'));
    // The waiting init has not exec'd yet: it is still rsrun.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "rsrun");

    // A created container cannot be started twice, and start moves it to running.
    let r = env.rsrun(&["start", "lc1"]);
    assert_eq!(r.code, 0, "start: {}", r.stderr);
    assert_eq!(env.status("lc1"), "running");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sh");
    let r = env.rsrun(&["start", "lc1"]);
    assert_one_line_error(&r, "already running");

    // list shows it
    let r = env.rsrun(&["list", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(list[0]["id"], "lc1");
    assert_eq!(list[0]["status"], "running");
    let r = env.rsrun(&["list", "-q"]);
    assert_eq!(r.stdout, "lc1\n");

    // delete without --force refuses a running container
    let r = env.rsrun(&["delete", "lc1"]);
    assert_one_line_error(&r, "not stopped");
    assert_eq!(env.status("lc1"), "running");

    // TERM (the default signal) reaches the init, which exits.
    let r = env.rsrun(&["kill", "lc1"]);
    assert_eq!(r.code, 0, "kill: {}", r.stderr);
    env.wait_status("lc1", "stopped");
    assert_eq!(env.state("lc1")["pid"], 0);
    let r = env.rsrun(&["kill", "lc1", "KILL"]);
    assert_one_line_error(&r, "not running");

    let r = env.rsrun(&["delete", "lc1"]);
    assert_eq!(r.code, 0, "delete: {}", r.stderr);
    env.assert_clean("lc1", Some(pid));
    let r = env.rsrun(&["state", "lc1"]);
    assert_one_line_error(&r, "does not exist");
    // delete --force of a container that does not exist is not an error (runc).
    assert_eq!(env.rsrun(&["delete", "--force", "lc1"]).code, 0);
}

/// The state carries the config's annotations, keys in order as runc prints them (Go's
/// encoding/json sorts a map's keys), so two calls print the same document.
#[test]
fn state_prints_annotations_with_sorted_keys() {
    let env = Env::new("annotations");
    env.set_args(WAIT_TERM);
    let keys = [
        "io.z", "io.b", "org.q", "com.a", "io.m", "net.c", "io.k", "dev.y",
    ];
    env.edit(|v| {
        v["annotations"] = keys
            .iter()
            .map(|k| (k.to_string(), serde_json::Value::from(format!("v-{k}"))))
            .collect::<serde_json::Map<_, _>>()
            .into();
    });
    let r = env.create("an1");
    assert_eq!(r.code, 0, "create: {}", r.stderr);
    let r = env.rsrun(&["state", "an1"]);
    assert_eq!(r.code, 0, "state: {}", r.stderr);
    let st: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    for k in keys {
        assert_eq!(st["annotations"][k], format!("v-{k}"), "{}", r.stdout);
    }
    let at = |k: &str| r.stdout.find(&format!("\"{k}\"")).unwrap();
    let mut sorted = keys;
    sorted.sort();
    assert!(
        sorted.windows(2).all(|w| at(w[0]) < at(w[1])),
        "keys not sorted: {}",
        r.stdout
    );
    env.delete_and_assert_clean("an1");
}

#[test]
fn delete_of_created_container_kills_it() {
    let env = Env::new("delcreated");
    env.set_args(&["sleep", "100"]);
    assert_eq!(env.create("dc1").code, 0);
    let pid = env.state("dc1")["pid"].as_i64().unwrap() as i32;
    let r = env.rsrun(&["delete", "dc1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    env.assert_clean("dc1", Some(pid));
}

#[test]
fn delete_force_kills_every_process() {
    let env = Env::new("delforce");
    env.set_args(&["sh", "-c", "sleep 100 & sleep 100 & wait"]);
    assert_eq!(env.create("df1").code, 0);
    assert_eq!(env.rsrun(&["start", "df1"]).code, 0);
    let pid = env.state("df1")["pid"].as_i64().unwrap() as i32;
    let r = env.rsrun(&["delete", "--force", "df1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    env.assert_clean("df1", Some(pid));
}

#[test]
fn run_returns_exit_status() {
    let env = Env::new("exitstatus");
    let r = env.run("es1e", &["sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(r.stdout, "out\n");
    assert_eq!(r.stderr, "err\n");
    env.assert_clean("es1e", None);
}

#[test]
fn run_reports_death_by_signal_as_128_plus_n() {
    let env = Env::new("sigexit");
    env.set_args(&["sleep", "100"]);
    let child = env
        .cmd(&["run", "--bundle", env.bundle.to_str().unwrap(), "se1"])
        .spawn()
        .unwrap();
    env.wait_status("se1", "running");
    assert_eq!(env.rsrun(&["kill", "se1", "9"]).code, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(137));
    env.assert_clean("se1", None);
}

#[test]
fn run_forwards_signals_to_the_container() {
    let env = Env::new("sigfwd");
    env.set_args(&[
        "sh",
        "-c",
        "trap 'exit 3' USR1; echo ready; while true; do sleep 0.05; done",
    ]);
    let mut child = env
        .cmd(&["run", "--bundle", env.bundle.to_str().unwrap(), "sf1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The trap is set once the container says so.
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "ready\n");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    env.assert_clean("sf1", None);
}

#[test]
fn run_detach_then_kill_all() {
    let env = Env::new("detach");
    env.set_args(&["sh", "-c", "sleep 100 & sleep 100"]);
    let r = env.rsrun(&[
        "run",
        "-d",
        "--bundle",
        env.bundle.to_str().unwrap(),
        "rd1d",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(env.status("rd1d"), "running");
    assert_eq!(env.rsrun(&["kill", "--all", "rd1d", "KILL"]).code, 0);
    env.wait_status("rd1d", "stopped");
    assert_eq!(env.rsrun(&["delete", "rd1d"]).code, 0);
    env.assert_clean("rd1d", None);
}

#[test]
fn pause_and_resume() {
    let env = Env::new("pause");
    env.set_args(&["sleep", "100"]);
    env.run_detached("pr1");
    assert_eq!(env.rsrun(&["pause", "pr1"]).code, 0);
    assert_eq!(env.status("pr1"), "paused");
    let pid = env.state("pr1")["pid"].as_i64().unwrap();
    let cg = rsrun::cgroups::Cgroup::resolve(None, "pr1").unwrap();
    assert!(
        rsrun::cgroups::freezer::is_frozen(&cg),
        "the kernel does not report the cgroup frozen"
    );
    assert_one_line_error(&env.rsrun(&["pause", "pr1"]), "not running");
    assert_eq!(env.rsrun(&["resume", "pr1"]).code, 0);
    assert_eq!(env.status("pr1"), "running");
    assert_one_line_error(&env.rsrun(&["resume", "pr1"]), "not paused");
    assert_eq!(env.rsrun(&["delete", "-f", "pr1"]).code, 0);
    env.assert_clean("pr1", Some(pid as i32));
}

#[test]
fn container_is_placed_in_its_cgroup() {
    let env = Env::new("cgplace");
    let r = env.run("cg1", &["cat", "/proc/self/cgroup"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // With a cgroup namespace the container sees itself at the root of every hierarchy.
    for line in r.stdout.lines() {
        assert!(line.ends_with(":/"), "{line}");
    }
    env.edit(|v| {
        let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "cgroup");
    });
    let r = env.run("cg2", &["cat", "/proc/self/cgroup"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Every hierarchy rsrun manages (v1 controllers, the v2 one) shows the container's own
    // cgroup, named after its id.
    let managed = rsrun::cgroups::Cgroup::resolve(None, "cg2").unwrap();
    for d in &managed.dirs {
        let line = r
            .stdout
            .lines()
            .find(|l| l.split(':').nth(1) == Some(d.controllers.as_str()))
            .unwrap_or_else(|| panic!("no line for {:?} in {}", d.controllers, r.stdout));
        assert!(line.ends_with("/cg2"), "{line}");
    }
    env.assert_clean("cg2", None);
}

#[test]
fn version_has_runc_shape() {
    let r = rsrun(&["--version"]);
    assert_eq!(r.code, 0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("rsrun version "), "{}", r.stdout);
    assert!(lines.iter().any(|l| l.starts_with("commit: ")));
    assert!(lines.iter().any(|l| l.starts_with("spec: 1.")));
}

#[test]
fn json_log_gets_the_error() {
    let env = Env::new("jsonlog");
    let log = env.dir.join("log.json");
    let r = env.rsrun_json_log(&log, &["start", "nope"]);
    assert_ne!(r.code, 0);
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(last["msg"].as_str().unwrap().contains("does not exist"));
    assert!(last["time"].is_string());
}

#[test]
fn json_log_carries_errors_from_the_container_init() {
    let env = Env::new("jsonlog-init");
    env.set_args(&["no-such-binary"]);
    let log = env.dir.join("log.json");
    let r = env.rsrun_json_log(
        &log,
        &["create", "--bundle", env.bundle.to_str().unwrap(), "jl1"],
    );
    assert_ne!(r.code, 0);
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(
        last["msg"]
            .as_str()
            .unwrap()
            .contains("executable file not found"),
        "{last}"
    );
    env.assert_clean("jl1", None);
}

#[test]
fn checkpoint_and_restore_answer_help() {
    // Engines probe `checkpoint --help` to learn whether the runtime can checkpoint.
    for verb in ["checkpoint", "restore"] {
        let r = rsrun(&[verb, "--help"]);
        assert_eq!(r.code, 0, "{verb} --help: {}", r.stderr);
        assert!(
            r.stdout.contains("--image-path"),
            "{verb} --help: {}",
            r.stdout
        );
    }
}

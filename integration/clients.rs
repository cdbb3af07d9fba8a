//! Real engines drive rsrun unchanged: containerd 1.6 through its runc shim
//! (`ctr --runc-binary`), with an image built locally with umoci (no registry).

use crate::common::engines::{
    fresh_dir, import_image, podman_relays_notify_as_with_runc, run_image_args, Containerd,
    Dockerd, Podman,
};
use crate::common::*;
use std::path::PathBuf;
use std::time::Duration;

#[test]
fn containerd_runs_rsrun() {
    let dir = fresh_dir("containerd");
    let ctd = Containerd::start(&dir);
    import_image(&ctd, &dir);
    let rb = ["--runc-binary", RSRUN];

    // run: output and exit status
    let mut args = vec!["run", "--rm"];
    args.extend(rb);
    args.extend([
        "localhost/bb:latest",
        "c1",
        "sh",
        "-c",
        "echo hello; exit 3",
    ]);
    let r = ctd.ctr(&args);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(r.stdout, "hello\n");

    // a long-running task
    let mut args = vec!["run", "-d"];
    args.extend(rb);
    args.extend(["localhost/bb:latest", "c2", "sleep", "1000"]);
    assert_eq!(ctd.ctr(&args).code, 0);
    // It is rsrun's state that the shim keeps (runc's has no start_time).
    let shim_root = PathBuf::from("/run/containerd/runc").join(Containerd::ns());
    let state = shim_root.join("c2/state.json");
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert!(st["start_time"].is_u64(), "not rsrun's state: {st}");
    let init_pid = st["pid"].as_i64().unwrap();

    // exec without a terminal
    let r = ctd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "c2",
        "sh",
        "-c",
        "echo exec-ok; exit 5",
    ]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert_eq!(r.stdout, "exec-ok\n");
    // exec with a terminal (console socket from the shim)
    let r = ctd.ctr_tty(
        &["task", "exec", "-t", "--exec-id", "e2", "c2", "sh"],
        "tty; exit 4\n",
    );
    assert!(r.stdout.contains("/dev/pts/"), "{} {}", r.stdout, r.stderr);
    assert_eq!(r.code, 4);
    // ps
    let r = ctd.ctr(&["task", "ps", "c2"]);
    assert!(r.stdout.contains(&init_pid.to_string()), "{}", r.stdout);
    // pause / resume
    assert_eq!(ctd.ctr(&["task", "pause", "c2"]).code, 0);
    assert!(ctd.ctr(&["task", "ls"]).stdout.contains("PAUSED"));
    assert_eq!(ctd.ctr(&["task", "resume", "c2"]).code, 0);
    assert!(ctd.ctr(&["task", "ls"]).stdout.contains("RUNNING"));
    // kill, delete
    assert_eq!(ctd.ctr(&["task", "kill", "-s", "KILL", "c2"]).code, 0);
    wait_until("the task to stop", Duration::from_secs(10), || {
        ctd.ctr(&["task", "ls"]).stdout.contains("STOPPED")
    });
    assert_eq!(ctd.ctr(&["task", "delete", "c2"]).code, 0);
    assert_eq!(ctd.ctr(&["container", "delete", "c2"]).code, 0);
    assert!(!state.exists(), "rsrun state left behind");
    wait_dead(init_pid as i32);

    // run with a terminal
    let mut args = vec!["run", "--rm", "-t"];
    args.extend(rb);
    args.extend(["localhost/bb:latest", "c3", "sh"]);
    let r = ctd.ctr_tty(&args, "tty; exit 6\n");
    assert!(r.stdout.contains("/dev/pts/0"), "{} {}", r.stdout, r.stderr);
    assert_eq!(r.code, 6);
    drop(ctd);
    let _ = std::fs::remove_dir(&shim_root);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn docker_runs_rsrun() {
    let dir = fresh_dir("docker");
    let dk = Dockerd::with_image(&dir, "cgroupfs");

    // run --rm: output, exit status, Docker's default seccomp profile in force
    let r = dk.docker(&run_image_args(
        &["--rm"],
        "rsrun",
        &["sh", "-c", "grep Seccomp: /proc/self/status; exit 3"],
    ));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(r.stdout, "Seccomp:\t2\n");

    // a long-running container: exec, exec -it, top, update, pause/unpause, stop, rm -f
    let r = dk.docker(&run_image_args(
        &["-d", "--name", "d1"],
        "rsrun",
        &["sleep", "1000"],
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let id = r.stdout.trim().to_string();
    let r = dk.docker(&["exec", "d1", "sh", "-c", "echo exec-ok; exit 2"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (2, "exec-ok\n"),
        "{}",
        r.stderr
    );
    let r = dk.docker_tty(&["exec", "-it", "d1", "sh"], "tty; exit 4\n");
    assert!(r.stdout.contains("/dev/pts/"), "{} {}", r.stdout, r.stderr);
    assert_eq!(r.code, 4);
    let r = dk.docker(&["top", "d1"]);
    assert!(r.stdout.contains("sleep 1000"), "{} {}", r.stdout, r.stderr);
    let r = dk.docker(&["update", "--memory", "64m", "--memory-swap", "128m", "d1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let cg = rsrun::cgroups::Cgroup::resolve(Some(&format!("/docker/{id}")), &id).unwrap();
    let mem = if cg.mode == rsrun::cgroups::Mode::V2 {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    let dir_mem = cg
        .dirs
        .iter()
        .find(|d| cg.mode == rsrun::cgroups::Mode::V2 || d.controllers == "memory")
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir_mem.path.join(mem))
            .unwrap()
            .trim(),
        "67108864"
    );
    assert_eq!(dk.docker(&["pause", "d1"]).code, 0);
    assert!(dk
        .docker(&["ps", "--format", "{{.Status}}"])
        .stdout
        .contains("Paused"));
    assert_eq!(dk.docker(&["unpause", "d1"]).code, 0);
    assert_eq!(dk.docker(&["stop", "-t", "1", "d1"]).code, 0);
    assert_eq!(dk.docker(&["rm", "-f", "d1"]).code, 0);
    assert!(!dir_mem.path.exists(), "cgroup left behind");

    // What users see of every way an executable can fail to start, as with runc: the
    // exit code Docker derives from the runtime's error text (127 not found, 126 not
    // executable) or the container's own status and output.
    for cmd in [
        "/nonexistent",
        "nosuchcommand",
        "/tmp",
        "/noexec",
        "/badscript",
        "/badelf",
    ] {
        let seen: Vec<(i32, String)> = ["runc", "rsrun"]
            .iter()
            .map(|rt| {
                let r = dk.docker(&run_image_args(&["--rm"], rt, &[cmd]));
                // The container's own words (the last line); Docker's wrapper text
                // names the runtime and differs.
                let last = r.stderr.lines().last().unwrap_or("").to_string();
                let words = if [125, 126, 127].contains(&r.code) {
                    String::new()
                } else {
                    last
                };
                (r.code, words)
            })
            .collect();
        assert_eq!(seen[1], seen[0], "docker run {cmd}: rsrun vs runc");
    }

    // run --rm -it
    let r = dk.docker_tty(
        &run_image_args(&["--rm", "-it"], "rsrun", &["sh"]),
        "tty; exit 6\n",
    );
    assert!(r.stdout.contains("/dev/pts/0"), "{} {}", r.stdout, r.stderr);
    assert_eq!(r.code, 6);
    drop(dk);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn podman_runs_rsrun() {
    let pm = Podman::new("podman");
    let podman = |args: &[&str]| pm.run(args);

    let r = podman(&run_image_args(
        &["--rm", "--network", "none"],
        RSRUN,
        &["sh", "-c", "grep Seccomp: /proc/self/status; exit 3"],
    ));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(r.stdout, "Seccomp:\t2\n");
    // `--tmpfs` asks for tmpcopyup: the tmpfs starts with the image's /etc.
    let r = podman(&run_image_args(
        &["--rm", "--network", "none", "--tmpfs", "/etc"],
        RSRUN,
        &[
            "sh",
            "-c",
            "grep ' /etc tmpfs ' /proc/mounts | wc -l; head -1 /etc/group",
        ],
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "1\nroot:x:0:\n");
    let r = podman(&run_image_args(
        &["-d", "--name", "p1", "--network", "none"],
        RSRUN,
        &["sleep", "1000"],
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = podman(&["exec", "p1", "sh", "-c", "echo exec-ok; exit 2"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (2, "exec-ok\n"),
        "{}",
        r.stderr
    );
    assert_eq!(podman(&["stop", "-t", "1", "p1"]).code, 0);
    assert_eq!(podman(&["rm", "p1"]).code, 0);

    // Every way an executable can fail to start looks to Podman users as it does with
    // runc: the exit code Podman derives from the runtime's words, or the process's own.
    let runc = runc_binary().expect("runc is required for differential tests");
    for cmd in ["/nonexistent", "/tmp", "/noexec", "/badscript", "/badelf"] {
        let codes: Vec<i32> = [runc, RSRUN]
            .iter()
            .map(|rt| podman(&run_image_args(&["--rm", "--network", "none"], rt, &[cmd])).code)
            .collect();
        assert_eq!(codes[1], codes[0], "podman run {cmd}: rsrun vs runc");
    }
}

/// `--sdnotify=container`: Podman hands its notify socket to the runtime, which gives the
/// container one and relays its READY=1; the host socket Podman was given then sees
/// conmon's MAINPID and READY=1, with rsrun as with runc.
#[test]
fn podman_sdnotify_container_matches_runc() {
    podman_relays_notify_as_with_runc(&Podman::new("podman-sdn"));
}

// ctr copies a task's output until it sees the exit: the commands above pause briefly
// before exiting so a loaded machine does not lose their last line (a ctr race, seen
// with runc too).

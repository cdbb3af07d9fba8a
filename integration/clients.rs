//! Real engines drive rsrun unchanged: containerd 1.6 through its runc shim
//! (`ctr --runc-binary`), with an image built locally with umoci (no registry).

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub(crate) struct Containerd {
    dir: PathBuf,
    sock: PathBuf,
    daemon: Child,
}

impl Containerd {
    pub(crate) fn start(dir: &Path) -> Containerd {
        Self::start_with_env(dir, &[])
    }

    /// The daemon with extra environment variables (its shims and runtimes inherit them).
    pub(crate) fn start_with_env(dir: &Path, env: &[(&str, &std::ffi::OsStr)]) -> Containerd {
        let sock = dir.join("containerd.sock");
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{s}\"\n",
                d = dir.display(),
                s = sock.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let daemon = Command::new("containerd")
            .envs(env.iter().copied())
            .arg("--config")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd is required (apt-get install containerd)");
        let end = Instant::now() + Duration::from_secs(20);
        while !sock.exists() {
            assert!(Instant::now() < end, "containerd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Containerd {
            dir: dir.to_path_buf(),
            sock,
            daemon,
        }
    }

    /// A containerd namespace of this test run's own: the runc shim keeps the runtime's
    /// state under /run/containerd/runc/<namespace>, shared by every containerd.
    fn ns() -> String {
        format!("rsrun-it-{}", std::process::id())
    }

    pub(crate) fn ctr(&self, args: &[&str]) -> Run {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(&self.sock)
            .arg("-n")
            .arg(Self::ns())
            .args(args);
        output(c)
    }

    /// A ctr command with a terminal: run under script(1), feeding `input` once it started.
    fn ctr_tty(&self, args: &[&str], input: &str) -> Run {
        let cmd = format!(
            "ctr --address {} -n {} {}",
            self.sock.display(),
            Self::ns(),
            args.join(" ")
        );
        run_with_tty(&cmd, input)
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        // Snapshots left mounted by a failed test.
        unmount_under(&self.dir);
    }
}

/// An OCI image of the busybox rootfs, built with umoci, imported as localhost/bb:latest.
pub(crate) fn import_image(ctd: &Containerd, dir: &Path) {
    let rootfs = dir.join("image-rootfs");
    make_rootfs(&rootfs);
    crate::common::sd_notify::install_tool(&rootfs);
    let layout = dir.join("layout");
    let unpacked = dir.join("unpacked");
    let l = format!("{}:latest", layout.display());
    let sh = |args: &[&str]| {
        let mut c = Command::new(args[0]);
        c.args(&args[1..]);
        let r = output(c);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    };
    sh(&["umoci", "init", "--layout", layout.to_str().unwrap()]);
    sh(&["umoci", "new", "--image", &l]);
    sh(&["umoci", "unpack", "--image", &l, unpacked.to_str().unwrap()]);
    sh(&[
        "cp",
        "-a",
        &format!("{}/.", rootfs.display()),
        &format!("{}/rootfs/", unpacked.display()),
    ]);
    sh(&["umoci", "repack", "--image", &l, unpacked.to_str().unwrap()]);
    sh(&["umoci", "config", "--image", &l, "--config.cmd", "/bin/sh"]);
    let tar = dir.join("img.tar");
    sh(&[
        "tar",
        "-C",
        layout.to_str().unwrap(),
        "-cf",
        tar.to_str().unwrap(),
        ".",
    ]);
    let r = ctd.ctr(&[
        "images",
        "import",
        "--base-name",
        "localhost/bb",
        tar.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "import: {}", r.stderr);
}

#[test]
fn containerd_runs_rsrun() {
    let dir = std::env::temp_dir().join(format!("rsrun-it-containerd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
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
    let end = Instant::now() + Duration::from_secs(10);
    while !ctd.ctr(&["task", "ls"]).stdout.contains("STOPPED") {
        assert!(Instant::now() < end, "task never stopped");
        std::thread::sleep(Duration::from_millis(50));
    }
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

pub(crate) struct Dockerd {
    dir: PathBuf,
    sock: PathBuf,
    daemon: Child,
}

impl Dockerd {
    /// dockerd with its own data and exec roots, rsrun as the runtime `rsrun`, and the
    /// cgroup driver `cgroupfs` or `systemd`.
    pub(crate) fn start(dir: &Path, cgroup_driver: &str) -> Dockerd {
        let sock = dir.join("docker.sock");
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let daemon = Command::new("/usr/sbin/dockerd")
            .arg("--data-root")
            .arg(dir.join("root"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                "--bridge=none",
                "--storage-driver",
                "overlay2",
                "--exec-opt",
                &format!("native.cgroupdriver={cgroup_driver}"),
                "--add-runtime",
                &format!("rsrun={RSRUN}"),
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd is required (apt-get install docker.io)");
        let mut d = Dockerd {
            dir: dir.to_path_buf(),
            sock,
            daemon,
        };
        let end = Instant::now() + Duration::from_secs(120);
        while d.docker(&["info"]).code != 0 {
            let exited = d.daemon.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > end {
                let log = std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default();
                panic!("dockerd did not start ({exited:?}):\n{log}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        d
    }

    /// `start`, then the busybox rootfs imported as `localhost/bb`.
    pub(crate) fn with_image(dir: &Path, cgroup_driver: &str) -> Dockerd {
        let dk = Dockerd::start(dir, cgroup_driver);
        let tar = rootfs_tar(dir);
        let r = dk.docker(&[
            "import",
            "-c",
            "CMD [\"/bin/sh\"]",
            tar.to_str().unwrap(),
            "localhost/bb",
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        dk
    }

    pub(crate) fn docker(&self, args: &[&str]) -> Run {
        let mut c = Command::new("/usr/bin/docker");
        c.arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .args(args);
        output(c)
    }

    fn docker_tty(&self, args: &[&str], input: &str) -> Run {
        let cmd = format!(
            "/usr/bin/docker -H unix://{} {}",
            self.sock.display(),
            args.join(" ")
        );
        run_with_tty(&cmd, input)
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.daemon.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let end = Instant::now() + Duration::from_secs(15);
        while self.daemon.try_wait().ok().flatten().is_none() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        unmount_under(&self.dir);
    }
}

/// The busybox rootfs as a tar, for `docker import` / `podman import`.
pub fn rootfs_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("image-rootfs");
    make_rootfs(&rootfs);
    crate::common::sd_notify::install_tool(&rootfs);
    // Executables that cannot run, for the exec-failure cases engines map to exit codes.
    add_bad_executables(&rootfs);
    let tar = dir.join("rootfs.tar");
    let mut c = Command::new("tar");
    c.args([
        "-C",
        rootfs.to_str().unwrap(),
        "-cf",
        tar.to_str().unwrap(),
        ".",
    ]);
    assert_eq!(output(c).code, 0);
    tar
}

#[test]
fn docker_runs_rsrun() {
    let dir = std::env::temp_dir().join(format!("rsrun-it-docker-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dk = Dockerd::with_image(&dir, "cgroupfs");

    // run --rm: output, exit status, Docker's default seccomp profile in force
    let r = dk.docker(&[
        "run",
        "--rm",
        "--runtime",
        "rsrun",
        "localhost/bb",
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status; exit 3",
    ]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(r.stdout, "Seccomp:\t2\n");

    // a long-running container: exec, exec -it, top, update, pause/unpause, stop, rm -f
    let r = dk.docker(&[
        "run",
        "-d",
        "--name",
        "d1",
        "--runtime",
        "rsrun",
        "localhost/bb",
        "sleep",
        "1000",
    ]);
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
                let r = dk.docker(&["run", "--rm", "--runtime", rt, "localhost/bb", cmd]);
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
        &[
            "run",
            "--rm",
            "-it",
            "--runtime",
            "rsrun",
            "localhost/bb",
            "sh",
        ],
        "tty; exit 6\n",
    );
    assert!(r.stdout.contains("/dev/pts/0"), "{} {}", r.stdout, r.stderr);
    assert_eq!(r.code, 6);
    drop(dk);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Podman as root with a private store in `dir` (the recipe in ENVIRONMENT.md) and the
/// busybox image imported as localhost/bb.
pub(crate) struct Podman {
    dir: PathBuf,
    conf: PathBuf,
    cgroup_manager: &'static str,
}

impl Podman {
    pub(crate) fn new(name: &str) -> Podman {
        Podman::with_cgroup_manager(name, "cgroupfs")
    }

    /// A store whose containers' cgroups are made by `cgroup_manager` (`cgroupfs`, or
    /// `systemd` where systemd is PID 1).
    pub(crate) fn with_cgroup_manager(name: &str, cgroup_manager: &'static str) -> Podman {
        let dir = std::env::temp_dir().join(format!("rsrun-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // This host's root cannot raise RLIMIT_NOFILE to podman's default 1048576.
        let conf = dir.join("containers.conf");
        std::fs::write(
            &conf,
            format!("[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n[engine]\ncgroup_manager = \"{cgroup_manager}\"\n"),
        )
        .unwrap();
        let p = Podman {
            dir,
            conf,
            cgroup_manager,
        };
        let tar = rootfs_tar(&p.dir);
        let r = p.run(&["import", tar.to_str().unwrap(), "localhost/bb"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        p
    }

    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", &self.conf)
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            // Its own libpod tmpdir too (default /run/libpod): two stores side by side
            // would share it, and one's `system reset` would end the other's containers.
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .args(["--cgroup-manager", self.cgroup_manager])
            .args(["--events-backend", "file"])
            .args(args);
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        output(self.cmd(args))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["system", "reset", "--force"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn podman_runs_rsrun() {
    let pm = Podman::new("podman");
    let podman = |args: &[&str]| pm.run(args);

    let r = podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--runtime",
        RSRUN,
        "localhost/bb",
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status; exit 3",
    ]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(r.stdout, "Seccomp:\t2\n");
    // `--tmpfs` asks for tmpcopyup: the tmpfs starts with the image's /etc.
    let r = podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--tmpfs",
        "/etc",
        "--runtime",
        RSRUN,
        "localhost/bb",
        "sh",
        "-c",
        "grep ' /etc tmpfs ' /proc/mounts | wc -l; head -1 /etc/group",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "1\nroot:x:0:\n");
    let r = podman(&[
        "run",
        "-d",
        "--name",
        "p1",
        "--network",
        "none",
        "--runtime",
        RSRUN,
        "localhost/bb",
        "sleep",
        "1000",
    ]);
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
            .map(|rt| {
                let r = podman(&[
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "--runtime",
                    rt,
                    "localhost/bb",
                    cmd,
                ]);
                r.code
            })
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

/// `podman run -d --sdnotify=container` with runc, then with rsrun: the same messages
/// reach Podman's NOTIFY_SOCKET (the container's READY=1, conmon's MAINPID).
pub(crate) fn podman_relays_notify_as_with_runc(pm: &Podman) {
    use crate::common::sd_notify::HostSocket;
    let runc = runc_binary().expect("runc is required for differential tests");
    let seen: Vec<Vec<String>> = [runc, RSRUN]
        .iter()
        .enumerate()
        .map(|(i, rt)| {
            let host = HostSocket::bind(&pm.dir.join(format!("notify-{i}.sock")));
            let name = format!("sdn{i}");
            let mut c = pm.cmd(&[
                "run",
                "-d",
                "--name",
                &name,
                "--network",
                "none",
                "--sdnotify=container",
                "--runtime",
                rt,
                "localhost/bb",
                "sh",
                "-c",
                "sd-notify READY=1; sleep 1000",
            ]);
            c.env("NOTIFY_SOCKET", &host.path);
            let r = output(c);
            assert_eq!(
                r.code, 0,
                "podman run --sdnotify=container ({rt}): {}",
                r.stderr
            );
            // Podman sends conmon's MAINPID itself, before or after the relayed READY=1.
            let mut got = Vec::new();
            let has = |got: &[String], what: &str| got.iter().any(|m| m.starts_with(what));
            while !has(&got, "READY=1") || !has(&got, "MAINPID=") {
                match host.recv(Duration::from_secs(30)) {
                    Some(m) => got.push(m),
                    None => panic!("{rt}: no READY=1 and MAINPID reached the socket: {got:?}"),
                }
            }
            let r = pm.run(&["inspect", "--format", "{{.State.ConmonPid}}", &name]);
            let conmon = r.stdout.trim().to_string();
            for m in got.iter_mut() {
                *m = m.replace(&format!("MAINPID={conmon}"), "MAINPID=<conmon>");
            }
            got.sort();
            assert_eq!(pm.run(&["rm", "-f", "-t", "0", &name]).code, 0);
            got
        })
        .collect();
    assert!(
        seen[0].iter().any(|m| m.contains("MAINPID=<conmon>")),
        "runc: {:?}",
        seen[0]
    );
    assert_eq!(seen[1], seen[0], "what Podman relays: rsrun vs runc");
}
// ctr copies a task's output until it sees the exit: the commands above pause briefly
// before exiting so a loaded machine does not lose their last line (a ctr race, seen
// with runc too).

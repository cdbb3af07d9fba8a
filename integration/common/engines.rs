//! The engines as test fixtures, each with its own daemon, store and state under a
//! directory of the test's: containerd (driven with `ctr`), dockerd (with `docker`) and
//! Podman as root, the busybox rootfs imported into each as `localhost/bb`.

use super::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// An empty directory of the test's own, `rsrun-it-NAME-PID` under the temp dir.
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rsrun-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `run` of the busybox image under runtime `runtime` (the argv an engine's CLI takes
/// after its own global flags): `opts` (`--rm`, `-d --name NAME`, ...), then `cmd`.
pub fn run_image_args<'a>(opts: &[&'a str], runtime: &'a str, cmd: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["--runtime", runtime, "localhost/bb"]);
    args.extend_from_slice(cmd);
    args
}

pub struct Containerd {
    dir: PathBuf,
    sock: PathBuf,
    daemon: Child,
}

impl Containerd {
    pub fn start(dir: &Path) -> Containerd {
        Self::start_with_env(dir, &[])
    }

    /// The daemon with extra environment variables (its shims and runtimes inherit them).
    pub fn start_with_env(dir: &Path, env: &[(&str, &std::ffi::OsStr)]) -> Containerd {
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
    pub fn ns() -> String {
        format!("rsrun-it-{}", std::process::id())
    }

    pub fn ctr(&self, args: &[&str]) -> Run {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(&self.sock)
            .arg("-n")
            .arg(Self::ns())
            .args(args);
        output(c)
    }

    /// A ctr command with a terminal: run under script(1), feeding `input` once it started.
    pub fn ctr_tty(&self, args: &[&str], input: &str) -> Run {
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
pub fn import_image(ctd: &Containerd, dir: &Path) {
    let rootfs = dir.join("image-rootfs");
    make_rootfs(&rootfs);
    super::sd_notify::install_tool(&rootfs);
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

pub struct Dockerd {
    dir: PathBuf,
    sock: PathBuf,
    daemon: Child,
}

impl Dockerd {
    /// dockerd with its own data and exec roots, rsrun as the runtime `rsrun`, and the
    /// cgroup driver `cgroupfs` or `systemd`.
    pub fn start(dir: &Path, cgroup_driver: &str) -> Dockerd {
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
    pub fn with_image(dir: &Path, cgroup_driver: &str) -> Dockerd {
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

    pub fn docker(&self, args: &[&str]) -> Run {
        let mut c = Command::new("/usr/bin/docker");
        c.arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .args(args);
        output(c)
    }

    pub fn docker_tty(&self, args: &[&str], input: &str) -> Run {
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
    super::sd_notify::install_tool(&rootfs);
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

/// Podman as root with a private store in `dir` (the recipe in ENVIRONMENT.md) and the
/// busybox image imported as localhost/bb.
pub struct Podman {
    pub dir: PathBuf,
    conf: PathBuf,
    cgroup_manager: &'static str,
}

impl Podman {
    pub fn new(name: &str) -> Podman {
        Podman::with_cgroup_manager(name, "cgroupfs")
    }

    /// A store whose containers' cgroups are made by `cgroup_manager` (`cgroupfs`, or
    /// `systemd` where systemd is PID 1).
    pub fn with_cgroup_manager(name: &str, cgroup_manager: &'static str) -> Podman {
        let dir = fresh_dir(name);
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

    pub fn cmd(&self, args: &[&str]) -> Command {
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

    pub fn run(&self, args: &[&str]) -> Run {
        output(self.cmd(args))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["system", "reset", "--force"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `podman run -d --sdnotify=container` with runc, then with rsrun: the same messages
/// reach Podman's NOTIFY_SOCKET (the container's READY=1, conmon's MAINPID).
pub fn podman_relays_notify_as_with_runc(pm: &Podman) {
    use super::sd_notify::HostSocket;
    let runc = runc_binary().expect("runc is required for differential tests");
    let seen: Vec<Vec<String>> = [runc, RSRUN]
        .iter()
        .enumerate()
        .map(|(i, rt)| {
            let host = HostSocket::bind(&pm.dir.join(format!("notify-{i}.sock")));
            let name = format!("sdn{i}");
            let mut c = pm.cmd(&run_image_args(
                &[
                    "-d",
                    "--name",
                    &name,
                    "--network",
                    "none",
                    "--sdnotify=container",
                ],
                rt,
                &["sh", "-c", "sd-notify READY=1; sleep 1000"],
            ));
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

//! Where rsrun behaved differently from runc (docs/testing.md, Gaps): each test follows
//! the runc scenario it names (opencontainers/runc tests/integration/*.bats) and failed
//! before the fix that made rsrun behave as runc does.

use crate::common::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;

fn add_mount(env: &Env, m: serde_json::Value) {
    env.edit(|v| v["mounts"].as_array_mut().unwrap().push(m));
}

/// run.bats "runc run with tmpfs perms" and "runc run with tmpfs": a tmpfs without
/// `mode=` over an existing directory takes the directory's mode, set-id and sticky bits
/// included; a `mode=` of the options wins (the steps with `mode=` only are
/// runc_scenarios::tmpfs_mode_option_on_new_and_existing_directories).
#[test]
fn tmpfs_takes_the_covered_directorys_mode() {
    let env = Env::new("par-tmpfs-mode");
    let stat = |id: &str, opts: serde_json::Value| {
        env.edit(|v| {
            let ms = v["mounts"].as_array_mut().unwrap();
            ms.retain(|m| m["destination"] != "/tmp/test" && m["destination"] != "/tmp");
            ms.push(json!({"destination": "/tmp/test", "type": "tmpfs", "source": "tmpfs", "options": opts}));
        });
        let r = env.run(id, &["stat", "-c", "%a", "/tmp/test"]);
        assert_eq!(r.code, 0, "{id}: {}", r.stderr);
        env.assert_clean(id, None);
        r.stdout.trim().to_string()
    };
    let dir = env.bundle.join("rootfs/tmp/test");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o710)).unwrap();
    assert_eq!(stat("par-tm3", json!([])), "710");
    assert_eq!(stat("par-tm4", json!(["mode=0410"])), "410");

    // Every bit: a+rwx, ug+s, +t (`drwsrwsrwt`).
    let tmp = env.bundle.join("rootfs/tmp");
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o7777)).unwrap();
    env.edit(|v| {
        let ms = v["mounts"].as_array_mut().unwrap();
        ms.retain(|m| m["destination"] != "/tmp/test");
        ms.push(
            json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
            "options": ["noexec", "nosuid", "nodev", "rprivate"]}),
        );
    });
    let r = env.run("par-tm5", &["stat", "-c", "%A", "/tmp"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "drwsrwsrwt");
    env.assert_clean("par-tm5", None);
}

/// mounts.bats "runc run [tmpcopyup]": the tmpfs starts with the covered directory's
/// content (modes, owners, files, links) and writes to it stay off the image.
#[test]
fn tmpcopyup_copies_the_covered_directory() {
    let env = Env::new("par-copyup");
    let rootfs = env.bundle.join("rootfs");
    std::fs::create_dir_all(rootfs.join("dir1/dir2/deep")).unwrap();
    std::fs::set_permissions(
        rootfs.join("dir1/dir2"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    std::fs::write(rootfs.join("dir1/dir2/deep/file"), "image content\n").unwrap();
    std::os::unix::fs::chown(rootfs.join("dir1/dir2/deep/file"), Some(1234), Some(5678)).unwrap();
    std::fs::set_permissions(
        rootfs.join("dir1/dir2/deep/file"),
        std::fs::Permissions::from_mode(0o4754),
    )
    .unwrap();
    std::os::unix::fs::symlink("dir2/deep/file", rootfs.join("dir1/link")).unwrap();
    add_mount(
        &env,
        json!({"destination": "/dir1", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]}),
    );
    let script = "ls -ld /dir1/dir2 | cut -c1-10; stat -c '%a %u %g' /dir1/dir2/deep/file; \
                  cat /dir1/link; grep -q ' /dir1 tmpfs ' /proc/mounts && echo tmpfs; \
                  echo new > /dir1/dir2/new";
    let r = env.run("par-cu1", &["sh", "-c", script]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout, "drwxrwxrwx\n4754 1234 5678\nimage content\ntmpfs\n",
        "{}",
        r.stderr
    );
    assert!(
        !rootfs.join("dir1/dir2/new").exists(),
        "the write reached the image"
    );
    env.assert_clean("par-cu1", None);

    // Read-only: the copy is in, writes are refused.
    env.edit(|v| {
        let m = v["mounts"].as_array_mut().unwrap().last_mut().unwrap();
        m["options"] = json!(["tmpcopyup", "ro"]);
    });
    let out = env.run_sh_ok("par-cu2", "cat /dir1/link && ! touch /dir1/new 2>/dev/null");
    assert_eq!(out, "image content\n");
}

/// `rsrun ARGS` pinned to CPU 0, as `taskset -c 0 runc ARGS` in cpu_affinity.bats.
fn on_cpu0(env: &Env, args: &[&str]) -> Run {
    let c = env.cmd(args);
    let mut pinned = std::process::Command::new("taskset");
    pinned
        .args(["-c", "0"])
        .arg(c.get_program())
        .args(c.get_args());
    pinned.stdin(std::process::Stdio::null());
    output(pinned)
}

fn cpus_allowed(status: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or_else(|| panic!("no Cpus_allowed_list in {status:?}"))
        .trim()
        .to_string()
}

/// cpu_affinity.bats "runc run [CPU affinity should reset]", "... reset to cgroup
/// cpuset]", "runc exec [default CPU affinity should reset]" and "... to cgroup cpuset]":
/// the container's init and what `exec` starts get every CPU their cgroup allows, not
/// the runtime's affinity; execCPUAffinity still wins for `exec`
/// (process::scheduler_io_priority_affinity_personality).
#[test]
fn affinity_is_reset_to_every_allowed_cpu() {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    if online.trim() == "0" {
        skip(
            "runc_parity::affinity_is_reset_to_every_allowed_cpu",
            "one CPU: no affinity to reset",
        );
        return;
    }
    let env = Env::new("par-affinity");
    let own = cpus_allowed(&std::fs::read_to_string("/proc/self/status").unwrap());
    let bundle = env.bundle.to_str().unwrap().to_string();
    let grep = ["grep", "-F", "Cpus_allowed_list:", "/proc/self/status"];
    for (n, cpus) in [(1, None), (2, Some("1"))] {
        env.edit(|v| match cpus {
            Some(c) => v["linux"]["resources"]["cpu"] = json!({"cpus": c, "mems": "0"}),
            None => {
                v["linux"]["resources"]
                    .as_object_mut()
                    .unwrap()
                    .remove("cpu");
            }
        });
        let want = cpus.map_or(own.clone(), String::from);
        env.set_args(&grep);
        let id = format!("par-af-run{n}");
        let r = on_cpu0(&env, &["run", "--bundle", &bundle, &id]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(cpus_allowed(&r.stdout), want, "run (cpuset {cpus:?})");
        env.assert_clean(&id, None);

        env.set_args(&["sleep", "1000"]);
        let id = format!("par-af-exec{n}");
        let r = on_cpu0(&env, &["run", "-d", "--bundle", &bundle, &id]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let mut exec = vec!["exec", id.as_str()];
        exec.extend(grep);
        let r = on_cpu0(&env, &exec);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(cpus_allowed(&r.stdout), want, "exec (cpuset {cpus:?})");
        env.delete_and_assert_clean(&id);
    }
}

/// `exec -d --pid-file F ARGS`, which must succeed: the pid it wrote.
fn exec_detached(env: &Env, args: &[&str]) -> i32 {
    let pid_file = env.dir.join("exec.pid");
    let mut full = vec!["exec", "-d", "--pid-file", pid_file.to_str().unwrap()];
    full.extend_from_slice(args);
    let r = env.rsrun(&full);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(&pid_file).unwrap();
    text.trim().parse().unwrap()
}

/// The pidfd `--pidfd-socket` sends: the message, and the pid it refers to (fdinfo).
fn pidfd_from(listener: &std::os::unix::net::UnixListener) -> (String, std::os::fd::OwnedFd, i32) {
    use std::os::fd::AsRawFd;
    listener.set_nonblocking(true).unwrap();
    let (conn, _) = listener
        .accept()
        .expect("rsrun returned without connecting to the pidfd socket");
    conn.set_nonblocking(false).unwrap();
    let (data, fd) = recv_with_fd(&conn);
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
    let pid = info
        .lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .unwrap_or_else(|| panic!("not a pidfd: {info}"))
        .trim()
        .parse()
        .unwrap();
    (String::from_utf8_lossy(&data).into_owned(), fd, pid)
}

fn pidfd_kill(fd: &std::os::fd::OwnedFd, sig: i32) {
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd_send_signal on a pidfd we own, no siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "pidfd_send_signal: {}",
        std::io::Error::last_os_error()
    );
}

/// pidfd-socket.bats "runc create [ --pidfd-socket ]", "runc run [ --pidfd-socket ]",
/// "runc exec [ --pidfd-socket ]": the pidfd of the container's init (of the exec'd
/// process) arrives on the socket, and a signal through it stops that process only. A
/// socket nobody listens on fails the command and leaves nothing.
#[test]
fn pidfd_socket_receives_the_process() {
    let env = Env::new("par-pidfd");
    env.set_args(&["sleep", "1000"]);
    let sock = env.dir.join("pidfd.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let s = sock.to_str().unwrap();
    let bundle = env.bundle.to_str().unwrap().to_string();

    let r = env.rsrun(&[
        "create",
        "--bundle",
        &bundle,
        "--pidfd-socket",
        s,
        "par-pf1",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(env.status("par-pf1"), "created");
    let (kind, fd, pid) = pidfd_from(&listener);
    assert_eq!(
        (kind.as_str(), pid as i64),
        ("standard", env.state("par-pf1")["pid"].as_i64().unwrap())
    );
    pidfd_kill(&fd, libc::SIGTERM);
    env.wait_status("par-pf1", "stopped");
    env.delete_and_assert_clean("par-pf1");

    let run_d = |sock: &str, id: &str| {
        env.rsrun(&["run", "-d", "--bundle", &bundle, "--pidfd-socket", sock, id])
    };
    let r = run_d(s, "par-pf2");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (_, fd, pid) = pidfd_from(&listener);
    assert_eq!(pid as i64, env.state("par-pf2")["pid"].as_i64().unwrap());
    pidfd_kill(&fd, libc::SIGKILL);
    env.wait_status("par-pf2", "stopped");
    env.delete_and_assert_clean("par-pf2");

    let init = env.run_detached("par-pf3");
    let written = exec_detached(&env, &["--pidfd-socket", s, "par-pf3", "sleep", "1000"]);
    let (kind, fd, pid) = pidfd_from(&listener);
    assert_eq!((kind.as_str(), pid), ("setns", written));
    assert_ne!(pid, init);
    pidfd_kill(&fd, libc::SIGKILL);
    wait_dead(pid);
    assert_eq!(env.status("par-pf3"), "running");
    env.delete_and_assert_clean("par-pf3");

    let gone = env.dir.join("nobody.sock");
    let r = run_d(gone.to_str().unwrap(), "par-pf4");
    assert_ne!(r.code, 0, "a pidfd socket nobody listens on was accepted");
    assert!(r.stderr.contains("nobody.sock"), "{}", r.stderr);
    env.assert_clean("par-pf4", None);
}

/// kill.bats "kill KILL [host pidns]" and "kill KILL [host pidns + init gone]": without
/// a pid namespace of its own, `kill ID KILL` ends every process of the container, not
/// only its init, and does so even once the init is gone (the container `stopped`).
#[test]
fn kill_without_a_pid_namespace_reaches_every_process() {
    let env = Env::new("par-hostpid");
    env.edit(|v| {
        let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
    });
    env.set_args(&["sleep", "1000"]);
    for (id, kill_init) in [("par-hp1", false), ("par-hp2", true)] {
        let init = env.run_detached(id);
        for _ in 0..5 {
            let r = env.rsrun(&["exec", "-d", id, "sleep", "1000"]);
            assert_eq!(r.code, 0, "{}", r.stderr);
        }
        if kill_init {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(init),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
            wait_dead(init);
            assert_eq!(env.status(id), "stopped");
        }
        let pids = rsrun::cgroups::Cgroup::resolve(None, id).unwrap().pids();
        assert_eq!(pids.len(), if kill_init { 5 } else { 6 }, "{pids:?}");
        let r = env.rsrun(&["kill", id, "KILL"]);
        assert_eq!(r.code, 0, "kill {id} KILL: {}", r.stderr);
        for p in pids {
            wait_dead(p);
        }
        env.wait_status(id, "stopped");
        let r = env.rsrun(&["delete", id]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        env.assert_clean(id, None);
    }
}

/// userns.bats "userns without root mapping": a user namespace that maps one id, not 0,
/// runs the process as that id, in `run` and in `exec`.
#[test]
fn user_namespace_without_a_root_mapping() {
    let env = Env::new("par-noroot");
    env.edit(|v| {
        with_userns(v);
        v["linux"]["uidMappings"] = json!([{"containerID": 1000, "hostID": 100000, "size": 1}]);
        v["linux"]["gidMappings"] = json!([{"containerID": 1000, "hostID": 200000, "size": 1}]);
        v["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        for m in v["mounts"].as_array_mut().unwrap() {
            if m["destination"] == "/dev/pts" {
                m["options"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|o| o != "gid=5");
            }
        }
    });
    let r = env.run(
        "par-nr1",
        &["sh", "-c", "id -u; id -g; cat /proc/self/uid_map"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // id -u, id -g, then the one uid_map line.
    let words: Vec<&str> = r.stdout.split_whitespace().collect();
    assert_eq!(
        words,
        ["1000", "1000", "1000", "100000", "1"],
        "{}",
        r.stdout
    );
    env.assert_clean("par-nr1", None);

    env.set_args(&["sleep", "1000"]);
    env.run_detached("par-nr2");
    let r = env.rsrun(&["exec", "par-nr2", "sh", "-c", "id -u; id -g"]);
    assert_stdout(&r, "1000\n1000\n");
    env.delete_and_assert_clean("par-nr2");
}

/// A mount destination through a symlink to what does not exist yet (`/var/run -> /run`
/// in an image without `/run`) is made where the link points inside the root, as runc's
/// securejoin does; a link climbing out of the root stays in it.
#[test]
fn destination_through_a_dangling_symlink_is_made_inside_the_root() {
    let env = Env::new("par-dangling");
    let rootfs = env.bundle.join("rootfs");
    std::fs::create_dir_all(rootfs.join("var")).unwrap();
    std::os::unix::fs::symlink("/run", rootfs.join("var/run")).unwrap();
    std::os::unix::fs::symlink("../../../../../par-dangling-out", rootfs.join("var/up")).unwrap();
    for d in ["/var/run/foo", "/var/up/bar"] {
        add_mount(
            &env,
            json!({"destination": d, "type": "tmpfs", "source": "tmpfs"}),
        );
    }
    let r = env.run(
        "par-dl1",
        &[
            "sh",
            "-c",
            "grep -c -e ' /run/foo tmpfs ' -e ' /par-dangling-out/bar tmpfs ' /proc/mounts",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "2");
    assert!(rootfs.join("run/foo").is_dir());
    assert!(rootfs.join("par-dangling-out/bar").is_dir());
    assert!(
        !std::path::Path::new("/par-dangling-out").exists(),
        "made on the host"
    );
    env.assert_clean("par-dl1", None);
}

/// exec-wait-fifo.bats: with `--exec-wait-fifo` the exec'd process does not run its
/// program until the fifo's read end is opened (`exec -d` has returned and written the
/// pid file by then); a path that is no fifo, or none, is refused naming it.
#[test]
fn exec_wait_fifo_holds_the_program_until_a_reader_opens() {
    let env = Env::new("par-fifo");
    env.edit(|v| v["root"]["readonly"] = json!(false));
    env.set_args(&["sleep", "1000"]);
    env.run_detached("par-ff1");
    let fifo = env.dir.join("exec-wait.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let pid = exec_detached(
        &env,
        &[
            "--exec-wait-fifo",
            fifo.to_str().unwrap(),
            "par-ff1",
            "sh",
            "-c",
            "echo ran > /exec-wait.marker",
        ],
    );
    // Blocked opening the fifo (the kernel's wait for a reader), its program not run.
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default()
        != "wait_for_partner"
    {
        assert!(
            std::time::Instant::now() < end,
            "the process never waited on the fifo"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let marker = env.bundle.join("rootfs/exec-wait.marker");
    assert!(
        !marker.exists(),
        "the program ran before the fifo had a reader"
    );
    // Opening the read end lets it go on; our end sees EOF once the writer is closed.
    let mut reader = std::fs::File::open(&fifo).unwrap();
    let mut sink = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut sink).unwrap();
    wait_dead(pid);
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ran\n");

    let not_fifo = env.dir.join("not-a-fifo");
    std::fs::write(&not_fifo, "").unwrap();
    let r = env.rsrun(&[
        "exec",
        "--exec-wait-fifo",
        not_fifo.to_str().unwrap(),
        "par-ff1",
        "true",
    ]);
    assert_one_line_error(&r, "is not a fifo");
    let missing = env.dir.join("does-not-exist.fifo");
    let r = env.rsrun(&[
        "exec",
        "--exec-wait-fifo",
        missing.to_str().unwrap(),
        "par-ff1",
        "true",
    ]);
    assert_one_line_error(&r, "failed to open exec wait fifo");
    env.delete_and_assert_clean("par-ff1");
}

//! Container-escape regressions (see ../shared/SECURITY.md). Each test mounts the attack
//! and asserts the host is untouched and rsrun refused it or neutralised it.

use crate::common::*;
use serde_json::json;

/// CVE-2021-30465 / CVE-2024-45310: a symlink in the rootfs pointing at a host
/// directory must not make a mount (or a directory rsrun creates) land on the host.
#[test]
fn cve_2021_30465_symlinked_mount_destination_stays_in_root() {
    let env = Env::new("esc-symlink");
    let host_dir = env.dir.join("host-dir");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::os::unix::fs::symlink(&host_dir, env.bundle.join("rootfs/link")).unwrap();
    std::os::unix::fs::symlink("/", env.bundle.join("rootfs/rootlink")).unwrap();
    let good = env.config();

    // A symlink to a host path is resolved inside the root, where that path does not
    // exist: rsrun refuses, naming the mount, and creates nothing on the host.
    env.edit(|v| {
        v["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/link/sub", "type": "tmpfs", "source": "tmpfs"}));
    });
    let r = env.create("es1");
    if r.code != 0 {
        assert_one_line_error(&r, "mounts[7].destination");
    }
    assert!(
        !host_dir.join("sub").exists(),
        "a directory was created on the host"
    );
    let _ = env.rsrun(&["delete", "-f", "es1"]);
    env.assert_clean("es1", None);

    // A symlink to / and a path climbing with .. both stay inside the root.
    let mut v = good.clone();
    let m = v["mounts"].as_array_mut().unwrap();
    m.push(json!({"destination": "/rootlink/etc/escaped", "type": "tmpfs", "source": "tmpfs"}));
    m.push(json!({"destination": "/../../../../etc/escaped2", "type": "tmpfs", "source": "tmpfs"}));
    env.write_config(&v);
    let r = env.run("es2", &["true"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !std::path::Path::new("/etc/escaped").exists()
            && !std::path::Path::new("/etc/escaped2").exists()
    );
    assert!(
        env.bundle.join("rootfs/etc/escaped").is_dir(),
        "not created inside the rootfs"
    );
    assert!(
        env.bundle.join("rootfs/etc/escaped2").is_dir(),
        "not created inside the rootfs"
    );
    env.assert_clean("es2", None);
}

/// CVE-2019-16884 and relatives: a /proc (or /sys) that is a symlink is refused.
#[test]
fn cve_2019_16884_proc_symlink_is_refused() {
    let env = Env::new("esc-procsym");
    symlink_mount_point(&env.bundle.join("rootfs"), "proc");
    let r = env.create("ep1");
    assert_one_line_error(&r, "mounts[0].destination");
    assert!(r.stderr.contains("symlink"), "{}", r.stderr);
    env.assert_clean("ep1", None);
}

/// CVE-2025-31133: the /dev/null used for masking must be the real 1:3 device.
#[test]
fn cve_2025_31133_fake_dev_null_is_not_used_for_masking() {
    let env = Env::new("esc-devnull");
    let fake_dev = env.dir.join("fake-dev");
    write_with_parents(&fake_dev.join("null"), "not a device");
    env.edit(|v| {
        let m = v["mounts"].as_array_mut().unwrap();
        m.retain(|x| x["destination"] != "/dev" && x["destination"] != "/dev/pts" && x["destination"] != "/dev/shm" && x["destination"] != "/dev/mqueue");
        m.push(json!({"destination": "/dev", "type": "bind", "source": fake_dev.to_str().unwrap(), "options": ["rbind"]}));
    });
    let r = env.create("en1");
    assert_one_line_error(&r, "/dev/null");
    assert!(r.stderr.contains("1:3"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(fake_dev.join("null")).unwrap(),
        "not a device"
    );
    env.assert_clean("en1", None);
}

/// CVE-2023-25809: without a cgroup namespace (and with one) the cgroup filesystem is
/// read-only in the container.
#[test]
fn cve_2023_25809_cgroupfs_is_read_only() {
    let env = Env::new("esc-cgro");
    let probe = "for d in /sys/fs/cgroup /sys/fs/cgroup/*; do mkdir $d/escape 2>/dev/null && echo wrote $d; done; echo done";
    let r = env.run("ec1", &["sh", "-c", probe]);
    assert_eq!(r.stdout, "done\n", "{}", r.stderr);
    env.edit(|v| {
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "cgroup");
    });
    let r = env.run("ec2", &["sh", "-c", probe]);
    assert_eq!(r.stdout, "done\n", "{}", r.stderr);
}

/// CVE-2024-21626: no host directory fd leaks into the container, so a cwd of
/// /proc/self/fd/N cannot reach the host, for the init and for exec.
#[test]
fn cve_2024_21626_cwd_through_leaked_fd() {
    let env = Env::new("esc-cwdfd");
    for n in 3..10 {
        env.edit(|v| v["process"]["cwd"] = json!(format!("/proc/self/fd/{n}")));
        env.set_args(&["sh", "-c", "pwd; ls /"]);
        let id = format!("cf{n}");
        let r = env.rsrun(&["run", "--bundle", env.bundle.to_str().unwrap(), &id]);
        assert_ne!(
            r.code, 0,
            "cwd /proc/self/fd/{n} was accepted: {}",
            r.stdout
        );
        assert!(
            !r.stdout.contains("bundle"),
            "reached the host: {}",
            r.stdout
        );
        env.assert_clean(&id, None);
    }
    env.edit(|v| v["process"]["cwd"] = json!("/"));
    env.set_args(&["sleep", "100"]);
    env.run_detached("cfx");
    for n in 3..10 {
        let cwd = format!("/proc/self/fd/{n}");
        let r = env.rsrun(&["exec", "--cwd", &cwd, "cfx", "pwd"]);
        assert_ne!(r.code, 0, "exec with cwd {cwd} was accepted: {}", r.stdout);
    }
    // And no fd beyond stdio reaches the container's processes.
    let r = env.rsrun(&["exec", "cfx", "ls", "/proc/self/fd"]);
    assert_eq!(
        r.stdout, "0\n1\n2\n3\n",
        "fds seen by exec (3 is ls's own dir): {}",
        r.stdout
    );
    assert_eq!(env.rsrun(&["delete", "-f", "cfx"]).code, 0);
}

/// CVE-2022-29162: the inheritable set stays empty unless the spec names it, for run
/// and for exec.
#[test]
fn cve_2022_29162_inheritable_caps_are_empty() {
    let env = Env::new("esc-capinh");
    env.set_args(&["sleep", "100"]);
    env.run_detached("ci1");
    let pid = env.state("ci1")["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("CapInh:\t0000000000000000"), "{status}");
    let r = env.rsrun(&["exec", "ci1", "grep", "CapInh", "/proc/self/status"]);
    assert_eq!(r.stdout, "CapInh:\t0000000000000000\n");
    let r = env.rsrun(&[
        "exec",
        "--cap",
        "CAP_NET_ADMIN",
        "ci1",
        "grep",
        "CapInh",
        "/proc/self/status",
    ]);
    assert_eq!(r.stdout, "CapInh:\t0000000000000000\n");
    assert_eq!(env.rsrun(&["delete", "-f", "ci1"]).code, 0);
}

/// CVE-2019-5736 / CVE-2016-9962: while rsrun runs inside the container (the created
/// init waiting for start), a container process cannot open its /proc/<pid>/exe, its
/// memory or its fds; the host binary is unchanged.
#[test]
fn cve_2019_5736_runtime_binary_is_unreachable() {
    let env = Env::new("esc-exe");
    let before = std::fs::read(RSRUN).unwrap();
    env.set_args(&["sleep", "100"]);
    // Share the pid namespace of a created (not started) container: its init is rsrun.
    assert_eq!(env.create("ex-init").code, 0);
    let pid = env.state("ex-init")["pid"].as_i64().unwrap();
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap()
            .trim(),
        "rsrun"
    );
    // What a process that gets hold of the init's executable holds is a read-only mount
    // of the binary: reopening it for writing can only fail (EROFS), even once no rsrun
    // runs any more (so ETXTBSY no longer protects it).
    let exe = std::fs::File::open(format!("/proc/{pid}/exe")).unwrap();
    let vfs = nix::sys::statvfs::fstatvfs(&exe).unwrap();
    assert!(
        vfs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY),
        "the created init runs from a writable mount of the rsrun binary"
    );
    drop(exe);
    let r = env.rsrun(&[
        "exec",
        "ex-init",
        "sh",
        "-c",
        "cat /proc/1/exe > /dev/null 2>&1 && echo read-exe; \
         for f in /proc/1/fd/*; do readlink $f >/dev/null 2>&1 && echo read-fd-link; cat $f >/dev/null 2>&1 && echo opened-fd; done; \
         head -c1 /proc/1/mem >/dev/null 2>&1 && echo read-mem; \
         echo x 2>/dev/null > /proc/1/exe && echo wrote-exe; echo done",
    ]);
    assert_eq!(r.stdout, "done\n", "{}", r.stderr);
    assert_eq!(
        std::fs::read(RSRUN).unwrap(),
        before,
        "the rsrun binary changed"
    );
    assert_eq!(env.rsrun(&["delete", "ex-init"]).code, 0);
    env.assert_clean("ex-init", Some(pid as i32));
}

/// Container id traversal: an id is validated before any path is built from it.
#[test]
fn container_id_traversal_is_refused() {
    let env = Env::new("esc-id");
    let victim = env.dir.join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    let r = env.rsrun(&[
        "create",
        "--bundle",
        env.bundle.to_str().unwrap(),
        "../victim",
    ]);
    assert_one_line_error(&r, "invalid container id");
    let r = env.rsrun(&["delete", "--force", "../victim"]);
    assert_ne!(r.code, 0);
    assert!(victim.exists(), "delete reached outside the root");
}

/// CVE-2025-52881: procfs writes (sysctls) must land on procfs. A rootfs without a proc
/// mount whose /proc/sys is a plain directory must not receive them: they go to the real
/// sysctl, through a private procfs.
#[test]
fn cve_2025_52881_sysctl_writes_only_hit_procfs() {
    let env = Env::new("esc-fakeproc");
    let fake = env.bundle.join("rootfs/proc/sys/net/ipv4/ip_forward");
    write_with_parents(&fake, "0\n");
    env.edit(|v| {
        without_proc_mount(v);
        v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    });
    let r = env.create("fp1");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&fake).unwrap(), "0\n");
    let pid = env.state("fp1")["pid"].as_i64().unwrap().to_string();
    let o = std::process::Command::new("nsenter")
        .args(["-t", &pid, "-n", "cat", "/proc/sys/net/ipv4/ip_forward"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "1\n", "{o:?}");
    let _ = env.rsrun(&["delete", "-f", "fp1"]);
    env.assert_clean("fp1", None);
}

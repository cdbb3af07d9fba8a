//! process.user, umask, rlimits, the read-only root, --no-pivot, --preserve-fds: observed
//! from inside the container.

use crate::common::*;
use serde_json::json;
use std::os::fd::AsRawFd;

#[test]
fn user_groups_and_umask() {
    let env = Env::new("proc-user");
    env.edit(|v| {
        v["process"]["user"] =
            json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 63});
    });
    let r = env.run(
        "pu1",
        &["sh", "-c", "id -u; id -g; id -G; umask; echo $HOME"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "1000\n1001\n1001 10 20\n0077\n/\n");
    env.assert_clean("pu1", None);
}

#[test]
fn rlimits_are_applied() {
    let env = Env::new("proc-rlimit");
    env.edit(|v| {
        v["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 777},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
        ]);
    });
    let r = env.run("rl1", &["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "512\n777\n0\n");
}

#[test]
fn rlimit_above_hard_limit_names_it() {
    // This host's root lacks CAP_SYS_RESOURCE: raising a hard limit above the current one
    // fails, and the error must name the rlimit.
    let (_, hard) = rsrun::sys::privilege::getrlimit(libc::RLIMIT_NOFILE as i32).unwrap();
    if hard == u64::MAX {
        return skip(
            "process::rlimit_above_hard_limit_names_it",
            "RLIMIT_NOFILE's hard limit is unlimited here",
        );
    }
    let env = Env::new("proc-rlimit-eperm");
    env.edit(|v| {
        v["process"]["rlimits"] =
            json!([{"type": "RLIMIT_NOFILE", "soft": hard + 1, "hard": hard + 1}]);
    });
    if has_cap(CAP_SYS_RESOURCE) {
        return skip(
            "process::rlimit_above_hard_limit_names_it",
            "root holds CAP_SYS_RESOURCE here and may raise any limit",
        );
    }
    let r = env.create("rle1");
    assert_one_line_error(&r, "RLIMIT_NOFILE");
    assert!(r.stderr.contains("EPERM"), "{}", r.stderr);
    env.assert_clean("rle1", None);
}

#[test]
fn readonly_root_and_writable_tmpfs() {
    let env = Env::new("proc-ro");
    let r = env.run(
        "ro1",
        &[
            "sh",
            "-c",
            "touch /x 2>/dev/null && echo wrote || echo refused; touch /dev/shm/x && echo shm",
        ],
    );
    assert_eq!(r.stdout, "refused\nshm\n", "{}", r.stderr);
    env.edit(|v| v["root"]["readonly"] = json!(false));
    let r = env.run("ro2", &["sh", "-c", "touch /x && echo wrote"]);
    assert_eq!(r.stdout, "wrote\n", "{}", r.stderr);
    assert!(env.bundle.join("rootfs/x").exists());
}

#[test]
fn no_pivot_uses_chroot() {
    let env = Env::new("proc-nopivot");
    env.set_args(&["sh", "-c", "ls /; cat /proc/self/mountinfo | wc -l"]);
    let r = env.rsrun(&[
        "run",
        "--no-pivot",
        "--bundle",
        env.bundle.to_str().unwrap(),
        "np1pn",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("bin\n"));
    env.assert_clean("np1pn", None);
}

#[test]
fn preserve_fds_passes_exactly_n() {
    let env = Env::new("proc-fds");
    let marker = env.dir.join("preserved-marker");
    std::fs::write(&marker, "x").unwrap();
    let f1 = std::fs::File::open(&marker).unwrap();
    let f2 = std::fs::File::open(&marker).unwrap();
    env.set_args(&[
        "sh",
        "-c",
        "readlink /proc/$$/fd/3; readlink /proc/$$/fd/4 || echo no-fd-4",
    ]);
    // Place them at 3 and 4 in rsrun, without CLOEXEC; only 3 may reach the container.
    let mut cmd = env.cmd(&[
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
        env.bundle.to_str().unwrap(),
        "pf1pf",
    ]);
    let (a, b) = (f1.as_raw_fd(), f2.as_raw_fd());
    use std::os::unix::process::CommandExt;
    unsafe {
        cmd.pre_exec(move || {
            // Move both out of the way first: dup2(3, 3) would keep CLOEXEC set.
            let (x, y) = (
                libc::fcntl(a, libc::F_DUPFD, 100),
                libc::fcntl(b, libc::F_DUPFD, 100),
            );
            if x < 0 || y < 0 || libc::dup2(x, 3) < 0 || libc::dup2(y, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let r = output(cmd);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].ends_with("preserved-marker"), "{lines:?}");
    assert_eq!(lines[1], "no-fd-4", "{lines:?}");
}

#[test]
fn reused_pid_is_never_signalled() {
    let env = Env::new("proc-pidreuse");
    env.set_args(&["sleep", "100"]);
    env.run_detached("pr1pp");
    let pid = env.state("pr1pp")["pid"].as_i64().unwrap();
    // Pretend the recorded init died and its pid was reused: change the start time.
    let path = env.root.join("pr1pp/state.json");
    let mut st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let real = st["start_time"].as_u64().unwrap();
    st["start_time"] = json!(real + 1);
    std::fs::write(&path, st.to_string()).unwrap();
    assert_eq!(env.status("pr1pp"), "stopped");
    assert_one_line_error(&env.rsrun(&["kill", "pr1pp", "KILL"]), "not running");
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the process was signalled"
    );
    // Restore and clean up for real.
    st["start_time"] = json!(real);
    std::fs::write(&path, st.to_string()).unwrap();
    assert_eq!(env.rsrun(&["delete", "-f", "pr1pp"]).code, 0);
    env.assert_clean("pr1pp", Some(pid as i32));
}

#[test]
fn debug_logs_the_steps() {
    let env = Env::new("proc-debug");
    let log = env.dir.join("debug.log");
    env.set_args(&["true"]);
    let r = env.rsrun_json_log(
        &log,
        &[
            "--debug",
            "run",
            "--bundle",
            env.bundle.to_str().unwrap(),
            "dbg1",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.lines().count() >= 2, "{text}");
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["level"], "debug");
    }
}

#[test]
fn namespaced_sysctls_are_written() {
    let env = Env::new("proc-sysctl");
    env.edit(|v| {
        v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234", "kernel.domainname": "sysctl.test"});
    });
    let r = env.run(
        "sy1ps",
        &[
            "sh",
            "-c",
            "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni /proc/sys/kernel/domainname",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "1\n1234\nsysctl.test\n");
    // The host's values are untouched.
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/shmmni")
            .unwrap()
            .trim(),
        "1234"
    );
}

#[test]
fn host_sysctls_are_refused() {
    let env = Env::new("proc-sysctl-bad");
    env.edit(|v| v["linux"]["sysctl"] = json!({"kernel.panic": "1"}));
    let r = env.create("sb1");
    assert_one_line_error(&r, "linux.sysctl.kernel.panic");
    env.assert_clean("sb1", None);
    env.edit(|v| {
        v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "network");
    });
    assert_one_line_error(&env.create("sb2"), "linux.sysctl.net.ipv4.ip_forward");
    env.assert_clean("sb2", None);
}

#[test]
fn socket_activation_fds_are_passed() {
    let env = Env::new("proc-listen");
    let marker = env.dir.join("listen-marker");
    std::fs::write(&marker, "x").unwrap();
    let f = std::fs::File::open(&marker).unwrap();
    env.set_args(&[
        "sh",
        "-c",
        "echo $LISTEN_FDS $LISTEN_PID; readlink /proc/$$/fd/3",
    ]);
    // LISTEN_PID must be rsrun's own pid: a shell sets it to $$ and execs rsrun.
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        "LISTEN_FDS=1 LISTEN_PID=$$ exec \"$0\" \"$@\"",
        RSRUN,
        "--root",
    ])
    .arg(&env.root)
    .args(["run", "--bundle", env.bundle.to_str().unwrap(), "la1"]);
    let a = f.as_raw_fd();
    use std::os::unix::process::CommandExt;
    unsafe {
        cmd.pre_exec(move || {
            let x = libc::fcntl(a, libc::F_DUPFD, 100);
            if x < 0 || libc::dup2(x, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let r = output(cmd);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "1 1");
    assert!(lines[1].ends_with("listen-marker"), "{lines:?}");
    env.assert_clean("la1", None);
}

#[test]
fn oom_score_adj_is_applied_and_refusal_named() {
    let env = Env::new("proc-oom");
    env.edit(|v| v["process"]["oomScoreAdj"] = json!(500));
    let r = env.run("oa1", &["cat", "/proc/self/oom_score_adj"]);
    assert_eq!(r.stdout, "500\n", "{}", r.stderr);
    // Lowering below the runtime's own value needs CAP_SYS_RESOURCE, which this host's
    // root lacks: the error names the file.
    let own: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let caps = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = caps.lines().find(|l| l.starts_with("CapEff:")).unwrap();
    let eff = u64::from_str_radix(eff.split_whitespace().nth(1).unwrap(), 16).unwrap();
    if eff & (1 << 24) == 0 && own > -1000 {
        env.edit(|v| v["process"]["oomScoreAdj"] = json!(-1000));
        let r = env.create("oa2");
        assert_one_line_error(&r, "oom_score_adj");
        env.assert_clean("oa2", None);
    }
}

#[test]
fn scheduler_io_priority_affinity_personality() {
    let env = Env::new("proc-attrs");
    env.edit(|v| {
        v["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5});
        v["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
        v["process"]["execCPUAffinity"] = json!({"initial": "0", "final": "0"});
        v["linux"]["personality"] = json!({"domain": "LINUX32"});
        v["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
    });
    let r = env.run(
        "at1",
        &["sh", "-c", "awk '{print $19, $41}' /proc/self/stat; ionice -p $$; grep Cpus_allowed_list /proc/self/status; uname -m; grep -c bind:0 /proc/self/numa_maps"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "5 3", "nice 5, SCHED_BATCH (3): {}", r.stdout);
    assert!(
        lines[1].contains("best-effort") && lines[1].contains('6'),
        "{}",
        r.stdout
    );
    // execCPUAffinity is not for the init (runtime-spec): it gets every CPU its cgroup
    // allows (runc_parity::affinity_is_reset_to_every_allowed_cpu).
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    assert_eq!(
        lines[2],
        format!("Cpus_allowed_list:\t{}", online.trim()),
        "the init got execCPUAffinity"
    );
    assert_eq!(lines[3], "i686", "LINUX32 personality");
    assert_ne!(lines[4], "0", "no memory bound to node 0: {}", r.stdout);
    // It is for what `exec` starts.
    env.set_args(&["sleep", "1000"]);
    assert_eq!(env.create("at2").code, 0);
    assert_eq!(env.rsrun(&["start", "at2"]).code, 0);
    let r = env.rsrun(&[
        "exec",
        "at2",
        "grep",
        "Cpus_allowed_list",
        "/proc/self/status",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "Cpus_allowed_list:\t0");
    assert_eq!(env.rsrun(&["delete", "--force", "at2"]).code, 0);
    env.assert_clean("at2", None);
}

#[test]
fn lsm_labels_and_intel_rdt_are_refused_on_this_host() {
    let env = Env::new("proc-lsm");
    let good = env.config();
    let mut v = good.clone();
    v["process"]["apparmorProfile"] = json!("docker-default");
    env.write_config(&v);
    assert_one_line_error(&env.create("lsm1"), "process.apparmorProfile");
    let mut v = good.clone();
    v["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
    env.write_config(&v);
    assert_one_line_error(&env.create("lsm2"), "process.selinuxLabel");
    let mut v = good.clone();
    v["linux"]["intelRdt"] = json!({"closID": "x"});
    env.write_config(&v);
    assert_one_line_error(&env.create("lsm3"), "linux.intelRdt");
    env.assert_clean("lsm3", None);
}

#[test]
fn capabilities_the_runtime_lacks_are_named() {
    // This host's root lacks CAP_SYS_RESOURCE (24); runc fails there too ("unable to
    // apply caps"): rsrun says which capability it cannot grant.
    if has_cap(CAP_SYS_RESOURCE) {
        return skip(
            "process::capabilities_the_runtime_lacks_are_named",
            "root holds CAP_SYS_RESOURCE here: no capability is lacking",
        );
    }
    let env = Env::new("proc-caps-lacking");
    let set = json!(["CAP_SYS_RESOURCE", "CAP_KILL"]);
    env.edit(|v| {
        v["process"]["capabilities"] = json!({"bounding": set, "effective": set, "permitted": set});
    });
    let r = env.create("cl1");
    assert_one_line_error(&r, "CAP_SYS_RESOURCE");
    assert!(r.stderr.contains("process.capabilities"), "{}", r.stderr);
    env.assert_clean("cl1", None);
}

/// runc gives the process's stdio to its user, so a non-root process can reopen its
/// own stdout (`> /dev/stdout`, what nginx's and many images' configs do).
#[test]
fn stdio_belongs_to_the_process_user() {
    let env = Env::new("proc-stdio-owner");
    env.edit(|v| {
        v["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    });
    let r = env.run(
        "so1",
        &[
            "sh",
            "-c",
            "stat -L -c %u /proc/self/fd/1 >&2; echo via-path >> /dev/stdout",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str()),
        ("via-path\n", "1000\n")
    );
    env.assert_clean("so1", None);
}

/// The working directory is entered before the uid change (runc's order), so a process
/// may start in a directory its user cannot reach by path (`/root`, 0700), for `run`
/// and `exec --cwd` alike.
#[test]
fn cwd_is_entered_before_the_uid_change() {
    let env = Env::new("proc-cwd-root");
    use std::os::unix::fs::PermissionsExt;
    let root_home = env.bundle.join("rootfs/root");
    std::fs::set_permissions(&root_home, std::fs::Permissions::from_mode(0o700)).unwrap();
    env.edit(|v| {
        v["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        v["process"]["cwd"] = json!("/root");
    });
    let r = env.run("cw1", &["sh", "-c", "pwd; id -u; ls . 2>&1 | head -1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(&lines[..2], ["/root", "1000"], "{}", r.stdout);
    env.set_args(&["sleep", "1000"]);
    env.edit(|v| v["process"]["cwd"] = json!("/"));
    assert_eq!(env.create("cw2").code, 0);
    assert_eq!(env.rsrun(&["start", "cw2"]).code, 0);
    let r = env.rsrun(&["exec", "--cwd", "/root", "cw2", "pwd"]);
    assert_stdout(&r, "/root\n");
    assert_eq!(env.rsrun(&["delete", "--force", "cw2"]).code, 0);
    env.assert_clean("cw2", None);
}

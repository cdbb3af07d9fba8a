//! runc's own integration scenarios (opencontainers/runc tests/integration/*.bats) that
//! no other file here covered: each test names the bats file and test it follows, and
//! asserts what runc's test asserts. docs/testing.md maps the rest.

use crate::common::*;
use crate::resources::read;
use serde_json::{json, Value};
use std::os::fd::AsRawFd;

/// list.bats "list": the table's columns, the quiet form, and every field of the JSON.
#[test]
fn list_table_quiet_and_json_fields() {
    let env = Env::new("rs-list");
    env.set_args(&["sleep", "100"]);
    let bundle = env.bundle.to_str().unwrap().to_string();
    let pids: Vec<i32> = ["rs-l1", "rs-l2"]
        .iter()
        .map(|id| env.run_detached(id))
        .collect();
    let r = env.rsrun(&["list"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rows = words(&r.stdout);
    assert_eq!(
        rows[0],
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    assert_eq!(rows.len(), 3, "{}", r.stdout);
    for (id, pid) in ["rs-l1", "rs-l2"].iter().zip(&pids) {
        let row = rows
            .iter()
            .find(|c| c[0] == *id)
            .unwrap_or_else(|| panic!("no row for {id}: {}", r.stdout));
        assert_eq!(
            row[1..4],
            [pid.to_string().as_str(), "running", bundle.as_str()]
        );
        assert!(row[4].ends_with('Z'), "created: {}", row[4]);
        assert_eq!(row[5], "root");
    }
    let r = env.rsrun(&["list", "--format", "table"]);
    assert_eq!(r.stdout.lines().count(), 3, "{}", r.stdout);
    let mut quiet: Vec<String> = env
        .rsrun(&["list", "-q"])
        .stdout
        .lines()
        .map(String::from)
        .collect();
    quiet.sort();
    assert_eq!(quiet, ["rs-l1", "rs-l2"]);
    let r = env.rsrun(&["list", "--format", "json"]);
    let list: Vec<Value> = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(list.len(), 2, "{}", r.stdout);
    for c in &list {
        let i = ["rs-l1", "rs-l2"]
            .iter()
            .position(|id| c["id"] == *id)
            .unwrap();
        assert!(c["ociVersion"].as_str().unwrap().starts_with("1."), "{c}");
        assert_eq!(c["pid"], pids[i]);
        assert_eq!(c["status"], "running");
        assert_eq!(c["bundle"], bundle.as_str());
        assert_eq!(c["rootfs"], env.bundle.join("rootfs").to_str().unwrap());
        assert!(c["created"].as_str().unwrap().ends_with('Z'), "{c}");
        assert_eq!(c["owner"], "root");
    }
    for id in ["rs-l1", "rs-l2"] {
        env.delete_and_assert_clean(id);
    }
}

/// ps.bats "ps", "ps -e -x", "ps after the container stopped".
#[test]
fn ps_columns_options_and_after_stop() {
    let env = Env::new("rs-ps");
    env.set_args(&["sleep", "100"]);
    let pid = env.run_detached("rs-ps1");
    let r = env.rsrun(&["ps", "rs-ps1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let head = words(&r.stdout).remove(0);
    assert_eq!(
        head,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    );
    assert!(
        r.stdout
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some(&pid.to_string())),
        "{}",
        r.stdout
    );
    let r = env.rsrun(&["ps", "rs-ps1", "-e", "-x"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let head = words(&r.stdout).remove(0);
    assert_eq!(head, ["PID", "TTY", "STAT", "TIME", "COMMAND"]);
    assert!(r.stdout.contains(&pid.to_string()), "{}", r.stdout);
    assert_eq!(env.rsrun(&["kill", "rs-ps1", "KILL"]).code, 0);
    env.wait_status("rs-ps1", "stopped");
    let r = env.rsrun(&["ps", "rs-ps1"]);
    assert_eq!(r.code, 0, "ps of a stopped container: {}", r.stderr);
    assert_eq!(env.rsrun(&["delete", "rs-ps1"]).code, 0);
    env.assert_clean("rs-ps1", Some(pid));
}

/// kill.bats "kill detached busybox": signal 0 to a stopped container fails, with the
/// (obsolete) -a it succeeds.
#[test]
fn kill_all_of_a_stopped_container_succeeds() {
    let env = Env::new("rs-killa");
    env.set_args(&["sleep", "100"]);
    env.run_detached("rs-ka1");
    assert_eq!(env.rsrun(&["kill", "rs-ka1", "KILL"]).code, 0);
    env.wait_status("rs-ka1", "stopped");
    assert_one_line_error(&env.rsrun(&["kill", "rs-ka1", "0"]), "not running");
    let r = env.rsrun(&["kill", "-a", "rs-ka1", "0"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(env.rsrun(&["delete", "rs-ka1"]).code, 0);
    env.assert_clean("rs-ka1", None);
}

/// run.bats "runc run --keep" and "runc run --keep (check cgroup exists)".
#[test]
fn run_keep_keeps_state_and_cgroup_until_delete() {
    let env = Env::new("rs-keep");
    env.set_args(&["echo", "Hello World"]);
    let r = env.rsrun(&[
        "run",
        "--keep",
        "--bundle",
        env.bundle.to_str().unwrap(),
        "rs-k1",
    ]);
    assert_stdout(&r, "Hello World\n");
    assert_eq!(env.status("rs-k1"), "stopped");
    let cg = rsrun::cgroups::Cgroup::resolve(None, "rs-k1").unwrap();
    for d in &cg.dirs {
        assert!(
            d.path.exists(),
            "{} removed by run --keep",
            d.path.display()
        );
    }
    assert_eq!(read("rs-k1", "pids", "pids.max"), "max");
    assert_eq!(env.rsrun(&["delete", "rs-k1"]).code, 0);
    assert_one_line_error(&env.rsrun(&["state", "rs-k1"]), "does not exist");
    env.assert_clean("rs-k1", None);
    // Without --keep, run leaves nothing (run.bats "runc run").
    let r = env.rsrun(&["run", "--bundle", env.bundle.to_str().unwrap(), "rs-k2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_one_line_error(&env.rsrun(&["state", "rs-k2"]), "does not exist");
}

/// create.bats "runc create exec", "runc create --pid-file with new CWD": exec works in a
/// created container, which stays created; a relative --pid-file is relative to the
/// caller's directory, not the bundle.
#[test]
fn exec_into_a_created_container_and_relative_pid_file() {
    let env = Env::new("rs-create");
    env.set_args(&["sleep", "100"]);
    let cwd = env.dir.join("pid_file");
    std::fs::create_dir_all(&cwd).unwrap();
    let mut c = env.cmd(&[
        "create",
        "--pid-file",
        "pid.txt",
        "--bundle",
        env.bundle.to_str().unwrap(),
        "rs-ce1",
    ]);
    c.current_dir(&cwd);
    let r = output(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let pid: i64 = std::fs::read_to_string(cwd.join("pid.txt"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(env.state("rs-ce1")["pid"], pid);
    let r = env.rsrun(&["exec", "rs-ce1", "echo", "from-exec"]);
    assert_stdout(&r, "from-exec\n");
    assert_eq!(env.status("rs-ce1"), "created");
    assert_eq!(env.rsrun(&["start", "rs-ce1"]).code, 0);
    assert_eq!(env.status("rs-ce1"), "running");
    assert_eq!(env.rsrun(&["delete", "-f", "rs-ce1"]).code, 0);
    env.assert_clean("rs-ce1", Some(pid as i32));
}

/// pause.bats "runc pause and resume with nonexist container".
#[test]
fn pause_and_resume_of_a_missing_container_fail() {
    let env = Env::new("rs-pausemissing");
    env.set_args(&["sleep", "100"]);
    env.run_detached("rs-pm1");
    assert_eq!(env.rsrun(&["pause", "rs-pm1"]).code, 0);
    assert_one_line_error(&env.rsrun(&["pause", "rs-nonexistent"]), "does not exist");
    assert_eq!(env.status("rs-pm1"), "paused");
    assert_eq!(env.rsrun(&["resume", "rs-pm1"]).code, 0);
    assert_one_line_error(&env.rsrun(&["resume", "rs-nonexistent"]), "does not exist");
    assert_eq!(env.status("rs-pm1"), "running");
    env.delete_and_assert_clean("rs-pm1");
}

/// root.bats "global --root": each --root sees only its own containers.
#[test]
fn each_root_sees_only_its_containers() {
    let a = Env::new("rs-root-a");
    let b = Env::new("rs-root-b");
    for (env, id) in [(&a, "rs-ra"), (&b, "rs-rb")] {
        env.set_args(&["sleep", "100"]);
        env.run_detached(id);
        assert_eq!(env.status(id), "running");
    }
    assert_one_line_error(&a.rsrun(&["state", "rs-rb"]), "does not exist");
    assert_one_line_error(&b.rsrun(&["state", "rs-ra"]), "does not exist");
    assert_eq!(a.rsrun(&["list", "-q"]).stdout, "rs-ra\n");
    for (env, id) in [(&a, "rs-ra"), (&b, "rs-rb")] {
        assert_eq!(env.rsrun(&["kill", id, "KILL"]).code, 0);
        env.wait_status(id, "stopped");
        assert_eq!(env.rsrun(&["delete", id]).code, 0);
        env.assert_clean(id, None);
    }
}

/// ulimit.bats "runc exec with RLIMIT_NOFILE" and rlimits.bats "runc exec with
/// RLIMIT_NOFILE(...)": an exec'd process gets the config's rlimits, every time.
#[test]
fn exec_gets_the_configs_rlimits() {
    let env = Env::new("rs-execrlimit");
    env.edit(|v| {
        v["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 2000, "soft": 1000}])
    });
    env.set_args(&["sleep", "100"]);
    env.run_detached("rs-er1");
    for _ in 0..5 {
        let r = env.rsrun(&["exec", "rs-er1", "sh", "-c", "ulimit -n; ulimit -Hn"]);
        assert_eq!(r.stdout, "1000\n2000\n", "{}", r.stderr);
    }
    env.delete_and_assert_clean("rs-er1");
}

/// timens.bats "runc run [simple timens]" and "runc exec [simple timens]": the offsets
/// as given, for the init and an exec'd process.
#[test]
fn time_namespace_offsets_for_init_and_exec() {
    let env = Env::new("rs-timens");
    env.edit(|v| {
        with_time_ns(
            v,
            json!({
                "monotonic": {"secs": 7881, "nanosecs": 2718281},
                "boottime": {"secs": 1337, "nanosecs": 3141519}
            }),
        );
    });
    let offsets = |text: &str| -> Vec<Vec<String>> {
        let mut v: Vec<Vec<String>> = text
            .lines()
            .map(|l| l.split_whitespace().map(String::from).collect())
            .collect();
        v.sort();
        v
    };
    let want = offsets("boottime 1337 3141519\nmonotonic 7881 2718281\n");
    let r = env.run("rs-tn1", &["cat", "/proc/self/timens_offsets"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(offsets(&r.stdout), want, "{}", r.stdout);
    env.set_args(&["sleep", "100"]);
    env.run_detached("rs-tn2");
    let r = env.rsrun(&["exec", "rs-tn2", "cat", "/proc/self/timens_offsets"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(offsets(&r.stdout), want, "{}", r.stdout);
    env.delete_and_assert_clean("rs-tn2");
}

/// personality.bats "runc run personality with exec for i686" / "... for x86_64".
#[test]
fn exec_gets_the_personality() {
    let env = Env::new("rs-pers");
    env.set_args(&["sleep", "100"]);
    for (id, domain, machine) in [("rs-pe1", "LINUX32", "i686"), ("rs-pe2", "LINUX", "x86_64")] {
        env.edit(|v| v["linux"]["personality"] = json!({"domain": domain}));
        env.run_detached(id);
        let r = env.rsrun(&["exec", id, "uname", "-m"]);
        assert_eq!(r.stdout, format!("{machine}\n"), "{domain}: {}", r.stderr);
        env.delete_and_assert_clean(id);
    }
}

/// scheduler.bats "scheduler is applied" and ioprio.bats "ioprio_set is applied to
/// process group": an exec'd process takes both from config.json, and a process.json's
/// own ioPriority overrides it.
#[test]
fn exec_takes_scheduler_and_io_priority_from_the_config() {
    let env = Env::new("rs-sched");
    env.edit(|v| {
        v["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "priority": 0, "nice": 19});
        v["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 4});
    });
    env.set_args(&["sleep", "100"]);
    env.run_detached("rs-sc1");
    // Fields 19 and 41 of /proc/<pid>/stat: nice and policy (SCHED_BATCH is 3).
    let r = env.rsrun(&[
        "exec",
        "rs-sc1",
        "sh",
        "-c",
        "cut -d' ' -f19,41 /proc/1/stat; cut -d' ' -f19,41 /proc/self/stat; ionice -p 1; ionice",
    ]);
    assert_eq!(
        r.stdout, "19 3\n19 3\nbest-effort: prio 4\nbest-effort: prio 4\n",
        "{}",
        r.stderr
    );
    let pf = env.dir.join("process.json");
    std::fs::write(
        &pf,
        json!({"args": ["/bin/ionice"], "cwd": "/", "ioPriority": {"class": "IOPRIO_CLASS_IDLE"}})
            .to_string(),
    )
    .unwrap();
    let r = env.rsrun(&["exec", "--process", pf.to_str().unwrap(), "rs-sc1"]);
    assert_eq!(r.stdout, "idle\n", "{}", r.stderr);
    env.delete_and_assert_clean("rs-sc1");
}

/// exec.bats "runc exec --user vs /dev/null ownership": giving stdio to the process's
/// user must not chown the host's /dev/null.
#[test]
fn exec_as_another_user_leaves_the_hosts_dev_null_alone() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new("rs-devnull");
    env.set_args(&["sleep", "100"]);
    env.run_detached("rs-dn1");
    let mut c = env.cmd(&["exec", "-d", "--user", "1000:1000", "rs-dn1", "id"]);
    let null = std::fs::File::open("/dev/null").unwrap();
    c.stdin(null.try_clone().unwrap());
    c.stdout(null.try_clone().unwrap());
    c.stderr(null);
    let st = c.status().unwrap();
    assert!(st.success(), "exec: {st}");
    let m = std::fs::metadata("/dev/null").unwrap();
    let owner = (m.uid(), m.gid());
    if owner != (0, 0) {
        let _ = std::os::unix::fs::chown("/dev/null", Some(0), Some(0));
    }
    assert_eq!(
        owner,
        (0, 0),
        "the host's /dev/null was given to the exec'd user"
    );
    env.delete_and_assert_clean("rs-dn1");
}

/// exec.bats "runc exec --user" (HOME is / for a uid without a passwd entry) and
/// "runc exec check default home"; run.bats "runc run check default home".
#[test]
fn home_comes_from_passwd_or_is_the_root() {
    let env = Env::new("rs-home");
    let passwd = env.bundle.join("rootfs/etc/passwd");
    let mut text = std::fs::read_to_string(&passwd).unwrap();
    text.push_str("tempuser:x:2000:2000:tempuser:/home/tempuser:/bin/sh\n");
    std::fs::write(&passwd, text).unwrap();
    env.edit(|v| {
        v["process"]["user"] = json!({"uid": 2000, "gid": 2000});
        v["process"]["cwd"] = json!("/root");
    });
    let r = env.run("rs-h1", &["sh", "-c", "echo $HOME"]);
    assert_eq!(r.stdout, "/home/tempuser\n", "{}", r.stderr);
    env.edit(|v| {
        v["process"]["user"] = json!({"uid": 0, "gid": 0});
        v["process"]["cwd"] = json!("/");
    });
    env.set_args(&["sleep", "100"]);
    env.run_detached("rs-h2");
    let r = env.rsrun(&["exec", "-u", "2000", "rs-h2", "sh", "-c", "echo $HOME"]);
    assert_eq!(r.stdout, "/home/tempuser\n", "{}", r.stderr);
    let r = env.rsrun(&[
        "exec",
        "--user",
        "1000",
        "rs-h2",
        "sh",
        "-u",
        "-c",
        "echo $HOME",
    ]);
    assert_eq!(r.stdout, "/\n", "{}", r.stderr);
    env.delete_and_assert_clean("rs-h2");
}

/// env.bats "env var override", "env var override is set only once", "env var with
/// new-line is honored", "non-empty HOME env is used".
#[test]
fn environment_overrides_and_newlines() {
    let env = Env::new("rs-env");
    env.edit(|v| v["process"]["env"] = json!(["ONE=two", "ONE=", "PATH=/usr/bin:/bin"]));
    let r = env.run("rs-en1", &["env"]);
    let mut vars: Vec<&str> = r.stdout.lines().collect();
    vars.sort();
    assert_eq!(
        vars,
        ["HOME=/root", "ONE=", "PATH=/usr/bin:/bin"],
        "{}",
        r.stderr
    );
    env.edit(|v| {
        v["process"]["env"] = json!(["PATH=/bin", "ONE=two", "ONE=three", "HOME=/override"])
    });
    let r = env.run("rs-en2", &["sh", "-c", "echo ONE=$ONE HOME=$HOME"]);
    assert_eq!(r.stdout, "ONE=three HOME=/override\n", "{}", r.stderr);
    env.edit(|v| v["process"]["env"] = json!(["NEW_LINE_ENV=\n", "PATH=/usr/bin:/bin"]));
    let r = env.run("rs-en3", &["env"]);
    assert_eq!(r.stdout.lines().count(), 4, "{:?}", r.stdout);
    assert!(r.stdout.contains("NEW_LINE_ENV=\n\n"), "{:?}", r.stdout);
    env.assert_clean("rs-en3", None);
}

/// run.bats "runc run [execve error]" and exec.bats "runc exec [execve error]": an
/// interpreter that does not exist is one line naming the program, the process's own
/// (`exec /run.sh: no such file or directory`, status 1), for `run` and `exec`.
#[test]
fn execve_error_is_one_line() {
    let env = Env::new("rs-execve");
    let script = env.bundle.join("rootfs/run.sh");
    std::fs::write(&script, "#!/mmnnttbb foo bar\nsh\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let want = (1, "exec /run.sh: no such file or directory\n");
    let r = env.run("rs-ee1", &["/run.sh"]);
    assert_eq!((r.code, r.stderr.as_str()), want);
    env.assert_clean("rs-ee1", None);
    env.set_args(&["sleep", "100"]);
    env.run_detached("rs-ee2");
    let r = env.rsrun(&["exec", "rs-ee2", "/run.sh"]);
    assert_eq!((r.code, r.stderr.as_str()), want);
    env.delete_and_assert_clean("rs-ee2");
}

/// mask.bats "mask paths [file]" and "mask paths [directory]": a masked path reads empty
/// and can be neither removed, written nor unmounted (the default read-only root, as
/// in runc's test).
#[test]
fn masked_paths_cannot_be_removed_or_unmounted() {
    let env = Env::new("rs-mask");
    let rootfs = env.bundle.join("rootfs");
    std::fs::create_dir_all(rootfs.join("testdir")).unwrap();
    std::fs::write(rootfs.join("testdir/inside"), "x").unwrap();
    std::fs::write(rootfs.join("testfile"), "Forbidden information!\n").unwrap();
    env.edit(|v| {
        let m = v["linux"]["maskedPaths"].as_array_mut().unwrap();
        m.push(json!("/testdir"));
        m.push(json!("/testfile"));
    });
    let r = env.run(
        "rs-mk1",
        &[
            "sh",
            "-c",
            "cat /testfile; ls /testdir; rm -f /testfile; touch /testdir/foo; rm -rf /testdir; \
             umount /testfile; umount /testdir; true",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "", "a masked path showed its content");
    let errs: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(errs.len(), 5, "{}", r.stderr);
    for l in &errs[..3] {
        assert!(l.contains("Read-only file system"), "{l}");
    }
    for l in &errs[3..] {
        assert!(l.contains("Operation not permitted"), "{l}");
    }
    assert!(rootfs.join("testfile").exists() && rootfs.join("testdir/inside").exists());
    env.assert_clean("rs-mk1", None);
}

/// run.bats "runc run with tmpfs perms" (the steps with a mode= option): the mode on a
/// directory rsrun creates, and on one that exists.
#[test]
fn tmpfs_mode_option_on_new_and_existing_directories() {
    let env = Env::new("rs-tmpfsmode");
    let add = |mode: &str| {
        let mode = mode.to_string();
        env.edit(move |v| {
            let m = v["mounts"].as_array_mut().unwrap();
            m.retain(|x| x["destination"] != "/tmp/test");
            m.push(
                json!({"destination": "/tmp/test", "type": "tmpfs", "source": "tmpfs",
                "options": [format!("mode={mode}")]}),
            );
        });
    };
    add("0444");
    for id in ["rs-tm1", "rs-tm2"] {
        let r = env.run(id, &["stat", "-c", "%a", "/tmp/test"]);
        assert_eq!(r.stdout, "444\n", "{id}: {}", r.stderr);
    }
    assert!(env.bundle.join("rootfs/tmp/test").is_dir());
    add("0410");
    let r = env.run("rs-tm3", &["stat", "-c", "%a", "/tmp/test"]);
    assert_eq!(r.stdout, "410\n", "{}", r.stderr);
    env.assert_clean("rs-tm3", None);
}

/// mounts.bats "[tmpfs mount with absolute symlink]", "[ro tmpfs mount]" and "[bind
/// mount]" (a relative source is relative to the bundle).
#[test]
fn tmpfs_through_an_in_root_symlink_ro_tmpfs_and_relative_bind() {
    let env = Env::new("rs-mnt");
    let rootfs = env.bundle.join("rootfs");
    std::fs::create_dir_all(rootfs.join("real/conf")).unwrap();
    std::os::unix::fs::symlink("/real/conf", rootfs.join("conf")).unwrap();
    env.edit(|v| {
        let m = v["mounts"].as_array_mut().unwrap();
        m.push(
            json!({"destination": "/conf/stack", "type": "tmpfs", "source": "tmpfs",
            "options": ["ro", "nodev", "nosuid"]}),
        );
        m.push(
            json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs",
            "options": ["ro", "nodev", "nosuid", "mode=755"]}),
        );
        m.push(json!({"destination": "/tmp/bind", "source": ".", "options": ["bind"]}));
    });
    let r = env.run(
        "rs-mn1",
        &[
            "sh",
            "-c",
            "awk '$5 == \"/real/conf/stack\" {print \"stack\", $6}' /proc/self/mountinfo; \
             grep '^tmpfs /mnt ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1; ls /tmp/bind/config.json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let l: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(l.len(), 3, "{}", r.stdout);
    assert!(l[0].starts_with("stack ro,"), "{}", r.stdout);
    assert_eq!(l[1], "ro");
    assert_eq!(l[2], "/tmp/bind/config.json");
    assert!(
        rootfs.join("real/conf/stack").is_dir(),
        "not created inside the rootfs"
    );
    env.assert_clean("rs-mn1", None);
}

/// dev.bats "runc run [redundant default dev]": /dev/tty listed again in linux.devices.
#[test]
fn redundant_default_device() {
    let env = Env::new("rs-devtty");
    env.edit(|v| {
        v["linux"]["devices"] = json!([{"path": "/dev/tty", "type": "c", "major": 5, "minor": 0}])
    });
    let r = env.run("rs-dt1", &["stat", "-c", "%A %U %G %t:%T", "/dev/tty"]);
    assert_eq!(r.stdout, "crw-rw-rw- root root 5:0\n", "{}", r.stderr);
    env.assert_clean("rs-dt1", None);
}

/// update.bats "update cgroup v1/v2 common limits" (pids-limit -1 is unlimited) and
/// "update paused container" (an update leaves it paused).
#[test]
fn update_unlimited_pids_and_a_paused_container() {
    let env = Env::new("rs-update");
    env.edit(|v| v["linux"]["resources"]["pids"] = json!({"limit": 20}));
    env.set_args(&["sleep", "100"]);
    env.run_detached("rs-up1");
    assert_eq!(read("rs-up1", "pids", "pids.max"), "20");
    let r = env.rsrun(&["update", "--pids-limit", "-1", "rs-up1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(read("rs-up1", "pids", "pids.max"), "max");
    assert_eq!(env.rsrun(&["pause", "rs-up1"]).code, 0);
    let r = env.rsrun(&["update", "--pids-limit", "30", "rs-up1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(read("rs-up1", "pids", "pids.max"), "30");
    assert_eq!(env.status("rs-up1"), "paused");
    assert_eq!(env.rsrun(&["resume", "rs-up1"]).code, 0);
    assert_eq!(env.status("rs-up1"), "running");
    env.delete_and_assert_clean("rs-up1");
}

/// update.bats "update cgroup cpu limits", "update cgroup cpu.idle", "update cpu burst":
/// runc's flags for period, quota, shares, burst and idle, then the same through
/// `--resources -`; the obsolete kernel-memory flags are ignored with a warning and the
/// Intel RDT ones refused by name.
#[test]
fn update_cpu_limits_burst_and_idle() {
    use crate::resources::v2;
    let env = Env::new("rs-upcpu");
    env.set_args(&["sleep", "100"]);
    env.run_detached("rs-uc1");
    let cpu = |file: &str| read("rs-uc1", "cpu", file);
    let r = env.rsrun(&[
        "update",
        "--cpu-period",
        "50000",
        "--cpu-quota",
        "25000",
        "--cpu-burst",
        "10000",
        "--cpu-idle",
        "1",
        "rs-uc1",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    if v2() {
        assert_eq!(cpu("cpu.max"), "25000 50000");
        assert_eq!(cpu("cpu.max.burst"), "10000");
    } else {
        assert_eq!(cpu("cpu.cfs_period_us"), "50000");
        assert_eq!(cpu("cpu.cfs_quota_us"), "25000");
        assert_eq!(cpu("cpu.cfs_burst_us"), "10000");
    }
    assert_eq!(cpu("cpu.idle"), "1");
    // Through the JSON on stdin: quota -1 is unlimited, idle back to 0, shares (an idle
    // cgroup reads the kernel's idle weight, so shares are checked once it is not).
    let mut c = env.cmd(&["update", "-r", "-", "rs-uc1"]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(br#"{"cpu": {"quota": -1, "period": 100000, "burst": 0, "idle": 0, "shares": 512}}"#)
            .unwrap();
    }
    let r = Run::from(child.wait_with_output().unwrap());
    assert_eq!(r.code, 0, "{}", r.stderr);
    if v2() {
        assert_eq!(cpu("cpu.max"), "max 100000");
        assert_eq!(cpu("cpu.max.burst"), "0");
        assert_eq!(cpu("cpu.weight"), "20");
    } else {
        assert_eq!(cpu("cpu.cfs_period_us"), "100000");
        assert_eq!(cpu("cpu.cfs_quota_us"), "-1");
        assert_eq!(cpu("cpu.cfs_burst_us"), "0");
        assert_eq!(cpu("cpu.shares"), "512");
    }
    assert_eq!(cpu("cpu.idle"), "0");
    let r = env.rsrun(&["update", "--kernel-memory", "64m", "rs-uc1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("--kernel-memory is ignored"),
        "{}",
        r.stderr
    );
    let r = env.rsrun(&["update", "--l3-cache-schema", "L3:0=f", "rs-uc1"]);
    assert_one_line_error(&r, "--l3-cache-schema");
    env.delete_and_assert_clean("rs-uc1");
}

/// exec.bats "runc exec --preserve-fds": fd 4 of the caller reaches the process with
/// --preserve-fds=2.
#[test]
fn exec_preserve_fds() {
    let env = Env::new("rs-execfds");
    env.set_args(&["sleep", "100"]);
    env.run_detached("rs-ef1");
    let f = env.dir.join("preserve-fds.test");
    std::fs::write(&f, "hello\n").unwrap();
    let file = std::fs::File::open(&f).unwrap();
    let raw = file.as_raw_fd();
    let mut cmd = env.cmd(&[
        "exec",
        "--preserve-fds=2",
        "rs-ef1",
        "cat",
        "/proc/self/fd/4",
    ]);
    use std::os::unix::process::CommandExt;
    unsafe {
        cmd.pre_exec(move || {
            let x = libc::fcntl(raw, libc::F_DUPFD, 100);
            if x < 0 || libc::dup2(x, 4) < 0 || libc::dup2(x, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let r = output(cmd);
    assert_stdout(&r, "hello\n");
    env.delete_and_assert_clean("rs-ef1");
}

/// events.bats "events --interval default", "1s", "100ms": the stream's lines are
/// `{"type":"stats","id":ID,"data":…}` at the interval asked (runc's duration syntax),
/// and the stream ends when the container is deleted.
#[test]
fn events_stream_at_each_interval() {
    use std::time::Duration;
    let env = Env::new("rs-events");
    env.set_args(&["sleep", "100"]);
    for (i, (interval, lines)) in [(None, 1), (Some("1s"), 2), (Some("100ms"), 4)]
        .into_iter()
        .enumerate()
    {
        let id = format!("rs-ev{i}");
        env.run_detached(&id);
        let out = env.dir.join(format!("events-{i}.log"));
        let mut args = vec!["events"];
        if let Some(iv) = interval {
            args.extend(["--interval", iv]);
        }
        args.push(&id);
        let mut c = env.cmd(&args);
        c.stdout(std::fs::File::create(&out).unwrap());
        let mut child = c.spawn().unwrap();
        let read = || std::fs::read_to_string(&out).unwrap();
        // 1s: two lines within 10s; 100ms: four within 10s (the default's second line
        // is 5s away: one is enough).
        wait_until(
            &format!("{lines} stats lines at {interval:?}"),
            Duration::from_secs(10),
            || read().lines().count() >= lines,
        );
        let first = read().lines().next().unwrap().to_string();
        let prefix = format!("{{\"type\":\"stats\",\"id\":\"{id}\",");
        assert!(first.starts_with(&prefix), "{first}");
        let v: serde_json::Value = serde_json::from_str(&first).unwrap();
        assert!(
            v["data"]["pids"]["current"].as_u64().unwrap() >= 1,
            "{first}"
        );
        env.delete_and_assert_clean(&id);
        wait_until(
            "the stream to end with the container",
            Duration::from_secs(10),
            || !matches!(child.try_wait(), Ok(None)),
        );
    }
}

/// cwd.bats "runc exec --user with no access to cwd" and "runc create can chdir if runc
/// has access": the cwd is entered while the runtime may still enter it, before the
/// process's user and capabilities take over (a 0700 directory of another user, and
/// root without CAP_DAC_OVERRIDE, as in runc's default capabilities).
#[test]
fn cwd_the_process_user_cannot_enter() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new("rs-cwd");
    let home = env.bundle.join("rootfs/root");
    std::fs::create_dir_all(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(42), None).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    env.edit(|v| {
        v["process"]["cwd"] = json!("/root");
        v["process"]["user"] = json!({"uid": 42, "gid": 42});
    });
    env.set_args(&["sleep", "100"]);
    env.run_detached("rs-cwd1");
    let r = env.rsrun(&["exec", "--user", "0", "rs-cwd1", "pwd"]);
    assert_stdout(&r, "/root\n");
    env.delete_and_assert_clean("rs-cwd1");
    // A 0700 root directory as the cwd of uid 42.
    let nonroot = env.bundle.join("rootfs/home/nonroot");
    std::fs::create_dir_all(&nonroot).unwrap();
    std::fs::set_permissions(&nonroot, std::fs::Permissions::from_mode(0o700)).unwrap();
    env.edit(|v| v["process"]["cwd"] = json!("/home/nonroot"));
    let r = env.run(
        "rs-cwd2",
        &["sh", "-c", "pwd; ls /tmp >/dev/null && echo ok"],
    );
    assert_stdout(&r, "/home/nonroot\nok\n");
    env.assert_clean("rs-cwd2", None);
}

/// no_pivot.bats "runc run --no-pivot [rootfsPropagation rshared] must not leak rootfs
/// mount": with a shared root and a rootfs that is a mount, `run --no-pivot` adds no
/// mount on `/` to the runtime's mount namespace and unmounts none of its mounts (runc
/// 1.1.5 unmounts its /proc). Run in a mount namespace of its own (made rshared there),
/// so a regression cannot break the host.
#[test]
fn no_pivot_with_rshared_propagation_leaks_no_mount() {
    let env = Env::new("rs-nopivot");
    env.edit(|v| {
        v["linux"]["rootfsPropagation"] = json!("rshared");
        v["process"]["args"] = json!(["true"]);
    });
    let rootfs = env.bundle.join("rootfs");
    let script = format!(
        "set -e; mount --make-rshared /; mount --bind {r} {r}; \
         count() {{ awk '$5 == \"/\"' /proc/self/mountinfo | wc -l; }}; \
         before=$(count); {bin} --root {root} run --no-pivot --bundle {b} rs-np1; \
         echo \"$before $(count)\"; test -r /proc/self/status && echo proc-kept",
        r = rootfs.display(),
        bin = RSRUN,
        root = env.root.display(),
        b = env.bundle.display(),
    );
    claim_id("rs-np1", &env.dir);
    let mut c = std::process::Command::new("unshare");
    c.args(["-m", "sh", "-c", &script]);
    let r = output(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The namespace's own /proc is still mounted (an unmount under a shared `/` would
    // have propagated to it), and nothing was stacked on its `/`.
    let counts: Vec<&str> = r.stdout.split_whitespace().collect();
    assert_eq!(counts.len(), 3, "{}", r.stdout);
    assert_eq!(counts[2], "proc-kept");
    assert_eq!(counts[0], counts[1], "mounts on / before and after");
    env.assert_clean("rs-np1", None);
}

/// rlimits.bats "runc run with RLIMIT_NOFILE(The same as system's hard value)" and
/// "(Smaller than system's hard value)", for run and exec; without an rlimit in the
/// config, the container keeps its caller's (a lowered soft limit stays lowered).
#[test]
fn nofile_at_the_hard_limit_and_the_callers_own() {
    let (_, hard) = rsrun::sys::privilege::getrlimit(libc::RLIMIT_NOFILE as i32).unwrap();
    let hard = hard.min(1 << 20);
    let env = Env::new("rs-nofile");
    for (i, soft) in [hard, hard / 2].into_iter().enumerate() {
        env.edit(|v| {
            v["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": hard, "soft": soft}])
        });
        let id = format!("rs-nf{i}");
        let want = format!("{soft}\n{hard}\n");
        let r = env.run(&id, &["sh", "-c", "ulimit -n; ulimit -Hn"]);
        assert_stdout(&r, &want);
        env.set_args(&["sleep", "100"]);
        let id = format!("rs-nfx{i}");
        env.run_detached(&id);
        let r = env.rsrun(&["exec", &id, "sh", "-c", "ulimit -n; ulimit -Hn"]);
        assert_stdout(&r, &want);
        env.delete_and_assert_clean(&id);
    }
    env.edit(|v| {
        v["process"].as_object_mut().unwrap().remove("rlimits");
    });
    env.set_args(&["sh", "-c", "ulimit -n; ulimit -Hn"]);
    let mut c = std::process::Command::new("prlimit");
    c.arg(format!("--nofile=777:{hard}"))
        .arg(RSRUN)
        .arg("--root")
        .arg(&env.root)
        .args(["run", "--bundle"])
        .arg(&env.bundle)
        .arg("rs-nfc");
    claim_id("rs-nfc", &env.dir);
    let r = output(c);
    assert_stdout(&r, &format!("777\n{hard}\n"));
    env.assert_clean("rs-nfc", None);
}

/// personality.bats "runc run with personality syscall blocked by seccomp": the
/// personality is set before the filter that blocks personality(2) is loaded, for the
/// init and an exec'd process (LINUX32 shows as i686).
#[test]
fn personality_with_the_syscall_blocked_by_seccomp() {
    let env = Env::new("rs-persona");
    env.edit(|v| {
        v["linux"]["personality"] = json!({"domain": "LINUX32"});
        v["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO"}]
        });
    });
    env.set_args(&["sleep", "100"]);
    env.run_detached("rs-psb1");
    let r = env.rsrun(&["exec", "rs-psb1", "uname", "-m"]);
    assert_stdout(&r, "i686\n");
    let r = env.rsrun(&["exec", "rs-psb1", "cat", "/proc/1/personality"]);
    assert_eq!(r.stdout, "00000008\n", "{}", r.stderr);
    env.delete_and_assert_clean("rs-psb1");
}

/// run.bats "runc run [joining existing container namespaces]": a second container joins
/// every namespace of a first one (user and time included) by path, and is in each; as
/// in runc's test, not the mount namespace (root.path must be pivoted into, and it does
/// not exist in the first container's).
#[test]
fn joining_every_namespace_of_another_container() {
    let env = Env::new("rs-joinall");
    env.edit(|v| {
        with_userns(v);
        with_time_ns(v, json!({"monotonic": {"secs": 1000, "nanosecs": 0}}));
    });
    env.set_args(&["sleep", "100"]);
    let pid = env.run_detached("rs-ja1");
    let kinds = ["user", "pid", "net", "ipc", "uts", "cgroup", "time"];
    let want: Vec<String> = kinds
        .iter()
        .map(|k| {
            std::fs::read_link(format!("/proc/{pid}/ns/{k}"))
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    env.edit(|v| {
        for n in v["linux"]["namespaces"].as_array_mut().unwrap() {
            let name = match n["type"].as_str().unwrap() {
                "mount" => continue,
                "network" => "net",
                other => other,
            }
            .to_string();
            n["path"] = json!(format!("/proc/{pid}/ns/{name}"));
        }
        for k in ["uidMappings", "gidMappings", "timeOffsets"] {
            v["linux"].as_object_mut().unwrap().remove(k);
        }
    });
    let script = kinds
        .iter()
        .map(|k| format!("readlink /proc/self/ns/{k};"))
        .collect::<String>();
    let r = env.run("rs-ja2", &["sh", "-c", &script]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(got, want, "{}", r.stdout);
    env.assert_clean("rs-ja2", None);
    env.delete_and_assert_clean("rs-ja1");
}

/// scheduler.bats "scheduler vs cpus" and "scheduler is applied": SCHED_DEADLINE with a
/// cpuset narrower than the online CPUs is refused in runc's words before anything is
/// made; with every online CPU (or none named) it is applied.
#[test]
fn sched_deadline_against_the_cpuset() {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    let online = online.trim().to_string();
    assert_ne!(online, "0", "this test needs two CPUs or more");
    let env = Env::new("rs-deadline");
    env.edit(|v| {
        v["linux"]["resources"]["cpu"] = json!({"cpus": "0"});
        v["process"]["scheduler"] = json!({"policy": "SCHED_DEADLINE", "nice": 19,
            "runtime": 42000, "deadline": 1000000, "period": 1000000});
    });
    let r = env.run("rs-dl1", &["true"]);
    assert_one_line_error(
        &r,
        "process scheduler can't be used together with AllowedCPUs",
    );
    env.assert_clean("rs-dl1", None);
    env.edit(|v| v["linux"]["resources"]["cpu"] = json!({"cpus": online}));
    let r = env.run("rs-dl2", &["cat", "/proc/self/sched"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let policy = r
        .stdout
        .lines()
        .find(|l| l.starts_with("policy"))
        .unwrap_or_default()
        .to_string();
    assert!(
        policy.ends_with(" 6"),
        "policy is not SCHED_DEADLINE: {policy}"
    );
    env.assert_clean("rs-dl2", None);
}

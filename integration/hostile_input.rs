//! Hostile values and files from config.json, the command line and the container image:
//! ids with a special meaning to the kernel (-1), files that are devices, FIFOs or huge,
//! cpuset ranges of billions, device nodes treated as grants. Each is refused with a
//! one-line error naming the field or path, fast, leaving nothing behind, or neutralised.

use crate::common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// Ids a process may have, and the first ones past the end (2^31, and 2^32-1 which is -1
/// to setresuid: "unchanged", i.e. root).
const TOO_BIG: [u32; 2] = [2_147_483_648, 4_294_967_295];

fn refused(env: &Env, id: &str, needle: &str) {
    let r = env.create(id);
    assert_one_line_error(&r, needle);
    env.assert_clean(id, None);
}

/// rsrun with a bound on its run time: a command that blocks fails the test instead of
/// hanging it. Returns the result and how long it took.
fn bounded(env: &Env, args: &[&str], stdin: Option<std::fs::File>) -> (Run, Duration) {
    let mut c = std::process::Command::new("timeout");
    c.args([
        "-s",
        "KILL",
        "60",
        RSRUN,
        "--root",
        env.root.to_str().unwrap(),
    ]);
    c.args(args);
    let t = Instant::now();
    let r = match stdin {
        None => output(c),
        Some(f) => {
            let dir = &env.dir;
            let (o, e) = (dir.join("bounded.out"), dir.join("bounded.err"));
            let st = c
                .stdin(f)
                .stdout(std::fs::File::create(&o).unwrap())
                .stderr(std::fs::File::create(&e).unwrap())
                .status()
                .unwrap();
            Run {
                code: st.code().unwrap_or(-1),
                stdout: std::fs::read_to_string(&o).unwrap(),
                stderr: std::fs::read_to_string(&e).unwrap(),
            }
        }
    };
    (r, t.elapsed())
}

/// A refusal that came quickly (the unfixed code hung, or ran for tens of seconds).
/// "Quickly" is relative to how long this machine takes to refuse a plain bad command
/// right now (milliseconds natively, far more in a loaded emulated guest).
fn refused_fast(r: &(Run, Duration), needle: &str) {
    assert_ne!(r.0.code, 124, "rsrun was still running after 60 s");
    assert_one_line_error(&r.0, needle);
    let t = Instant::now();
    let _ = rsrun(&["state", "no-such-container"]);
    // The unfixed code took over 30 s natively on a cpuset range and hung on a FIFO (the
    // 60 s timeout above): 20 s, or more on a machine that is slow right now (an
    // emulated guest under load), tells them apart.
    let bound = Duration::from_secs(20).max(t.elapsed() * 50);
    assert!(r.1 < bound, "took {:?} (bound {bound:?})", r.1);
}

fn running(env: &Env, id: &str, user: Value) {
    env.edit(|v| {
        v["process"]["args"] = json!(["sleep", "1000"]);
        v["process"]["user"] = user;
    });
    env.run_detached(id);
}

fn mkfifo(p: &Path) {
    let _ = std::fs::remove_file(p);
    let st = std::process::Command::new("mkfifo")
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn config_ids_outside_0_to_2_31_are_refused() {
    let env = Env::new("hi-ids");
    let good = env.config();
    for bad in TOO_BIG {
        for (n, (field, user)) in [
            ("process.user.uid", json!({"uid": bad, "gid": 0})),
            ("process.user.gid", json!({"uid": 1000, "gid": bad})),
            (
                "process.user.additionalGids[1]",
                json!({"uid": 1000, "gid": 1000, "additionalGids": [5, bad]}),
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let mut v = good.clone();
            v["process"]["user"] = user;
            env.write_config(&v);
            refused(
                &env,
                &format!("hin-i{n}-{bad}"),
                &format!("{field}: {bad} is outside"),
            );
        }
    }
    // The largest valid id and 0 are given exactly.
    let mut v = good.clone();
    v["process"]["user"] = json!({"uid": 2147483647, "gid": 7, "additionalGids": [0, 2147483647]});
    env.write_config(&v);
    let r = env.run("hin-max", &["sh", "-c", "id -u; id -g; id -G"]);
    assert_eq!(r.stdout, "2147483647\n7\n7 0 2147483647\n", "{}", r.stderr);
    env.assert_clean("hin-max", None);
}

#[test]
fn exec_ids_outside_0_to_2_31_are_refused() {
    let env = Env::new("hi-exec-ids");
    running(&env, "hin-x1", json!({"uid": 1000, "gid": 1000}));
    let pf = env.dir.join("process.json");
    for bad in TOO_BIG {
        let b = bad.to_string();
        let both = format!("{bad}:{bad}");
        let gid = format!("1000:{bad}");
        for args in [
            vec!["exec", "--user", &both, "hin-x1", "id"],
            vec!["exec", "--user", &b, "hin-x1", "id"],
            vec!["exec", "--user", &gid, "hin-x1", "id"],
        ] {
            let r = env.rsrun(&args);
            assert_one_line_error(&r, &format!("--user \"{}\": {bad} is outside", args[2]));
            assert_eq!(r.stdout, "", "the process ran");
        }
        let r = env.rsrun(&["exec", "--additional-gids", &b, "hin-x1", "id"]);
        assert_one_line_error(&r, &format!("--additional-gids: {bad} is outside"));
        for (field, user) in [
            ("process.user.uid", json!({"uid": bad, "gid": 0})),
            ("process.user.gid", json!({"uid": 0, "gid": bad})),
            (
                "process.user.additionalGids[0]",
                json!({"uid": 0, "gid": 0, "additionalGids": [bad]}),
            ),
        ] {
            let p = json!({"args": ["id"], "cwd": "/", "user": user});
            std::fs::write(&pf, p.to_string()).unwrap();
            let r = env.rsrun(&["exec", "--process", pf.to_str().unwrap(), "hin-x1"]);
            assert_one_line_error(&r, &format!("{field}: {bad} is outside"));
            assert_eq!(r.stdout, "", "the process ran");
        }
    }
    // The container's own user, and the largest valid ids, are given exactly.
    let r = env.rsrun(&["exec", "hin-x1", "id"]);
    assert_eq!(r.stdout.trim(), "uid=1000 gid=1000", "{}", r.stderr);
    let r = env.rsrun(&[
        "exec",
        "--user",
        "2147483647:2147483647",
        "--additional-gids",
        "0",
        "hin-x1",
        "id",
    ]);
    assert_eq!(
        r.stdout.trim(),
        "uid=2147483647 gid=2147483647 groups=0(root)",
        "{}",
        r.stderr
    );
    env.delete_and_assert_clean("hin-x1");
}

#[test]
fn id_mappings_out_of_range_are_refused() {
    let env = Env::new("hi-maps");
    let mut good = env.config();
    with_userns(&mut good);
    let map = |c: u32, h: u32, s: u32| json!([{"containerID": c, "hostID": h, "size": s}]);
    for (n, (key, m, field)) in [
        (
            "uidMappings",
            map(0, 100000, 0),
            "linux.uidMappings[0].size",
        ),
        (
            "gidMappings",
            map(4294967295, 100000, 1),
            "linux.gidMappings[0].containerID",
        ),
        (
            "uidMappings",
            map(0, 4294967295, 1),
            "linux.uidMappings[0].hostID",
        ),
        (
            "gidMappings",
            map(0, 4294967000, 1000),
            "linux.gidMappings[0].hostID",
        ),
        (
            "uidMappings",
            map(1, 0, 4294967295),
            "linux.uidMappings[0].containerID",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut v = good.clone();
        v["linux"][key] = m;
        env.write_config(&v);
        refused(&env, &format!("hin-m{n}"), field);
    }
    // A mapping of every id but -1 is valid.
    let mut v = good.clone();
    v["linux"]["uidMappings"] = map(0, 0, 4294967295);
    v["linux"]["gidMappings"] = map(0, 0, 4294967295);
    env.write_config(&v);
    let r = env.run("hin-m-all", &["cat", "/proc/self/uid_map"]);
    assert_eq!(
        r.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "0", "4294967295"],
        "{}",
        r.stderr
    );
    env.assert_clean("hin-m-all", None);
}

#[test]
fn config_json_that_is_not_a_regular_file_is_refused_fast() {
    let env = Env::new("hi-config");
    let cfg = env.bundle.join("config.json");
    let bundle = env.bundle.to_str().unwrap().to_string();
    let good = std::fs::read(&cfg).unwrap();
    for (n, (target, what)) in [
        ("/dev/zero", "is a character device"),
        ("/dev/urandom", "is a character device"),
        ("/", "is a directory"),
    ]
    .into_iter()
    .enumerate()
    {
        std::fs::remove_file(&cfg).unwrap();
        std::os::unix::fs::symlink(target, &cfg).unwrap();
        for verb in ["create", "run"] {
            let id = format!("hin-c{n}{verb}");
            let r = bounded(&env, &[verb, "--bundle", &bundle, &id], None);
            refused_fast(&r, &format!("config.json: {what}, not a regular file"));
            env.assert_clean(&id, None);
        }
    }
    mkfifo(&cfg);
    for verb in ["create", "run"] {
        let id = format!("hin-c-fifo-{verb}");
        let r = bounded(&env, &[verb, "--bundle", &bundle, &id], None);
        refused_fast(&r, "config.json: is a FIFO, not a regular file");
        env.assert_clean(&id, None);
    }
    // A sparse file just over the limit is refused without being read.
    std::fs::remove_file(&cfg).unwrap();
    std::fs::File::create(&cfg)
        .unwrap()
        .set_len((16 << 20) + 1)
        .unwrap();
    let r = bounded(&env, &["create", "--bundle", &bundle, "hin-c-big"], None);
    refused_fast(&r, "config.json: larger than the limit");
    env.assert_clean("hin-c-big", None);
    // A symlink to a regular file is still a config.
    std::fs::remove_file(&cfg).unwrap();
    std::fs::write(env.dir.join("real.json"), good).unwrap();
    std::os::unix::fs::symlink(env.dir.join("real.json"), &cfg).unwrap();
    let r = env.run("hin-c-ok", &["echo", "ok"]);
    assert_eq!(r.stdout, "ok\n", "{}", r.stderr);
}

#[test]
fn exec_process_and_update_resources_files_are_bounded() {
    let env = Env::new("hi-files");
    running(&env, "hin-f1", json!({"uid": 0, "gid": 0}));
    let fifo = env.dir.join("fifo");
    mkfifo(&fifo);
    let fifo = fifo.to_str().unwrap();
    for (file, what) in [
        ("/dev/zero", "/dev/zero: is a character device"),
        (fifo, "fifo: is a FIFO"),
    ] {
        let r = bounded(&env, &["exec", "--process", file, "hin-f1"], None);
        refused_fast(&r, what);
        let r = bounded(&env, &["update", "--resources", file, "hin-f1"], None);
        refused_fast(&r, what);
    }
    let zero = std::fs::File::open("/dev/zero").unwrap();
    let r = bounded(&env, &["update", "--resources", "-", "hin-f1"], Some(zero));
    refused_fast(&r, "stdin: larger than the limit");
    assert_eq!(env.status("hin-f1"), "running");
    env.delete_and_assert_clean("hin-f1");
}

#[test]
fn container_passwd_that_is_not_a_regular_file_cannot_hang_the_init() {
    let env = Env::new("hi-passwd");
    let bundle = env.bundle.to_str().unwrap().to_string();
    env.set_args(&["sh", "-c", "echo HOME=$HOME"]);
    // The image's regular passwd gives HOME.
    let r = env.rsrun(&["run", "--bundle", &bundle, "hin-p-ok"]);
    assert_eq!(r.stdout, "HOME=/root\n", "{}", r.stderr);
    let passwd = env.bundle.join("rootfs/etc/passwd");
    std::fs::remove_file(&passwd).unwrap();
    mkfifo(&passwd);
    let r = bounded(&env, &["run", "--bundle", &bundle, "hin-p-fifo"], None);
    refused_fast(&r, "/etc/passwd: is a FIFO, not a regular file");
    env.assert_clean("hin-p-fifo", None);
    // A symlink resolved inside the container to its /dev/zero.
    std::fs::remove_file(&passwd).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &passwd).unwrap();
    let r = bounded(&env, &["run", "--bundle", &bundle, "hin-p-zero"], None);
    refused_fast(&r, "/etc/passwd: is a character device, not a regular file");
    env.assert_clean("hin-p-zero", None);
    // With HOME given, the file is not read at all.
    env.edit(|v| {
        v["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("HOME=/tmp"))
    });
    let r = env.rsrun(&["run", "--bundle", &bundle, "hin-p-home"]);
    assert_eq!(r.stdout, "HOME=/tmp\n", "{}", r.stderr);
}

#[test]
fn huge_cpuset_ranges_are_refused_fast() {
    let env = Env::new("hi-cpuset");
    let bundle = env.bundle.to_str().unwrap().to_string();
    let good = env.config();
    let huge = "0-4000000000";
    for (n, (path, val, field)) in [
        (
            "/linux/resources/cpu/cpus",
            huge,
            "linux.resources.cpu.cpus",
        ),
        (
            "/linux/resources/cpu/cpus",
            "0-4294967295",
            "linux.resources.cpu.cpus",
        ),
        (
            "/linux/resources/cpu/cpus",
            "4294967295",
            "linux.resources.cpu.cpus",
        ),
        (
            "/linux/resources/cpu/mems",
            huge,
            "linux.resources.cpu.mems",
        ),
        (
            "/process/execCPUAffinity/initial",
            huge,
            "process.execCPUAffinity.initial",
        ),
        (
            "/process/execCPUAffinity/final",
            "4294967295",
            "process.execCPUAffinity.final",
        ),
        (
            "/process/execCPUAffinity/final",
            "0,4096",
            "process.execCPUAffinity.final",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut v = good.clone();
        let (parent, key) = path.rsplit_once('/').unwrap();
        let mut cur = &mut v;
        for p in parent.split('/').skip(1) {
            if cur.get(p).is_none() {
                cur[p] = json!({});
            }
            cur = &mut cur[p];
        }
        cur[key] = json!(val);
        env.write_config(&v);
        let id = format!("hin-cpu{n}");
        let r = bounded(&env, &["create", "--bundle", &bundle, &id], None);
        refused_fast(&r, &format!("{field}: \"{val}\": "));
        assert!(
            r.0.stderr.contains("is not online on this host"),
            "{}",
            r.0.stderr
        );
        env.assert_clean(&id, None);
    }
    // update: the same ranges refused, the container's cpuset untouched; a valid one applies.
    env.write_config(&good);
    running(&env, "hin-cu", json!({"uid": 0, "gid": 0}));
    let cpus_file = || {
        let cg = rsrun::cgroups::Cgroup::resolve(None, "hin-cu").unwrap();
        let d = cg
            .dirs
            .iter()
            .find(|d| d.path.join("cpuset.cpus").exists())
            .expect("no cpuset.cpus for the container");
        std::fs::read_to_string(d.path.join("cpuset.cpus")).unwrap()
    };
    let before = cpus_file();
    for (flag, field) in [
        ("--cpuset-cpus", "linux.resources.cpu.cpus"),
        ("--cpuset-mems", "linux.resources.cpu.mems"),
    ] {
        let r = bounded(&env, &["update", flag, huge, "hin-cu"], None);
        refused_fast(&r, &format!("{field}: \"{huge}\": "));
    }
    assert_eq!(cpus_file(), before);
    let r = env.rsrun(&["update", "--cpuset-cpus", "0", "hin-cu"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(cpus_file().trim(), "0");
    env.delete_and_assert_clean("hin-cu");
}

#[test]
fn device_nodes_created_are_no_cgroup_grant() {
    let env = Env::new("hi-devices");
    env.edit(|v| {
        v["linux"]["devices"] = json!([{
            "path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11,
            "fileMode": 438, "uid": 0, "gid": 0
        }]);
        v["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"}]);
        v["process"]["args"] = json!([
            "sh", "-c",
            "ls -ln /dev/kmsg; echo x > /dev/kmsg && echo wrote-kmsg; cat /dev/null && echo null-ok"
        ]);
    });
    let r = env.create("hin-d1");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let cg = rsrun::cgroups::Cgroup::resolve(None, "hin-d1").unwrap();
    if cg.mode != rsrun::cgroups::Mode::V2 {
        let d = cg
            .dirs
            .iter()
            .find(|d| d.path.join("devices.list").exists())
            .expect("no devices hierarchy for the container");
        let list = std::fs::read_to_string(d.path.join("devices.list")).unwrap();
        let want: Vec<String> = rsrun::cgroups::device_rules::default_allowed()
            .iter()
            .map(|r| r.text())
            .collect();
        assert_eq!(list.lines().collect::<Vec<_>>(), want, "devices.list");
    }
    env.delete_and_assert_clean("hin-d1");
    // From inside: the node exists, writing it is refused by the device cgroup, and the
    // default devices still work.
    let r = env.rsrun(&["run", "--bundle", env.bundle.to_str().unwrap(), "hin-d2"]);
    assert!(
        r.stdout.contains(" 1,  11 "),
        "no /dev/kmsg node: {}",
        r.stdout
    );
    assert!(!r.stdout.contains("wrote-kmsg"), "/dev/kmsg was writable");
    assert!(
        r.stderr.contains("/dev/kmsg: Operation not permitted"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("null-ok"), "{} {}", r.stdout, r.stderr);
    env.assert_clean("hin-d2", None);
}

/// Edit a copy of `good`, expect `create` to refuse it naming `needle`.
fn refused_with(env: &Env, good: &Value, id: &str, edit: impl FnOnce(&mut Value), needle: &str) {
    let mut v = good.clone();
    edit(&mut v);
    env.write_config(&v);
    refused(env, id, needle);
}

#[test]
fn special_values_in_process_fields_are_refused() {
    let env = Env::new("hi-special");
    let good = env.config();
    for (n, adj) in [-1001i64, 1001, 2147483647, -2147483648]
        .into_iter()
        .enumerate()
    {
        refused_with(
            &env,
            &good,
            &format!("hin-oom{n}"),
            |v| v["process"]["oomScoreAdj"] = json!(adj),
            &format!("process.oomScoreAdj: {adj} is outside -1000..1000"),
        );
    }
    for (n, (name, size)) in [
        ("height", json!({"height": 65536, "width": 80})),
        ("width", json!({"height": 24, "width": 4294967295u32})),
    ]
    .into_iter()
    .enumerate()
    {
        refused_with(
            &env,
            &good,
            &format!("hin-cs{n}"),
            |v| v["process"]["consoleSize"] = size,
            &format!("process.consoleSize.{name}"),
        );
    }
    refused_with(
        &env,
        &good,
        "hin-sched",
        |v| v["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "priority": -1}),
        "process.scheduler.priority: -1 is negative",
    );
    let with_time = |v: &mut Value, ns: u32| {
        with_time_ns(v, json!({"monotonic": {"secs": 5, "nanosecs": ns}}));
    };
    for (n, ns) in [1_000_000_000u32, u32::MAX].into_iter().enumerate() {
        refused_with(
            &env,
            &good,
            &format!("hin-time{n}"),
            |v| with_time(v, ns),
            &format!("linux.timeOffsets.monotonic.nanosecs: {ns} is not below"),
        );
    }
    // The ends of the valid ranges are given exactly.
    let mut v = good.clone();
    v["process"]["oomScoreAdj"] = json!(1000);
    with_time(&mut v, 999_999_999);
    env.write_config(&v);
    let r = env.run(
        "hin-edges",
        &[
            "sh",
            "-c",
            "cat /proc/self/oom_score_adj /proc/self/timens_offsets",
        ],
    );
    assert!(r.stdout.starts_with("1000\n"), "{} {}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["monotonic", "5", "999999999"]),
        "{:?} {}",
        r.stdout,
        r.stderr
    );
    env.assert_clean("hin-edges", None);
}

#[test]
fn device_numbers_and_owners_out_of_range_are_refused() {
    let env = Env::new("hi-devnums");
    let good = env.config();
    let node = |major: i64, minor: i64, uid: u32| {
        json!([{"path": "/dev/hin", "type": "c", "major": major, "minor": minor,
                "fileMode": 384, "uid": uid, "gid": 0}])
    };
    for (n, (dev, field)) in [
        (
            node(4097, 1, 0),
            "linux.devices[0].major: 4097 is outside 0-4095",
        ),
        (
            node(1, 1_048_576, 0),
            "linux.devices[0].minor: 1048576 is outside",
        ),
        (node(-1, 3, 0), "linux.devices[0].major: -1 is outside"),
        (
            node(1, 3, 4294967295),
            "linux.devices[0].uid: 4294967295 is outside",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        refused_with(
            &env,
            &good,
            &format!("hin-dn{n}"),
            |v| v["linux"]["devices"] = dev,
            field,
        );
    }
    for (n, (rule, field)) in [
        (
            json!({"allow": true, "type": "c", "major": 4294967297i64, "minor": 1, "access": "rwm"}),
            "linux.resources.devices[1].major: 4294967297 is neither",
        ),
        (
            json!({"allow": true, "type": "c", "major": 1, "minor": -2, "access": "rwm"}),
            "linux.resources.devices[1].minor: -2 is neither",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        refused_with(
            &env,
            &good,
            &format!("hin-dr{n}"),
            |v| {
                v["linux"]["resources"]["devices"] =
                    json!([{"allow": false, "access": "rwm"}, rule])
            },
            field,
        );
    }
    // The largest device number is created as given.
    let mut v = good.clone();
    v["linux"]["devices"] = node(4095, 1_048_575, 0);
    env.write_config(&v);
    let r = env.run("hin-dmax", &["stat", "-c", "%t %T %u", "/dev/hin"]);
    assert_eq!(r.stdout, "fff fffff 0\n", "{}", r.stderr);
    env.assert_clean("hin-dmax", None);
}

#[test]
fn preserve_fds_that_would_wrap_are_refused() {
    let env = Env::new("hi-pfds");
    let bundle = env.bundle.to_str().unwrap().to_string();
    for (n, fds) in ["4294967295", "4294967292"].into_iter().enumerate() {
        let id = format!("hin-pf{n}");
        let r = env.rsrun(&["run", "--preserve-fds", fds, "--bundle", &bundle, &id]);
        assert_one_line_error(&r, &format!("--preserve-fds {fds}: "));
        env.assert_clean(&id, None);
    }
    running(&env, "hin-pfx", json!({"uid": 0, "gid": 0}));
    let r = env.rsrun(&[
        "exec",
        "--preserve-fds",
        "4294967292",
        "hin-pfx",
        "ls",
        "/proc/self/fd",
    ]);
    assert_one_line_error(&r, "--preserve-fds 4294967292: ");
    assert_eq!(r.stdout, "");
    env.delete_and_assert_clean("hin-pfx");
}

#[test]
fn hook_timeout_too_large_for_the_clock_is_no_deadline() {
    let env = Env::new("hi-hooktime");
    let out = env.dir.join("hook.out");
    let script = format!("echo ran > {}", out.display());
    env.edit(|v| {
        v["hooks"] = json!({"createRuntime": [{
            "path": "/bin/sh", "args": ["sh", "-c", script], "timeout": i64::MAX
        }]})
    });
    let r = env.run("hin-hook", &["echo", "ok"]);
    assert_eq!(r.stdout, "ok\n", "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "ran\n");
    env.assert_clean("hin-hook", None);
}

#[test]
fn zero_memory_values_mean_unset() {
    let env = Env::new("hi-mem0");
    env.edit(|v| {
        v["linux"]["resources"]["memory"] = json!({"limit": 0, "reservation": 0, "swap": 0})
    });
    // A limit of 0 written to the cgroup left the init no memory to start in.
    let r = env.run("hin-mem0", &["echo", "ok"]);
    assert_eq!(r.stdout, "ok\n", "{}", r.stderr);
    env.assert_clean("hin-mem0", None);
    running(&env, "hin-mem0d", json!({"uid": 0, "gid": 0}));
    let cg = rsrun::cgroups::Cgroup::resolve(None, "hin-mem0d").unwrap();
    let (file, unlimited) = if cg.mode == rsrun::cgroups::Mode::V2 {
        ("memory.max", "max")
    } else {
        ("memory.limit_in_bytes", "9223372036854771712")
    };
    let d = cg
        .dirs
        .iter()
        .find(|d| d.path.join(file).exists())
        .expect("no memory controller for the container");
    assert_eq!(
        std::fs::read_to_string(d.path.join(file)).unwrap().trim(),
        unlimited
    );
    env.delete_and_assert_clean("hin-mem0d");
}

#[test]
fn arrays_where_the_spec_has_objects_are_refused() {
    let env = Env::new("hi-arrays");
    let good = env.config();
    for (n, (ptr, field)) in [
        ("/process/user", "process.user"),
        ("/process/capabilities", "process.capabilities"),
        ("/process/consoleSize", "process.consoleSize"),
        ("/linux/resources", "linux.resources"),
        ("/linux/resources/memory", "linux.resources.memory"),
        ("/mounts/0", "mounts[0]"),
        ("/root", "root"),
    ]
    .into_iter()
    .enumerate()
    {
        let (parent, key) = ptr.rsplit_once('/').unwrap();
        refused_with(
            &env,
            &good,
            &format!("hin-arr{n}"),
            |v| {
                let p = v.pointer_mut(parent).unwrap();
                match p {
                    Value::Array(a) => a[key.parse::<usize>().unwrap()] = json!([]),
                    _ => p[key] = json!([]),
                }
            },
            // (serde's own refusal of some says "invalid length" instead)
            &format!("config.json: {field}: invalid "),
        );
    }
    // A user given as an array would have been read positionally: uid 0, gid 0.
    refused_with(
        &env,
        &good,
        "hin-arr-user",
        |v| v["process"]["user"] = json!([0, 0]),
        "process.user: invalid type: array",
    );
    // exec --process and update --resources refuse them too.
    env.write_config(&good);
    running(&env, "hin-arrx", json!({"uid": 1000, "gid": 1000}));
    let pf = env.dir.join("process.json");
    for (n, (key, val)) in [("user", json!([0, 0])), ("capabilities", json!([]))]
        .into_iter()
        .enumerate()
    {
        let mut p = json!({"args": ["id"], "cwd": "/", "user": {"uid": 1000, "gid": 1000}});
        p[key] = val;
        std::fs::write(&pf, p.to_string()).unwrap();
        let r = env.rsrun(&["exec", "--process", pf.to_str().unwrap(), "hin-arrx"]);
        assert_one_line_error(&r, &format!("process.json: {key}: invalid type: array"));
        assert_eq!(r.stdout, "", "the process ran ({n})");
    }
    let rf = env.dir.join("resources.json");
    std::fs::write(&rf, r#"{"pids": []}"#).unwrap();
    let r = env.rsrun(&["update", "--resources", rf.to_str().unwrap(), "hin-arrx"]);
    assert_one_line_error(&r, "--resources: pids: invalid type: array");
    env.delete_and_assert_clean("hin-arrx");
}

#[test]
fn events_intervals_of_zero_or_beyond_the_clock() {
    let env = Env::new("hi-events");
    running(&env, "hin-ev", json!({"uid": 0, "gid": 0}));
    for bad in ["0.0000000001s", "99999999999999999999999h"] {
        // (A zero interval was a busy loop that never returned.)
        let r = bounded(&env, &["events", "--interval", bad, "hin-ev"], None);
        refused_fast(&r, &format!("--interval {bad:?}"));
    }
    // An interval the clock cannot add: the first stats, then none, until the end.
    let out = env.dir.join("events.out");
    let mut c = env.cmd(&["events", "--interval", "5000000000000000h", "hin-ev"]);
    c.stdout(std::fs::File::create(&out).unwrap());
    let mut child = c.spawn().unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&out).unwrap().is_empty() {
        assert!(Instant::now() < end, "no stats from events");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(child.try_wait().unwrap().is_none(), "events ended early");
    assert_eq!(env.rsrun(&["kill", "hin-ev", "KILL"]).code, 0);
    let end = Instant::now() + Duration::from_secs(10);
    let st = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < end,
            "events did not end with the container"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(st.success(), "events: {st}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert_eq!(env.rsrun(&["delete", "hin-ev"]).code, 0);
    env.assert_clean("hin-ev", None);
}

#[test]
fn seccomp_errno_ret_that_would_wrap_to_success_is_refused() {
    let env = Env::new("hi-scmp");
    let good = env.config();
    let profile = |default_ret: Option<u32>, ret: u32| {
        let mut p = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": ret}]
        });
        if let Some(d) = default_ret {
            p["defaultErrnoRet"] = json!(d);
        }
        p
    };
    for (n, (p, field)) in [
        (
            profile(None, 65536),
            "linux.seccomp.syscalls[0].errnoRet: 65536 is above 4094",
        ),
        (
            profile(None, 4294967295),
            "linux.seccomp.syscalls[0].errnoRet: 4294967295 is above",
        ),
        (
            profile(Some(65536), 1),
            "linux.seccomp.defaultErrnoRet: 65536 is above 4094",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        refused_with(
            &env,
            &good,
            &format!("hin-scmp{n}"),
            |v| v["linux"]["seccomp"] = p,
            field,
        );
    }
    // The largest errno is returned as given: the denied mkdir fails and creates nothing.
    let mut v = good.clone();
    v["linux"]["seccomp"] = profile(None, 4094);
    env.write_config(&v);
    let r = env.run(
        "hin-scmp-max",
        &["sh", "-c", "mkdir /tmp/d 2>&1 || echo refused; ls /tmp"],
    );
    assert!(r.stdout.contains("refused"), "{} {}", r.stdout, r.stderr);
    assert!(!r.stdout.lines().any(|l| l == "d"), "{}", r.stdout);
    env.assert_clean("hin-scmp-max", None);
}

#[test]
fn hook_that_does_not_read_a_large_state_still_times_out() {
    let env = Env::new("hi-hookstdin");
    let bundle = env.bundle.to_str().unwrap().to_string();
    let out = env.dir.join("state.json");
    let big = "x".repeat(1 << 20);
    // A hook that reads the whole state gets all of it.
    env.edit(|v| {
        v["annotations"] = json!({"big": big});
        v["hooks"] = json!({"createRuntime": [{
            "path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", out.display())]
        }]});
    });
    let r = env.run("hin-hs-read", &["true"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let state: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(
        state["annotations"]["big"].as_str().map(str::len),
        Some(1 << 20)
    );
    env.assert_clean("hin-hs-read", None);
    // One that never reads it is killed at its timeout, not waited for while the state
    // is stuck in a full pipe.
    env.edit(|v| {
        v["hooks"] = json!({"createRuntime": [{
            "path": "/bin/sh", "args": ["sh", "-c", "exec sleep 100"], "timeout": 1
        }]});
    });
    let r = bounded(&env, &["create", "--bundle", &bundle, "hin-hs-sleep"], None);
    refused_fast(&r, "timed out after 1s");
    env.assert_clean("hin-hs-sleep", None);
}

#[test]
fn namespace_paths_that_are_not_namespaces_are_refused_fast() {
    let env = Env::new("hi-nspath");
    let bundle = env.bundle.to_str().unwrap().to_string();
    let good = env.config();
    let fifo = env.dir.join("netns");
    mkfifo(&fifo);
    let file = env.dir.join("file");
    std::fs::write(&file, "").unwrap();
    for (n, p) in [fifo.as_path(), Path::new("/dev/zero"), file.as_path()]
        .into_iter()
        .enumerate()
    {
        let mut v = good.clone();
        for ns in v["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "network" {
                ns["path"] = json!(p);
            }
        }
        env.write_config(&v);
        let id = format!("hin-ns{n}");
        let r = bounded(&env, &["create", "--bundle", &bundle, &id], None);
        refused_fast(
            &r,
            &format!("linux.namespaces[net].path: {p:?} is not a namespace file"),
        );
        env.assert_clean(&id, None);
    }
}

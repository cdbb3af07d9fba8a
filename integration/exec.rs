//! exec: the new process joins the container's namespaces and cgroup and gets the
//! container's process attributes, or those of --process / the flags.

use crate::common::*;
use serde_json::json;

fn running(env: &Env, id: &str) -> i64 {
    env.set_args(&["sleep", "1000"]);
    env.run_detached(id) as i64
}

#[test]
fn exec_joins_namespaces_and_cgroup() {
    let env = Env::new("exec-ns");
    let pid = running(&env, "ex1");
    let r = env.rsrun(&[
        "exec",
        "ex1",
        "sh",
        "-c",
        "for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done; cat /proc/self/cgroup; echo $$; hostname",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    for (i, n) in ["pid", "net", "ipc", "uts", "mnt", "cgroup"]
        .iter()
        .enumerate()
    {
        let init = std::fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap();
        assert_eq!(lines[i], init.to_str().unwrap(), "{n}");
    }
    let init_cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let cg_lines = init_cg.lines().count();
    // The exec'd process is in the init's cgroup in every hierarchy (seen from inside the
    // cgroup namespace: the root).
    for l in &lines[6..6 + cg_lines] {
        assert!(l.ends_with(":/"), "{l}");
    }
    let host_cg = rsrun::cgroups::Cgroup::resolve(None, "ex1").unwrap();
    let my_pid: i64 = lines[6 + cg_lines].parse().unwrap();
    assert!(
        my_pid > 1,
        "exec'd process is pid {my_pid} in the container"
    );
    assert_eq!(lines[7 + cg_lines], "runc");
    assert!(host_cg.dirs[0].path.exists());
    assert_eq!(env.rsrun(&["delete", "-f", "ex1"]).code, 0);
    env.assert_clean("ex1", Some(pid as i32));
}

/// The init and an exec'd process of a container in a user namespace that maps root
/// elsewhere are in the container's cgroup in every hierarchy, as the host sees them
/// (on v1 they enter it themselves, through `tasks` files the runtime opened).
#[test]
fn userns_processes_enter_every_hierarchy() {
    let env = Env::new("exec-userns-cg");
    env.edit(|v| {
        let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "cgroup");
        with_userns(v);
    });
    let pid = running(&env, "eu1");
    let r = env.rsrun(&["exec", "eu1", "sh", "-c", "cat /proc/self/cgroup; id -u"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let init_cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let managed = rsrun::cgroups::Cgroup::resolve(None, "eu1").unwrap();
    assert!(!managed.dirs.is_empty());
    for d in &managed.dirs {
        for (who, text) in [("init", init_cg.as_str()), ("exec", r.stdout.as_str())] {
            let line = text
                .lines()
                .find(|l| l.split(':').nth(1) == Some(d.controllers.as_str()))
                .unwrap_or_else(|| panic!("{who}: no line for {:?} in {text}", d.controllers));
            assert!(line.ends_with("/eu1"), "{who}: {line}");
        }
    }
    assert_eq!(r.stdout.lines().last(), Some("0"));
    assert_eq!(env.rsrun(&["delete", "-f", "eu1"]).code, 0);
    env.assert_clean("eu1", Some(pid as i32));
}

#[test]
fn exec_exit_status_and_attributes() {
    let env = Env::new("exec-attrs");
    running(&env, "ea1");
    let r = env.rsrun(&["exec", "ea1", "sh", "-c", "exit 9"]);
    assert_eq!(r.code, 9);
    let r = env.rsrun(&[
        "exec", "--user", "1000:1001", "--additional-gids", "7", "--env", "FOO=bar", "--cwd", "/tmp", "ea1", "sh", "-c",
        "id -u; id -g; id -G; pwd; echo $FOO; grep -E '^(CapInh|CapEff|NoNewPrivs)' /proc/self/status",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let want = "1000\n1001\n1001 7\n/tmp\nbar\nCapInh:\t0000000000000000\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\n";
    assert_eq!(r.stdout, want);
    // --cap adds to the container's set (root keeps its effective caps).
    let r = env.rsrun(&[
        "exec",
        "--cap",
        "CAP_SYS_ADMIN",
        "ea1",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert_eq!(r.stdout.trim(), "CapEff:\t0000000020200420", "{}", r.stderr);
    assert_eq!(env.rsrun(&["delete", "-f", "ea1"]).code, 0);
}

#[test]
fn exec_process_file_and_detach() {
    let env = Env::new("exec-procfile");
    running(&env, "ep1ep");
    let pid = env.exec_detached_process(
        "ep1ep",
        &json!({
            "args": ["sh", "-c", "echo $X > /dev/shm/out; sleep 100"],
            "env": ["X=from-process-file", "PATH=/bin"],
            "cwd": "/",
            "user": {"uid": 0, "gid": 0}
        }),
    );
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let r = env.rsrun(&["exec", "ep1ep", "cat", "/dev/shm/out"]);
    assert_eq!(r.stdout, "from-process-file\n");
    // The process file has no capabilities: all sets empty.
    assert_eq!(env.rsrun(&["delete", "-f", "ep1ep"]).code, 0);
    wait_dead(pid);
}

#[test]
fn exec_refusals() {
    let env = Env::new("exec-bad");
    assert_one_line_error(&env.rsrun(&["exec", "nope", "true"]), "does not exist");
    running(&env, "eb1");
    assert_one_line_error(
        &env.rsrun(&["exec", "eb1", "no-such-cmd"]),
        "executable file not found",
    );
    assert_one_line_error(
        &env.rsrun(&["exec", "--apparmor", "x", "eb1", "true"]),
        "AppArmor",
    );
    assert_one_line_error(
        &env.rsrun(&["exec", "-t", "-d", "eb1", "true"]),
        "console-socket",
    );
    assert_eq!(env.rsrun(&["pause", "eb1"]).code, 0);
    assert_one_line_error(&env.rsrun(&["exec", "eb1", "true"]), "paused");
    assert_eq!(env.rsrun(&["resume", "eb1"]).code, 0);
    assert_eq!(env.rsrun(&["kill", "eb1", "KILL"]).code, 0);
    env.wait_status("eb1", "stopped");
    assert_one_line_error(&env.rsrun(&["exec", "eb1", "true"]), "stopped");
    assert_eq!(env.rsrun(&["delete", "eb1"]).code, 0);
    env.assert_clean("eb1", None);
}

#[test]
fn exec_into_a_sub_cgroup() {
    let env = Env::new("exec-subcg");
    running(&env, "exs1");
    let cg = rsrun::cgroups::Cgroup::resolve(None, "exs1").unwrap();
    let v2 = cg.mode == rsrun::cgroups::Mode::V2;
    let pids = cg
        .dirs
        .iter()
        .find(|d| v2 || d.controllers == "pids")
        .unwrap()
        .path
        .join("sub");
    std::fs::create_dir(&pids).unwrap();
    let flag = if v2 { "sub" } else { "pids:sub" };
    let r = env.rsrun(&["exec", "--cgroup", flag, "exs1", "cat", "/proc/self/cgroup"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = r
        .stdout
        .lines()
        .find(|l| {
            if v2 {
                l.starts_with("0::")
            } else {
                l.contains(":pids:")
            }
        })
        .unwrap();
    assert!(line.ends_with("/sub"), "{}", r.stdout);
    assert_one_line_error(
        &env.rsrun(&["exec", "--cgroup", "nosuch", "exs1", "true"]),
        "nosuch",
    );
    assert_one_line_error(
        &env.rsrun(&["exec", "--cgroup", "../x", "exs1", "true"]),
        "not a sub-cgroup",
    );
    // The sub-cgroup is left for delete to remove, as a container's own would be.
    assert_eq!(env.rsrun(&["delete", "-f", "exs1"]).code, 0);
    assert!(!pids.exists(), "{} left", pids.display());
    env.assert_clean("exs1", None);
}

//! Each namespace observed from inside the container.

use crate::common::*;
use serde_json::json;

#[test]
fn pid_uts_and_net_namespaces() {
    let env = Env::new("ns-basic");
    env.edit(|v| {
        v["hostname"] = json!("box1");
        v["domainname"] = json!("example.test");
    });
    let out = env.run_sh_ok(
        "nb1",
        "echo $$; hostname; cat /proc/sys/kernel/domainname; ls /sys/class/net",
    );
    assert_eq!(out, "1\nbox1\nexample.test\nlo\n");
}

#[test]
fn namespaces_differ_from_host() {
    let env = Env::new("ns-differ");
    let r = env.run(
        "nd1",
        &[
            "sh",
            "-c",
            "for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    for (line, n) in r
        .stdout
        .lines()
        .zip(["pid", "net", "ipc", "uts", "mnt", "cgroup"])
    {
        let host = std::fs::read_link(format!("/proc/self/ns/{n}")).unwrap();
        assert_ne!(line, host.to_str().unwrap(), "{n} namespace is the host's");
    }
    // Without a listed namespace the container shares the host's.
    env.edit(|v| {
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "ipc");
    });
    let r = env.run("nd2", &["readlink", "/proc/self/ns/ipc"]);
    let host = std::fs::read_link("/proc/self/ns/ipc").unwrap();
    assert_eq!(r.stdout.trim(), host.to_str().unwrap());
}

#[test]
fn user_namespace_maps_ids() {
    let env = Env::new("ns-user");
    env.edit(|v| {
        with_userns(v);
        // sysfs cannot be mounted for a network namespace owned by another user ns
        // without the net ns being ours: it is (created together), so keep it.
    });
    // The rootfs must be usable by the mapped root.
    let r = env.run(
        "nu1",
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; id -u",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines = words(&r.stdout);
    assert_eq!(lines[0], vec!["0", "100000", "65536"]);
    assert_eq!(lines[1], vec!["0", "100000", "65536"]);
    assert_eq!(lines[2], vec!["0"]);
    env.assert_clean("nu1", None);
}

#[test]
fn time_namespace_shifts_clocks() {
    let env = Env::new("ns-time");
    env.edit(|v| {
        with_time_ns(v, json!({"boottime": {"secs": 1000000, "nanosecs": 0}}));
    });
    let r = env.run("nt1", &["cat", "/proc/uptime"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let inside: f64 = r.stdout.split_whitespace().next().unwrap().parse().unwrap();
    let host: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(inside - host > 999_000.0, "inside {inside}, host {host}");
}

/// The user namespace that owns a namespace (ioctl NS_GET_USERNS), as its inode number.
fn owner_of(ns_file: &str) -> u64 {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::fs::MetadataExt;
    const NS_GET_USERNS: libc::c_ulong = 0xb701;
    let ns = std::fs::File::open(ns_file).unwrap();
    let fd = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_USERNS as _) };
    assert!(
        fd >= 0,
        "NS_GET_USERNS {ns_file}: {}",
        std::io::Error::last_os_error()
    );
    let owner = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    owner.metadata().unwrap().ino()
}

/// A time namespace made with a new user namespace belongs to it, as runc's (made after
/// the user namespace): the container's root may set the clocks' offsets of a time
/// namespace it makes, and the offsets the config asks for are still there.
#[test]
fn time_namespace_belongs_to_the_new_user_namespace() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new("ns-time-user");
    env.edit(|v| {
        with_userns(v);
        with_time_ns(v, json!({"monotonic": {"secs": 7881, "nanosecs": 2718281}}));
    });
    env.set_args(&["sleep", "100"]);
    let pid = env.run_detached("ntu1");
    let user = std::fs::metadata(format!("/proc/{pid}/ns/user"))
        .unwrap()
        .ino();
    assert_ne!(user, std::fs::metadata("/proc/self/ns/user").unwrap().ino());
    assert_eq!(
        owner_of(&format!("/proc/{pid}/ns/time")),
        user,
        "the time namespace is not owned by the container's user namespace"
    );
    let r = env.rsrun(&["exec", "ntu1", "cat", "/proc/self/timens_offsets"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["monotonic", "7881", "2718281"]),
        "{}",
        r.stdout
    );
    env.delete_and_assert_clean("ntu1");
}

#[test]
fn join_network_namespace_by_path() {
    let env = Env::new("ns-join");
    env.set_args(&["sleep", "100"]);
    env.run_detached("nj-a");
    let pid = env.state("nj-a")["pid"].as_i64().unwrap();
    let want = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let ns_path = format!("/proc/{pid}/ns/net");
    env.edit(|v| {
        for n in v["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "network" {
                n["path"] = json!(ns_path);
            }
        }
    });
    let r = env.run("nj-b", &["readlink", "/proc/self/ns/net"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), want.to_str().unwrap());
    assert_eq!(env.rsrun(&["delete", "-f", "nj-a"]).code, 0);
    env.assert_clean("nj-a", Some(pid as i32));
    env.assert_clean("nj-b", None);
}

/// What a Kubernetes pod with user namespaces does: containers join the pod's user (and
/// network) namespace by path and get new mount, pid, uts and ipc namespaces, which must
/// belong to the joined user namespace, or the init could not build its rootfs.
#[test]
fn join_user_namespace_by_path_with_new_namespaces() {
    let env = Env::new("ns-join-user");
    env.edit(|v| {
        with_userns(v);
    });
    env.set_args(&["sleep", "100"]);
    let bundle = env.bundle.to_str().unwrap().to_string();
    assert_eq!(
        env.rsrun(&["run", "-d", "--bundle", &bundle, "ju-a"]).code,
        0
    );
    let pid = env.state("ju-a")["pid"].as_i64().unwrap();
    let user = std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();
    env.edit(|v| {
        v["hostname"] = json!("ju-b");
        for n in v["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "user" || n["type"] == "network" {
                let name = if n["type"] == "user" { "user" } else { "net" };
                n["path"] = json!(format!("/proc/{pid}/ns/{name}"));
            }
        }
        v["linux"].as_object_mut().unwrap().remove("uidMappings");
        v["linux"].as_object_mut().unwrap().remove("gidMappings");
    });
    let out = env.run_sh_ok(
        "ju-b",
        "readlink /proc/self/ns/user; cat /proc/self/uid_map; echo $$; hostname; id -u",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        user.to_str().unwrap(),
        "not in the joined user ns"
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        vec!["0", "100000", "65536"]
    );
    assert_eq!(&lines[2..], ["1", "ju-b", "0"]);
    assert_eq!(env.rsrun(&["delete", "-f", "ju-a"]).code, 0);
    env.assert_clean("ju-a", Some(pid as i32));
}

/// userns.bats "userns join other container userns [bind-mounted nsfd]": a user
/// namespace joined through a bind mount of another container's nsfs file (how engines
/// pin namespaces), with new namespaces of its own owned by it.
#[test]
fn join_user_namespace_through_a_bind_mounted_nsfd() {
    let env = Env::new("ns-join-nsfd");
    env.edit(with_userns);
    env.set_args(&["sleep", "100"]);
    let pid = env.run_detached("jn-a");
    let want = std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();
    let pinned = env.dir.join("userns");
    std::fs::write(&pinned, "").unwrap();
    let r = output({
        let mut c = std::process::Command::new("mount");
        c.arg("--bind")
            .arg(format!("/proc/{pid}/ns/user"))
            .arg(&pinned);
        c
    });
    assert_eq!(r.code, 0, "{}", r.stderr);
    env.edit(|v| {
        for n in v["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "user" {
                n["path"] = json!(pinned.to_str().unwrap());
            }
        }
        v["linux"].as_object_mut().unwrap().remove("uidMappings");
        v["linux"].as_object_mut().unwrap().remove("gidMappings");
    });
    let r = env.run("jn-b", &["sh", "-c", "readlink /proc/self/ns/user; id -u"]);
    let _ = nix::mount::umount2(&pinned, nix::mount::MntFlags::MNT_DETACH);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, format!("{}\n0\n", want.display()));
    env.assert_clean("jn-b", None);
    env.delete_and_assert_clean("jn-a");
}

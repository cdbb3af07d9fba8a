//! Mounts as the runtime-spec and runc define them, observed from the host: a container
//! without a mount namespace of its own, propagation between the host and a container's
//! binds, and bind sources the container's user namespace cannot reach.

use crate::common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Unmounts everything under a directory when dropped (what a test mounted on the host,
/// and whatever propagated there), so a failing test leaves no mount behind.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        unmount_under(&self.0);
    }
}

/// Removes a directory (and what is in it) when dropped.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mountinfo() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

/// The host's mountinfo line whose mount point is `mp`, if any (the topmost).
fn host_line(mp: &Path) -> Option<String> {
    mountinfo()
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some(mp.to_str().unwrap()))
        .map(String::from)
}

/// The optional fields of a mountinfo line (`shared:N`, `master:N`, ...).
fn optional_fields(line: &str) -> Vec<String> {
    let pre = line.split(" - ").next().unwrap();
    pre.split(' ').skip(6).map(String::from).collect()
}

/// The mount line (in a mountinfo text) whose mount point is `mp`.
fn line_at<'a>(text: &'a str, mp: &str) -> &'a str {
    text.lines()
        .find(|l| l.split(' ').nth(4) == Some(mp))
        .unwrap_or_else(|| panic!("no mount at {mp}:\n{text}"))
}

/// The host's mount table without what other tests (of any worker) mount under the
/// temporary directory at the same time, keeping what is under `own`.
fn host_table(own: &Path) -> Vec<String> {
    let tmp = std::env::temp_dir();
    mountinfo()
        .lines()
        .filter(|l| {
            let mp = Path::new(l.split(' ').nth(4).unwrap());
            mp.starts_with(own) || !mp.starts_with(&tmp)
        })
        .map(String::from)
        .collect()
}

fn add_caps(v: &mut Value, cap: &str) {
    for set in ["bounding", "effective", "permitted"] {
        v["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!(cap));
    }
}

/// Mount `source` (a bind, or a fresh tmpfs with `None`) on `target`, shared.
fn mount_shared(source: Option<&Path>, target: &Path) {
    use nix::mount::{mount, MsFlags};
    let none: Option<&str> = None;
    match source {
        Some(s) => mount(Some(s), target, none, MsFlags::MS_BIND, none).unwrap(),
        None => mount(Some("tmpfs"), target, Some("tmpfs"), MsFlags::empty(), none).unwrap(),
    }
    mount(none, target, none, MsFlags::MS_SHARED, none).unwrap();
}

fn drop_mount_ns(v: &mut Value) {
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "mount");
}

fn no_mount_ns(v: &mut Value) {
    drop_mount_ns(v);
    let linux = v["linux"].as_object_mut().unwrap();
    linux.remove("maskedPaths");
    linux.remove("readonlyPaths");
}

/// runtime-spec: without a mount namespace the container inherits the runtime's. As
/// runc: no pivot_root (a chroot into the rootfs), the config's mounts made in the host's
/// namespace under the rootfs; unlike runc 1.1, `delete` undoes them and the host's
/// propagation is left alone: nothing mounted reaches another mount namespace.
#[test]
fn without_a_mount_namespace_the_container_shares_the_runtimes() {
    let env = Env::new("mc-nomntns");
    let peer = env.dir.join("peer");
    std::fs::create_dir_all(&peer).unwrap();
    let _unmount = Unmount(env.dir.clone());
    // The bundle on a shared mount with a peer: what the container mounts in its rootfs
    // must not show up in the peer.
    mount_shared(Some(&env.bundle), &env.bundle);
    mount_shared(Some(&env.bundle), &peer);
    env.edit(no_mount_ns);
    let before = host_table(&env.dir);

    let r = env.run(
        "mc-nomnt1",
        &[
            "sh",
            "-c",
            "readlink /proc/self/ns/mnt; cat /proc/1/comm; ls /bin/busybox; grep -c ' /proc ' /proc/self/mountinfo",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let host_ns = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    assert_eq!(
        r.stdout,
        format!("{}\nsh\n/bin/busybox\n1\n", host_ns.display()),
        "the container shares the host's mount namespace, chrooted in its rootfs with its own /proc"
    );
    assert_eq!(
        host_table(&env.dir),
        before,
        "run left the host's mounts changed"
    );

    // While it exists, its mounts are in the host's table, under the rootfs only.
    env.set_args(&["sleep", "100"]);
    let r = env.create("mc-nomnt2");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rootfs = env.bundle.join("rootfs");
    assert!(host_line(&rootfs.join("proc")).is_some(), "no /proc mount");
    assert!(
        host_line(&rootfs.join("dev/pts")).is_some(),
        "no /dev/pts mount"
    );
    assert!(
        !mountinfo().contains(peer.join("rootfs/proc").to_str().unwrap()),
        "the container's /proc propagated to a peer of the rootfs's mount:\n{}",
        mountinfo()
    );
    let r = env.rsrun(&["delete", "--force", "mc-nomnt2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        host_table(&env.dir),
        before,
        "delete left the host's mounts changed"
    );

    // A create that fails after some of its mounts were made leaves none of them.
    env.edit(|v| {
        v["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/missing", "type": "bind", "source": "/nonexistent/mc", "options": ["rbind"]}),
        );
    });
    let r = env.create("mc-nomnt3");
    assert_one_line_error(&r, "mounts[");
    assert_eq!(
        host_table(&env.dir),
        before,
        "a failed create left mounts on the host"
    );
    assert!(
        !env.root.join("mc-nomnt3").exists(),
        "state dir left behind"
    );
}

/// Crash consistency without a mount namespace: a `create` killed after the container's
/// mounts exist on the host (from a createContainer hook, which runs once they do) leaves
/// a record `delete` acts on, and `delete` takes every mount away.
#[test]
fn without_a_mount_namespace_a_killed_create_leaves_mounts_delete_removes() {
    let env = Env::new("mc-nomnt-crash");
    let _unmount = Unmount(env.dir.clone());
    env.edit(|v| {
        no_mount_ns(v);
        // No pid namespace: the hook finds `rsrun create`, its init's parent, by pid.
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid");
        v["hooks"] = json!({"createContainer": [{"path": "/bin/sh",
            "args": ["sh", "-c", "kill -9 $(cut -d' ' -f4 /proc/$PPID/stat)"]}]});
    });
    let before = host_table(&env.dir);
    let r = env.create("mc-nomnt-crash1");
    assert_ne!(r.code, 0, "create survived its kill: {}", r.stdout);
    let proc_mount = env.bundle.join("rootfs/proc");
    assert!(
        host_line(&proc_mount).is_some(),
        "the create was killed before its mounts were made: the test proves nothing"
    );
    let r = env.rsrun(&["delete", "mc-nomnt-crash1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        host_table(&env.dir),
        before,
        "delete left the killed create's mounts on the host"
    );
    assert!(!env.root.join("mc-nomnt-crash1").exists());
}

/// runc refuses to restrict /proc and /sys without a private mount namespace (it would
/// mask the host's): so does rsrun, naming the field, before anything is made.
#[test]
fn without_a_mount_namespace_masked_paths_are_refused() {
    let env = Env::new("mc-nomnt-mask");
    env.edit(drop_mount_ns);
    let before = host_table(&env.dir);
    let r = env.run("mc-nomnt-mask1", &["true"]);
    assert_one_line_error(&r, "linux.maskedPaths");
    assert_eq!(host_table(&env.dir), before);
    env.assert_clean("mc-nomnt-mask1", None);
}

/// With `rootfsPropagation: shared` (what Docker and Podman send), a bind of a shared
/// host directory joins the host's peer group: `rshared` propagates both ways, `rslave`
/// from the host into the container only; the optional fields are runc's.
#[test]
fn rshared_and_rslave_binds_propagate_with_the_host() {
    let env = Env::new("mc-prop");
    let shared = env.dir.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let _unmount = Unmount(env.dir.clone());
    mount_shared(None, &shared);
    for d in ["from_ctr", "from_ctr_slave", "from_host"] {
        std::fs::create_dir(shared.join(d)).unwrap();
    }
    let host = host_line(&shared).unwrap();
    let peer_group = optional_fields(&host)
        .into_iter()
        .find(|f| f.starts_with("shared:"))
        .unwrap_or_else(|| panic!("not shared: {host}"));
    let group = peer_group.trim_start_matches("shared:");
    env.edit(|v| {
        v["linux"]["rootfsPropagation"] = json!("shared");
        let m = v["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/sh", "type": "bind", "source": shared.to_str().unwrap(), "options": ["rbind", "rshared"]}));
        m.push(json!({"destination": "/sl", "type": "bind", "source": shared.to_str().unwrap(), "options": ["rbind", "rslave"]}));
        add_caps(v, "CAP_SYS_ADMIN");
    });
    env.set_args(&["sleep", "100"]);
    let r = env.create("mc-prop1");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let pid = env.state("mc-prop1")["pid"].as_i64().unwrap();
    let inside = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    assert_eq!(
        optional_fields(line_at(&inside, "/sh")),
        vec![format!("shared:{group}")],
        "the rshared bind is not a peer of the host's mount"
    );
    assert_eq!(
        optional_fields(line_at(&inside, "/sl")),
        vec![format!("master:{group}")],
        "the rslave bind is not a slave of the host's mount"
    );
    let r = env.rsrun(&["start", "mc-prop1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // Container → host: through the rshared bind only.
    for (dest, name) in [
        ("/sh/from_ctr", "mc-in"),
        ("/sl/from_ctr_slave", "mc-in-slave"),
    ] {
        let r = env.rsrun(&["exec", "mc-prop1", "mount", "-t", "tmpfs", name, dest]);
        assert_eq!(r.code, 0, "mount {dest}: {}", r.stderr);
    }
    assert!(
        host_line(&shared.join("from_ctr")).is_some(),
        "a mount under the rshared bind did not reach the host"
    );
    assert!(
        host_line(&shared.join("from_ctr_slave")).is_none(),
        "a mount under the rslave bind reached the host"
    );

    // Host → container: through both.
    mount_shared(None, &shared.join("from_host"));
    let r = env.rsrun(&["exec", "mc-prop1", "cat", "/proc/self/mountinfo"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    line_at(&r.stdout, "/sh/from_host");
    line_at(&r.stdout, "/sl/from_host");
}

/// userns.bats "userns with inaccessible mount + exec": two binds whose sources lie in
/// directories only host root may enter (0700), in a container with a user namespace;
/// a process exec'd into it reaches both.
#[test]
fn exec_sees_binds_of_sources_only_host_root_can_reach() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new("mc-userns-exec");
    let rootfs = env.bundle.join("rootfs");
    env.edit(with_userns);
    for n in 1..=2 {
        let hidden = env.dir.join(format!("inaccessible-{n}"));
        std::fs::create_dir_all(hidden.join("dir")).unwrap();
        std::fs::write(hidden.join("dir/foo.txt"), "").unwrap();
        std::fs::set_permissions(&hidden, std::fs::Permissions::from_mode(0o700)).unwrap();
        // The mapped root cannot create mount points in the (host root's) rootfs.
        std::fs::create_dir_all(rootfs.join(format!("tmp/mount-{n}"))).unwrap();
        env.edit(|v| {
            v["mounts"].as_array_mut().unwrap().push(json!({
                "destination": format!("/tmp/mount-{n}"),
                "source": hidden.join("dir").to_str().unwrap(),
                "options": ["bind"]
            }))
        });
    }
    env.set_args(&["sleep", "100"]);
    env.run_detached("mc-uexec1");
    let r = env.rsrun(&[
        "exec",
        "mc-uexec1",
        "stat",
        "-c",
        "%n",
        "/tmp/mount-1/foo.txt",
        "/tmp/mount-2/foo.txt",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "/tmp/mount-1/foo.txt\n/tmp/mount-2/foo.txt\n");
    env.delete_and_assert_clean("mc-uexec1");
}

/// A bind source that only host root can reach (a 0755 directory under a 0700 one) in a
/// container with a user namespace: as runc, the runtime opens it before the namespace
/// applies and the container binds from that. The same for a file bound on its own, and
/// for an id-mapped bind (which only a process privileged over the source's filesystem
/// may make), and for a host device node there (bound in a user namespace).
#[test]
fn userns_binds_of_sources_only_host_root_can_reach() {
    let env = Env::new("mc-userns-src");
    // The id-mapped bind's source must be on a filesystem the kernel can id-map.
    let fs = IdmapCapableDir::new(env.dir.join("fs"));
    let hidden = fs.path.join("hidden");
    std::fs::create_dir_all(hidden.join("inner")).unwrap();
    std::fs::write(hidden.join("inner/f"), "inner\n").unwrap();
    std::fs::write(hidden.join("file.conf"), "file\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hidden, std::fs::Permissions::from_mode(0o700)).unwrap();
    let src = |p: &str| hidden.join(p).to_str().unwrap().to_string();
    // The mapped root cannot create mount points in the (host root's) rootfs.
    let rootfs = env.bundle.join("rootfs");
    std::fs::create_dir(rootfs.join("inner")).unwrap();
    std::fs::create_dir(rootfs.join("mapped")).unwrap();
    std::fs::write(rootfs.join("etc/file.conf"), "").unwrap();
    // A host device node in a root-only directory too (linux.devices, bound from the
    // host in a user namespace): /dev/null under another name, in a directory of ours.
    let devdir = PathBuf::from(format!("/dev/mc-hidden-{}", std::process::id()));
    std::fs::create_dir(&devdir).unwrap();
    let _devdir = RemoveDir(devdir.clone());
    std::fs::set_permissions(&devdir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let node = devdir.join("null");
    nix::sys::stat::mknod(
        &node,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    // (whatever the umask)
    std::fs::set_permissions(&node, std::fs::Permissions::from_mode(0o666)).unwrap();
    env.edit(|v| {
        with_userns(v);
        let m = v["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/inner", "type": "bind", "source": src("inner"), "options": ["rbind", "ro"]}));
        m.push(json!({"destination": "/etc/file.conf", "type": "bind", "source": src("file.conf"), "options": ["bind", "ro"]}));
        m.push(json!({"destination": "/mapped", "type": "bind", "source": src("inner"), "options": ["bind", "idmap"],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}));
        v["linux"]["devices"] = json!([{"path": node.to_str().unwrap(), "type": "c", "major": 1, "minor": 3, "fileMode": 438}]);
    });
    let r = env.run(
        "mc-usrc1",
        &[
            "sh",
            "-c",
            &format!("cat /inner/f /etc/file.conf; stat -c %u /mapped/f /inner/f; touch /inner/x 2>/dev/null || echo ro; stat -c %t:%T {0} && echo x > {0}", node.display()),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout, "inner\nfile\n0\n65534\nro\n1:3\n",
        "the sources' files (root's on the host: 0 through the id-mapped bind, unmapped through the plain one)"
    );
    env.assert_clean("mc-usrc1", None);
}

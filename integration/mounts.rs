//! Mounts as the container sees them in /proc/self/mountinfo: options, recursive
//! attributes, propagation, file binds, id-mapped binds, devices, masked and read-only
//! paths; and bad mounts refused with the mount index and field.

use crate::common::*;
use serde_json::json;

/// The mountinfo line (inside the container) whose mount point is `mp`.
fn line<'a>(mountinfo: &'a str, mp: &str) -> &'a str {
    mountinfo
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(mp))
        .unwrap_or_else(|| panic!("no mount at {mp}:\n{mountinfo}"))
}

#[test]
fn mount_options_and_data() {
    let env = Env::new("mnt-opts");
    let src = env.dir.join("data");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "x").unwrap();
    env.edit(|v| {
        let m = v["mounts"].as_array_mut().unwrap();
        m.push(
            json!({"destination": "/data", "type": "bind", "source": src.to_str().unwrap(),
                      "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]}),
        );
        m.push(
            json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                      "options": ["nosuid", "size=1m", "mode=700", "uid=5", "noatime"]}),
        );
    });
    let r = env.run("mo1", &["sh", "-c", "cat /proc/self/mountinfo; stat -c '%a %u' /scratch; touch /data/g 2>/dev/null || echo ro-ok"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let data = line(&r.stdout, "/data");
    let opts = data.split(' ').nth(5).unwrap();
    for o in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(
            opts.split(',').any(|x| x == o),
            "{o} missing on /data: {data}"
        );
    }
    let scratch = line(&r.stdout, "/scratch");
    assert!(
        scratch.contains("noatime") && scratch.contains("size=1024k") && scratch.contains("tmpfs"),
        "{scratch}"
    );
    assert!(r.stdout.contains("700 5\n"), "{}", r.stdout);
    assert!(r.stdout.contains("ro-ok"));
}

#[test]
fn recursive_read_only_covers_submounts() {
    let env = Env::new("mnt-rro");
    let src = env.dir.join("tree");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    // A submount inside the bind source, in the host's mount namespace (removed below).
    nix::mount::mount(
        Some("tmpfs"),
        &src.join("sub"),
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    env.edit(|v| {
        let m = v["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/plain", "type": "bind", "source": src.to_str().unwrap(), "options": ["rbind", "ro"]}));
        m.push(json!({"destination": "/rec", "type": "bind", "source": src.to_str().unwrap(), "options": ["rbind", "rro", "rnosuid"]}));
    });
    let r = env.run(
        "rr1",
        &["sh", "-c", "touch /plain/sub/a 2>/dev/null && echo plain-sub-writable; touch /rec/sub/b 2>/dev/null || echo rec-sub-ro; grep ' /rec/sub ' /proc/self/mountinfo"],
    );
    let _ = nix::mount::umount2(&src.join("sub"), nix::mount::MntFlags::MNT_DETACH);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // `ro` alone leaves the submount writable (classic bind semantics); `rro` does not.
    assert!(r.stdout.contains("plain-sub-writable"), "{}", r.stdout);
    assert!(r.stdout.contains("rec-sub-ro"), "{}", r.stdout);
    let rec = r.stdout.lines().last().unwrap();
    assert!(rec.contains(" ro,") && rec.contains("nosuid"), "{rec}");
}

#[test]
fn propagation_flags() {
    let env = Env::new("mnt-prop");
    env.edit(|v| {
        let m = v["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/shared", "type": "tmpfs", "source": "tmpfs", "options": ["rshared"]}));
        m.push(json!({"destination": "/private", "type": "tmpfs", "source": "tmpfs", "options": ["rprivate"]}));
        m.push(json!({"destination": "/unbind", "type": "tmpfs", "source": "tmpfs", "options": ["unbindable"]}));
    });
    let r = env.run("pp1", &["cat", "/proc/self/mountinfo"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        line(&r.stdout, "/shared").contains(" shared:"),
        "{}",
        line(&r.stdout, "/shared")
    );
    let private = line(&r.stdout, "/private");
    assert!(
        !private.contains("shared:") && !private.contains("master:"),
        "{private}"
    );
    assert!(
        line(&r.stdout, "/unbind").contains(" unbindable "),
        "{}",
        line(&r.stdout, "/unbind")
    );
}

#[test]
fn rootfs_propagation() {
    let env = Env::new("mnt-rootprop");
    env.edit(|v| v["linux"]["rootfsPropagation"] = json!("shared"));
    let r = env.run("rp1", &["awk", "$5 == \"/\"", "/proc/self/mountinfo"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("shared:"), "{}", r.stdout);
}

#[test]
fn bind_a_file_creating_the_target() {
    let env = Env::new("mnt-file");
    let f = env.dir.join("hostfile");
    std::fs::write(&f, "from-host\n").unwrap();
    env.edit(|v| {
        v["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/etc/deep/new/file.conf", "type": "bind",
            "source": f.to_str().unwrap(), "options": ["bind", "ro"]}),
        );
    });
    let r = env.run("bf1mf", &["cat", "/etc/deep/new/file.conf"]);
    assert_eq!(r.stdout, "from-host\n", "{}", r.stderr);
    assert!(env.bundle.join("rootfs/etc/deep/new/file.conf").is_file());
}

#[test]
fn idmapped_bind_mount() {
    let env = Env::new("mnt-idmap");
    let fs = IdmapCapableDir::new(env.dir.join("fs"));
    let src = fs.path.join("owned");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "x").unwrap();
    nix::unistd::chown(
        &src.join("f"),
        Some(nix::unistd::Uid::from_raw(1000)),
        Some(nix::unistd::Gid::from_raw(1000)),
    )
    .unwrap();
    env.edit(|v| {
        v["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/owned", "type": "bind",
            "source": src.to_str().unwrap(), "options": ["bind", "idmap"],
            // As in a user namespace's maps: the filesystem's ids are containerIDs, what
            // the kernel (here: the container, which has no user namespace) sees are hostIDs.
            "uidMappings": [{"containerID": 1000, "hostID": 0, "size": 1}],
            "gidMappings": [{"containerID": 1000, "hostID": 0, "size": 1}]}));
    });
    let r = env.run("im1", &["stat", "-c", "%u:%g", "/owned/f"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout, "0:0\n",
        "the file owned by 1000 on the host is root's in the container"
    );
    // The host still sees 1000.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(src.join("f")).unwrap().uid(), 1000);
}

#[test]
fn devices_with_mode_and_owner() {
    let env = Env::new("mnt-dev");
    env.edit(|v| {
        v["linux"]["devices"] = json!([
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 384, "uid": 1000, "gid": 1001},
            {"path": "/dev/loop-test", "type": "b", "major": 7, "minor": 200, "fileMode": 432},
            {"path": "/dev/pipe-test", "type": "p"}
        ]);
    });
    let r = env.run(
        "dv1",
        &["sh", "-c", "stat -c '%n %F %a %u %g %t:%T' /dev/fuse /dev/loop-test /dev/pipe-test /dev/null; ls -l /dev/ptmx /dev/fd"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let l: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(l[0], "/dev/fuse character special file 600 1000 1001 a:e5");
    assert_eq!(l[1], "/dev/loop-test block special file 660 0 0 7:c8");
    assert!(l[2].starts_with("/dev/pipe-test fifo"), "{}", l[2]);
    assert_eq!(l[3], "/dev/null character special file 666 0 0 1:3");
    assert!(
        r.stdout.contains("/dev/ptmx -> pts/ptmx") && r.stdout.contains("/dev/fd -> /proc/self/fd"),
        "{}",
        r.stdout
    );
}

#[test]
fn masked_and_readonly_paths() {
    let env = Env::new("mnt-mask");
    std::fs::write(env.bundle.join("rootfs/secret"), "secret\n").unwrap();
    env.edit(|v| {
        v["linux"]["maskedPaths"]
            .as_array_mut()
            .unwrap()
            .push(json!("/etc"));
        v["linux"]["maskedPaths"]
            .as_array_mut()
            .unwrap()
            .push(json!("/secret"));
        v["linux"]["readonlyPaths"]
            .as_array_mut()
            .unwrap()
            .push(json!("/tmp"));
        v["root"]["readonly"] = json!(false);
    });
    let r = env.run(
        "mk1",
        &["sh", "-c", "wc -c < /secret; ls /etc | wc -l; touch /etc/x 2>/dev/null || echo etc-ro; \
          echo 1 > /proc/sys/kernel/domainname 2>/dev/null || echo procsys-ro; touch /tmp/x 2>/dev/null || echo tmp-ro; touch /x && echo root-rw"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "0\n0\netc-ro\nprocsys-ro\ntmp-ro\nroot-rw\n");
}

#[test]
fn bad_mounts_name_index_and_field() {
    let env = Env::new("mnt-bad");
    let good = env.config();
    let with = |m: serde_json::Value| {
        let mut v = good.clone();
        v["mounts"].as_array_mut().unwrap().push(m);
        v
    };
    env.write_config(&with(
        json!({"destination": "/x", "type": "nosuchfs", "source": "none"}),
    ));
    assert_one_line_error(&env.create("bm1mb"), "mounts[7].type");
    env.write_config(&with(json!({"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["nosuchoption=1"]})));
    assert_one_line_error(&env.create("bm2"), "mounts[7].options");
    env.write_config(&with(
        json!({"destination": "x", "type": "tmpfs", "source": "tmpfs"}),
    ));
    assert_one_line_error(&env.create("bm3"), "mounts[7].destination");
    env.write_config(&with(
        json!({"destination": "/x", "type": "bind", "source": "/nonexistent", "options": ["bind"]}),
    ));
    assert_one_line_error(&env.create("bm4"), "mounts[7].source");
    let mut v = good.clone();
    v["linux"]["devices"] = json!([{"path": "/dev/x", "type": "a", "major": 1, "minor": 1}]);
    env.write_config(&v);
    assert_one_line_error(&env.create("bm5"), "linux.devices[0].type");
    let mut v = good.clone();
    v["linux"]["devices"] = json!([{"path": "/dev/x", "type": "c", "major": -1, "minor": 1}]);
    env.write_config(&v);
    assert_one_line_error(&env.create("bm6"), "linux.devices[0]");
    for id in ["bm1mb", "bm2", "bm3", "bm4", "bm5", "bm6"] {
        env.assert_clean(id, None);
    }
}

#[test]
fn mount_label_is_ignored_without_selinux() {
    // runc on a host without SELinux ignores linux.mountLabel; so does rsrun.
    let env = Env::new("mnt-label");
    env.edit(|v| v["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0:c1,c2"));
    let r = env.run("ml1", &["cat", "/proc/self/mountinfo"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains(" /proc "), "{}", r.stdout);
    assert!(
        !r.stdout.contains("context="),
        "a label was applied: {}",
        r.stdout
    );
    env.assert_clean("ml1", None);
}

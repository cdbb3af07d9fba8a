//! Escapes through the container's root filesystem and its procfs (see
//! ../shared/SECURITY.md): sysctl writes redirected by a mount, a mount over the root
//! itself, a fresh procfs behind the masks with --no-pivot.

use crate::common::*;
use serde_json::json;
use std::process::{Child, Command};

/// A host process to aim at, killed when dropped.
struct Helper(Child);

impl Helper {
    fn sleeping() -> Helper {
        Helper(Command::new("sleep").arg("1000").spawn().unwrap())
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn oom_score_adj(pid: impl std::fmt::Display) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
        .unwrap()
        .trim()
        .to_string()
}

/// CVE-2025-52881: a procfs file bind-mounted over a sysctl file the config sets (a
/// host process's oom_score_adj, the init's own one; directly or through an image
/// symlink into /proc) must not receive the write. Such mounts under /proc are refused
/// as runc refuses them, naming the mount, before anything is written. (The writes
/// themselves go through a private procfs: escapes.rs, a fake /proc/sys.)
#[test]
fn cve_2025_52881_procfs_file_bound_over_a_sysctl_is_refused() {
    let env = Env::new("escr-sysctl");
    let helper = Helper::sleeping();
    let helper_before = oom_score_adj(helper.pid());
    assert_ne!(helper_before, "1");
    std::os::unix::fs::symlink("/proc/sys/kernel", env.bundle.join("rootfs/k")).unwrap();
    let good = env.config();
    let n = good["mounts"].as_array().unwrap().len();
    let helper_file = format!("/proc/{}/oom_score_adj", helper.pid());
    for (i, (dest, source)) in [
        ("/proc/sys/kernel/shm_rmid_forced", helper_file.as_str()),
        (
            "/proc/sys/kernel/shm_rmid_forced",
            "/proc/self/oom_score_adj",
        ),
        ("/k/shm_rmid_forced", helper_file.as_str()),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("sy{i}");
        let mut v = good.clone();
        v["linux"]["sysctl"] = json!({"kernel.shm_rmid_forced": "1"});
        v["mounts"].as_array_mut().unwrap().push(
            json!({"destination": dest, "type": "bind", "source": source, "options": ["bind"]}),
        );
        env.write_config(&v);
        let r = env.create(&id);
        assert_one_line_error(&r, &format!("mounts[{n}].destination {dest:?}"));
        assert!(r.stderr.contains("inside /proc"), "{}", r.stderr);
        assert_eq!(
            oom_score_adj(helper.pid()),
            helper_before,
            "the sysctl write landed on a host process"
        );
        env.assert_clean(&id, None);
    }
}

/// Masks are mounted through /proc/self/fd: a directory of the host bound over
/// /proc/1/fd (directly or through an image symlink) would send them onto its files and
/// leave the masked paths bare. Mounts under /proc other than lxcfs's files are refused,
/// and only a procfs goes on /proc itself; an lxcfs-style file mount works.
#[test]
fn mounts_inside_proc_are_refused_but_lxcfs_files() {
    let env = Env::new("escr-procfd");
    let fake = env.dir.join("fakefd");
    std::fs::create_dir_all(&fake).unwrap();
    for fd in 0..64 {
        std::fs::write(fake.join(fd.to_string()), "fake\n").unwrap();
    }
    std::os::unix::fs::symlink("/proc/1", env.bundle.join("rootfs/p1")).unwrap();
    let good = env.config();
    let n = good["mounts"].as_array().unwrap().len();
    let fake = fake.to_str().unwrap();
    for (i, (dest, typ, why)) in [
        ("/proc/1/fd", "bind", "inside /proc"),
        ("/p1/fd", "bind", "inside /proc"),
        ("/proc", "tmpfs", "only a procfs"),
        ("/proc", "bind", "only a procfs"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("pf{i}");
        let mut v = good.clone();
        v["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": dest, "type": typ, "source": fake, "options": ["rbind"]}));
        env.write_config(&v);
        let r = env.create(&id);
        assert_one_line_error(&r, &format!("mounts[{n}].destination {dest:?}"));
        assert!(r.stderr.contains(why), "{}", r.stderr);
        env.assert_clean(&id, None);
    }
    let mut v = good.clone();
    v["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/proc/meminfo",
        "type": "bind", "source": format!("{fake}/1"), "options": ["bind", "ro"]}));
    env.write_config(&v);
    let r = env.run(
        "pf-ok",
        &["sh", "-c", "cat /proc/meminfo; wc -c < /proc/timer_list"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "fake\n0\n");
    env.assert_clean("pf-ok", None);
}

/// process.oomScoreAdj goes through the private procfs too, for the init and an exec: a
/// fake /proc/self in the image (no procfs mounted on /proc) does not take the write.
#[test]
fn oom_score_adj_is_written_through_a_private_procfs() {
    let env = Env::new("escr-oom");
    let fake = env.bundle.join("rootfs/proc/self/oom_score_adj");
    write_with_parents(&fake, "fake\n");
    env.edit(|v| {
        v["process"]["oomScoreAdj"] = json!(7);
        without_proc_mount(v);
        v["process"]["args"] = json!(["sleep", "1000"]);
    });
    let pid = env.run_detached("oo1") as i64;
    assert_eq!(oom_score_adj(pid), "7");
    let p = json!({"args": ["sleep", "1000"], "cwd": "/", "oomScoreAdj": 9,
        "user": {"uid": 0, "gid": 0}});
    let exec_pid = env.exec_detached_process("oo1", &p);
    assert_eq!(oom_score_adj(exec_pid), "9");
    assert_eq!(
        std::fs::read_to_string(&fake).unwrap(),
        "fake\n",
        "written to the image's fake /proc/self"
    );
    let r = env.rsrun(&["delete", "-f", "oo1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    env.assert_clean("oo1", Some(pid as i32));
}

/// A mount destination that resolves to the root itself (an image symlink `/data -> /`,
/// a chain of symlinks ending at `/`, or `/`, `/.`, `/..`, `//`) is refused with one
/// line naming the mount, and leaves nothing behind; a mount next to it still works.
#[test]
fn mount_destination_resolving_to_the_root_is_refused() {
    let env = Env::new("escr-overroot");
    let rootfs = env.bundle.join("rootfs");
    std::os::unix::fs::symlink("/", rootfs.join("data")).unwrap();
    std::os::unix::fs::symlink("chain2", rootfs.join("chain1")).unwrap();
    std::os::unix::fs::symlink("/etc/..", rootfs.join("chain2")).unwrap();
    let vol = env.dir.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("f"), "volume\n").unwrap();
    let good = env.config();
    let n = good["mounts"].as_array().unwrap().len();
    for (i, dest) in ["/data", "/chain1", "/", "/.", "/..", "//"]
        .iter()
        .enumerate()
    {
        let id = format!("or{i}");
        let mut v = good.clone();
        v["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": dest,
            "type": "bind", "source": vol.to_str().unwrap(), "options": ["rbind"]}));
        env.write_config(&v);
        let r = env.create(&id);
        assert_one_line_error(&r, &format!("mounts[{n}].destination {dest:?}"));
        assert!(r.stderr.contains("root"), "{}", r.stderr);
        env.assert_clean(&id, None);
    }
    assert_eq!(std::fs::read_dir(&vol).unwrap().count(), 1);

    let mut v = good.clone();
    v["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/data2",
        "type": "bind", "source": vol.to_str().unwrap(), "options": ["rbind", "ro"]}));
    env.write_config(&v);
    let r = env.run("or-ok", &["sh", "-c", "cat /data2/f; ls -d /data/bin"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "volume\n/data/bin\n");
    env.assert_clean("or-ok", None);
}

/// SECURITY.md "bare procfs with --no-pivot": a process in a nested user namespace
/// cannot mount a fresh procfs (which the masks would not cover), with or without
/// pivot_root, and the masked paths stay masked.
#[test]
fn no_pivot_nested_user_namespace_cannot_mount_a_fresh_procfs() {
    let env = Env::new("escr-nopivot");
    env.edit(|v| {
        // Mapping uid 0 needs CAP_SETFCAP: the attacker is an unprivileged user.
        v["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        v["process"]["args"] = json!([
            "sh",
            "-c",
            "unshare -Urmpf --mount-proc echo mounted a fresh procfs; \
             echo rc=$?; echo masked $(wc -c < /proc/timer_list)"
        ]);
    });
    for (id, extra) in [("np1", Some("--no-pivot")), ("np2", None)] {
        let mut args = vec!["run", "--bundle", env.bundle.to_str().unwrap()];
        args.extend(extra);
        args.push(id);
        let r = env.rsrun(&args);
        assert_eq!(r.code, 0, "{id}: {}", r.stderr);
        assert_eq!(r.stdout, "rc=1\nmasked 0\n", "{id}: {}", r.stderr);
        assert!(r.stderr.contains("can't mount proc"), "{id}: {}", r.stderr);
        env.assert_clean(id, None);
    }
    // In a user namespace the host's procfs cannot be detached (it is locked): it is
    // covered instead, with the same result.
    env.edit(|v| {
        with_userns(v);
    });
    let r = env.rsrun(&[
        "run",
        "--no-pivot",
        "--bundle",
        env.bundle.to_str().unwrap(),
        "np3",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "rc=1\nmasked 0\n", "{}", r.stderr);
    assert!(r.stderr.contains("can't mount proc"), "{}", r.stderr);
    env.assert_clean("np3", None);
    // The host's own /proc and /sys were only detached in the container's namespace.
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(mi.lines().any(|l| l.split(' ').nth(4) == Some("/proc")));
    assert!(mi.lines().any(|l| l.split(' ').nth(4) == Some("/sys")));
}

// Conformance of the rootfs set-up (the same code paths): a read-only /dev, an
// unbindable root, recursive atime options.

/// The mountinfo line of the mount at `point` in `text`.
fn mount_line<'a>(text: &'a str, point: &str) -> &'a str {
    text.lines()
        .find(|l| l.split(' ').nth(4) == Some(point))
        .unwrap_or_else(|| panic!("no mount at {point} in {text}"))
}

/// A tmpfs `/dev` with `ro` still gets /dev/pts and the other mounts under it and its
/// device nodes (it is made read-only last, as runc does), and is read-only after.
#[test]
fn read_only_dev_gets_its_mounts_and_nodes_first() {
    let env = Env::new("escr-rodev");
    env.edit(|v| {
        for m in v["mounts"].as_array_mut().unwrap() {
            if m["destination"] == "/dev" {
                m["options"].as_array_mut().unwrap().push(json!("ro"));
            }
        }
    });
    let r = env.run(
        "rd1",
        &[
            "sh",
            "-c",
            "cat /proc/self/mountinfo; test -c /dev/null -a -c /dev/zero -a -L /dev/fd && \
             echo nodes; touch /dev/x 2>/dev/null || echo read-only",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let dev = mount_line(&r.stdout, "/dev");
    assert!(dev.split(' ').nth(5).unwrap().starts_with("ro,"), "{dev}");
    mount_line(&r.stdout, "/dev/pts");
    mount_line(&r.stdout, "/dev/shm");
    assert!(r.stdout.ends_with("nodes\nread-only\n"), "{}", r.stdout);
    env.assert_clean("rd1", None);
}

/// `rootfsPropagation: unbindable` (and `runbindable`) leave the container's root
/// unbindable; the rootfs is still bound onto itself first.
#[test]
fn rootfs_propagation_unbindable() {
    let env = Env::new("escr-unbind");
    for (id, p) in [("ub1", "unbindable"), ("ub2", "runbindable")] {
        env.edit(|v| v["linux"]["rootfsPropagation"] = json!(p));
        let r = env.run(id, &["cat", "/proc/self/mountinfo"]);
        assert_eq!(r.code, 0, "{p}: {}", r.stderr);
        let root = mount_line(&r.stdout, "/");
        assert!(root.contains(" unbindable "), "{p}: {root}");
        env.assert_clean(id, None);
    }
}

/// `rnorelatime` changes nothing, as in runc (it clears MOUNT_ATTR_RELATIME, which is
/// 0): the bind stays relatime; `rstrictatime` does change it.
#[test]
fn rnorelatime_is_a_no_op() {
    let env = Env::new("escr-rnorelatime");
    let vol = env.dir.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    let good = env.config();
    for (id, opt, relatime) in [("ra1", "rnorelatime", true), ("ra2", "rstrictatime", false)] {
        let mut v = good.clone();
        v["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/m",
            "type": "bind", "source": vol.to_str().unwrap(), "options": ["rbind", opt]}));
        env.write_config(&v);
        let r = env.run(id, &["cat", "/proc/self/mountinfo"]);
        assert_eq!(r.code, 0, "{opt}: {}", r.stderr);
        let m = mount_line(&r.stdout, "/m");
        let opts = m.split(' ').nth(5).unwrap();
        assert_eq!(
            opts.split(',').any(|o| o == "relatime"),
            relatime,
            "{opt}: {m}"
        );
        env.assert_clean(id, None);
    }
}

/// CVE-2019-19921 / CVE-2023-27561 / CVE-2025-54867: a `/sys` that is a symlink in the
/// image is refused like `/proc` (escapes.rs), and nothing is mounted where it points.
#[test]
fn sysfs_destination_that_is_a_symlink_is_refused() {
    let env = Env::new("escr-syssym");
    let rootfs = env.bundle.join("rootfs");
    symlink_mount_point(&rootfs, "sys");
    let n = env.config()["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .position(|m| m["type"] == "sysfs")
        .expect("the default spec mounts sysfs");
    let r = env.create("ss1");
    assert_one_line_error(&r, &format!("mounts[{n}].destination"));
    assert!(r.stderr.contains("symlink"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_dir(rootfs.join("fakesys")).unwrap().count(),
        0
    );
    env.assert_clean("ss1", None);
}

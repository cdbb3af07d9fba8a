//! Id-mapped bind mounts (runtime-spec mounts `uidMappings`/`gidMappings`, options
//! `idmap`/`ridmap`), as runc's idmap.bats exercises them: what owners a process sees
//! through one, with and without a user namespace of its own, where its writes land on
//! the host, several and multi-range mappings, submounts (`rbind` maps the top mount,
//! `ridmap` all of them), the container's own mapping when none is given, and the
//! propagation flag of the mount.
//!
//! A mapping `{containerID: c, hostID: h, size: n}` shows the file the filesystem says
//! id c+k owns as owned by h+k (before the container's own user namespace, if any, maps
//! that again). The sources live on a filesystem the kernel can id-map
//! (`common::IdmapCapableDir`).

use crate::common::{self, with_userns, Env, IdmapCapableDir};
use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The container's 0-65535 (`with_userns`) on the host.
const USERNS_BASE: u32 = 100000;

fn chown(path: &Path, uid: u32, gid: u32) {
    nix::unistd::chown(
        path,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .unwrap();
}

/// A directory `name` under `at` holding files owned (uid, gid) as listed.
fn owned_files(at: &Path, name: &str, files: &[(&str, u32, u32)]) -> PathBuf {
    let dir = at.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for (f, uid, gid) in files {
        std::fs::write(dir.join(f), "x").unwrap();
        chown(&dir.join(f), *uid, *gid);
    }
    dir
}

fn host_owner(path: &Path) -> (u32, u32) {
    let m = std::fs::metadata(path).unwrap();
    (m.uid(), m.gid())
}

fn map(c: u32, h: u32, n: u32) -> Value {
    json!({"containerID": c, "hostID": h, "size": n})
}

/// Mappings the same as `with_userns`'s user namespace (uids, gids).
fn as_the_userns() -> (Value, Value) {
    let m = json!([map(0, USERNS_BASE, 65536)]);
    (m.clone(), m)
}

/// A bind of `source` at `dest` with `options`, id-mapped with these lists (none: no
/// `uidMappings`/`gidMappings` at all). The mount point is made in the rootfs first: a
/// container's root in a user namespace cannot make one in host root's rootfs.
fn add_bind(env: &Env, source: &Path, dest: &str, options: &[&str], maps: Option<(Value, Value)>) {
    std::fs::create_dir_all(env.bundle.join("rootfs").join(&dest[1..])).unwrap();
    env.edit(|v| {
        let mut m = json!({"destination": dest, "type": "bind",
            "source": source.to_str().unwrap(), "options": options});
        if let Some((uids, gids)) = maps {
            m["uidMappings"] = uids;
            m["gidMappings"] = gids;
        }
        v["mounts"].as_array_mut().unwrap().push(m);
    });
}

/// `uid:gid` of each path, as the container's process sees it, one per line.
fn stat_in(env: &Env, id: &str, paths: &[impl AsRef<str>]) -> String {
    let mut args = vec!["stat", "-c", "%n %u:%g"];
    args.extend(paths.iter().map(|p| p.as_ref()));
    let r = env.run(id, &args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout
}

/// A test's `Env` and a directory of it on a filesystem that can be id-mapped. Bound as
/// `let Fixture { env, fs }`, `fs` is dropped (detached) before `env` removes the
/// directory (bindings drop in reverse order).
struct Fixture {
    fs: IdmapCapableDir,
    env: Env,
}

fn fixture(name: &str) -> Fixture {
    let env = Env::new(name);
    Fixture {
        fs: IdmapCapableDir::new(env.dir.join("fs")),
        env,
    }
}

/// A host mount, detached when dropped (before the `Env` that owns the directory).
struct HostMount(PathBuf);

impl HostMount {
    /// A bind of `source` on `target`.
    fn bind(source: &Path, target: &Path) -> HostMount {
        std::fs::create_dir_all(target).unwrap();
        nix::mount::mount(
            Some(source),
            target,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .unwrap();
        HostMount(target.to_path_buf())
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// idmap.bats "simple idmap mount [userns]", "write to an idmap mount [userns]", "idmap
/// mount with bind mount [userns]": in a container with a user namespace, a bind mapped
/// as the container's own ids shows the host's root-owned files as root's, and a file
/// the container's root makes there (and chowns) lands on the host owned by those ids,
/// not by the container's host ids; a plain bind of the same directory shows the
/// overflow id.
#[test]
fn userns_container_sees_and_writes_through_an_idmapped_bind() {
    let Fixture { env, fs } = fixture("idm-userns");
    let src = owned_files(&fs.path, "src", &[("root", 0, 0), ("one", 1, 1)]);
    env.edit(|v| {
        with_userns(v);
        for set in ["bounding", "effective", "permitted"] {
            v["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_CHOWN"));
        }
    });
    add_bind(&env, &src, "/mapped", &["bind"], Some(as_the_userns()));
    add_bind(&env, &src, "/plain", &["bind"], None);
    let r = env.run(
        "idm-u1",
        &[
            "sh",
            "-c",
            "stat -c '%n %u:%g' /mapped/root /mapped/one /plain/root \
             && touch /mapped/made && mkdir /mapped/dir && touch /mapped/given \
             && chown 7:8 /mapped/given && stat -c '%n %u:%g' /mapped/made /mapped/given",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "/mapped/root 0:0\n/mapped/one 1:1\n/plain/root 65534:65534\n\
         /mapped/made 0:0\n/mapped/given 7:8\n"
    );
    assert_eq!(
        host_owner(&src.join("made")),
        (0, 0),
        "written as the container's root: host root's"
    );
    assert_eq!(host_owner(&src.join("dir")), (0, 0));
    assert_eq!(host_owner(&src.join("given")), (7, 8));
    env.assert_clean("idm-u1", None);
}

/// idmap.bats "simple idmap mount [no userns]", "write to an idmap mount [no userns]",
/// "idmap mount with bind mount [no userns]": without a user namespace the process sees
/// the mapped ids themselves; root (host id 0, which the mapping does not reach) cannot
/// create a file through it (EOVERFLOW), and nothing appears on the host.
#[test]
fn idmapped_bind_without_userns_refuses_unmapped_writers() {
    let Fixture { env, fs } = fixture("idm-nouserns");
    let src = owned_files(&fs.path, "src", &[("root", 0, 0)]);
    add_bind(&env, &src, "/mapped", &["bind"], Some(as_the_userns()));
    add_bind(&env, &src, "/plain", &["bind"], None);
    assert_eq!(
        stat_in(&env, "idm-n1", &["/mapped/root", "/plain/root"]),
        "/mapped/root 100000:100000\n/plain/root 0:0\n"
    );
    let r = env.run("idm-n2", &["touch", "/mapped/made"]);
    assert_ne!(
        r.code, 0,
        "root wrote through a mapping that does not hold it"
    );
    assert!(
        r.stderr.contains("Value too large"),
        "EOVERFLOW expected: {}",
        r.stderr
    );
    assert!(!src.join("made").exists());
}

/// The owners idmap.bats's multi-range scenarios give three files: 100:211, 101:222,
/// 102:233.
fn three_owners(at: &Path, name: &str) -> PathBuf {
    owned_files(
        at,
        name,
        &[("a", 100, 211), ("b", 101, 222), ("c", 102, 233)],
    )
}

/// idmap.bats "same idmap mount (different mappings)", "multiple idmap mounts
/// (different mappings)", "idmap mount (complicated mapping)" [userns]: one source
/// bound twice with different mappings, uids and gids mapped differently, and a mapping
/// of several ranges each: every mount shows its own mapping, seen through the
/// container's user namespace.
#[test]
fn userns_container_sees_several_and_multi_range_mappings() {
    let Fixture { env, fs } = fixture("idm-multi-u");
    let src = three_owners(&fs.path, "src");
    env.edit(with_userns);
    for (dest, maps) in multi_range_mounts(USERNS_BASE) {
        add_bind(&env, &src, dest, &["bind"], Some(maps));
    }
    assert_eq!(
        stat_in(&env, "idm-mu1", &multi_range_paths()),
        multi_range_owners(0)
    );
}

/// The same mounts in a container without a user namespace: the mapped host ids.
#[test]
fn several_and_multi_range_mappings_without_userns() {
    let Fixture { env, fs } = fixture("idm-multi-n");
    let src = three_owners(&fs.path, "src");
    for (dest, maps) in multi_range_mounts(USERNS_BASE) {
        add_bind(&env, &src, dest, &["bind"], Some(maps));
    }
    assert_eq!(
        stat_in(&env, "idm-mn1", &multi_range_paths()),
        multi_range_owners(USERNS_BASE)
    );
}

/// Three mounts of one source: one range each for uids and gids (different), the same
/// shifted elsewhere, and three ranges each (`tree_maps`).
fn multi_range_mounts(base: u32) -> Vec<(&'static str, (Value, Value))> {
    vec![
        (
            "/one",
            (json!([map(100, base, 100)]), json!([map(200, base, 100)])),
        ),
        (
            "/other",
            (
                json!([map(100, base + 1000, 100)]),
                json!([map(200, base + 2000, 100)]),
            ),
        ),
        ("/ranges", tree_maps(base)),
    ]
}

fn multi_range_paths() -> Vec<String> {
    ["/one", "/other", "/ranges"]
        .iter()
        .flat_map(|d| ["a", "b", "c"].map(|f| format!("{d}/{f}")))
        .collect()
}

/// What `multi_range_mounts` shows, `shift` added to every id.
fn multi_range_owners(shift: u32) -> String {
    let rows = [
        ("/one/a", 0, 11),
        ("/one/b", 1, 22),
        ("/one/c", 2, 33),
        ("/other/a", 1000, 2011),
        ("/other/b", 1001, 2022),
        ("/other/c", 1002, 2033),
        ("/ranges/a", 1000, 1101),
        ("/ranges/b", 1001, 2202),
        ("/ranges/c", 1002, 3303),
    ];
    rows.iter()
        .map(|(p, u, g)| format!("{p} {}:{}\n", u + shift, g + shift))
        .collect()
}

/// A tree for the recursive scenarios: top-level files 100:211, 200:222, 300:233 and,
/// bound on the host at `sub`, a directory with 100:211, 101:222, 102:233. Returns the
/// tree and the host bind (drop it before the `Env`).
fn tree_with_submount(at: &Path) -> (PathBuf, HostMount) {
    let tree = owned_files(
        at,
        "tree",
        &[("a", 100, 211), ("b", 200, 222), ("c", 300, 233)],
    );
    let inner = three_owners(at, "inner");
    let bind = HostMount::bind(&inner, &tree.join("sub"));
    (tree, bind)
}

/// Three ranges each for uids and gids, at different host places.
fn tree_maps(base: u32) -> (Value, Value) {
    (
        json!([
            map(100, base + 1000, 3),
            map(200, base + 2000, 3),
            map(300, base + 3000, 3)
        ]),
        json!([
            map(210, base + 1100, 10),
            map(220, base + 2200, 10),
            map(230, base + 3300, 10)
        ]),
    )
}

/// What the top of the tree shows through `tree_maps`, `base` added.
fn tree_top_through_maps(base: u32) -> [(u32, u32); 3] {
    [
        (base + 1000, base + 1101),
        (base + 2000, base + 2202),
        (base + 3000, base + 3303),
    ]
}

/// The test's config back to the default, with `with_userns` if `userns`.
fn fresh_config(env: &Env, userns: bool) {
    let spec = env.default_spec();
    env.write_config(&spec);
    if userns {
        env.edit(with_userns);
    }
}

const TREE_PATHS: [&str; 6] = ["/t/a", "/t/b", "/t/c", "/t/sub/a", "/t/sub/b", "/t/sub/c"];

fn tree_owners(top: [(u32, u32); 3], sub: [(u32, u32); 3]) -> String {
    TREE_PATHS
        .iter()
        .zip(top.iter().chain(sub.iter()))
        .map(|(p, (u, g))| format!("{p} {u}:{g}\n"))
        .collect()
}

const OVERFLOW: (u32, u32) = (65534, 65534);

/// idmap.bats "idmap mount (non-recursive idmap)", "(idmap flag)", "(ridmap flag)"
/// [userns and no userns]: an `rbind` with mappings brings the submounts along; with
/// `idmap` or neither option only its top mount is mapped, as runc does (the submount
/// shows the filesystem's ids, the overflow id in a user namespace, which does not map
/// them); `ridmap` maps every mount of the tree.
#[test]
fn rbind_maps_only_its_top_mount_unless_ridmap() {
    let Fixture { env, fs } = fixture("idm-rbind");
    let (tree, _bind) = tree_with_submount(&fs.path);
    for (id, options, userns) in [
        ("idm-rb1", &["rbind"][..], false),
        ("idm-rb2", &["rbind", "idmap"][..], false),
        ("idm-rb3", &["rbind", "ridmap"][..], false),
        ("idm-rb4", &["rbind"][..], true),
        ("idm-rb5", &["rbind", "idmap"][..], true),
        ("idm-rb6", &["rbind", "ridmap"][..], true),
    ] {
        fresh_config(&env, userns);
        let base = if userns { 0 } else { USERNS_BASE };
        add_bind(&env, &tree, "/t", options, Some(tree_maps(USERNS_BASE)));
        let sub = if options.contains(&"ridmap") {
            [
                (base + 1000, base + 1101),
                (base + 1001, base + 2202),
                (base + 1002, base + 3303),
            ]
        } else if userns {
            [OVERFLOW; 3]
        } else {
            [(100, 211), (101, 222), (102, 233)]
        };
        assert_eq!(
            stat_in(&env, id, &TREE_PATHS),
            tree_owners(tree_top_through_maps(base), sub),
            "{options:?}, user namespace: {userns}"
        );
    }
}

/// idmap.bats "idmap mount (idmap flag, implied mapping)", "(ridmap flag, implied
/// mapping)" [userns]: `idmap`/`ridmap` without mappings in a container with a user
/// namespace map the bind with the container's own mapping: the process sees the
/// filesystem's ids, and its root's writes land as host root's.
#[test]
fn idmap_without_mappings_takes_the_containers_user_namespace() {
    let Fixture { env, fs } = fixture("idm-implied");
    let (tree, _bind) = tree_with_submount(&fs.path);
    let own = [(100, 211), (200, 222), (300, 233)];
    let own_sub = [(100, 211), (101, 222), (102, 233)];
    for (id, option, sub) in [
        ("idm-im1", "idmap", [OVERFLOW; 3]),
        ("idm-im2", "ridmap", own_sub),
    ] {
        fresh_config(&env, true);
        add_bind(&env, &tree, "/t", &["rbind", option], None);
        assert_eq!(
            stat_in(&env, id, &TREE_PATHS),
            tree_owners(own, sub),
            "{option}"
        );
    }
    let r = env.run("idm-im3", &["touch", "/t/made"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(host_owner(&tree.join("made")), (0, 0));
}

/// idmap.bats "idmap mount (idmap flag, implied mapping, userns join)": a container
/// joining another's user namespace (by path) maps an `idmap` bind without mappings with
/// that namespace.
#[test]
fn idmap_without_mappings_takes_a_joined_user_namespace() {
    let Fixture { env, fs } = fixture("idm-joined");
    let (tree, _bind) = tree_with_submount(&fs.path);
    env.edit(with_userns);
    env.set_args(&["sleep", "1000"]);
    let pid = env.run_detached("idm-j1");
    let spec = env.default_spec();
    env.write_config(&spec);
    env.edit(|v| {
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user", "path": format!("/proc/{pid}/ns/user")}));
    });
    add_bind(&env, &tree, "/t", &["rbind", "idmap"], None);
    assert_eq!(
        stat_in(&env, "idm-j2", &TREE_PATHS),
        tree_owners([(100, 211), (200, 222), (300, 233)], [OVERFLOW; 3])
    );
    env.delete_and_assert_clean("idm-j1");
}

/// `idmap` without mappings and without a user namespace has no mapping to use: refused
/// before anything is made, naming the field (runc: "id-mapped mounts must have both uid
/// and gid mappings specified").
#[test]
fn idmap_without_mappings_or_userns_is_refused() {
    let Fixture { env, fs } = fixture("idm-nomap");
    let src = owned_files(&fs.path, "src", &[("f", 0, 0)]);
    add_bind(&env, &src, "/t", &["bind", "idmap"], None);
    let r = env.run("idm-nm1", &["true"]);
    common::assert_one_line_error(&r, "uidMappings");
    env.assert_clean("idm-nm1", None);
}

/// idmap.bats "idmap mount with propagation flag [userns]": the id-mapped bind gets the
/// propagation its options ask for (`shared`).
#[test]
fn idmapped_bind_takes_its_propagation() {
    let Fixture { env, fs } = fixture("idm-prop");
    let src = owned_files(&fs.path, "src", &[("f", 0, 0)]);
    env.edit(with_userns);
    add_bind(
        &env,
        &src,
        "/mapped",
        &["bind", "shared"],
        Some(as_the_userns()),
    );
    let r = env.run("idm-p1", &["cat", "/proc/self/mountinfo"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = r
        .stdout
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/mapped"))
        .unwrap_or_else(|| panic!("no /mapped in {}", r.stdout));
    assert!(line.contains(" shared:"), "not shared: {line}");
}

/// A source on a filesystem the kernel cannot id-map (ramfs) fails `run` with one error
/// naming the mount, the source and EINVAL, with and without a user namespace (in one,
/// the runtime makes the mapped tree: its failure is the error, not a later one of the
/// init's).
#[test]
fn idmapped_bind_of_a_filesystem_that_cannot_be_mapped_names_it() {
    let env = Env::new("idm-ramfs");
    let ramfs = env.dir.join("ramfs");
    std::fs::create_dir_all(&ramfs).unwrap();
    nix::mount::mount(
        Some("ramfs"),
        &ramfs,
        Some("ramfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    let _ramfs = HostMount(ramfs.clone());
    std::fs::create_dir(ramfs.join("src")).unwrap();
    for (id, userns) in [("idm-rf1", false), ("idm-rf2", true)] {
        fresh_config(&env, userns);
        add_bind(
            &env,
            &ramfs.join("src"),
            "/mapped",
            &["bind"],
            Some(as_the_userns()),
        );
        let r = env.run(id, &["true"]);
        common::assert_one_line_error(&r, "EINVAL");
        assert!(
            r.stderr.contains("mounts[") && r.stderr.contains("ramfs/src"),
            "user namespace {userns}: {}",
            r.stderr
        );
        env.assert_clean(id, None);
    }
}

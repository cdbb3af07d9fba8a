//! Test fixtures: a busybox bundle and a private `--root` per test, the real rsrun
//! binary, and checks that a container left nothing behind.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod background;
pub mod console;
pub mod engines;
pub mod proc_cgroup;
pub mod sd_notify;
pub mod seccomp_agent;

pub const RSRUN: &str = env!("CARGO_BIN_EXE_rsrun");

pub struct Env {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub bundle: PathBuf,
    ids: std::cell::RefCell<Vec<String>>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

pub fn busybox() -> PathBuf {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("busybox-static is required (apt-get install busybox-static)");
}

/// A busybox rootfs at `dir`.
pub fn make_rootfs(dir: &Path) {
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    // Copied by cp(1), not by this process: a file this process has open for writing
    // is also open in every child another test thread forks until that child execs, and
    // executing it meanwhile fails with ETXTBSY ("text file busy").
    let cp = Command::new("cp")
        .arg(busybox())
        .arg(dir.join("bin/busybox"))
        .status()
        .unwrap();
    assert!(cp.success(), "cp busybox: {cp}");
    let list = Command::new(busybox()).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet));
        }
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
}

impl Env {
    pub fn new(name: &str) -> Env {
        let dir = std::env::temp_dir().join(format!("rsrun-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let bundle = dir.join("bundle");
        make_rootfs(&bundle.join("rootfs"));
        let env = Env {
            root: dir.join("root"),
            bundle,
            dir,
            ids: Default::default(),
        };
        let spec = env.default_spec();
        env.write_config(&spec);
        env
    }

    /// `rsrun spec` output with terminal off.
    pub fn default_spec(&self) -> Value {
        let tmp = self.dir.join("spec");
        std::fs::create_dir_all(&tmp).unwrap();
        let _ = std::fs::remove_file(tmp.join("config.json"));
        let r = rsrun(&["spec", "--bundle", tmp.to_str().unwrap()]);
        assert_eq!(r.code, 0, "spec: {}", r.stderr);
        let mut v: Value =
            serde_json::from_str(&std::fs::read_to_string(tmp.join("config.json")).unwrap())
                .unwrap();
        v["process"]["terminal"] = json!(false);
        // The tests look at the container's own cgroup tree: give every bundle a cgroup
        // namespace (`rsrun spec`, as runc's, has one only on pure v2 hosts).
        let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
        if !ns.iter().any(|n| n["type"] == "cgroup") {
            ns.push(json!({"type": "cgroup"}));
        }
        v
    }

    pub fn write_config(&self, v: &Value) {
        std::fs::write(
            self.bundle.join("config.json"),
            serde_json::to_string_pretty(v).unwrap(),
        )
        .unwrap();
    }

    pub fn config(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.bundle.join("config.json")).unwrap())
            .unwrap()
    }
}

/// A container id belongs to one test: the default cgroup path is made from the id, so
/// two tests (running in parallel) with one id would share a cgroup, and one's delete
/// would kill the other's processes. A second test using an id fails at once, by name.
pub fn claim_id(id: &str, owner: &Path) {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static USED: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut used = USED.lock().unwrap_or_else(|e| e.into_inner());
    let map = used.get_or_insert_with(HashMap::new);
    match map.get(id) {
        Some(other) if other != owner => panic!(
            "container id {id:?} is used by two tests ({} and {}): ids must be unique",
            other.display(),
            owner.display()
        ),
        Some(_) => {}
        None => {
            map.insert(id.to_string(), owner.to_path_buf());
        }
    }
}

/// The runc binary the differential tests compare with.
pub fn runc_binary() -> Option<&'static str> {
    ["/usr/sbin/runc", "/usr/bin/runc"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// Give the container's process capability `cap` (bounding, effective and permitted).
pub fn add_capability(v: &mut Value, cap: &str) {
    for set in ["bounding", "effective", "permitted"] {
        v["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!(cap));
    }
}

/// A new user namespace mapping container ids 0-65535 to host ids 100000-165535.
pub fn with_userns(v: &mut Value) {
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
}

/// A new time namespace with these `linux.timeOffsets`.
pub fn with_time_ns(v: &mut Value, offsets: Value) {
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    v["linux"]["timeOffsets"] = offsets;
}

/// Executables that cannot run in `rootfs`: a script whose `#!` interpreter is missing,
/// a file that is no executable format, a file without execute permission.
pub fn add_bad_executables(rootfs: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for (name, text, mode) in [
        (
            "badscript",
            "#!/nonexistent/interpreter\necho never\n",
            0o755,
        ),
        ("badelf", "this is not an ELF file\n", 0o755),
        ("noexec", "echo never\n", 0o644),
    ] {
        let p = rootfs.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// Write `text` to the file at `path`, making the directories above it first.
pub fn write_with_parents(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Make directory `name` of `rootfs` (`proc`, `sys`) a symlink to `/fake<name>`, an empty
/// directory beside it: an image whose mount point is a symlink.
pub fn symlink_mount_point(rootfs: &Path, name: &str) {
    std::fs::remove_dir(rootfs.join(name)).unwrap();
    std::fs::create_dir_all(rootfs.join(format!("fake{name}"))).unwrap();
    std::os::unix::fs::symlink(format!("/fake{name}"), rootfs.join(name)).unwrap();
}

/// No procfs mounted on /proc (whatever the image has there stays visible), and so no
/// masked or read-only paths, which are in procfs.
pub fn without_proc_mount(v: &mut Value) {
    v["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["type"] != "proc");
    v["linux"]["maskedPaths"] = json!([]);
    v["linux"]["readonlyPaths"] = json!([]);
}

impl Env {
    /// Set process.args in config.json.
    pub fn set_args(&self, args: &[&str]) {
        let mut v = self.config();
        v["process"]["args"] = json!(args);
        self.write_config(&v);
    }

    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut v = self.config();
        f(&mut v);
        self.write_config(&v);
    }

    /// rsrun --root <root> ARGS
    pub fn rsrun(&self, args: &[&str]) -> Run {
        self.track(args);
        let mut full = vec!["--root", self.root.to_str().unwrap()];
        full.extend_from_slice(args);
        rsrun(&full)
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        self.track(args);
        let mut c = Command::new(RSRUN);
        c.arg("--root").arg(&self.root).args(args);
        c.stdin(Stdio::null());
        c
    }

    fn track(&self, args: &[&str]) {
        if let Some(id) = args.last() {
            // The verb is the first word that is not a global flag (`--systemd-cgroup`).
            let verb = args.iter().find(|a| !a.starts_with('-'));
            if matches!(verb, Some(&"create") | Some(&"run") | Some(&"restore")) {
                claim_id(id, &self.dir);
                self.ids.borrow_mut().push(id.to_string());
            }
        }
    }

    /// rsrun --root <root> --log <log> --log-format json [extra global flags] ARGS
    pub fn rsrun_json_log(&self, log: &Path, args: &[&str]) -> Run {
        let mut full = vec![
            "--root",
            self.root.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
        ];
        full.extend_from_slice(args);
        rsrun(&full)
    }

    /// `run --bundle <bundle> ID` with `args` as the process.
    pub fn run(&self, id: &str, args: &[&str]) -> Run {
        self.set_args(args);
        self.rsrun(&["run", "--bundle", self.bundle.to_str().unwrap(), id])
    }

    /// `run` with `sh -c SCRIPT` as the process, which must exit 0 and leave nothing
    /// behind (assert_clean); returns what it printed.
    pub fn run_sh_ok(&self, id: &str, script: &str) -> String {
        let r = self.run(id, &["sh", "-c", script]);
        assert_eq!(r.code, 0, "{id}: {}", r.stderr);
        self.assert_clean(id, None);
        r.stdout
    }

    /// `run -d --bundle <bundle> ID`, which must succeed; returns the container's pid.
    pub fn run_detached(&self, id: &str) -> i32 {
        let r = self.rsrun(&["run", "-d", "--bundle", self.bundle.to_str().unwrap(), id]);
        assert_eq!(r.code, 0, "run -d {id}: {}", r.stderr);
        self.state(id)["pid"].as_i64().unwrap() as i32
    }

    /// `exec --process FILE --detach --pid-file FILE ID` with `process` (a runtime-spec
    /// `process`), which must succeed; returns the process's pid.
    pub fn exec_detached_process(&self, id: &str, process: &Value) -> i32 {
        let pf = self.dir.join(format!("process-{id}.json"));
        let pidf = self.dir.join(format!("exec-{id}.pid"));
        std::fs::write(&pf, process.to_string()).unwrap();
        let r = self.rsrun(&[
            "exec",
            "--process",
            pf.to_str().unwrap(),
            "--detach",
            "--pid-file",
            pidf.to_str().unwrap(),
            id,
        ]);
        assert_eq!(r.code, 0, "exec --detach {id}: {}", r.stderr);
        std::fs::read_to_string(&pidf)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// `delete --force ID`, which must succeed and leave nothing behind (assert_clean).
    pub fn delete_and_assert_clean(&self, id: &str) {
        let r = self.rsrun(&["delete", "-f", id]);
        assert_eq!(r.code, 0, "delete -f {id}: {}", r.stderr);
        self.assert_clean(id, None);
    }

    pub fn create(&self, id: &str) -> Run {
        self.rsrun(&["create", "--bundle", self.bundle.to_str().unwrap(), id])
    }

    pub fn state(&self, id: &str) -> Value {
        let r = self.rsrun(&["state", id]);
        assert_eq!(r.code, 0, "state {id}: {}", r.stderr);
        serde_json::from_str(&r.stdout).unwrap()
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }

    /// Wait until `id` exists and has status `want`.
    pub fn wait_status(&self, id: &str, want: &str) {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            let r = self.rsrun(&["state", id]);
            if r.code == 0 {
                let v: Value = serde_json::from_str(&r.stdout).unwrap();
                if v["status"] == want {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{id} never reached {want}");
    }

    /// Assert that container `id` left nothing behind: no state dir, no cgroup directory
    /// in any hierarchy, no mount of the bundle on the host, and `pid` (if any) is gone.
    pub fn assert_clean(&self, id: &str, pid: Option<i32>) {
        assert!(
            !self.root.join(id).exists(),
            "state dir of {id} left behind"
        );
        let cg = rsrun::cgroups::Cgroup::resolve(None, id).unwrap();
        for d in &cg.dirs {
            assert!(!d.path.exists(), "cgroup {} left behind", d.path.display());
        }
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mi.contains(self.bundle.to_str().unwrap()),
            "a mount of the bundle is left on the host"
        );
        if let Some(pid) = pid {
            wait_dead(pid);
        }
    }
}

/// `r` exited 0 and printed exactly `want` (its stderr shown otherwise).
pub fn assert_stdout(r: &Run, want: &str) {
    assert_eq!((r.code, r.stdout.as_str()), (0, want), "{}", r.stderr);
}

/// The whitespace-separated words of each line of `text` (a table, a uid_map, ...).
pub fn words(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .map(|l| l.split_whitespace().collect())
        .collect()
}

/// Wait until `f` holds, failing the test (naming `what`) after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Report that `test` cannot run on this host, and why. The line goes straight to stderr
/// (past the harness's capture), so every skip shows by name in the output. When
/// `RSRUN_ALLOWED_SKIPS` is set (`make test` sets it per lane: the tests that lane
/// expects to skip, comma-separated), any other skip fails the test.
pub fn skip(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
    if let Ok(allowed) = std::env::var("RSRUN_ALLOWED_SKIPS") {
        assert!(
            allowed.split(',').any(|t| t.trim() == test),
            "unexpected skip of {test} ({why}): this lane expects {allowed:?}"
        );
    }
}

/// Whether cgroups are pure v2 here: one cgroup2 hierarchy, mounted at /sys/fs/cgroup
/// (a hybrid host has its v1 controllers there).
pub fn pure_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Whether cgroups are pure v2 here; if not, `test` says it skips (`make test-v2` runs it).
pub fn pure_v2_or_skip(test: &str) -> bool {
    let v2 = pure_v2();
    if !v2 {
        skip(
            test,
            "cgroups are not pure v2 here (make test-v2 runs this)",
        );
    }
    v2
}

pub const CAP_SYS_RESOURCE: u32 = 24;

/// Whether the runtime (this test process) holds capability `cap` in its effective set.
pub fn has_cap(cap: u32) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = status.lines().find(|l| l.starts_with("CapEff:")).unwrap();
    let eff = u64::from_str_radix(eff.split_whitespace().nth(1).unwrap(), 16).unwrap();
    eff & (1 << cap) != 0
}

/// Wait (bounded) until `pid` is gone or a zombie; panic otherwise.
pub fn wait_dead(pid: i32) {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return,
            Ok(s) => {
                let state = s.rsplit(')').next().unwrap_or("").trim().chars().next();
                if matches!(state, Some('Z') | Some('X')) {
                    return;
                }
            }
        }
        assert!(Instant::now() < end, "process {pid} still alive");
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = rsrun(&[
                "--root",
                self.root.to_str().unwrap(),
                "delete",
                "--force",
                id,
            ]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Run rsrun with stdout and stderr going to files, not pipes: a created container
/// inherits them and would hold a pipe open for as long as it lives.
pub fn rsrun(args: &[&str]) -> Run {
    let mut c = Command::new(RSRUN);
    c.args(args);
    output(c)
}

pub fn output(mut c: Command) -> Run {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let base = std::env::temp_dir().join(format!("rsrun-it-out-{}-{n}", std::process::id()));
    let (o, e) = (base.with_extension("out"), base.with_extension("err"));
    let status = c
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .status()
        .unwrap();
    let r = Run {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(&o).unwrap_or_default(),
        stderr: std::fs::read_to_string(&e).unwrap_or_default(),
    };
    let _ = std::fs::remove_file(o);
    let _ = std::fs::remove_file(e);
    r
}

/// Assert a failed command printed exactly one error line that contains `needle`.
pub fn assert_one_line_error(r: &Run, needle: &str) {
    assert_ne!(r.code, 0, "expected failure, got success: {}", r.stdout);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one error line, got: {:?}",
        r.stderr
    );
    assert!(lines[0].starts_with("rsrun: "), "error line: {}", lines[0]);
    assert!(
        r.stderr.contains(needle),
        "error {:?} does not mention {needle:?}",
        r.stderr
    );
}

/// Detach every mount below `dir` (what a failed engine test may leave behind).
pub fn unmount_under(dir: &Path) {
    if let Ok(mi) = std::fs::read_to_string("/proc/self/mountinfo") {
        let mut mounts: Vec<String> = mi
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(String::from))
            .filter(|m| m.starts_with(dir.to_str().unwrap()))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Run a shell command line under script(1) (a terminal) whose program is an
/// interactive shell, and type `input` once the shell shows its prompt (`# `): never
/// before the program reads, never on a guess of how long that takes. Fails after 60 s
/// without a prompt.
pub fn run_with_tty(cmd: &str, input: &str) -> Run {
    use std::io::{Read, Write};
    let mut child = Command::new("script")
        .args(["-qec", cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match out.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(60);
    while !String::from_utf8_lossy(&seen).contains("# ") {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => seen.extend(chunk),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "no shell prompt from {cmd:?}: {:?}",
                    String::from_utf8_lossy(&seen)
                );
            }
        }
    }
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let _ = reader.join();
    seen.extend(rx.try_iter().flatten());
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&seen).into_owned(),
        stderr: err,
    }
}

/// Receive one message and the fd sent with it (SCM_RIGHTS) on a unix socket.
pub fn recv_with_fd(conn: &impl std::os::fd::AsRawFd) -> (Vec<u8>, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut buf = vec![0u8; 65536];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = nix::sys::socket::recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::empty(),
    )
    .unwrap();
    let mut fd = None;
    for c in msg.cmsgs().unwrap() {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            fd = Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[0]) });
        }
    }
    let n = msg.bytes;
    buf.truncate(n);
    (buf, fd.expect("no fd received"))
}

/// A directory on a filesystem this kernel can id-map (mount_setattr MOUNT_ATTR_IDMAP):
/// `path` itself, unless it is on a tmpfs before Linux 6.3, which id-maps tmpfs from
/// 6.3 on only (the v2 guest: /tmp is a tmpfs, the kernel 6.1); there a small ext4 image
/// is mounted on it, detached when this is dropped (drop it before the `Env`).
pub struct IdmapCapableDir {
    pub path: PathBuf,
    mounted: bool,
}

impl IdmapCapableDir {
    pub fn new(path: PathBuf) -> IdmapCapableDir {
        std::fs::create_dir_all(&path).unwrap();
        let fs = nix::sys::statfs::statfs(&path).unwrap().filesystem_type();
        if fs != nix::sys::statfs::TMPFS_MAGIC || kernel_at_least(6, 3) {
            return IdmapCapableDir {
                path,
                mounted: false,
            };
        }
        let image = path.with_extension("ext4");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(32 << 20)
            .unwrap();
        let mkfs = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(&image)
            .status()
            .unwrap();
        assert!(mkfs.success(), "mkfs.ext4 {}: {mkfs}", image.display());
        let mount = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&path)
            .status()
            .unwrap();
        assert!(
            mount.success(),
            "mount -o loop {}: {mount}",
            image.display()
        );
        IdmapCapableDir {
            path,
            mounted: true,
        }
    }
}

impl Drop for IdmapCapableDir {
    fn drop(&mut self) {
        if self.mounted {
            let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Whether the running kernel is at least `major.minor`.
pub fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let have = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    have >= (major, minor)
}

//! checkpoint/restore with CRIU: a counting container checkpointed and restored goes on
//! counting from where it stopped; `--leave-running`; a restore under a new id; tmpfs
//! files and memory survive; a container CRIU cannot dump stays running and the error
//! names CRIU's failing line and log.
//!
//! The counter writes to a bind mount of a host directory (an external mount for CRIU),
//! so the host reads the count; stdio is /dev/null (the container's own, which CRIU can
//! dump).

use crate::common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Counts in memory and appends each value, a line in one write, to /shared/count; with
/// /shared/stop present, exits 7.
///
/// Appending keeps every file the counter may hold open at the dump there at restore
/// and unchecked in size (CRIU checks the size of a file open for other than appending):
/// a temporary renamed into place is gone by the restore when the dump caught it open
/// and the original ran on (`--leave-running`).
const COUNTER: &str = "i=0; while [ ! -e /shared/stop ]; do i=$((i+1)); \
    echo $i >> /shared/count; sleep 0.05; done; exit 7";

/// Whether CRIU can run here; the host lane installs it (scripts/criu.sh).
pub fn criu_or_skip(test: &str) -> bool {
    let bin = rsrun::criu::binary();
    let ok = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip(
            test,
            &format!("{} does not run (scripts/criu.sh)", bin.display()),
        );
    }
    ok
}

/// A bundle whose process is `script`, with /shared bound from a host directory and a
/// tmpfs at /data.
fn counter_env(name: &str, script: &str) -> (Env, PathBuf) {
    let env = Env::new(name);
    let shared = env.dir.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    env.set_args(&["sh", "-c", script]);
    env.edit(|v| {
        let mounts = v["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/shared", "type": "bind",
            "source": shared.to_str().unwrap(), "options": ["rbind", "rw"]}));
        mounts.push(json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs"}));
    });
    (env, shared)
}

/// `run -d` with stdio on /dev/null (engines give pipes or /dev/null; a host file
/// cannot be dumped).
fn run_detached(env: &Env, id: &str) {
    run_detached_with(env, &[], id)
}

/// `run_detached` with global flags (`--systemd-cgroup`).
fn run_detached_with(env: &Env, global: &[&str], id: &str) {
    let mut args = global.to_vec();
    args.extend_from_slice(&["run", "-d", "--bundle", env.bundle.to_str().unwrap(), id]);
    let r = run_with_stderr_pipe(env.cmd(&args));
    assert_eq!(r.code, 0, "run -d {id}: {}", r.stderr);
}

/// Run `c` with stdout on /dev/null and stderr a pipe read only on failure: then no
/// container holds its other end (a detached container keeps what it inherits).
fn run_with_stderr_pipe(mut c: std::process::Command) -> Run {
    use std::io::Read;
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    if !status.success() {
        let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    }
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr,
    }
}

/// `checkpoint EXTRA... --image-path IMAGES ID`
fn checkpoint_args<'a>(images: &'a Path, id: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["checkpoint"];
    args.extend_from_slice(extra);
    args.extend(["--image-path", images.to_str().unwrap(), id]);
    args
}

/// A `checkpoint` that succeeds, with global flags (`--systemd-cgroup`).
fn checkpoint_ok(env: &Env, global: &[&str], images: &Path, id: &str, extra: &[&str]) {
    let mut args = global.to_vec();
    args.extend(checkpoint_args(images, id, extra));
    let r = env.rsrun(&args);
    assert_eq!(r.code, 0, "checkpoint: {}", r.stderr);
}

/// `restore -d --image-path IMAGES --bundle BUNDLE EXTRA... ID`
fn restore_args<'a>(
    env: &'a Env,
    images: &'a Path,
    id: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "restore",
        "-d",
        "--image-path",
        images.to_str().unwrap(),
        "--bundle",
        env.bundle.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push(id);
    args
}

fn restore(env: &Env, images: &Path, id: &str, extra: &[&str]) -> Run {
    restore_with(env, &[], images, id, extra)
}

/// `restore` with global flags (`--systemd-cgroup`).
fn restore_with(env: &Env, global: &[&str], images: &Path, id: &str, extra: &[&str]) -> Run {
    let mut args = global.to_vec();
    args.extend(restore_args(env, images, id, extra));
    let mut c = env.cmd(&args);
    let err = env.dir.join("restore.err");
    c.stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap());
    let status = c.status().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
    }
}

/// The last value the counter appended (0 before the first).
fn count(shared: &Path) -> u64 {
    last_count(&std::fs::read_to_string(shared.join("count")).unwrap_or_default())
}

/// The last complete line of the counter's file, as a number.
fn last_count(lines: &str) -> u64 {
    lines
        .lines()
        .rev()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

/// Wait (bounded) until the count passes `n`; returns the first value seen above it.
fn count_above(shared: &Path, n: u64) -> u64 {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let c = count(shared);
        if c > n {
            return c;
        }
        assert!(
            Instant::now() < end,
            "count stuck at {c}, waiting for > {n}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Where the counter's file ends now: `first_after` reads what is appended past it.
fn mark(shared: &Path) -> usize {
    std::fs::metadata(shared.join("count")).map_or(0, |m| m.len() as usize)
}

/// Wait (bounded) until a complete line is appended past `mark`; returns its value:
/// the first value written since, however fast the counter went on.
fn first_after(shared: &Path, mark: usize) -> u64 {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read(shared.join("count")).unwrap_or_default();
        if let Some(line) = text
            .get(mark..)
            .and_then(|t| t.split_inclusive(|b| *b == b'\n').next())
        {
            if line.ends_with(b"\n") {
                return String::from_utf8_lossy(line).trim().parse().unwrap();
            }
        }
        assert!(
            Instant::now() < end,
            "nothing appended to the count past byte {mark}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn counting_container_continues_after_restore() {
    if !criu_or_skip("checkpoint::counting_container_continues_after_restore") {
        return;
    }
    let (env, shared) = counter_env("ck-count", COUNTER);
    run_detached(&env, "ck1");
    let before_pid = env.state("ck1")["pid"].as_i64().unwrap();
    count_above(&shared, 3);
    let images = env.dir.join("images");
    let work = env.dir.join("work");
    checkpoint_ok(
        &env,
        &[],
        &images,
        "ck1",
        &["--work-path", work.to_str().unwrap()],
    );
    // Without --leave-running the container is gone, as with runc.
    assert_ne!(env.rsrun(&["state", "ck1"]).code, 0, "ck1 still exists");
    wait_dead(before_pid as i32);
    let stopped_at = count(&shared);
    let at = mark(&shared);
    assert!(
        work.join("dump.log").exists(),
        "CRIU's log is in the work path"
    );

    let r = restore(
        &env,
        &images,
        "ck1",
        &["--work-path", work.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "restore: {}", r.stderr);
    let st = env.state("ck1");
    assert_eq!(st["status"], "running");
    // The count goes on from the value in the restored memory: the first value written
    // after the restore is the one after the last written before the dump (a fresh
    // start would write 1).
    let next = first_after(&shared, at);
    assert_eq!(
        next,
        stopped_at + 1,
        "after restore the count went on from {stopped_at}"
    );
    // A normal container afterwards: exec, kill, delete.
    let r = env.rsrun(&["exec", "ck1", "cat", "/shared/count"]);
    assert_eq!(r.code, 0, "exec: {}", r.stderr);
    assert!(last_count(&r.stdout) > stopped_at);
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert_eq!(env.rsrun(&["kill", "ck1", "KILL"]).code, 0);
    wait_dead(pid);
    env.wait_status("ck1", "stopped");
    assert_eq!(env.rsrun(&["delete", "ck1"]).code, 0);
    env.assert_clean("ck1", Some(pid));
}

#[test]
fn leave_running_then_restore_under_a_new_id() {
    if !criu_or_skip("checkpoint::leave_running_then_restore_under_a_new_id") {
        return;
    }
    let (env, shared) = counter_env("ck-leave", COUNTER);
    run_detached(&env, "ck2");
    let pid = env.state("ck2")["pid"].as_i64().unwrap();
    let n = count_above(&shared, 2);
    let images = env.dir.join("images");
    checkpoint_ok(&env, &[], &images, "ck2", &["--leave-running"]);
    // At least the value the dump saw: the original resumed after it.
    let after = count(&shared);
    let st = env.state("ck2");
    assert_eq!(st["status"], "running");
    assert_eq!(st["pid"].as_i64().unwrap(), pid, "the same init runs on");
    // The original counts well past the checkpoint (20 steps, a second).
    count_above(&shared, after + 20);
    // The original goes; its image comes back under another id.
    assert_eq!(env.rsrun(&["delete", "--force", "ck2"]).code, 0);
    wait_dead(pid as i32);
    let last = count(&shared);
    let at = mark(&shared);
    let pid_file = env.dir.join("restored.pid");
    let r = restore(
        &env,
        &images,
        "ck2-copy",
        &["--pid-file", pid_file.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "restore: {}", r.stderr);
    let st = env.state("ck2-copy");
    assert_eq!(st["status"], "running");
    let restored: i64 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(st["pid"].as_i64().unwrap(), restored, "--pid-file");
    // It counts on from the checkpoint's memory, far behind what the original reached.
    let first = first_after(&shared, at);
    assert!(
        first > n && first <= after + 1,
        "the copy resumed at {first}: the checkpoint was taken after {n} and before {after}, the original reached {last}"
    );
    let list = env.rsrun(&["list", "-q"]);
    assert_eq!(list.stdout.trim(), "ck2-copy");
    assert_eq!(env.rsrun(&["delete", "--force", "ck2-copy"]).code, 0);
    env.assert_clean("ck2-copy", Some(restored as i32));
}

#[test]
fn tmpfs_files_and_memory_survive() {
    if !criu_or_skip("checkpoint::tmpfs_files_and_memory_survive") {
        return;
    }
    // A value only the memory holds (read once, from the kernel's random source), a file
    // only a tmpfs holds; both written out on request (/shared/ask).
    let script = "secret=$(cat /proc/sys/kernel/random/uuid); \
        cat /proc/sys/kernel/random/uuid > /data/file; echo $secret > /shared/secret; \
        while :; do if [ -e /shared/ask ]; then rm /shared/ask; \
        echo \"$secret $(cat /data/file)\" > /shared/answer.tmp; \
        mv /shared/answer.tmp /shared/answer; fi; sleep 0.05; done";
    let (env, shared) = counter_env("ck-tmpfs", script);
    run_detached(&env, "ck3");
    let ask = |env: &Env| -> String {
        let _ = std::fs::remove_file(shared.join("answer"));
        std::fs::write(shared.join("ask"), "").unwrap();
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(a) = std::fs::read_to_string(shared.join("answer")) {
                return a;
            }
            assert!(Instant::now() < end, "no answer: {}", env.status("ck3"));
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let before = ask(&env);
    let tmpfs_file = env.rsrun(&["exec", "ck3", "cat", "/data/file"]);
    assert_eq!(tmpfs_file.code, 0, "{}", tmpfs_file.stderr);
    let images = env.dir.join("images");
    checkpoint_ok(&env, &[], &images, "ck3", &[]);
    let r = restore(&env, &images, "ck3", &[]);
    assert_eq!(r.code, 0, "restore: {}", r.stderr);
    assert_eq!(ask(&env), before, "memory and tmpfs after restore");
    let again = env.rsrun(&["exec", "ck3", "cat", "/data/file"]);
    assert_eq!(
        again.stdout, tmpfs_file.stdout,
        "the tmpfs file after restore"
    );
    assert_eq!(env.rsrun(&["delete", "--force", "ck3"]).code, 0);
    env.assert_clean("ck3", None);
}

#[test]
fn undumpable_container_keeps_running_and_the_error_names_criu_s_line() {
    if !criu_or_skip(
        "checkpoint::undumpable_container_keeps_running_and_the_error_names_criu_s_line",
    ) {
        return;
    }
    let (env, shared) = counter_env("ck-fail", COUNTER);
    // stdout on a regular file of the host: CRIU cannot dump it.
    let out = env.dir.join("host-file.out");
    let mut c = env.cmd(&["run", "-d", "--bundle", env.bundle.to_str().unwrap(), "ck4"]);
    c.stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null());
    assert!(c.status().unwrap().success());
    let pid = env.state("ck4")["pid"].as_i64().unwrap();
    let n = count_above(&shared, 1);
    let images = env.dir.join("images");
    let r = env.rsrun(&checkpoint_args(&images, "ck4", &[]));
    assert_one_line_error(&r, "criu dump failed");
    // CRIU's failing line (it names the file) and where its log is.
    assert!(r.stderr.contains("Error ("), "{}", r.stderr);
    assert!(r.stderr.contains(out.to_str().unwrap()), "{}", r.stderr);
    let log = images.join("dump.log");
    assert!(
        r.stderr.contains(&format!("log: {}", log.display())),
        "{}",
        r.stderr
    );
    assert!(log.exists());
    // The container is as it was: running, the same init, still counting.
    let st = env.state("ck4");
    assert_eq!(st["status"], "running");
    assert_eq!(st["pid"].as_i64().unwrap(), pid);
    count_above(&shared, n + 2);
    assert_eq!(env.rsrun(&["delete", "--force", "ck4"]).code, 0);
    env.assert_clean("ck4", Some(pid as i32));
}

/// A container with a terminal (runc's own checkpoint scenario, and Docker's and
/// Podman's `-t`): checkpointed, then restored with `--console-socket`, its processes
/// are on a new pty whose master arrives on the socket, carrying their output and
/// input; the pty is the init's controlling terminal and the container's /dev/console.
#[test]
fn terminal_container_restores_onto_a_new_pty_sent_to_the_console_socket() {
    use crate::common::console::{read_until, receive_master};
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixListener;
    if !criu_or_skip(
        "checkpoint::terminal_container_restores_onto_a_new_pty_sent_to_the_console_socket",
    ) {
        return;
    }
    // A counting loop in the background, printing to the terminal; the shell waits
    // for a line on the terminal and answers it.
    let script = "(i=0; while :; do i=$((i+1)); echo $i >> /shared/count; echo tick-$i; \
        sleep 0.05; done) & read line; echo got-$line; sleep 1000";
    let (env, shared) = counter_env("ck-tty", script);
    env.edit(|v| v["process"]["terminal"] = json!(true));
    let sock = env.dir.join("console.sock");
    let l = UnixListener::bind(&sock).unwrap();
    let bundle = env.bundle.to_str().unwrap();
    let sock_arg = sock.to_str().unwrap();
    let r = env.rsrun(&[
        "run",
        "-d",
        "--console-socket",
        sock_arg,
        "-b",
        bundle,
        "ck-tty1",
    ]);
    assert_eq!(r.code, 0, "run: {}", r.stderr);
    let (_, first) = receive_master(&l);
    let mut first = std::fs::File::from(first);
    read_until(&mut first, "tick-3");
    let images = env.dir.join("images");
    let r = env.rsrun(&[
        "checkpoint",
        "--image-path",
        images.to_str().unwrap(),
        "ck-tty1",
    ]);
    assert_eq!(r.code, 0, "checkpoint: {}", r.stderr);
    let stopped_at = count(&shared);
    let at = mark(&shared);

    let r = restore(&env, &images, "ck-tty1", &["--console-socket", sock_arg]);
    assert_eq!(r.code, 0, "restore: {}", r.stderr);
    let (_, master) = receive_master(&l);
    let mut ptn: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes the pty's index into an unsigned int.
    let ret = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut ptn) };
    assert_eq!(ret, 0, "TIOCGPTN on the received master");
    let mut master = std::fs::File::from(master);
    // The count goes on from the checkpoint, and its lines come through the new pty.
    let next = first_after(&shared, at);
    assert_eq!(
        next,
        stopped_at + 1,
        "after restore the count went on from {stopped_at}"
    );
    read_until(&mut master, &format!("tick-{}", next + 1));
    // The shell blocked in read at the checkpoint reads from the new pty.
    master.write_all(b"hello\n").unwrap();
    read_until(&mut master, "got-hello");
    // The init's stdio and controlling terminal are the new pty (major 136).
    let pid = env.state("ck-tty1")["pid"].as_i64().unwrap() as i32;
    let stdin = std::fs::read_link(format!("/proc/{pid}/fd/0")).unwrap();
    assert_eq!(stdin, PathBuf::from(format!("/dev/pts/{ptn}")));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let tty_nr: u64 = after_comm.split(' ').nth(4).unwrap().parse().unwrap();
    assert_eq!(
        tty_nr,
        libc::makedev(136, ptn),
        "controlling terminal: {stat}"
    );
    // /dev/console in the container is that pty too.
    let r = env.rsrun(&["exec", "ck-tty1", "stat", "-c", "%t:%T", "/dev/console"]);
    assert_eq!(r.code, 0, "exec: {}", r.stderr);
    assert_eq!(r.stdout.trim(), format!("88:{ptn:x}"));
    assert_eq!(env.rsrun(&["delete", "--force", "ck-tty1"]).code, 0);
    env.assert_clean("ck-tty1", Some(pid));
}

/// A checkpoint of a container without a terminal cannot come back with one, nor one
/// with a terminal without a console socket: each is refused by name and leaves
/// nothing.
#[test]
fn restore_refuses_a_terminal_the_checkpoint_lacks() {
    if !criu_or_skip("checkpoint::restore_refuses_a_terminal_the_checkpoint_lacks") {
        return;
    }
    let (env, _shared, images) = counted_then_checkpointed("ck-tty-no", "ck-tty2");
    let sock = env.dir.join("console.sock");
    let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let r = restore(
        &env,
        &images,
        "ck-tty2",
        &["--console-socket", sock.to_str().unwrap()],
    );
    assert_one_line_error(&r, "--console-socket given but process.terminal is false");
    env.assert_clean("ck-tty2", None);
    env.edit(|v| v["process"]["terminal"] = json!(true));
    let r = restore(&env, &images, "ck-tty2", &[]);
    assert_one_line_error(&r, "process.terminal: a terminal needs --console-socket");
    env.assert_clean("ck-tty2", None);
    let r = restore(
        &env,
        &images,
        "ck-tty2",
        &["--console-socket", sock.to_str().unwrap()],
    );
    assert_one_line_error(&r, "was taken of a container without a terminal");
    env.assert_clean("ck-tty2", None);
}

/// runc runs prestart and createRuntime hooks on restore once CRIU has made the
/// restored namespaces and before the tree resumes: in order, with the restored init's
/// pid in the state; the tree does not count while they run. A failing hook fails the
/// restore by name and leaves nothing.
#[test]
fn prestart_and_create_runtime_hooks_run_on_restore_before_the_tree_resumes() {
    if !criu_or_skip(
        "checkpoint::prestart_and_create_runtime_hooks_run_on_restore_before_the_tree_resumes",
    ) {
        return;
    }
    let (env, shared) = counter_env("ck-hooks", COUNTER);
    let log = env.dir.join("hooks");
    std::fs::create_dir_all(&log).unwrap();
    // Each hook keeps its state document and the count before and after a pause.
    let hook = |name: &str| {
        let script = format!(
            "cat > {log}/{name}.json; a=$(tail -n1 {c}); sleep 0.3; b=$(tail -n1 {c}); \
             echo \"{name} $a $b\" >> {log}/order",
            log = log.display(),
            c = shared.join("count").display()
        );
        json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
    };
    env.edit(|v| {
        v["hooks"] =
            json!({"prestart": [hook("prestart")], "createRuntime": [hook("createRuntime")]})
    });
    run_detached(&env, "ck-hk1");
    count_above(&shared, 2);
    let images = env.dir.join("images");
    checkpoint_ok(&env, &[], &images, "ck-hk1", &[]);
    std::fs::remove_file(log.join("order")).unwrap();

    let r = restore(&env, &images, "ck-hk1", &[]);
    assert_eq!(r.code, 0, "restore: {}", r.stderr);
    let pid = env.state("ck-hk1")["pid"].as_i64().unwrap();
    let order = std::fs::read_to_string(log.join("order")).unwrap();
    let lines: Vec<Vec<&str>> = order.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(
        lines.iter().map(|l| l[0]).collect::<Vec<_>>(),
        ["prestart", "createRuntime"],
        "{order}"
    );
    for l in &lines {
        assert_eq!(l[1], l[2], "the tree counted while a hook ran: {order}");
    }
    for name in ["prestart", "createRuntime"] {
        let st: serde_json::Value =
            serde_json::from_slice(&std::fs::read(log.join(format!("{name}.json"))).unwrap())
                .unwrap();
        assert_eq!(st["id"], "ck-hk1", "{st}");
        assert_eq!(st["pid"].as_i64().unwrap(), pid, "{name}: {st}");
    }
    // Afterwards it counts on, a normal container.
    first_after(&shared, mark(&shared));
    assert_eq!(env.rsrun(&["delete", "--force", "ck-hk1"]).code, 0);
    env.assert_clean("ck-hk1", Some(pid as i32));

    // A failing createRuntime hook: the restore fails naming it, nothing is left, and
    // the tree never ran (the count stays).
    env.edit(|v| {
        v["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]})
    });
    let before = count(&shared);
    let r = restore(&env, &images, "ck-hk1", &[]);
    assert_one_line_error(&r, "createRuntime hook");
    env.assert_clean("ck-hk1", None);
    assert_eq!(count(&shared), before);
    assert!(
        std::fs::read_dir(&env.root).unwrap().next().is_none(),
        "the state directory holds something"
    );
}

/// A `restore` killed while its prestart hook runs (CRIU waiting on rsrun's answer):
/// `delete --force` removes what is left, CRIU and its action script included, and the
/// id restores again.
#[test]
fn a_restore_killed_while_a_hook_runs_leaves_what_delete_removes() {
    if !criu_or_skip("checkpoint::a_restore_killed_while_a_hook_runs_leaves_what_delete_removes") {
        return;
    }
    let (env, _, images) = counted_then_checkpointed("ck-hook-kill", "ck-hk2");
    let hook_pid = env.dir.join("hook.pid");
    let script = format!("echo $$ > {}; exec sleep 100", hook_pid.display());
    env.edit(|v| {
        v["hooks"] = json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]})
    });
    let mut c = env.cmd(&restore_args(&env, &images, "ck-hk2", &[]));
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    wait_until("the prestart hook to run", Duration::from_secs(20), || {
        std::fs::read_to_string(&hook_pid).is_ok_and(|p| p.ends_with('\n'))
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let hook: i32 = std::fs::read_to_string(&hook_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(hook), nix::sys::signal::SIGKILL);
    // CRIU runs on in the container's cgroup (it may outlive rsrun there); `delete
    // --force` ends it with the rest, and nothing of CRIU's is left: no process names
    // the action script.
    let r = env.rsrun(&["delete", "--force", "ck-hk2"]);
    assert_eq!(r.code, 0, "delete --force: {}", r.stderr);
    env.assert_clean("ck-hk2", None);
    let action = env.root.join("ck-hk2").join("criu-action.sh");
    let running = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|p| {
                let c = std::fs::read(p.path().join("cmdline")).ok()?;
                let c = String::from_utf8_lossy(&c).replace('\0', " ");
                c.contains(action.to_str().unwrap())
                    .then(|| format!("{}: {c}", p.file_name().to_string_lossy()))
            })
            .collect()
    };
    let end = Instant::now() + Duration::from_secs(20);
    while !running().is_empty() {
        assert!(Instant::now() < end, "still running: {:?}", running());
        std::thread::sleep(Duration::from_millis(10));
    }
    env.edit(|v| v["hooks"] = json!({}));
    let r = restore(&env, &images, "ck-hk2", &[]);
    assert_eq!(r.code, 0, "restore after the kill: {}", r.stderr);
    assert_eq!(env.rsrun(&["delete", "--force", "ck-hk2"]).code, 0);
    env.assert_clean("ck-hk2", None);
}

/// The counter run as `id`, counting, then checkpointed (and so gone): the bundle, the
/// shared directory and the images.
fn counted_then_checkpointed(name: &str, id: &str) -> (Env, PathBuf, PathBuf) {
    let (env, shared) = counter_env(name, COUNTER);
    run_detached(&env, id);
    count_above(&shared, 1);
    let images = env.dir.join("images");
    checkpoint_ok(&env, &[], &images, id, &[]);
    (env, shared, images)
}

#[test]
fn foreground_restore_returns_the_exit_status_and_deletes() {
    if !criu_or_skip("checkpoint::foreground_restore_returns_the_exit_status_and_deletes") {
        return;
    }
    let (env, shared, images) = counted_then_checkpointed("ck-fg", "ck5");
    let last = count(&shared);
    let mut c = env.cmd(&[
        "restore",
        "--image-path",
        images.to_str().unwrap(),
        "--bundle",
        env.bundle.to_str().unwrap(),
        "ck5",
    ]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    count_above(&shared, last);
    env.wait_status("ck5", "running");
    std::fs::write(shared.join("stop"), "").unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(7),
        "restore waits and returns the exit status"
    );
    env.assert_clean("ck5", None);
}

#[test]
fn unsupported_options_are_refused_by_name() {
    let env = Env::new("ck-refuse");
    for (args, needle) in [
        (vec!["checkpoint", "--pre-dump", "x"], "--pre-dump"),
        (
            vec!["checkpoint", "--page-server", "h:1", "x"],
            "--page-server",
        ),
        (vec!["checkpoint", "--lazy-pages", "x"], "--lazy-pages"),
        (
            vec!["checkpoint", "--manage-cgroups-mode", "bogus", "x"],
            "--manage-cgroups-mode",
        ),
        (vec!["checkpoint", "--empty-ns", "pid", "x"], "--empty-ns"),
    ] {
        let r = env.rsrun(&args);
        assert_one_line_error(&r, needle);
    }
    // A container that is not running cannot be checkpointed.
    env.set_args(&["sleep", "100"]);
    assert_eq!(env.create("ck6").code, 0);
    let r = env.rsrun(&["checkpoint", "ck6"]);
    assert_one_line_error(&r, "created");
    assert_eq!(env.rsrun(&["delete", "--force", "ck6"]).code, 0);
}

/// Counts in memory into /tmp/count of the container's own rootfs.
const ENGINE_COUNTER: &str =
    "i=0; while :; do i=$((i+1)); echo $i > /tmp/c.tmp; mv /tmp/c.tmp /tmp/count; sleep 0.05; done";

/// A directory holding `criu` → the CRIU rsrun runs, for PATH: runc (and Podman's own
/// CRIU check) look for `criu` there, and Debian 12's on PATH cannot run on this kernel.
fn criu_path_dir(dir: &Path) -> std::ffi::OsString {
    let bin = dir.join("criu-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let _ = std::fs::remove_file(bin.join("criu"));
    std::os::unix::fs::symlink(rsrun::criu::binary(), bin.join("criu")).unwrap();
    let mut path = bin.into_os_string();
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    path
}

/// Wait (bounded) for `read` to give a count (the file may not exist yet).
fn engine_count(what: &str, read: impl Fn() -> Run) -> u64 {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let r = read();
        if let Some(n) = r.stdout.trim().parse::<u64>().ok().filter(|n| *n > 0) {
            return n;
        }
        assert!(Instant::now() < end, "{what}: no count: {}", r.stderr);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One containerd checkpoint/restore cycle with runtime `bin`: run a counter, `ctr c
/// checkpoint --task`, kill and remove it, `ctr c restore --live`, and what was seen at
/// each step; an error names the step that failed.
fn ctr_checkpoint_cycle(
    ctd: &crate::common::engines::Containerd,
    name: &str,
    bin: &str,
    attempt: u32,
) -> Result<Vec<String>, String> {
    let id = format!("ckctd-{name}-{attempt}");
    let image = format!("localhost/ckctd-{name}-{attempt}:1");
    let r = ctd.ctr(&[
        "run",
        "-d",
        "--runc-binary",
        bin,
        "localhost/bb:latest",
        &id,
        "sh",
        "-c",
        ENGINE_COUNTER,
    ]);
    let cleanup = || {
        let _ = ctd.ctr(&["t", "kill", "-s", "KILL", &id]);
        let end = Instant::now() + Duration::from_secs(20);
        while ctd.ctr(&["t", "rm", &id]).code != 0 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = ctd.ctr(&["c", "rm", &id]);
    };
    let fail = |step: &str, r: &Run| {
        cleanup();
        Err(format!("{name}: {step}: {} {}", r.stdout, r.stderr))
    };
    if r.code != 0 {
        return fail("run", &r);
    }
    let exec_n = std::cell::Cell::new(0);
    let read = || {
        exec_n.set(exec_n.get() + 1);
        let e = format!("e{}", exec_n.get());
        ctd.ctr(&["t", "exec", "--exec-id", &e, &id, "cat", "/tmp/count"])
    };
    let mut out = Vec::new();
    let before = engine_count(name, read);
    let r = ctd.ctr(&["c", "checkpoint", "--task", &id, &image]);
    out.push(format!("checkpoint: {}", r.code));
    if r.code != 0 {
        return fail("checkpoint", &r);
    }
    let tasks = ctd.ctr(&["t", "ls"]).stdout;
    out.push(format!(
        "running after checkpoint: {}",
        tasks.contains("RUNNING")
    ));
    assert_eq!(ctd.ctr(&["t", "kill", "-s", "KILL", &id]).code, 0);
    let end = Instant::now() + Duration::from_secs(20);
    while ctd.ctr(&["t", "rm", &id]).code != 0 {
        assert!(Instant::now() < end, "{name}: task does not go");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ctd.ctr(&["c", "rm", &id]).code, 0);
    let r = ctd.ctr(&["c", "restore", "--live", &id, &image]);
    out.push(format!("restore: {}", r.code));
    if r.code != 0 {
        return fail("restore", &r);
    }
    let tasks = ctd.ctr(&["t", "ls"]).stdout;
    let line = tasks.lines().find(|l| l.starts_with(&id)).unwrap_or("");
    out.push(format!(
        "running after restore: {}",
        line.contains("RUNNING")
    ));
    // A fresh snapshot: the count there comes from the restored memory only.
    let after = engine_count(name, read);
    out.push(format!("count continues: {}", after > before));
    cleanup();
    Ok(out)
}

/// containerd's runc shim (`ctr c checkpoint --task`, which pauses, checkpoints with
/// --leave-running and resumes; `ctr c restore --live`, which restores with --detach
/// and -no-subreaper into a fresh snapshot): what rsrun does is what runc does.
#[test]
fn containerd_checkpoint_and_restore_match_runc() {
    if !criu_or_skip("checkpoint::containerd_checkpoint_and_restore_match_runc") {
        return;
    }
    let runc = runc_binary().expect("runc is required for differential tests");
    let dir = std::env::temp_dir().join(format!("rsrun-it-ck-ctd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = criu_path_dir(&dir);
    let ctd = crate::common::engines::Containerd::start_with_env(&dir, &[("PATH", &path)]);
    crate::common::engines::import_image(&ctd, &dir);
    // runc is the reference, not what is tested: its v1 freezer now and then fails to
    // freeze ("unable to freeze"), so runc's side gets a second attempt (under a new id).
    let runc_seen = ctr_checkpoint_cycle(&ctd, "runc", runc, 1)
        .or_else(|e| {
            eprintln!("runc's first attempt failed, trying again: {e}");
            ctr_checkpoint_cycle(&ctd, "runc", runc, 2)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let rsrun_seen =
        ctr_checkpoint_cycle(&ctd, "rsrun", RSRUN, 1).unwrap_or_else(|e| panic!("{e}"));
    let seen = [runc_seen, rsrun_seen];
    assert!(
        seen[0].iter().all(|l| !l.ends_with("false")),
        "runc: {:?}",
        seen[0]
    );
    assert_eq!(
        seen[1], seen[0],
        "containerd checkpoint/restore: rsrun vs runc"
    );
    drop(ctd);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Podman's `container checkpoint` (the runtime's `checkpoint --image-path --work-path`,
/// after probing `checkpoint --help`) and `container restore` (through conmon: `restore
/// --bundle --pid-file --detach`): what rsrun does is what runc does.
#[test]
fn podman_checkpoint_and_restore_match_runc() {
    if !criu_or_skip("checkpoint::podman_checkpoint_and_restore_match_runc") {
        return;
    }
    let runc = runc_binary().expect("runc is required for differential tests");
    let pm = crate::common::engines::Podman::new("ck-podman");
    let path_dir =
        std::env::temp_dir().join(format!("rsrun-it-ck-podman-path-{}", std::process::id()));
    let path = criu_path_dir(&path_dir);
    let podman = |args: &[&str]| {
        let mut c = pm.cmd(args);
        c.env("PATH", &path);
        output(c)
    };
    let seen: Vec<Vec<String>> = [("runc", runc), ("rsrun", RSRUN)]
        .iter()
        .map(|(name, bin)| {
            let id = format!("ckpm-{name}");
            let r = podman(&[
                "run",
                "-d",
                "--name",
                &id,
                "--network",
                "none",
                "--runtime",
                bin,
                "localhost/bb",
                "sh",
                "-c",
                ENGINE_COUNTER,
            ]);
            assert_eq!(r.code, 0, "{name}: run: {}", r.stderr);
            let read = || podman(&["exec", &id, "cat", "/tmp/count"]);
            let state = || {
                podman(&["inspect", "--format", "{{.State.Status}}", &id])
                    .stdout
                    .trim()
                    .to_string()
            };
            let mut out = Vec::new();
            let before = engine_count(name, read);
            let r = podman(&["container", "checkpoint", &id]);
            out.push(format!("checkpoint: {}", r.code));
            assert_eq!(r.code, 0, "{name}: checkpoint: {}", r.stderr);
            out.push(format!("after checkpoint: {}", state()));
            let r = podman(&["container", "restore", &id]);
            out.push(format!("restore: {}", r.code));
            assert_eq!(r.code, 0, "{name}: restore: {}", r.stderr);
            out.push(format!("after restore: {}", state()));
            // The rootfs is kept: the count goes on from the checkpoint's value, above
            // what was read before it.
            let after = engine_count(name, read);
            out.push(format!("count continues: {}", after > before));
            assert_eq!(podman(&["rm", "-f", "-t", "0", &id]).code, 0);
            out
        })
        .collect();
    assert!(
        seen[0].contains(&"after restore: running".to_string()),
        "runc: {:?}",
        seen[0]
    );
    assert_eq!(seen[1], seen[0], "podman checkpoint/restore: rsrun vs runc");
    let _ = std::fs::remove_dir_all(&path_dir);
}

/// A `restore` SIGKILLed at any moment (CRIU dies with it) leaves what `delete --force`
/// removes: the record, the cgroups, every restored process; the id is reusable.
#[test]
fn a_killed_restore_leaves_nothing_delete_cannot_remove() {
    if !criu_or_skip("checkpoint::a_killed_restore_leaves_nothing_delete_cannot_remove") {
        return;
    }
    let (env, _, images) = counted_then_checkpointed("ck-kill", "ck7");
    let args = restore_args(&env, &images, "ck7", &[]);
    let t = Instant::now();
    assert_eq!(restore(&env, &images, "ck7", &[]).code, 0);
    let took = t.elapsed();
    assert_eq!(env.rsrun(&["delete", "--force", "ck7"]).code, 0);
    env.assert_clean("ck7", None);
    // Kills spread over the whole restore, and a little past it.
    for k in 0..10u32 {
        crate::crash::kill_after(&env, &args, took * k / 8);
        let r = env.rsrun(&["delete", "--force", "ck7"]);
        assert_eq!(
            r.code, 0,
            "delete --force after a kill at {k}/8: {}",
            r.stderr
        );
        env.assert_clean("ck7", None);
    }
    let r = restore(&env, &images, "ck7", &[]);
    assert_eq!(r.code, 0, "restore after the kills: {}", r.stderr);
    assert_eq!(env.status("ck7"), "running");
    assert_eq!(env.rsrun(&["delete", "--force", "ck7"]).code, 0);
    env.assert_clean("ck7", None);
}

/// Under the systemd cgroup driver a restore goes into a new transient scope, as runc's
/// does (the checkpointed container's scope went with it): the unit is active, the
/// restored tree is in its cgroup and counts on, and `delete` stops the unit.
#[test]
fn systemd_cgroup_restore_goes_into_a_scope() {
    if !crate::systemd::systemd_booted("checkpoint::systemd_cgroup_restore_goes_into_a_scope")
        || !criu_or_skip("checkpoint::systemd_cgroup_restore_goes_into_a_scope")
    {
        return;
    }
    use crate::systemd::{assert_no_unit, cgroup_of, prop};
    let sd = ["--systemd-cgroup"];
    let (env, shared) = counter_env("ck-sd", COUNTER);
    env.edit(|v| v["linux"]["cgroupsPath"] = json!("system.slice:rsrun:ck-sd1"));
    run_detached_with(&env, &sd, "ck-sd1");
    let unit = "rsrun-ck-sd1.scope";
    assert_eq!(prop(unit, "ActiveState"), "active");
    let before = env.state("ck-sd1")["pid"].as_i64().unwrap() as i32;
    count_above(&shared, 2);
    let images = env.dir.join("images");
    checkpoint_ok(&env, &sd, &images, "ck-sd1", &[]);
    wait_dead(before);
    assert_no_unit(unit);
    let last = count(&shared);
    let at = mark(&shared);

    let r = restore_with(&env, &sd, &images, "ck-sd1", &[]);
    assert_eq!(r.code, 0, "restore: {}", r.stderr);
    // Before anything slow (systemctl): the restored tree counts on meanwhile.
    let next = first_after(&shared, at);
    assert_eq!(
        next,
        last + 1,
        "after restore the count went on from {last}"
    );
    assert_eq!(prop(unit, "ActiveState"), "active");
    let cg = prop(unit, "ControlGroup");
    assert_eq!(cg, "/system.slice/rsrun-ck-sd1.scope");
    let pid = env.state("ck-sd1")["pid"].as_i64().unwrap() as i32;
    assert_eq!(cgroup_of(pid), cg, "the restored init is in the scope");
    let r = env.rsrun(&["--systemd-cgroup", "delete", "--force", "ck-sd1"]);
    assert_eq!(r.code, 0, "delete: {}", r.stderr);
    assert_no_unit(unit);
    env.assert_clean("ck-sd1", Some(pid));
}

/// Wait (bounded) until nobody holds the lock on `dir` (a container's state directory).
fn wait_unlocked(dir: &Path) {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(dir).unwrap();
    wait_until(
        &format!("the lock on {}", dir.display()),
        Duration::from_secs(30),
        // SAFETY: flock on an fd this test holds; closing it releases the probe.
        || unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0,
    );
}

/// A `checkpoint` SIGKILLed at any moment of the dump leaves the container as it was:
/// CRIU runs on to the end of the dump, holding the container's lock, and then the
/// container runs, not frozen, its process untouched (it counts on). Without
/// `--leave-running`, a dump that completes ends the container, as asked. Either way
/// `delete --force` removes everything.
#[test]
fn a_killed_checkpoint_leaves_the_container_running() {
    if !criu_or_skip("checkpoint::a_killed_checkpoint_leaves_the_container_running") {
        return;
    }
    let (env, shared) = counter_env("ck-kill-dump", COUNTER);
    run_detached(&env, "ck8");
    let pid = env.state("ck8")["pid"].as_i64().unwrap() as i32;
    count_above(&shared, 2);
    let images = env.dir.join("images");
    let mut args = checkpoint_args(&images, "ck8", &["--leave-running"]);
    let t = Instant::now();
    let r = env.rsrun(&args);
    assert_eq!(r.code, 0, "checkpoint: {}", r.stderr);
    let took = t.elapsed();
    // Kills spread over the whole dump.
    for k in 0..10u32 {
        crate::crash::kill_after(&env, &args, took * k / 8);
        wait_unlocked(&env.root.join("ck8"));
        let st = env.state("ck8");
        assert_eq!(
            st["status"], "running",
            "after a kill at {k}/8 of the dump: {st}"
        );
        assert_eq!(st["pid"].as_i64().unwrap(), pid as i64);
        let n = count(&shared);
        count_above(&shared, n + 2);
    }
    // Without --leave-running: a dump that finished before the kill (the first one was
    // the slowest) deleted the container, as asked.
    args.retain(|a| *a != "--leave-running");
    crate::crash::kill_after(&env, &args, took / 2);
    let dir = env.root.join("ck8");
    if dir.exists() {
        wait_unlocked(&dir);
        let status = env.status("ck8");
        assert!(
            status == "running" || status == "stopped",
            "after a kill in a dump without --leave-running: {status}"
        );
        assert_eq!(env.rsrun(&["delete", "--force", "ck8"]).code, 0);
    } else {
        wait_dead(pid);
    }
    env.assert_clean("ck8", Some(pid));
}

/// CRIU restores the namespaces the images have, whatever the bundle says: a bundle
/// whose namespaces or id maps differ from the checkpoint's is refused (the tree would
/// run as host root under a record that says it is mapped), before anything exists.
#[test]
fn restore_refuses_a_bundle_with_other_namespaces_than_the_checkpoint() {
    if !criu_or_skip(
        "checkpoint::restore_refuses_a_bundle_with_other_namespaces_than_the_checkpoint",
    ) {
        return;
    }
    let (env, shared) = counter_env("ck-ns", COUNTER);
    run_detached(&env, "ck9");
    count_above(&shared, 2);
    let images = env.dir.join("images");
    checkpoint_ok(&env, &[], &images, "ck9", &["--leave-running"]);
    assert_eq!(env.rsrun(&["delete", "--force", "ck9"]).code, 0);
    let original = env.config();
    env.edit(with_userns);
    let r = restore(&env, &images, "ck9-userns", &[]);
    assert_one_line_error(&r, "linux.namespaces");
    assert!(r.stderr.contains("user"), "{}", r.stderr);
    env.assert_clean("ck9-userns", None);
    // The bundle it was taken with restores.
    env.write_config(&original);
    let r = restore(&env, &images, "ck9-same", &[]);
    assert_eq!(r.code, 0, "restore: {}", r.stderr);
    assert_eq!(env.status("ck9-same"), "running");
    env.delete_and_assert_clean("ck9-same");
}

/// Checkpoint (without --leave-running) and restore `id` under the same id, with
/// `extra` for both; returns the restored init's pid once the count goes on from
/// where it stopped.
fn cycle(env: &Env, shared: &Path, images: &Path, id: &str, extra: &[&str]) -> i32 {
    let pid = env.state(id)["pid"].as_i64().unwrap() as i32;
    count_above(shared, count(shared) + 2);
    let _ = std::fs::remove_dir_all(images);
    checkpoint_ok(env, &[], images, id, extra);
    assert_ne!(env.rsrun(&["state", id]).code, 0, "{id} still exists");
    wait_dead(pid);
    let stopped_at = count(shared);
    let at = mark(shared);
    restore_piped(env, images, id, extra);
    assert_eq!(env.status(id), "running");
    assert_eq!(
        first_after(shared, at),
        stopped_at + 1,
        "count after restore"
    );
    env.state(id)["pid"].as_i64().unwrap() as i32
}

/// A `restore` that succeeds, its stderr a pipe read only on failure: the restored
/// init's stderr (a pipe at the checkpoint) is then a pipe again, which the next
/// checkpoint can dump (a host file it cannot).
fn restore_piped(env: &Env, images: &Path, id: &str, extra: &[&str]) {
    let r = run_with_stderr_pipe(env.cmd(&restore_args(env, images, id, extra)));
    assert_eq!(r.code, 0, "restore {id}: {}", r.stderr);
}

/// The inode of a namespace file (`/proc/PID/ns/net`, a bind of one).
fn ns_inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino()
}

/// A network namespace made by `ip netns add`, removed on drop.
struct NamedNetns(String);

impl NamedNetns {
    fn add(name: &str) -> NamedNetns {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .status();
        let r = output({
            let mut c = std::process::Command::new("ip");
            c.args(["netns", "add", name]);
            c
        });
        assert_eq!(r.code, 0, "ip netns add {name}: {}", r.stderr);
        NamedNetns(name.to_string())
    }

    fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.0)
    }
}

impl Drop for NamedNetns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

/// checkpoint.bats "checkpoint and restore in external network namespace": the
/// container joins a namespace made by `ip netns add`; after each of two restores its
/// init is in that same namespace.
#[test]
fn a_network_namespace_joined_by_path_is_the_restored_one() {
    if !criu_or_skip("checkpoint::a_network_namespace_joined_by_path_is_the_restored_one") {
        return;
    }
    let netns = NamedNetns::add(&format!("rsrun-ckc-{}", std::process::id()));
    let inode = ns_inode(&netns.path());
    let (env, shared) = counter_env("ckc-netns", COUNTER);
    env.edit(|v| {
        for ns in v["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "network" {
                ns["path"] = json!(netns.path());
            }
        }
    });
    run_detached(&env, "ckc-net");
    let images = env.dir.join("images");
    for _ in 0..2 {
        let pid = cycle(&env, &shared, &images, "ckc-net", &[]);
        let now = ns_inode(Path::new(&format!("/proc/{pid}/ns/net")));
        assert_eq!(now, inode, "the restored init's network namespace");
    }
    env.delete_and_assert_clean("ckc-net");
}

/// checkpoint.bats "checkpoint and restore (cgroupns)": a container with a cgroup
/// namespace of its own (on a v1 host as on v2) is restored, twice, into a new cgroup
/// namespace rooted at its cgroup.
#[test]
fn a_container_with_a_cgroup_namespace_restores() {
    if !criu_or_skip("checkpoint::a_container_with_a_cgroup_namespace_restores") {
        return;
    }
    let (env, shared) = counter_env("ckc-cgns", COUNTER);
    env.edit(|v| {
        let nss = v["linux"]["namespaces"].as_array_mut().unwrap();
        if !nss.iter().any(|n| n["type"] == "cgroup") {
            nss.push(json!({"type": "cgroup"}));
        }
    });
    run_detached(&env, "ckc-cgns");
    let images = env.dir.join("images");
    let host = ns_inode(Path::new("/proc/self/ns/cgroup"));
    for _ in 0..2 {
        let pid = cycle(&env, &shared, &images, "ckc-cgns", &[]);
        let now = ns_inode(Path::new(&format!("/proc/{pid}/ns/cgroup")));
        assert_ne!(
            now, host,
            "the restored init has a cgroup namespace of its own"
        );
        // Inside, the container's cgroup is the namespace's root.
        let r = env.rsrun(&["exec", "ckc-cgns", "cat", "/proc/self/cgroup"]);
        assert_eq!(r.code, 0, "exec: {}", r.stderr);
        assert!(
            r.stdout.lines().all(|l| l.ends_with(":/")),
            "cgroups seen inside: {}",
            r.stdout
        );
    }
    env.delete_and_assert_clean("ckc-cgns");
}

/// Whether a cgroup directory of that path exists in any hierarchy.
fn cgroup_exists(rel: &str) -> bool {
    let root = Path::new("/sys/fs/cgroup");
    root.join(rel).exists()
        || std::fs::read_dir(root)
            .map(|d| d.flatten().any(|e| e.path().join(rel).exists()))
            .unwrap_or(false)
}

/// checkpoint.bats "checkpoint then restore into a different cgroup (via
/// --manage-cgroups-mode ignore)": the bundle's cgroupsPath changes between the
/// checkpoint and the restore; the restored init is in the new cgroup, the old one is
/// gone.
#[test]
fn ignore_mode_restores_into_the_bundle_s_new_cgroup() {
    if !criu_or_skip("checkpoint::ignore_mode_restores_into_the_bundle_s_new_cgroup") {
        return;
    }
    let (env, shared) = counter_env("ckc-cgmove", COUNTER);
    let (old, new) = ("rsrun-it-ckc-cg-old", "rsrun-it-ckc-cg-new");
    env.edit(|v| v["linux"]["cgroupsPath"] = json!(format!("/{old}")));
    run_detached(&env, "ckc-cgm");
    let pid = env.state("ckc-cgm")["pid"].as_i64().unwrap() as i32;
    assert!(cgroup_exists(old), "the container's cgroup {old}");
    count_above(&shared, 2);
    let images = env.dir.join("images");
    let ignore = ["--manage-cgroups-mode", "ignore"];
    // With --debug, as checkpoint.bats "checkpoint and restore (with --debug)".
    checkpoint_ok(&env, &["--debug"], &images, "ckc-cgm", &ignore);
    wait_dead(pid);
    assert!(!cgroup_exists(old), "{old} outlived the checkpoint");
    let stopped_at = count(&shared);
    let at = mark(&shared);
    env.edit(|v| v["linux"]["cgroupsPath"] = json!(format!("/{new}")));
    let r = restore_with(&env, &["--debug"], &images, "ckc-cgm", &ignore);
    assert_eq!(r.code, 0, "restore: {}", r.stderr);
    assert_eq!(
        first_after(&shared, at),
        stopped_at + 1,
        "count after restore"
    );
    let pid = env.state("ckc-cgm")["pid"].as_i64().unwrap();
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        cgroups.lines().any(|l| l.ends_with(&format!(":/{new}"))),
        "the restored init's cgroups: {cgroups}"
    );
    assert!(!cgroups.contains(old), "{cgroups}");
    assert!(!cgroup_exists(old), "{old} came back");
    env.delete_and_assert_clean("ckc-cgm");
    assert!(!cgroup_exists(new), "{new} outlived delete");
}

/// `rsrun ARGS` (as `env.cmd` makes it) in a mount namespace of its own where
/// `etc_criu` is bound on /etc/criu: the host's /etc/criu stays as it is for the
/// tests running alongside. stderr is a pipe read only on failure (see
/// `restore_piped`).
fn rsrun_with_etc_criu(env: &Env, etc_criu: &Path, args: &[&str]) -> Run {
    std::fs::create_dir_all("/etc/criu").unwrap();
    let inner = env.cmd(args);
    let mut c = std::process::Command::new("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("mount --bind \"$0\" /etc/criu && exec \"$@\"")
        .arg(etc_criu)
        .arg(inner.get_program())
        .args(inner.get_args());
    c.stdin(Stdio::null());
    run_with_stderr_pipe(c)
}

/// The logs CRIU wrote in `work`, by name, sorted.
fn logs_in(work: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(work)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".log"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// checkpoint.bats "checkpoint and restore with container specific CRIU config": the
/// file the `org.criu.config` annotation names is CRIU's configuration file for the
/// checkpoint and for the restore (each reads it when it runs), and what it sets wins
/// over rsrun's own options: the log-file it sets is the log CRIU writes.
#[test]
fn the_org_criu_config_annotation_names_criu_s_configuration_file() {
    if !criu_or_skip("checkpoint::the_org_criu_config_annotation_names_criu_s_configuration_file") {
        return;
    }
    let (env, shared) = counter_env("ckc-conf", COUNTER);
    let conf = env.dir.join("container-criu.conf");
    std::fs::write(&conf, "# this container's\nlog-file=conf-dump.log\n").unwrap();
    env.edit(|v| v["annotations"] = json!({"org.criu.config": conf}));
    run_detached(&env, "ckc-cf1");
    let pid = env.state("ckc-cf1")["pid"].as_i64().unwrap() as i32;
    count_above(&shared, 2);
    let (images, work) = (env.dir.join("images"), env.dir.join("work"));
    let w = ["--work-path", work.to_str().unwrap()];
    checkpoint_ok(&env, &[], &images, "ckc-cf1", &w);
    wait_dead(pid);
    assert_eq!(logs_in(&work), ["conf-dump.log"], "CRIU's log of the dump");
    let stopped_at = count(&shared);
    let at = mark(&shared);
    std::fs::write(&conf, "log-file \"conf-restore.log\" # quoted\n").unwrap();
    restore_piped(&env, &images, "ckc-cf1", &w);
    assert_eq!(
        logs_in(&work),
        ["conf-dump.log", "conf-restore.log"],
        "CRIU's log of the restore"
    );
    assert_eq!(
        first_after(&shared, at),
        stopped_at + 1,
        "count after restore"
    );
    env.delete_and_assert_clean("ckc-cf1");
}

/// Without the annotation CRIU's configuration file is /etc/criu/rsrun.conf, else
/// runc's /etc/criu/runc.conf (as crun falls back to it); the annotation set to ""
/// gives none.
#[test]
fn criu_s_configuration_file_is_etc_criu_rsrun_conf_else_runc_conf() {
    if !criu_or_skip("checkpoint::criu_s_configuration_file_is_etc_criu_rsrun_conf_else_runc_conf")
    {
        return;
    }
    let (env, shared) = counter_env("ckc-etcconf", COUNTER);
    let etc = env.dir.join("etc-criu");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("rsrun.conf"), "log-file=rsrun-dump.log\n").unwrap();
    std::fs::write(etc.join("runc.conf"), "log-file=runc-dump.log\n").unwrap();
    run_detached(&env, "ckc-cf2");
    let pid = env.state("ckc-cf2")["pid"].as_i64().unwrap() as i32;
    count_above(&shared, 2);
    let images = env.dir.join("images");
    let (w1, w2) = (env.dir.join("work1"), env.dir.join("work2"));
    let ck = checkpoint_args(&images, "ckc-cf2", &["--work-path", w1.to_str().unwrap()]);
    let r = rsrun_with_etc_criu(&env, &etc, &ck);
    assert_eq!(r.code, 0, "checkpoint: {}", r.stderr);
    wait_dead(pid);
    assert_eq!(
        logs_in(&w1),
        ["rsrun-dump.log"],
        "rsrun.conf over runc.conf"
    );

    // A restore through the test's /etc/criu: the logs CRIU wrote in `work`.
    let restore_logs = |id: &str, work: &Path| {
        let w = ["--work-path", work.to_str().unwrap()];
        let r = rsrun_with_etc_criu(&env, &etc, &restore_args(&env, &images, id, &w));
        assert_eq!(r.code, 0, "restore {id}: {}", r.stderr);
        assert_eq!(env.status(id), "running");
        logs_in(work)
    };
    std::fs::remove_file(etc.join("rsrun.conf")).unwrap();
    std::fs::write(etc.join("runc.conf"), "log-file=runc-restore.log\n").unwrap();
    assert_eq!(
        restore_logs("ckc-cf2", &w1),
        ["rsrun-dump.log", "runc-restore.log"],
        "runc.conf without rsrun.conf"
    );
    env.delete_and_assert_clean("ckc-cf2");

    // The annotation set to "": no configuration file, rsrun's own log name.
    env.edit(|v| v["annotations"] = json!({"org.criu.config": ""}));
    assert_eq!(
        restore_logs("ckc-cf2b", &w2),
        ["restore.log"],
        "no configuration file"
    );
    env.delete_and_assert_clean("ckc-cf2b");
}

/// checkpoint.bats "checkpoint and restore (bind mount, destination is symlink)": a
/// bind mount whose destination in the rootfs is a symlink (the mount lands on its
/// target) is an external mount CRIU finds on dump and on restore.
#[test]
fn a_bind_mount_on_a_symlinked_destination_restores() {
    if !criu_or_skip("checkpoint::a_bind_mount_on_a_symlinked_destination_restores") {
        return;
    }
    let (env, shared) = counter_env("ckc-symlink", COUNTER);
    let rootfs = env.bundle.join("rootfs");
    std::fs::create_dir_all(rootfs.join("real/conf")).unwrap();
    std::os::unix::fs::symlink("/real/conf", rootfs.join("conf")).unwrap();
    let src = env.dir.join("conf-src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("marker"), "bound\n").unwrap();
    env.edit(|v| {
        v["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/conf",
            "type": "bind", "source": src, "options": ["rbind", "ro"]}));
    });
    run_detached(&env, "ckc-sym");
    let images = env.dir.join("images");
    cycle(&env, &shared, &images, "ckc-sym", &[]);
    let r = env.rsrun(&["exec", "ckc-sym", "cat", "/real/conf/marker"]);
    assert_eq!(r.code, 0, "exec: {}", r.stderr);
    assert_eq!(r.stdout, "bound\n");
    env.delete_and_assert_clean("ckc-sym");
}

/// crun's test_cr_with_ext_ns: the container joins the test's own (the host's) pid,
/// network, ipc and uts namespaces by path and is restored into them.
#[test]
fn a_container_in_the_host_s_namespaces_joined_by_path_restores() {
    if !criu_or_skip("checkpoint::a_container_in_the_host_s_namespaces_joined_by_path_restores") {
        return;
    }
    let (env, shared) = counter_env("ckc-hostns", COUNTER);
    let me = std::process::id();
    env.edit(|v| {
        for ns in v["linux"]["namespaces"].as_array_mut().unwrap() {
            let name = match ns["type"].as_str().unwrap() {
                "pid" => "pid",
                "network" => "net",
                "ipc" => "ipc",
                "uts" => "uts",
                _ => continue,
            };
            ns["path"] = json!(format!("/proc/{me}/ns/{name}"));
        }
    });
    run_detached(&env, "ckc-hns");
    count_above(&shared, 2);
    let images = env.dir.join("images");
    checkpoint_ok(&env, &[], &images, "ckc-hns", &[]);
    // In the host's pid namespace CRIU restores the tree under its own pids: each must
    // be free, its zombie reaped, first.
    let log = std::fs::read_to_string(images.join("dump.log")).unwrap();
    let dumped: Vec<i32> = log
        .split("Dumping task (pid: ")
        .skip(1)
        .map(|t| t.split(|c: char| !c.is_ascii_digit()).next().unwrap())
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(!dumped.is_empty(), "no task named in {}", images.display());
    for p in &dumped {
        wait_until("a dumped pid to be free", Duration::from_secs(10), || {
            !Path::new(&format!("/proc/{p}")).exists()
        });
    }
    let stopped_at = count(&shared);
    let at = mark(&shared);
    restore_piped(&env, &images, "ckc-hns", &[]);
    assert_eq!(
        first_after(&shared, at),
        stopped_at + 1,
        "count after restore"
    );
    let pid = env.state("ckc-hns")["pid"].as_i64().unwrap();
    assert_eq!(pid, i64::from(dumped[0]), "the init's own pid, restored");
    for name in ["pid", "net", "ipc", "uts"] {
        let theirs = ns_inode(Path::new(&format!("/proc/{pid}/ns/{name}")));
        let ours = ns_inode(Path::new(&format!("/proc/self/ns/{name}")));
        assert_eq!(theirs, ours, "the restored init's {name} namespace");
    }
    env.delete_and_assert_clean("ckc-hns");
}

/// A CRIU configuration file that is no regular file (a FIFO would hang rsrun and CRIU
/// reading it) is refused by name, before anything happens: the checkpoint leaves the
/// container running, the restore leaves nothing.
#[test]
fn a_criu_configuration_file_that_is_a_fifo_is_refused() {
    if !criu_or_skip("checkpoint::a_criu_configuration_file_that_is_a_fifo_is_refused") {
        return;
    }
    let (env, shared) = counter_env("ckc-conffifo", COUNTER);
    let fifo = env.dir.join("criu.conf");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let images = env.dir.join("images");
    // A checkpoint of a container without the annotation, for the restore below.
    run_detached(&env, "ckc-cf4");
    count_above(&shared, 1);
    checkpoint_ok(&env, &[], &images, "ckc-cf4", &["--leave-running"]);
    env.delete_and_assert_clean("ckc-cf4");

    env.edit(|v| v["annotations"] = json!({"org.criu.config": fifo}));
    run_detached(&env, "ckc-cf3");
    let other = env.dir.join("images-cf3");
    let r = env.rsrun(&checkpoint_args(&other, "ckc-cf3", &[]));
    assert_one_line_error(&r, "org.criu.config");
    assert!(r.stderr.contains("FIFO"), "{}", r.stderr);
    assert!(
        !other.exists(),
        "the refused checkpoint wrote {}",
        other.display()
    );
    assert_eq!(env.status("ckc-cf3"), "running");
    env.delete_and_assert_clean("ckc-cf3");

    let r = restore(&env, &images, "ckc-cf4b", &[]);
    assert_one_line_error(&r, "org.criu.config");
    assert!(r.stderr.contains("FIFO"), "{}", r.stderr);
    env.assert_clean("ckc-cf4b", None);
}

//! Terminals: the pty master arrives on a console socket the test listens on and
//! carries input and output; /dev/console is the pty; consoleSize is applied.

use crate::common::console::{read_until, receive_master};
use crate::common::*;
use serde_json::json;
use std::io::Write;
use std::os::unix::net::UnixListener;

#[test]
fn console_socket_carries_the_pty() {
    let env = Env::new("tty-create");
    env.edit(|v| {
        v["process"]["terminal"] = json!(true);
        v["process"]["consoleSize"] = json!({"height": 33, "width": 101});
        v["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        v["process"]["args"] = json!([
            "sh",
            "-c",
            "tty; stat -c %t:%T /dev/console; stat -c owner=%u $(tty); stty size; read x; echo got-$x"
        ]);
    });
    let sock = env.dir.join("console.sock");
    let l = UnixListener::bind(&sock).unwrap();
    let envroot = env.root.clone();
    let bundle = env.bundle.clone();
    let sockc = sock.clone();
    let t = std::thread::spawn(move || {
        rsrun(&[
            "--root",
            envroot.to_str().unwrap(),
            "create",
            "--bundle",
            bundle.to_str().unwrap(),
            "--console-socket",
            sockc.to_str().unwrap(),
            "tc1",
        ])
    });
    let (name, master) = receive_master(&l);
    assert_eq!(name, "/dev/ptmx");
    let r = t.join().unwrap();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(env.rsrun(&["start", "tc1"]).code, 0);
    let mut m = std::fs::File::from(master);
    let out = read_until(&mut m, "101");
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(
        out.contains("88:0"),
        "/dev/console is not the pty (136:0 = 88:0 hex): {out}"
    );
    assert!(out.contains("33 101"), "{out}");
    // The console belongs to the process's user (runc chowns it).
    assert!(out.contains("owner=1000"), "{out}");
    m.write_all(b"hello\n").unwrap();
    let out = read_until(&mut m, "got-hello");
    assert!(out.contains("got-hello"));
    env.wait_status("tc1", "stopped");
    assert_eq!(env.rsrun(&["delete", "tc1"]).code, 0);
    env.assert_clean("tc1", None);
}

#[test]
fn exec_tty_on_console_socket() {
    let env = Env::new("tty-exec");
    env.set_args(&["sleep", "1000"]);
    env.run_detached("te1");
    let sock = env.dir.join("console.sock");
    let l = UnixListener::bind(&sock).unwrap();
    let root = env.root.clone();
    let sockc = sock.clone();
    let t = std::thread::spawn(move || {
        rsrun(&[
            "--root",
            root.to_str().unwrap(),
            "exec",
            "-t",
            "-d",
            "--user",
            "1000:1000",
            "--console-socket",
            sockc.to_str().unwrap(),
            "te1",
            "sh",
            "-c",
            "tty; stat -c owner=%u $(tty); read x; echo exec-$x",
        ])
    });
    let (_, master) = receive_master(&l);
    let r = t.join().unwrap();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut m = std::fs::File::from(master);
    let out = read_until(&mut m, "owner=1000");
    assert!(out.contains("/dev/pts/"), "{out}");
    m.write_all(b"ok\n").unwrap();
    read_until(&mut m, "exec-ok");
    env.delete_and_assert_clean("te1");
}

/// tty.bats "runc exec [tty owner] ({u,g}id != 0)", "runc exec [tty consolesize]",
/// "runc exec --console-socket [relative path]": a `--process` with a terminal and a
/// consoleSize, a console socket named relative to the caller's working directory; the
/// pty belongs to the process's user and to the tty group (5), and has the size given.
#[test]
fn exec_tty_owner_size_and_a_relative_socket() {
    let env = Env::new("tty-exec-size");
    env.set_args(&["sleep", "1000"]);
    env.run_detached("tes1");
    let l = UnixListener::bind(env.dir.join("console.sock")).unwrap();
    let process = env.dir.join("process.json");
    std::fs::write(
        &process,
        json!({
            "terminal": true,
            "consoleSize": {"height": 17, "width": 43},
            "user": {"uid": 1000, "gid": 1000},
            "cwd": "/",
            "args": ["sh", "-c", "stat -c owner=%u:%g $(tty); stty size; read x; echo exec-$x"]
        })
        .to_string(),
    )
    .unwrap();
    let mut c = env.cmd(&[
        "exec",
        "-d",
        "--process",
        process.to_str().unwrap(),
        "--console-socket",
        "console.sock",
        "tes1",
    ]);
    c.current_dir(&env.dir);
    let t = std::thread::spawn(move || output(c));
    let (_, master) = receive_master(&l);
    let r = t.join().unwrap();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut m = std::fs::File::from(master);
    let out = read_until(&mut m, "17 43");
    assert!(out.contains("owner=1000:5"), "{out}");
    m.write_all(b"ok\n").unwrap();
    read_until(&mut m, "exec-ok");
    env.delete_and_assert_clean("tes1");
}

/// tty.bats "runc run [stdin not a tty]", "runc run [tty ptsname]": `run` in the
/// foreground with a terminal and stdin that is not a tty (no controlling terminal
/// either) succeeds, and the process's stdio are all the pty.
#[test]
fn run_with_a_terminal_and_stdin_not_a_tty() {
    let env = Env::new("tty-notty");
    env.edit(|v| v["process"]["terminal"] = json!(true));
    let r = env.run(
        "tnt1",
        &[
            "sh",
            "-c",
            "for f in /proc/self/fd/0 /proc/self/fd/1 /proc/self/fd/2; do readlink $f; done",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().map(str::trim_end).collect();
    assert_eq!(lines.len(), 3, "{:?}", r.stdout);
    assert!(
        lines.iter().all(|l| l.starts_with("/dev/pts/")),
        "{lines:?}"
    );
    env.assert_clean("tnt1", None);
}

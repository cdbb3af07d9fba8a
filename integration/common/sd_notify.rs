//! sd_notify fixtures: a host-side notify socket (what systemd or Podman listens on) and
//! a static `sd-notify MSG` tool for the busybox rootfs (busybox has no unix datagram
//! client), built once per test run with the host's C compiler.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The host's notify socket: a bound datagram socket whose path goes in NOTIFY_SOCKET,
/// read all the time by a thread, as a service manager does (a relay waits for its
/// BARRIER=1 to be taken).
pub struct HostSocket {
    pub path: PathBuf,
    messages: Receiver<String>,
    stop: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl HostSocket {
    pub fn bind(path: &Path) -> HostSocket {
        let _ = std::fs::remove_file(path);
        let sock = UnixDatagram::bind(path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let (tx, messages) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stopped.load(Ordering::SeqCst) {
                // fds sent with a message (BARRIER=1's pipe) are closed by the kernel:
                // that answers the barrier.
                if let Ok(n) = sock.recv(&mut buf) {
                    let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
            }
        });
        HostSocket {
            path: path.to_path_buf(),
            messages,
            stop,
            reader: Some(reader),
        }
    }

    /// The next message, waiting up to `limit`; None when none came.
    pub fn recv(&self, limit: Duration) -> Option<String> {
        self.messages.recv_timeout(limit).ok()
    }

    /// Every message received so far and not yet taken.
    pub fn drain(&self) -> Vec<String> {
        self.messages.try_iter().collect()
    }
}

impl Drop for HostSocket {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Put `/bin/sd-notify` in `rootfs`: `sd-notify MSG` sends MSG as one datagram to
/// $NOTIFY_SOCKET, as sd_notify(3) does.
pub fn install_tool(rootfs: &Path) {
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy(tool(), rootfs.join("bin/sd-notify")).unwrap();
}

fn tool() -> &'static Path {
    static TOOL: OnceLock<PathBuf> = OnceLock::new();
    TOOL.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rsrun-it-sdnotify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("sd-notify.c");
        std::fs::write(
            &src,
            r#"#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
int main(int argc, char **argv) {
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (!path || argc != 2 || strlen(path) >= sizeof a.sun_path) {
        fprintf(stderr, "sd-notify: NOTIFY_SOCKET unset or too long, or no message\n");
        return 2;
    }
    strcpy(a.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || sendto(fd, argv[1], strlen(argv[1]), 0, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("sd-notify");
        return 1;
    }
    return 0;
}
"#,
        )
        .unwrap();
        let out = dir.join("sd-notify");
        let mut c = std::process::Command::new("cc");
        c.args(["-static", "-O1", "-o"]).arg(&out).arg(&src);
        let r = super::output(c);
        assert_eq!(r.code, 0, "cc sd-notify: {}", r.stderr);
        out
    })
}

//! Commands with a deadline: a runtime command that hangs fails its test (killed past the
//! deadline, its stderr so far in the message) instead of wedging the suite.

use super::{Env, Run};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Long enough for a slow (emulated) guest, short enough for a hang to fail the test.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A command running in the background with its output in files (a created container
/// inherits them; a pipe would be held open).
pub struct Bg {
    child: Child,
    what: String,
    out: std::path::PathBuf,
    err: std::path::PathBuf,
}

impl Bg {
    pub fn spawn(mut c: Command, what: &str, dir: &std::path::Path) -> Bg {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let out = dir.join(format!("bg-{n}.out"));
        let err = dir.join(format!("bg-{n}.err"));
        let child = c
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        Bg {
            child,
            what: what.to_string(),
            out,
            err,
        }
    }

    /// Wait for the command to end; past `limit` kill it and fail the test.
    pub fn finish(mut self, limit: Duration) -> Run {
        let end = Instant::now() + limit;
        let mut delay = Duration::from_millis(1);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Run {
                    code: st.code().unwrap_or(-1),
                    stdout: std::fs::read_to_string(&self.out).unwrap_or_default(),
                    stderr: std::fs::read_to_string(&self.err).unwrap_or_default(),
                };
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "`{}` hung: killed after {limit:?} (stderr so far: {:?})",
                    self.what,
                    std::fs::read_to_string(&self.err).unwrap_or_default()
                );
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn still_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `rsrun --root <root> ARGS` with a deadline.
pub fn rsrun_within(env: &Env, args: &[&str], limit: Duration) -> Run {
    Bg::spawn(env.cmd(args), &args.join(" "), &env.dir).finish(limit)
}

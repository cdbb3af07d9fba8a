//! prestart and createRuntime hooks on `restore`, run where runc runs them: once CRIU
//! has made the restored tree's namespaces and before the tree resumes (CRIU's
//! `setup-namespaces` action), with the restored init's pid in the state they read.
//!
//! CRIU's command line has no callback between its steps, only action scripts. The
//! script rsrun gives it (in the container's state directory) passes the restored
//! init's pid to rsrun through one fifo and waits for rsrun's answer on another; a
//! failed hook answers `fail`, the script exits non-zero and CRIU undoes the restore.
//! rsrun holds the answer fifo open from before CRIU starts, so the script never waits
//! for a writer while rsrun lives. If rsrun dies, CRIU may outlive it (its parent-death
//! signal does not always survive CRIU's start-up): CRIU and the script are in the
//! container's cgroup, under a record marked `creating`, and `delete --force` ends them
//! (checkpoint::a_restore_killed_while_a_hook_runs_leaves_what_delete_removes).

use crate::error::{Error, Result};
use crate::sys::fs as sfs;
use nix::fcntl::OFlag;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

const SCRIPT: &str = "criu-action.sh";
const PID_FIFO: &str = "criu-init-pid";
const ANSWER_FIFO: &str = "criu-answer";

/// The two fifos and the script, made in the container's state directory.
pub struct HookGate {
    script: PathBuf,
    fifos: [PathBuf; 2],
    pid: OwnedFd,
    answer: OwnedFd,
}

impl HookGate {
    pub fn new(dir: &Path) -> Result<HookGate> {
        let pid_path = dir.join(PID_FIFO);
        let answer_path = dir.join(ANSWER_FIFO);
        for f in [&pid_path, &answer_path] {
            sfs::mkfifo(f, 0o600)?;
        }
        let script = dir.join(SCRIPT);
        let text = format!(
            "#!/bin/sh\n\
             # rsrun restore: hand CRIU's restored init to rsrun for the prestart and\n\
             # createRuntime hooks, and go on only when they succeeded.\n\
             [ \"$CRTOOLS_SCRIPT_ACTION\" = setup-namespaces ] || exit 0\n\
             echo \"$CRTOOLS_INIT_PID\" > {} || exit 1\n\
             read answer < {} || exit 1\n\
             [ \"$answer\" = go ]\n",
            sh_quote(&pid_path),
            sh_quote(&answer_path)
        );
        crate::state::atomic_write(&script, text.as_bytes(), 0o700)?;
        // Neither open waits: a reader that does not block, and the answer fifo held
        // for reading and writing (the script's open for reading finds a writer).
        let pid = sfs::open(&pid_path, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
        let answer = sfs::open(&answer_path, OFlag::O_RDWR)?;
        Ok(HookGate {
            script,
            fifos: [pid_path, answer_path],
            pid,
            answer,
        })
    }

    /// CRIU's arguments for the script.
    pub fn criu_args(&self) -> [std::ffi::OsString; 2] {
        ["--action-script".into(), self.script.clone().into()]
    }

    /// Wait until CRIU hands over the restored init's pid, or exits; with the pid, run
    /// `hooks` and answer. Returns the hooks' result (Ok when CRIU exited first: its
    /// own failure is then what the caller reports). Every error has answered `fail`,
    /// so CRIU ends and can be waited for.
    pub fn serve(&self, criu: u32, hooks: impl FnOnce(i32) -> Result<()>) -> Result<()> {
        let r = self.wait_and_run(criu, hooks);
        let word: &[u8] = if r.is_ok() { b"go\n" } else { b"fail\n" };
        let answered = sfs::write_fd(&self.answer, word, &self.fifos[1]);
        r.and(answered)
    }

    fn wait_and_run(&self, criu: u32, hooks: impl FnOnce(i32) -> Result<()>) -> Result<()> {
        let criu_pid = i32::try_from(criu).map_err(|_| Error::container("criu: bad pid"))?;
        let exited = crate::sys::proc::pidfd_open(criu_pid)?;
        let mut line = Vec::new();
        loop {
            let [script, criu_exited] =
                crate::sys::poll::wait_any([self.pid.as_fd(), exited.as_fd()], &self.fifos[0])?;
            if script {
                let mut buf = [0u8; 32];
                match sfs::read_fd(&self.pid, &mut buf, &self.fifos[0]) {
                    Ok(n) => line.extend_from_slice(&buf[..n]),
                    Err(e) if e.errno() == Some(nix::errno::Errno::EAGAIN) => {}
                    Err(e) => return Err(e),
                }
                if line.ends_with(b"\n") {
                    break;
                }
                if line.len() > 24 {
                    return Err(Error::container("CRIU's action script sent no pid"));
                }
            } else if criu_exited {
                return Ok(());
            }
        }
        let text = String::from_utf8_lossy(&line);
        let Some(pid) = text.trim().parse::<i32>().ok().filter(|p| *p > 0) else {
            return Err(Error::container(format!(
                "CRIU's action script sent {:?} for the restored init's pid",
                text.trim()
            )));
        };
        hooks(pid)
    }

    /// Remove the script and the fifos (after CRIU is done).
    pub fn remove(self) {
        let _ = sfs::remove_file(&self.script);
        for f in &self.fifos {
            let _ = sfs::remove_file(f);
        }
    }
}

/// `p` quoted for sh: in single quotes, each `'` as `'\''`.
fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_are_quoted_for_sh() {
        use std::path::Path;
        assert_eq!(super::sh_quote(Path::new("/run/a b")), "'/run/a b'");
        assert_eq!(super::sh_quote(Path::new("/r/it's")), "'/r/it'\\''s'");
    }
}

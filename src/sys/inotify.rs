//! Watching a file for writes (inotify).

use crate::error::{Result, SysContext};
use std::os::fd::AsFd;
use std::path::Path;

/// A watch for writes to one file (inotify IN_MODIFY): how a kernel file that changes
/// by itself, such as cgroup2's `cgroup.events`, is waited on without polling.
pub struct ModifyWatch(nix::sys::inotify::Inotify);

impl ModifyWatch {
    pub fn new(path: &Path) -> Result<ModifyWatch> {
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        let i = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .op("inotify_init", path)?;
        i.add_watch(path, AddWatchFlags::IN_MODIFY)
            .op("inotify_add_watch", path)?;
        Ok(ModifyWatch(i))
    }

    /// Wait until the file is written or `timeout` passes; true if it was written.
    pub fn wait(&self, timeout: std::time::Duration) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let ms = PollTimeout::try_from(timeout.as_millis().min(60_000) as i32)
            .unwrap_or(PollTimeout::ZERO);
        let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
        let ready = matches!(poll(&mut fds, ms), Ok(n) if n > 0);
        if ready {
            // Drain, so the next wait sees only later writes.
            let _ = self.0.read_events();
        }
        ready
    }
}

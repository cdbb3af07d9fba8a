//! `rsrun exec`: flags → ExecOpts; in the foreground, wait for the process (proxying its
//! terminal when there is no console socket) and return its exit status.

use super::{foreground, ExecArgs};
use crate::container::{ExecOpts, Runtime};
use crate::error::Result;

pub fn exec(rt: &Runtime, a: ExecArgs) -> Result<i32> {
    let mut o = ExecOpts {
        process: a.process,
        args: a.args,
        tty: a.tty,
        cwd: a.cwd,
        env: a.env,
        user: a.user,
        additional_gids: a.additional_gids,
        caps: a.cap,
        no_new_privs: a.no_new_privs,
        apparmor: a.apparmor,
        process_label: a.process_label,
        detach: a.detach,
        pid_file: a.handoff.pid_file,
        console_socket: a.handoff.console_socket,
        console_fd: None,
        pidfd_socket: a.handoff.pidfd_socket,
        exec_wait_fifo: a.exec_wait_fifo,
        preserve_fds: a.handoff.preserve_fds,
        ignore_paused: a.ignore_paused,
        cgroup: a.cgroup,
    };
    let target = rt.exec_process(&a.id, &o)?;
    if o.detach {
        return rt.exec(&a.id, &o, target).map(|_| 0);
    }
    let terminal = target.process.terminal().unwrap_or(false);
    let proxy = if terminal && o.console_socket.is_none() {
        let (ours, theirs) = crate::sys::socket::stream_pair()?;
        o.console_fd = Some(theirs);
        Some(ours)
    } else {
        None
    };
    // Blocked before the process can exit; it restores an empty mask before execve.
    let old = foreground::block_signals()?;
    let r = (|| {
        let pid = rt.exec(&a.id, &o, target)?;
        drop(o.console_fd.take());
        let master = match &proxy {
            Some(sock) => Some(crate::process::tty::recv_master(sock)?),
            None => None,
        };
        foreground::wait(pid, master)
    })();
    old.restore();
    r
}

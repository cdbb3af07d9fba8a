//! The last steps of every container process before execve, the init's and `exec`'s
//! alike: process resources, then identity and capabilities in the one order that keeps
//! them as specified, then cwd, the executable, no_new_privs, umask, fds and signals;
//! then, as late as possible, the seccomp filter, after which rsrun makes no syscall
//! but the ones it cannot avoid (execve; the startContainer hooks, which run under the
//! filter as the process does; a capset when loading needed CAP_SYS_ADMIN; one write
//! naming a notify listener's fd).

use super::channel::{Channel, Msg};
use crate::error::{Error, Result};
use crate::plan::ProcessPlan;
use crate::sys::{self, proc};
use nix::errno::Errno;
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What execve needs once the process is ready.
pub struct Prepared {
    pub exe: CString,
    pub env: Vec<CString>,
    /// The seccomp notify listener, kept open (CLOEXEC) until execve: the parent takes
    /// its own copy with pidfd_getfd, and closing it would be a syscall the filter may
    /// hold.
    pub listener: Option<std::os::fd::OwnedFd>,
    /// The filter is loaded (and the capabilities are final).
    confined: bool,
}

const CAP_SYS_ADMIN: u64 = 1 << 21;

/// Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: when the process's own
/// capabilities lack it, it is kept (effective and permitted) until the filter is in,
/// and dropped by one capset right after.
fn admin_kept_for_filter(p: &ProcessPlan) -> bool {
    let caps = p.caps.unwrap_or_default();
    p.seccomp.is_some() && !p.no_new_privs && caps.effective & caps.permitted & CAP_SYS_ADMIN == 0
}

/// HOME (looked up first, as root: runc's order) → initial affinity → rlimits → bounding set → stdio to the
/// user → groups/gid/uid (keepcaps) → E/P/I + ambient → cwd → executable →
/// no_new_privs → umask → fds above stdio and --preserve-fds CLOEXEC → final affinity,
/// personality, memory policy → signals. A filter with a notify listener is loaded now
/// (`confine`): its fd must reach the runtime before `create` returns; any other waits
/// for `confine`.
pub fn prepare(p: &ProcessPlan, in_user_ns: bool, chan: &Channel) -> Result<Prepared> {
    let mut env = p.env.clone();
    if !p.has_home {
        env.retain(|e| e.as_bytes() != b"HOME=");
        env.push(CString::new(format!("HOME={}", home_of(p.uid)?)).unwrap_or_default());
    }
    // Not the runtime's affinity (`taskset -c 0 rsrun run`): execCPUAffinity.initial, or
    // every CPU the process's cgroup allows, as current runc does.
    match &p.attrs.affinity_initial {
        Some(c) => sys::sched::set_affinity("process.execCPUAffinity.initial", c)?,
        None => sys::sched::reset_affinity()?,
    }
    if let Some(adj) = p.oom_score_adj {
        // Through a private procfs: the container's /proc may have anything mounted on it.
        sys::procfs::ProcFs::private()?.write_self("oom_score_adj", adj.to_string().as_bytes())?;
    }
    for r in &p.rlimits {
        sys::privilege::setrlimit(&r.name, r.resource, r.soft, r.hard)?;
    }
    // The bounding set needs CAP_SETPCAP, so it goes before the uid change; keepcaps
    // keeps the permitted set across setresuid so E/P/I can be set exactly afterwards.
    super::attrs::apply_privileged(&p.attrs)?;
    let caps = p.caps.unwrap_or_default();
    super::caps::apply_bounding(&caps, p.last_cap)?;
    sys::privilege::set_keepcaps(true)?;
    // The working directory is entered as root first (runc's order): the user may not be
    // allowed to reach it (`/root`, 0700), though it may then use it. Where root cannot
    // (a root-squashed mount), it is tried again as the user.
    let cwd_entered = sys::fs::chdir(&p.cwd).is_ok();
    sys::fs::give_stdio_to(p.uid)?;
    if in_user_ns && p.additional_gids.is_empty() {
        // setgroups may be denied in a user namespace; there is nothing to set.
        let _ = proc::setgroups(&[]);
    } else {
        proc::setgroups(&p.additional_gids)?;
    }
    proc::setresgid(p.gid)?;
    proc::setresuid(p.uid)?;
    sys::privilege::set_keepcaps(false)?;
    let mut now = caps;
    if admin_kept_for_filter(p) {
        now.effective |= CAP_SYS_ADMIN;
        now.permitted |= CAP_SYS_ADMIN;
    }
    super::caps::apply_sets(&now, p.last_cap)?;

    // The working directory, inside the container's root (CVE-2024-21626).
    if !cwd_entered {
        sys::fs::chdir(&p.cwd)?;
    }
    check_cwd_inside_root(&p.cwd)?;
    let exe = find_executable(&p.args[0], &p.path_env)?;
    if p.no_new_privs {
        sys::privilege::set_no_new_privs()?;
    }
    // Not the caller's: 0022 unless the spec says otherwise (runc, crun).
    proc::umask(p.umask.unwrap_or(0o022));
    // Nothing of rsrun's survives execve but stdio and --preserve-fds.
    sys::execve::cloexec_from(p.preserve_fds.saturating_add(3))?;
    super::attrs::apply_last(&p.attrs)?;
    // The user process starts with no blocked or ignored signals, whatever rsrun or its
    // caller had blocked or ignored.
    sys::signals::reset_signal_dispositions();
    sys::signals::unblock_all();
    let mut ready = Prepared {
        exe,
        env,
        listener: None,
        confined: false,
    };
    if p.seccomp.as_ref().is_some_and(|f| f.listener.is_some()) {
        confine(p, &mut ready, Some(chan))?;
    }
    Ok(ready)
}

/// Load the container's seccomp filter (once), then drop the CAP_SYS_ADMIN kept for
/// loading it. From here on the process is confined as the container's process is. A
/// notify filter's listener is named to the parent at once with a single write (see
/// `Channel::send_by_write`), before any other syscall the filter could hold.
pub fn confine(p: &ProcessPlan, e: &mut Prepared, chan: Option<&Channel>) -> Result<()> {
    if e.confined {
        return Ok(());
    }
    e.confined = true;
    let Some(f) = &p.seccomp else {
        return Ok(());
    };
    e.listener = sys::privilege::seccomp_load(&f.bpf, f.flags)?;
    if let (Some(l), Some(chan)) = (&e.listener, chan) {
        use std::os::fd::AsRawFd;
        chan.send_by_write(&Msg::SeccompListener { fd: l.as_raw_fd() })?;
    }
    if admin_kept_for_filter(p) {
        let caps = p.caps.unwrap_or_default();
        sys::privilege::capset(caps.effective, caps.permitted, caps.inheritable)?;
    }
    Ok(())
}

/// The filter (unless already in), then execve. Returns only when the filter could not
/// be loaded. A failing execve is the process's own failure, as with runc: the process
/// says `exec PATH: why` on its stderr and exits 1 (engines show it as the container's
/// output and exit status; `start` and `exec --detach` have already succeeded).
pub fn execve(p: &ProcessPlan, e: &mut Prepared) -> Error {
    if let Err(err) = confine(p, e, None) {
        return err;
    }
    let errno = sys::execve::execve(&e.exe, &p.args, &e.env);
    let line = format!("exec {}: {}\n", e.exe.to_string_lossy(), errno_text(errno));
    let _ = sys::fs::write_fd(&std::io::stderr(), line.as_bytes(), Path::new("stderr"));
    sys::clone::exit_now(1)
}

/// An errno as Go (runc) prints it, which is what engines match (Docker maps
/// "no such file or directory" to 127, "permission denied" to 126): strerror's text
/// starting in lower case.
pub fn errno_text(errno: nix::errno::Errno) -> String {
    let d = errno.desc();
    let mut c = d.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => d.to_string(),
    }
}

/// After chdir, the kernel must see the cwd inside our root: a leaked host fd in the
/// cwd path shows up as "(unreachable)" (CVE-2024-21626).
fn check_cwd_inside_root(cwd: &Path) -> Result<()> {
    let now = sys::fs::getcwd(cwd)?;
    if !now.is_absolute() || now.as_os_str().as_bytes().starts_with(b"(unreachable)") {
        return Err(Error::container(format!(
            "process.cwd {}: resolves outside the container's root",
            cwd.display()
        )));
    }
    Ok(())
}

/// The most of the container's /etc/passwd rsrun reads.
const MAX_PASSWD_BYTES: u64 = 4 << 20;

/// HOME for a uid from the container's /etc/passwd, `/` when the file is absent or
/// unreadable or has no entry (runc's rule). The image controls that file: a FIFO, a
/// device or an oversized file there is refused, so it can neither hang nor exhaust the
/// init.
fn home_of(uid: u32) -> Result<String> {
    let passwd = match sys::fs::read_regular(Path::new("/etc/passwd"), MAX_PASSWD_BYTES) {
        Ok(data) => String::from_utf8_lossy(&data).into_owned(),
        Err(e @ Error::Config { .. }) => {
            return Err(Error::Child(format!("HOME lookup: container's {e}")))
        }
        Err(_) => return Ok("/".into()),
    };
    Ok(passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
        })
        .next()
        .unwrap_or_else(|| "/".into()))
}

/// Resolve args[0] as runc does (Go's exec.LookPath), in the container, so a missing
/// or unusable executable fails `create` (or `exec`) with runc's words.
pub fn find_executable(arg0: &CStr, path_env: &str) -> Result<CString> {
    let name = arg0.to_string_lossy();
    if name.contains('/') {
        let p = Path::new(name.as_ref());
        if sys::fs::is_executable_file(p) {
            return Ok(arg0.to_owned());
        }
        let why = match sys::fs::stat(p) {
            Err(e) => format!(
                "stat {name}: {}",
                errno_text(e.errno().unwrap_or(Errno::EIO))
            ),
            // A directory, or no execute permission.
            Ok(_) => "permission denied".into(),
        };
        return Err(Error::Child(format!("exec: {name:?}: {why}")));
    }
    for dir in path_env.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(name.as_ref());
        if sys::fs::is_executable_file(&cand) {
            return crate::sys::fs::cstr(&cand);
        }
    }
    Err(Error::Child(format!(
        "exec: {name:?}: executable file not found in $PATH"
    )))
}

//! The container's init between clone and execve. The steps are one ordered list; the
//! order is the security argument (namespaces → rootfs → pivot → uts → masked/read-only
//! paths → rlimits → user and capabilities → no_new_privs → wait for start → exec).
//! Nothing here panics: a failing step is reported to the parent and the child exits.

use super::channel::{self, Channel, Msg};
use crate::error::{Error, Result};
use crate::namespaces;
use crate::plan::Plan;
use crate::rootfs::setup;
use crate::sys::{self, proc, socket};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use oci_spec::runtime::LinuxNamespaceType;
use std::convert::Infallible;
use std::ffi::{CStr, CString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A namespace to join, opened by the parent before clone.
pub struct Join {
    pub typ: LinuxNamespaceType,
    pub fd: OwnedFd,
    pub path: PathBuf,
}

/// Entry point of the cloned child. Never returns.
pub fn run(plan: &Plan, chan: Channel, listener: OwnedFd, joins: Vec<Join>) -> ! {
    match steps(plan, &chan, listener, joins) {
        Ok(never) => match never {},
        Err(e) => {
            let _ = chan.send(&Msg::Failed { msg: e.to_string() });
            sys::exit_now(1)
        }
    }
}

fn steps(plan: &Plan, chan: &Channel, listener: OwnedFd, joins: Vec<Join>) -> Result<Infallible> {
    // Die with `rsrun create` while it sets us up; nobody may ptrace or read our memory.
    sys::set_pdeathsig(libc::SIGKILL)?;
    sys::set_dumpable(false)?;

    // 1. The parent writes our id maps and places us in the cgroup.
    let host_pid = match chan.expect(&Msg::Proceed { pid: 0 }, &mut |_, _| {})? {
        Msg::Proceed { pid } => pid,
        _ => 0,
    };

    // 2. Join namespaces by path, the user namespace first.
    for j in &joins {
        proc::setns(&j.fd, namespaces::flag(j.typ), &j.path)?;
    }
    drop(joins);
    if plan.ns.in_user_ns() {
        proc::setresgid(0)?;
        proc::setresuid(0)?;
    }
    // A session keyring of its own, so the container cannot read the host's keys.
    if plan.process.new_keyring {
        sys::join_session_keyring(&format!("_ses.{}", plan.id))?;
    }
    // 3. A cgroup namespace rooted at the cgroup we were just placed in.
    if plan.ns.new_cgroup {
        proc::unshare(CloneFlags::CLONE_NEWCGROUP)?;
    }
    // 4. prestart and createRuntime hooks run in the parent now.
    if plan.has_runtime_hooks() {
        chan.send(&Msg::NsReady)?;
        chan.expect(&Msg::HooksDone, &mut |_, _| {})?;
    }

    // 5. The root filesystem.
    let root = setup::prepare(&plan.rootfs)?;
    setup::mount_all(&root, &plan.rootfs)?;
    setup::devices(&root, &plan.rootfs)?;
    setup::create_cwd(&root, &plan.process.cwd)?;
    drop(root);
    if let Some(h) = &plan.hooks {
        crate::hooks::run_all(
            "createContainer",
            h.create_container().as_ref(),
            &plan.hook_state(host_pid, "creating"),
        )?;
    }
    if plan.rootfs.no_pivot {
        setup::move_root(&plan.rootfs)?;
    } else {
        setup::pivot(&plan.rootfs)?;
    }

    // 6. uts
    if let Some(h) = &plan.hostname {
        proc::sethostname(h)?;
    }
    if let Some(d) = &plan.domainname {
        sys::set_domainname(d)?;
    }

    // 7. Read-only and masked paths, read-only root.
    setup::finalize(&plan.rootfs)?;

    // 8. Process resources.
    let p = &plan.process;
    if let Some(adj) = p.oom_score_adj {
        sys::fs::write_file(
            Path::new("/proc/self/oom_score_adj"),
            adj.to_string().as_bytes(),
        )?;
    }
    for r in &p.rlimits {
        sys::setrlimit(&r.name, r.resource, r.soft, r.hard)?;
    }

    // 9. User and capabilities: bounding set while we still have CAP_SETPCAP, then the
    // uid change with keepcaps, then E/P/I and ambient.
    let caps = p.caps.unwrap_or_default();
    crate::process::caps::apply_bounding(&caps, p.last_cap)?;
    sys::set_keepcaps(true)?;
    if plan.ns.in_user_ns() && p.additional_gids.is_empty() {
        // setgroups may be denied in a user namespace; nothing to set then.
        let _ = proc::setgroups(&[]);
    } else {
        proc::setgroups(&p.additional_gids)?;
    }
    proc::setresgid(p.gid)?;
    proc::setresuid(p.uid)?;
    sys::set_keepcaps(false)?;
    crate::process::caps::apply_sets(&caps, p.last_cap)?;

    // 10. Working directory, inside the new root (CVE-2024-21626).
    sys::fs::chdir(&p.cwd)?;
    check_cwd_inside_root(&p.cwd)?;
    let mut env = p.env.clone();
    if !p.has_home {
        let home = home_of(p.uid);
        env.push(CString::new(format!("HOME={home}")).unwrap_or_default());
    }
    let exe = find_executable(&p.args[0], &p.path_env)?;
    if p.no_new_privs {
        sys::set_no_new_privs()?;
    }
    if let Some(m) = p.umask {
        sys::umask(m);
    }

    // 11. Ready: `create` returns; we wait for `start`.
    sys::set_pdeathsig(0)?;
    chan.send(&Msg::Ready)?;
    let conn = socket::accept(&listener)?;
    drop(listener);
    let _ = socket::read_exact_byte(&conn);

    let fail = |e: Error| -> Error {
        let _ = socket::write_all(&conn, &channel::encode(&Msg::Failed { msg: e.to_string() }));
        e
    };
    // 12. startContainer hooks, in the container.
    if let Some(h) = &plan.hooks {
        let st = plan.hook_state(host_pid, "created");
        crate::hooks::run_all("startContainer", h.start_container().as_ref(), &st).map_err(fail)?;
    }
    // 13. Nothing of rsrun's survives execve but stdio and --preserve-fds.
    sys::cloexec_from(3 + p.preserve_fds).map_err(fail)?;
    let errno = sys::execve(&exe, &p.args, &env);
    Err(fail(Error::Child(format!(
        "exec {:?}: {}",
        p.args[0],
        crate::error::ErrnoName(errno)
    ))))
}

/// After chdir, the kernel must see the cwd inside our root: a leaked host fd in the
/// cwd path shows up as "(unreachable)" (CVE-2024-21626).
fn check_cwd_inside_root(cwd: &Path) -> Result<()> {
    let now = nix::unistd::getcwd().map_err(|e| Error::sys("getcwd", cwd, e))?;
    if !now.is_absolute() || now.as_os_str().as_bytes().starts_with(b"(unreachable)") {
        return Err(Error::container(format!(
            "process.cwd {}: resolves outside the container's root",
            cwd.display()
        )));
    }
    Ok(())
}

/// HOME for a uid from the container's /etc/passwd, `/` when absent (runc's rule).
fn home_of(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
        })
        .next()
        .unwrap_or_else(|| "/".into())
}

/// Resolve args[0] the way execvp would, in the container, so a missing executable fails
/// `create` with runc's message.
pub fn find_executable(arg0: &CStr, path_env: &str) -> Result<CString> {
    let name = arg0.to_string_lossy();
    let ok = |p: &Path| -> bool {
        p.metadata().map(|m| m.is_file()).unwrap_or(false)
            && nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok()
    };
    if name.contains('/') {
        let p = Path::new(name.as_ref());
        if ok(p) {
            return Ok(arg0.to_owned());
        }
        let why = match p.metadata() {
            Err(e) => crate::error::ErrnoName(crate::error::io_errno(&e)).to_string(),
            Ok(m) if !m.is_file() => "not a regular file".into(),
            Ok(_) => "permission denied".into(),
        };
        return Err(Error::Child(format!("exec: {name:?}: stat {name}: {why}")));
    }
    for dir in path_env.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(name.as_ref());
        if ok(&cand) {
            return crate::sys::fs::cstr(&cand);
        }
    }
    Err(Error::Child(format!(
        "exec: {name:?}: executable file not found in $PATH"
    )))
}

/// Signal used to stop a half-created init.
pub const KILL: Signal = Signal::SIGKILL;

//! Seccomp: `linux.seccomp` compiled to BPF with libseccomp in the parent, before clone;
//! the child only hands the bytes to seccomp(2). Syscall names libseccomp does not know
//! are skipped (runc's behaviour); rules with the default action are dropped.

mod enosys;

use crate::error::{Error, Result};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use serde::Serialize;
use std::str::FromStr;

pub const FLAG_TSYNC: u32 = 1;
pub const FLAG_LOG: u32 = 2;
pub const FLAG_SPEC_ALLOW: u32 = 4;
pub const FLAG_NEW_LISTENER: u32 = 8;
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// A compiled filter, ready to load.
#[derive(Debug, Clone)]
pub struct Filter {
    /// `struct sock_filter` array.
    pub bpf: Vec<u8>,
    /// seccomp(2) SECCOMP_SET_MODE_FILTER flags.
    pub flags: u32,
    /// Set when a rule uses SCMP_ACT_NOTIFY: where to send the listener fd.
    pub listener: Option<Listener>,
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Listener {
    pub path: std::path::PathBuf,
    pub metadata: String,
}

fn name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn action(a: LinuxSeccompAction, errno: Option<u32>, default_errno: u32) -> ScmpAction {
    let e = errno.unwrap_or(default_errno) as i32;
    match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(e),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(e as u16),
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    }
}

/// The largest errno libseccomp lets a filter return (the kernel's MAX_ERRNO is 4095).
/// libseccomp keeps 16 bits of the value, so errnoRet 65536 became 0: the denied syscall
/// "succeeded" without running.
const MAX_ERRNO_RET: u32 = 4094;

fn check_errno_ret(field: &str, a: LinuxSeccompAction, ret: Option<u32>) -> Result<()> {
    let max = match a {
        LinuxSeccompAction::ScmpActTrace => u16::MAX as u32,
        _ => MAX_ERRNO_RET,
    };
    match ret.filter(|r| *r > max) {
        Some(r) => Err(Error::config(field, format!("{r} is above {max}"))),
        None => Ok(()),
    }
}

fn compare(i: usize, j: usize, a: &oci_spec::runtime::LinuxSeccompArg) -> Result<ScmpArgCompare> {
    if a.index() > 5 {
        return Err(Error::config(
            format!("linux.seccomp.syscalls[{i}].args[{j}].index"),
            format!("{} is not a syscall argument (0-5)", a.index()),
        ));
    }
    let (op, datum) = match a.op() {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, a.value()),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, a.value()),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, a.value()),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, a.value()),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, a.value()),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, a.value()),
        // runc: `value` is the mask, `valueTwo` the value compared after masking.
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            ScmpCompareOp::MaskedEqual(a.value()),
            a.value_two().unwrap_or(0),
        ),
    };
    Ok(ScmpArgCompare::new(a.index() as u32, op, datum))
}

fn scmp_err(field: String, e: impl std::fmt::Display) -> Error {
    Error::config(field, format!("libseccomp: {e}"))
}

/// Compile the profile. `wait_killable_recv` is the flag oci-spec's types cannot carry
/// (see `spec::Loaded`).
pub fn compile(s: &LinuxSeccomp, wait_killable_recv: bool) -> Result<Filter> {
    check_errno_ret(
        "linux.seccomp.defaultErrnoRet",
        LinuxSeccompAction::ScmpActErrno,
        s.default_errno_ret(),
    )?;
    // The listener reaches the runtime by a write(2) made under the filter: a filter that
    // notifies write (or everything) would hold it for an agent that never gets the fd.
    // runc refuses both too.
    if s.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(Error::config(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }
    let default_errno = s.default_errno_ret().unwrap_or(libc::EPERM as u32);
    let default = action(s.default_action(), None, default_errno);
    let mut ctx = ScmpFilterContext::new(default)
        .map_err(|e| scmp_err("linux.seccomp.defaultAction".into(), e))?;
    // no_new_privs is rsrun's to set, not libseccomp's.
    ctx.set_ctl_nnp(false)
        .map_err(|e| scmp_err("linux.seccomp".into(), e))?;
    let arches = add_arches(&mut ctx, s)?;
    let mut flags = filter_flags(s, wait_killable_recv)?;
    let (skipped, notify) = add_rules(&mut ctx, s, default, default_errno)?;
    let listener = if notify {
        flags |= FLAG_NEW_LISTENER;
        Some(listener(s)?)
    } else {
        None
    };
    let bpf = export(&ctx, s, &arches, default_errno)?;
    Ok(Filter {
        bpf,
        flags,
        listener,
        skipped,
    })
}

/// The architectures beside the native one, added to the filter.
fn add_arches(ctx: &mut ScmpFilterContext, s: &LinuxSeccomp) -> Result<Vec<ScmpArch>> {
    let mut arches = Vec::new();
    for (i, a) in s.architectures().iter().flatten().enumerate() {
        let arch = ScmpArch::from_str(&name(a))
            .map_err(|e| scmp_err(format!("linux.seccomp.architectures[{i}]"), e))?;
        if arch == ScmpArch::native() {
            continue;
        }
        arches.push(arch);
        ctx.add_arch(arch)
            .map_err(|e| scmp_err(format!("linux.seccomp.architectures[{i}]"), e))?;
    }
    Ok(arches)
}

/// seccomp(2)'s flags from `linux.seccomp.flags`, and the runtime's own.
fn filter_flags(s: &LinuxSeccomp, wait_killable_recv: bool) -> Result<u32> {
    let mut flags = 0;
    for f in s.flags().iter().flatten() {
        flags |= match name(f).as_str() {
            "SECCOMP_FILTER_FLAG_TSYNC" => FLAG_TSYNC,
            "SECCOMP_FILTER_FLAG_LOG" => FLAG_LOG,
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => FLAG_SPEC_ALLOW,
            other => {
                return Err(Error::config(
                    "linux.seccomp.flags",
                    format!("unsupported flag {other:?}"),
                ))
            }
        };
    }
    if wait_killable_recv {
        flags |= FLAG_WAIT_KILLABLE_RECV;
    }
    Ok(flags)
}

/// Every rule whose action differs from the default. Returns the syscall names this
/// libseccomp does not know (skipped, as runc does) and whether any rule notifies.
fn add_rules(
    ctx: &mut ScmpFilterContext,
    s: &LinuxSeccomp,
    default: ScmpAction,
    default_errno: u32,
) -> Result<(Vec<String>, bool)> {
    let mut skipped = Vec::new();
    let mut notify = false;
    for (i, rule) in s.syscalls().iter().flatten().enumerate() {
        check_errno_ret(
            &format!("linux.seccomp.syscalls[{i}].errnoRet"),
            rule.action(),
            rule.errno_ret(),
        )?;
        let act = action(rule.action(), rule.errno_ret(), default_errno);
        if act == default {
            continue;
        }
        if rule.action() == LinuxSeccompAction::ScmpActNotify {
            if rule.names().iter().any(|n| n == "write") {
                return Err(Error::config(
                    format!("linux.seccomp.syscalls[{i}].names"),
                    "SCMP_ACT_NOTIFY cannot be used for the write syscall",
                ));
            }
            notify = true;
        }
        let args = rule.args().clone().unwrap_or_default();
        let cmps: Vec<ScmpArgCompare> = args
            .iter()
            .enumerate()
            .map(|(j, a)| compare(i, j, a))
            .collect::<Result<_>>()?;
        let mut idx: Vec<usize> = args.iter().map(|a| a.index()).collect();
        idx.sort_unstable();
        let repeated = idx.windows(2).any(|w| w[0] == w[1]);
        for n in rule.names() {
            let Ok(sc) = ScmpSyscall::from_name(n) else {
                skipped.push(n.clone());
                continue;
            };
            let field = || format!("linux.seccomp.syscalls[{i}]");
            if cmps.is_empty() {
                ctx.add_rule(act, sc).map_err(|e| scmp_err(field(), e))?;
            } else if repeated {
                // libseccomp cannot compare one argument twice in a rule: one rule each.
                for c in &cmps {
                    ctx.add_rule_conditional(act, sc, std::slice::from_ref(c))
                        .map_err(|e| scmp_err(field(), e))?;
                }
            } else {
                ctx.add_rule_conditional(act, sc, &cmps)
                    .map_err(|e| scmp_err(field(), e))?;
            }
        }
    }
    Ok((skipped, notify))
}

/// Where a notify filter's listener goes.
fn listener(s: &LinuxSeccomp) -> Result<Listener> {
    let path = s.listener_path().clone().ok_or_else(|| {
        Error::config(
            "linux.seccomp.listenerPath",
            "SCMP_ACT_NOTIFY needs a listenerPath",
        )
    })?;
    Ok(Listener {
        path,
        metadata: s.listener_metadata().clone().unwrap_or_default(),
    })
}

/// The program: runc's -ENOSYS stub (unless the default already allows, or already
/// answers ENOSYS: see `enosys`), then libseccomp's, within the kernel's size limit.
fn export(
    ctx: &ScmpFilterContext,
    s: &LinuxSeccomp,
    arches: &[ScmpArch],
    default_errno: u32,
) -> Result<Vec<u8>> {
    let mut mem = crate::sys::memfd("rsrun-seccomp")?;
    ctx.export_bpf(&mem)
        .map_err(|e| scmp_err("linux.seccomp".into(), e))?;
    let allows = matches!(
        s.default_action(),
        LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog
    );
    let mut bpf = if allows || default_errno == libc::ENOSYS as u32 {
        Vec::new()
    } else {
        let names: Vec<&str> = s
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|r| r.names().iter().map(String::as_str))
            .collect();
        enosys::stub(arches, &names)
    };
    {
        use std::io::{Read, Seek};
        mem.seek(std::io::SeekFrom::Start(0))
            .and_then(|_| mem.read_to_end(&mut bpf))
            .map_err(|e| Error::sys_nopath("read seccomp program", crate::error::io_errno(&e)))?;
    }
    if bpf.len() / 8 > 4096 {
        return Err(Error::config(
            "linux.seccomp",
            format!(
                "the compiled filter has {} instructions, over the kernel's 4096",
                bpf.len() / 8
            ),
        ));
    }
    Ok(bpf)
}

/// The parent's side of the hand-off: wait for the process to report its notify filter
/// loaded, take the listener from it (pidfd_getfd) and send it to `listenerPath`. The
/// process goes on meanwhile; until the agent has the fd, the syscalls its filter
/// notifies wait (rsrun's own steps make none before the report: see
/// `Channel::send_by_write`).
pub fn forward_listener(
    l: &Listener,
    chan: &crate::process::channel::Channel,
    state: &crate::state::OciState,
    pid: i32,
    log: &mut dyn FnMut(&str, &str),
) -> Result<()> {
    let fd = chan.expect_seccomp_listener(log)?;
    let fd = crate::sys::proc::take_fd(pid, fd)?;
    send_listener(l, state, pid, &fd)
}

/// Send the notify listener fd to `listenerPath` with the container process state, as
/// the runtime-spec describes (`fds: ["seccompFd"]`, the fd by SCM_RIGHTS).
pub fn send_listener(
    l: &Listener,
    state: &crate::state::OciState,
    pid: i32,
    fd: &impl std::os::fd::AsRawFd,
) -> Result<()> {
    let doc = serde_json::json!({
        "ociVersion": crate::state::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": l.metadata,
        "state": state,
    });
    let sock = crate::sys::socket::connect_name(&l.path)
        .map_err(|e| Error::config("linux.seccomp.listenerPath", e.to_string()))?;
    crate::sys::socket::send_frame(&sock, doc.to_string().as_bytes(), &[fd.as_raw_fd()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn compiles_and_skips_unknown_names() {
        let f = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["mkdir", "no_such_syscall"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 9, "op": "SCMP_CMP_EQ"}]},
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}
            ]
        })), false)
        .unwrap();
        assert_eq!(f.skipped, vec!["no_such_syscall"]);
        assert!(f.bpf.len() % 8 == 0 && f.bpf.len() > 8);
        assert_eq!(f.flags, 0);
        assert!(f.listener.is_none());
    }

    #[test]
    fn notify_needs_a_listener_path() {
        let e = compile(
            &profile(serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
            })),
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("listenerPath"));
    }

    #[test]
    fn notify_may_not_cover_the_hand_off() {
        let e = compile(
            &profile(serde_json::json!({
                "defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"
            })),
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("linux.seccomp.defaultAction"), "{e}");
        let e = compile(
            &profile(serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"},
                             {"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"}]
            })),
            false,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("linux.seccomp.syscalls[1].names"),
            "{e}"
        );
    }

    #[test]
    fn bad_arg_index() {
        let e = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]
        })), false)
        .unwrap_err();
        assert!(e.to_string().contains("syscalls[0].args[0].index"));
    }
}

//! Lifecycle hooks: each runs with the container state JSON on stdin, its own `args` and
//! `env`, and is killed after `timeout` seconds.

use crate::error::{Error, Result};
use crate::state::OciState;
use oci_spec::runtime::Hook;
use std::ffi::{CString, OsStr};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where hooks run, beyond what each hook says of itself.
#[derive(Default)]
pub struct Context<'a> {
    /// The environment of a hook without `env` (a hook in the container gets the
    /// container process's, as with runc; others an empty one).
    pub env: &'a [CString],
    /// The working directory (rsrun's own when unset).
    pub cwd: Option<&'a Path>,
}

/// Run `hooks` in order; the first failure stops the list and is returned.
pub fn run_all(kind: &'static str, hooks: Option<&Vec<Hook>>, state: &OciState) -> Result<()> {
    run_all_in(kind, hooks, state, &Context::default())
}

/// `run_all` in `ctx`.
pub fn run_all_in(
    kind: &'static str,
    hooks: Option<&Vec<Hook>>,
    state: &OciState,
    ctx: &Context,
) -> Result<()> {
    let json = serde_json::to_vec(state).map_err(|e| Error::container(e.to_string()))?;
    for h in hooks.into_iter().flatten() {
        run_one(kind, h, &json, ctx)?;
    }
    Ok(())
}

/// Run every hook, reporting failures through `warn` instead of stopping (poststart and
/// poststop: the spec says a failure there is a warning).
pub fn run_all_warn(
    kind: &'static str,
    hooks: Option<&Vec<Hook>>,
    state: &OciState,
    warn: &mut dyn FnMut(String),
) {
    let Ok(json) = serde_json::to_vec(state) else {
        return;
    };
    for h in hooks.into_iter().flatten() {
        if let Err(e) = run_one(kind, h, &json, &Context::default()) {
            warn(e.to_string());
        }
    }
}

fn run_one(kind: &'static str, h: &Hook, state: &[u8], ctx: &Context) -> Result<()> {
    let path = h.path().display().to_string();
    let fail = |msg: String| Error::Hook {
        kind,
        path: path.clone(),
        msg,
    };
    let mut cmd = Command::new(h.path());
    let args = h.args().clone().unwrap_or_default();
    if let Some(a0) = args.first() {
        cmd.arg0(a0);
        cmd.args(&args[1..]);
    }
    cmd.env_clear();
    let env: Vec<&[u8]> = match h.env() {
        Some(env) => env.iter().map(|e| e.as_bytes()).collect(),
        None => ctx.env.iter().map(|e| e.as_bytes()).collect(),
    };
    for kv in env {
        if let Some(i) = kv.iter().position(|b| *b == b'=') {
            cmd.env(OsStr::from_bytes(&kv[..i]), OsStr::from_bytes(&kv[i + 1..]));
        }
    }
    if let Some(dir) = ctx.cwd {
        cmd.current_dir(dir);
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| fail(format!("start: {e}")))?;
    // The state goes in without blocking, a piece per turn of the wait loop: a hook that
    // does not read a state larger than the pipe (large annotations) must still meet its
    // timeout. A hook that does not read its stdin at all is fine (EPIPE ends the writing).
    let mut stdin = child.stdin.take();
    if let Some(s) = &stdin {
        nix::fcntl::fcntl(
            s,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .map_err(|e| fail(format!("stdin: {e}")))?;
    }
    let mut sent = 0;
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        // A timeout too large to add to the clock is no deadline (it would never come).
        .and_then(|t| Instant::now().checked_add(Duration::from_secs(t as u64)));
    let mut delay = Duration::from_micros(200);
    loop {
        if let Some(s) = stdin.as_mut() {
            match s.write(&state[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => sent = state.len(),
            }
            if sent == state.len() {
                stdin = None;
            }
        }
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => return Err(fail(format!("failed: {st}"))),
            Ok(None) => {}
            Err(e) => return Err(fail(format!("wait: {e}"))),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!(
                "timed out after {}s",
                h.timeout().unwrap_or(0)
            )));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(10));
    }
}

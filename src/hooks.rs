//! Lifecycle hooks: each runs with the container state JSON on stdin, its own `args` and
//! `env`, and is killed after `timeout` seconds.

use crate::error::{Error, Result};
use crate::state::OciState;
use serde::{Deserialize, Serialize};
use std::ffi::{CString, OsStr};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One hook as the plan, the child and the state file hold it: plain data taken from the
/// spec before fork. Its JSON is the spec's (old state files read back unchanged).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Hook {
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// None: the context's environment (see `Context::env`); Some: exactly these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// Seconds; none, zero or negative: no deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}

/// The hooks of every phase, in the spec's order within each.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hooks {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prestart: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create_runtime: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create_container: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub start_container: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub poststart: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub poststop: Vec<Hook>,
}

impl Hooks {
    pub fn from_spec(h: Option<&oci_spec::runtime::Hooks>) -> Hooks {
        let Some(h) = h else {
            return Hooks::default();
        };
        let list = |v: &Option<Vec<oci_spec::runtime::Hook>>| -> Vec<Hook> {
            v.iter()
                .flatten()
                .map(|h| Hook {
                    path: h.path().clone(),
                    args: h.args().clone().unwrap_or_default(),
                    env: h.env().clone(),
                    timeout: h.timeout(),
                })
                .collect()
        };
        Hooks {
            prestart: list(h.prestart()),
            create_runtime: list(h.create_runtime()),
            create_container: list(h.create_container()),
            start_container: list(h.start_container()),
            poststart: list(h.poststart()),
            poststop: list(h.poststop()),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Hooks::default()
    }
}

/// Where hooks run, beyond what each hook says of itself.
#[derive(Default)]
pub struct Context<'a> {
    /// The environment of a hook without `env` (a hook in the container gets the
    /// container process's, as with runc; others an empty one).
    pub env: &'a [CString],
    /// The working directory (rsrun's own when unset).
    pub cwd: Option<&'a Path>,
}

/// Run `hooks` in order in `ctx`; the first failure stops the list and is returned.
pub fn run_all_in(
    kind: &'static str,
    hooks: &[Hook],
    state: &OciState,
    ctx: &Context,
) -> Result<()> {
    if hooks.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_vec(state).map_err(|e| Error::container(e.to_string()))?;
    run_all_with(kind, hooks, &json, ctx)
}

/// `run_all_in` with the state document already serialised (the init's hooks: see
/// `plan::InitHookState`).
pub fn run_all_with(kind: &'static str, hooks: &[Hook], json: &[u8], ctx: &Context) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(kind, i, h, json, ctx, false)?;
    }
    Ok(())
}

/// Run every hook, reporting failures through `warn` instead of stopping (poststart and
/// poststop: the spec says a failure there is a warning).
pub fn run_all_warn(
    kind: &'static str,
    hooks: &[Hook],
    state: &OciState,
    warn: &mut dyn FnMut(String),
) {
    if hooks.is_empty() {
        return;
    }
    let Ok(json) = serde_json::to_vec(state) else {
        return;
    };
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run_one(kind, i, h, &json, &Context::default(), true) {
            warn(e.to_string());
        }
    }
}

/// `only_stdio`: a hook run by a command that does not enter the container (poststart by
/// `start`, poststop by `delete`) gets its stdio and none of the fds rsrun's caller left
/// open, as runc's hooks (`create` lets go of them before any hook runs, and hooks in
/// the container get what `--preserve-fds` passes).
fn run_one(
    kind: &'static str,
    index: usize,
    h: &Hook,
    state: &[u8],
    ctx: &Context,
    only_stdio: bool,
) -> Result<()> {
    let path = h.path.display().to_string();
    let fail = |msg: String| Error::Hook {
        kind,
        index,
        path: path.clone(),
        msg,
    };
    let mut cmd = Command::new(&h.path);
    if let Some(a0) = h.args.first() {
        cmd.arg0(a0);
        cmd.args(&h.args[1..]);
    }
    cmd.env_clear();
    let env: Vec<&[u8]> = match &h.env {
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
    if only_stdio {
        crate::sys::spawn::only_stdio(&mut cmd);
    }
    let mut child = cmd.spawn().map_err(|e| fail(format!("start: {e}")))?;
    // The state goes in without blocking, a piece per turn of the wait loop: a hook that
    // does not read a state larger than the pipe (large annotations) must still meet its
    // timeout. A hook that does not read its stdin at all is fine (EPIPE ends the writing).
    let mut stdin = child.stdin.take();
    if let Some(s) = &stdin {
        crate::sys::fs::set_nonblocking(s, std::path::Path::new("stdin"))
            .map_err(|e| fail(e.to_string()))?;
    }
    let mut sent = 0;
    let deadline = h
        .timeout
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
            return Err(fail(format!("timed out after {}s", h.timeout.unwrap_or(0))));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_from_the_spec_keep_order_and_every_field() {
        let spec = crate::spec::parse(
            br#"{"ociVersion":"1.0.0","hooks":{
                "prestart":[{"path":"/a","args":["a","1"],"env":["X=1"],"timeout":5},{"path":"/b"}],
                "poststop":[{"path":"/c","env":[]}]}}"#,
            Path::new("config.json"),
        )
        .unwrap();
        let h = Hooks::from_spec(spec.hooks().as_ref());
        assert_eq!(h.prestart.len(), 2);
        assert_eq!(h.prestart[0].path, Path::new("/a"));
        assert_eq!(h.prestart[0].args, ["a", "1"]);
        assert_eq!(h.prestart[0].env.as_deref(), Some(&["X=1".to_string()][..]));
        assert_eq!(h.prestart[0].timeout, Some(5));
        assert_eq!(h.prestart[1].path, Path::new("/b"));
        // An empty env is "no variables", not "the context's".
        assert_eq!(h.poststop[0].env.as_deref(), Some(&[][..]));
        assert!(h.create_runtime.is_empty() && !h.is_empty());
        assert!(Hooks::from_spec(None).is_empty());
    }

    #[test]
    fn state_files_written_with_the_specs_hook_type_read_back() {
        let spec = crate::spec::parse(
            br#"{"ociVersion":"1.0.0","hooks":{"poststart":[{"path":"/p","args":["p"],"timeout":3}],
                "createContainer":[{"path":"/c"}]}}"#,
            Path::new("config.json"),
        )
        .unwrap();
        let old = serde_json::to_string(spec.hooks().as_ref().unwrap()).unwrap();
        let read: Hooks = serde_json::from_str(&old).unwrap();
        assert_eq!(read, Hooks::from_spec(spec.hooks().as_ref()));
        assert_eq!(serde_json::to_string(&read).unwrap(), old);
    }
}

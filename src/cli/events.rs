//! `rsrun events`: `--stats` prints one stats event; otherwise a stream of stats every
//! `--interval` and an `oom` event as soon as the kernel OOM-kills in the container,
//! until the container stops.

use crate::cgroups::stats;
use crate::container::Runtime;
use crate::error::{Error, Result};
use serde::Serialize;
use std::io::Write;
use std::time::{Duration, Instant};

/// `5s`, `500ms`, `1m`, or plain seconds.
pub fn parse_interval(s: &str) -> Result<Duration> {
    let bad = || {
        Error::container(format!(
            "--interval {s:?}: expected a duration like 5s or 500ms"
        ))
    };
    let (n, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: f64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    // Neither 0 (a busy loop) nor past what a Duration holds (from_secs_f64 panics).
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(bad()),
    }
}

/// One line of the stream, its fields in runc's order (`type`, `id`, `data`).
#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    typ: &'static str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<serde_json::Value>,
}

pub fn events(rt: &Runtime, id: &str, once: bool, interval: &str) -> Result<()> {
    let interval = parse_interval(interval)?;
    let mut out = std::io::stdout();
    let mut emit = |typ: &'static str, data: Option<serde_json::Value>| -> Result<()> {
        let line = serde_json::to_string(&Event { typ, id, data })
            .map_err(|e| Error::container(e.to_string()))?;
        writeln!(out, "{line}")
            .map_err(|e| Error::sys_nopath("write", crate::error::io_errno(&e)))?;
        out.flush()
            .map_err(|e| Error::sys_nopath("write", crate::error::io_errno(&e)))
    };
    let st = crate::state::load_unlocked(&rt.root, id)?;
    if once {
        return emit("stats", Some(stats::stats(&st.cgroup)));
    }
    let mut ooms = stats::oom_kills(&st.cgroup);
    // None: the next stats are further away than the clock reaches.
    let mut next = Some(Instant::now());
    loop {
        if rt.state(id)?.status == "stopped" {
            return Ok(());
        }
        let now_ooms = stats::oom_kills(&st.cgroup);
        if now_ooms > ooms {
            ooms = now_ooms;
            emit("oom", None)?;
        }
        if next.is_some_and(|n| Instant::now() >= n) {
            emit("stats", Some(stats::stats(&st.cgroup)))?;
            next = Instant::now().checked_add(interval);
        }
        std::thread::sleep(Duration::from_millis(100).min(interval));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_interval("250ms").unwrap(), Duration::from_millis(250));
        for bad in [
            "0",
            "0s",
            "0.0000000001s",
            "99999999999999999999999h",
            "1e3s",
            "-1s",
        ] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
        assert!(parse_interval("5000000000000000h").is_ok());
        assert_eq!(parse_interval("2").unwrap(), Duration::from_secs(2));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("fast").is_err());
    }
}

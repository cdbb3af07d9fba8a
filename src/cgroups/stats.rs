//! Resource usage read from the container's cgroup, in runc's `events --stats` shape.

use super::{Cgroup, Mode};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

fn dir(cg: &Cgroup, controller: &str) -> Option<PathBuf> {
    cg.dirs
        .iter()
        .find(|d| cg.mode == Mode::V2 || d.controllers.split(',').any(|c| c == controller))
        .map(|d| d.path.clone())
}

fn num(p: &Path) -> u64 {
    crate::sys::fs::read_text(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// `key value` lines (memory.stat, cpu.stat, memory.events) as a map.
pub fn kv(p: &Path) -> Map<String, Value> {
    crate::sys::fs::read_text(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((
                it.next()?.to_string(),
                json!(it.next()?.parse::<u64>().ok()?),
            ))
        })
        .collect()
}

fn get(m: &Map<String, Value>, k: &str) -> u64 {
    m.get(k).and_then(|v| v.as_u64()).unwrap_or(0)
}

/// The number of OOM kills the kernel counted in the container's memory cgroup.
pub fn oom_kills(cg: &Cgroup) -> u64 {
    match (cg.mode, dir(cg, "memory")) {
        (Mode::V2, Some(d)) => get(&kv(&d.join("memory.events")), "oom_kill"),
        (_, Some(d)) => get(&kv(&d.join("memory.oom_control")), "oom_kill"),
        _ => 0,
    }
}

/// Bytes of memory the container uses now.
pub fn memory_usage(cg: &Cgroup) -> u64 {
    match (cg.mode, dir(cg, "memory")) {
        (Mode::V2, Some(d)) => num(&d.join("memory.current")),
        (_, Some(d)) => num(&d.join("memory.usage_in_bytes")),
        _ => 0,
    }
}

pub fn stats(cg: &Cgroup) -> Value {
    if cg.mode == Mode::V2 {
        v2(cg)
    } else {
        v1(cg)
    }
}

fn v1(cg: &Cgroup) -> Value {
    let mut out = json!({});
    if let Some(d) = dir(cg, "cpuacct") {
        let percpu: Vec<u64> = crate::sys::fs::read_text(&d.join("cpuacct.usage_percpu"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let st = kv(&d.join("cpuacct.stat"));
        let tick = 1_000_000_000 / 100;
        out["cpu"] = json!({"usage": {
            "total": num(&d.join("cpuacct.usage")),
            "percpu": percpu,
            "kernel": get(&st, "system") * tick,
            "user": get(&st, "user") * tick,
        }});
    }
    if let Some(d) = dir(cg, "cpu") {
        let st = kv(&d.join("cpu.stat"));
        out["cpu"]["throttling"] = json!({
            "periods": get(&st, "nr_periods"),
            "throttled_periods": get(&st, "nr_throttled"),
            "throttled_time": get(&st, "throttled_time"),
        });
    }
    if let Some(d) = dir(cg, "memory") {
        let entry = |prefix: &str| {
            json!({
                "limit": num(&d.join(format!("{prefix}.limit_in_bytes"))),
                "usage": num(&d.join(format!("{prefix}.usage_in_bytes"))),
                "max_usage": num(&d.join(format!("{prefix}.max_usage_in_bytes"))),
                "failcnt": num(&d.join(format!("{prefix}.failcnt"))),
            })
        };
        let raw = kv(&d.join("memory.stat"));
        out["memory"] = json!({
            "cache": get(&raw, "cache"),
            "usage": entry("memory"),
            "swap": entry("memory.memsw"),
            "kernel": entry("memory.kmem"),
            "raw": raw,
        });
    }
    if let Some(d) = dir(cg, "pids") {
        let max = crate::sys::fs::read_text(&d.join("pids.max")).unwrap_or_default();
        out["pids"] = json!({"current": num(&d.join("pids.current")), "limit": max.trim().parse::<u64>().unwrap_or(0)});
    }
    out
}

fn v2(cg: &Cgroup) -> Value {
    let Some(d) = dir(cg, "") else {
        return json!({});
    };
    let cpu = kv(&d.join("cpu.stat"));
    let raw = kv(&d.join("memory.stat"));
    let max = |f: &str| {
        let s = crate::sys::fs::read_text(&d.join(f)).unwrap_or_default();
        s.trim().parse::<u64>().unwrap_or(u64::MAX)
    };
    let pids_max = crate::sys::fs::read_text(&d.join("pids.max")).unwrap_or_default();
    json!({
        "cpu": {
            "usage": {
                "total": get(&cpu, "usage_usec") * 1000,
                "kernel": get(&cpu, "system_usec") * 1000,
                "user": get(&cpu, "user_usec") * 1000,
            },
            "throttling": {
                "periods": get(&cpu, "nr_periods"),
                "throttled_periods": get(&cpu, "nr_throttled"),
                "throttled_time": get(&cpu, "throttled_usec") * 1000,
            }
        },
        "memory": {
            "cache": get(&raw, "file"),
            "usage": {"usage": num(&d.join("memory.current")), "limit": max("memory.max"), "max_usage": num(&d.join("memory.peak"))},
            "swap": {"usage": num(&d.join("memory.swap.current")), "limit": max("memory.swap.max")},
            "raw": raw,
        },
        "pids": {"current": num(&d.join("pids.current")), "limit": pids_max.trim().parse::<u64>().unwrap_or(0)},
    })
}

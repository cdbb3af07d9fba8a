//! `rsrun update`: change a container's resources, from `--resources FILE|-`
//! (LinuxResources JSON) and runc's flags, which win over the file.

use crate::container::Runtime;
use crate::error::{Error, Result};
use clap::Args;
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};

#[derive(Args, Debug, Clone, Default)]
pub struct UpdateArgs {
    /// LinuxResources JSON file, or - for standard input
    #[arg(short = 'r', long)]
    pub resources: Option<String>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CFS burst (usecs)
    #[arg(long = "cpu-burst")]
    pub cpu_burst: Option<u64>,
    /// 1: the cgroup's tasks are SCHED_IDLE; 0: the default
    #[arg(long = "cpu-idle", allow_hyphen_values = true)]
    pub cpu_idle: Option<i64>,
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit (bytes, or with a k/m/g suffix; -1 for none)
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Obsolete (runc ignores it with a warning; so does rsrun)
    #[arg(long = "kernel-memory", hide = true)]
    pub kernel_memory: Option<String>,
    /// Obsolete (runc ignores it with a warning; so does rsrun)
    #[arg(long = "kernel-memory-tcp", hide = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Intel RDT/CAT L3 cache schema (refused: rsrun does not manage resctrl)
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT/MBA memory bandwidth schema (refused: rsrun does not manage resctrl)
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
    /// Container id
    pub id: String,
}

/// `512m`, `1g`, `1048576`, `-1` → bytes.
pub fn parse_bytes(flag: &str, s: &str) -> Result<i64> {
    let s = s.trim();
    if s == "-1" {
        return Ok(-1);
    }
    let lower = s.to_ascii_lowercase();
    let lower = lower.trim_end_matches('b');
    let (num, mult) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1i64 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        Some('t') => (&lower[..lower.len() - 1], 1 << 40),
        _ => (lower, 1),
    };
    num.parse::<f64>()
        .ok()
        .filter(|n| *n >= 0.0)
        .map(|n| (n * mult as f64) as i64)
        .ok_or_else(|| Error::container(format!("--{flag} {s:?}: not a size")))
}

/// The resources to apply: the JSON (if any) with the flags merged in.
pub fn resources(a: &UpdateArgs) -> Result<LinuxResources> {
    let mut v: Value = match a.resources.as_deref() {
        None => json!({}),
        Some(src) => {
            let text = if src == "-" {
                crate::sys::fs::read_capped(std::io::stdin(), "stdin", crate::spec::MAX_JSON_BYTES)?
            } else {
                crate::spec::read_json_file(std::path::Path::new(src))?
            };
            serde_json::from_slice(&text)
                .map_err(|e| Error::config("--resources", e.to_string()))?
        }
    };
    let mut set = |path: &[&str], val: Value| {
        let mut cur = &mut v;
        for p in &path[..path.len() - 1] {
            if !cur.get(*p).is_some_and(|x| x.is_object()) {
                cur[*p] = json!({});
            }
            cur = &mut cur[*p];
        }
        cur[path[path.len() - 1]] = val;
    };
    if let Some(x) = a.blkio_weight {
        set(&["blockIO", "weight"], json!(x));
    }
    if let Some(x) = a.cpu_period {
        set(&["cpu", "period"], json!(x));
    }
    if let Some(x) = a.cpu_quota {
        set(&["cpu", "quota"], json!(x));
    }
    if let Some(x) = a.cpu_burst {
        set(&["cpu", "burst"], json!(x));
    }
    if let Some(x) = a.cpu_idle {
        set(&["cpu", "idle"], json!(x));
    }
    if let Some(x) = a.cpu_share {
        set(&["cpu", "shares"], json!(x));
    }
    if let Some(x) = a.cpu_rt_period {
        set(&["cpu", "realtimePeriod"], json!(x));
    }
    if let Some(x) = a.cpu_rt_runtime {
        set(&["cpu", "realtimeRuntime"], json!(x));
    }
    if let Some(x) = &a.cpuset_cpus {
        set(&["cpu", "cpus"], json!(x));
    }
    if let Some(x) = &a.cpuset_mems {
        set(&["cpu", "mems"], json!(x));
    }
    if let Some(x) = &a.memory {
        set(&["memory", "limit"], json!(parse_bytes("memory", x)?));
    }
    if let Some(x) = &a.memory_reservation {
        set(
            &["memory", "reservation"],
            json!(parse_bytes("memory-reservation", x)?),
        );
    }
    if let Some(x) = &a.memory_swap {
        set(&["memory", "swap"], json!(parse_bytes("memory-swap", x)?));
    }
    if let Some(x) = a.pids_limit {
        set(&["pids", "limit"], json!(x));
    }
    let res: LinuxResources = serde_json::from_value(v.clone())
        .map_err(|e| Error::config("--resources", e.to_string()))?;
    crate::spec::refuse_arrays_for_objects(&v, &res, std::path::Path::new("--resources"))?;
    Ok(res)
}

pub fn update(rt: &Runtime, a: &UpdateArgs) -> Result<()> {
    // Intel RDT: runc says the feature is not enabled when resctrl lacks it; rsrun never
    // manages resctrl groups (linux.intelRdt is refused at create too).
    for (flag, v) in [
        ("--l3-cache-schema", &a.l3_cache_schema),
        ("--mem-bw-schema", &a.mem_bw_schema),
    ] {
        if v.as_deref().is_some_and(|v| !v.is_empty()) {
            return Err(Error::config(
                flag,
                "Intel RDT is not supported (rsrun manages no resctrl group)",
            ));
        }
    }
    for (flag, v) in [
        ("kernel-memory", &a.kernel_memory),
        ("kernel-memory-tcp", &a.kernel_memory_tcp),
    ] {
        if v.as_deref().is_some_and(|v| !v.is_empty()) {
            rt.log
                .warn(&format!("Setting --{flag} is ignored and will be removed"));
        }
    }
    let res = resources(a)?;
    rt.update(&a.id, &res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("memory", "512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("memory", "1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("memory", "4096").unwrap(), 4096);
        assert_eq!(parse_bytes("memory", "-1").unwrap(), -1);
        assert!(parse_bytes("memory", "lots").is_err());
    }

    #[test]
    fn flags_win_over_the_file() {
        let a = UpdateArgs {
            memory: Some("64m".into()),
            pids_limit: Some(5),
            ..Default::default()
        };
        let r = resources(&a).unwrap();
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(64 << 20));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 5);
    }

    #[test]
    fn cpu_burst_and_idle_flags() {
        let a = UpdateArgs {
            cpu_burst: Some(1000),
            cpu_idle: Some(1),
            ..Default::default()
        };
        let r = resources(&a).unwrap();
        let c = r.cpu().as_ref().unwrap();
        assert_eq!((c.burst(), c.idle()), (Some(1000), Some(1)));
    }
}

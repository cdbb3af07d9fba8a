//! linux.resources as runc applies them: 0 means "unset", limits below usage are refused
//! in runc's words, memory and memory+swap are written in an order the kernel accepts,
//! weights fall back to BFQ, missing knobs are ENOENT naming them, empty cpusets in
//! existing parents are filled, and no field is silently ignored. Runs on v1/hybrid and
//! on pure v2 (the file names differ).

use crate::common::*;
use crate::resources::{read, v2};
use rsrun::cgroups::Cgroup;
use serde_json::json;
use std::path::PathBuf;

/// The container's directory in the hierarchy holding `controller` (v2: the only one).
fn dir_of(path: Option<&str>, id: &str, controller: &str) -> PathBuf {
    let cg = Cgroup::resolve(path, id).unwrap();
    cg.dirs
        .iter()
        .find(|d| v2() || d.controllers.split(',').any(|c| c == controller))
        .unwrap_or_else(|| panic!("no {controller} hierarchy on this host"))
        .path
        .clone()
}

/// What v1 shows for "no limit" (the largest page-aligned value).
fn unlimited(v: &str) -> bool {
    v.parse::<u64>().is_ok_and(|n| n > 1 << 60)
}

/// A 32 MiB allocation inside the container: "rc=0", or "rc=137" when OOM-killed.
fn alloc_32m(env: &Env, id: &str) -> String {
    let r = env.rsrun(&[
        "exec",
        id,
        "sh",
        "-c",
        "dd if=/dev/zero of=/dev/null bs=32M count=1 2>/dev/null; echo rc=$?",
    ]);
    r.stdout.trim().to_string()
}

#[test]
fn memory_limit_zero_means_unset() {
    let env = Env::new("rc-mem0");
    env.edit(|v| {
        v["linux"]["resources"]["memory"] = json!({"limit": 0, "reservation": 0, "swap": 0})
    });
    env.set_args(&["sleep", "100"]);
    env.run_detached("m0");
    if v2() {
        assert_eq!(read("m0", "memory", "memory.max"), "max");
    } else {
        let l = read("m0", "memory", "memory.limit_in_bytes");
        assert!(unlimited(&l), "memory.limit_in_bytes is {l}");
    }
    assert_eq!(alloc_32m(&env, "m0"), "rc=0", "a 0 limit was enforced");
    env.delete_and_assert_clean("m0");
}

#[test]
fn memory_limit_below_usage_is_refused_in_runcs_words() {
    let env = Env::new("rc-membusy");
    env.edit(|v| v["linux"]["resources"]["memory"] = json!({"limit": 4096}));
    env.set_args(&["sleep", "100"]);
    let r = env.create("mb1");
    if v2() {
        // memory.max below usage does not fail on v2: the kernel OOM-kills the init.
        assert_one_line_error(
            &r,
            "linux.resources.memory.limit: container init was OOM-killed",
        );
    } else {
        assert_one_line_error(
            &r,
            "linux.resources.memory.limit: unable to set memory limit to 4096 (current usage: ",
        );
        assert!(r.stderr.contains("peak usage: "), "{}", r.stderr);
    }
    env.assert_clean("mb1", None);

    // The same at update (v1: the kernel refuses with EBUSY, the limit stays).
    if !v2() {
        env.edit(|v| v["linux"]["resources"]["memory"] = json!(null));
        env.run_detached("mb2");
        let before = read("mb2", "memory", "memory.limit_in_bytes");
        let r = env.rsrun(&["update", "--memory", "4k", "mb2"]);
        assert_one_line_error(
            &r,
            "linux.resources.memory.limit: unable to set memory limit to 4096 (current usage: ",
        );
        assert_eq!(read("mb2", "memory", "memory.limit_in_bytes"), before);
        assert_eq!(env.status("mb2"), "running");
        env.delete_and_assert_clean("mb2");
    }
}

#[test]
fn update_memory_and_swap_in_an_order_the_kernel_takes() {
    let env = Env::new("rc-memswap");
    env.edit(|v| v["linux"]["resources"]["memory"] = json!({"limit": 67108864, "swap": 134217728}));
    env.set_args(&["sleep", "100"]);
    env.run_detached("ms1");
    let mem = |f_v1: &str, f_v2: &str| {
        if v2() {
            read("ms1", "memory", f_v2)
        } else {
            read("ms1", "memory", f_v1)
        }
    };
    // No memory limit with a swap limit set: memory+swap goes unlimited first.
    let r = env.rsrun(&["update", "--memory", "-1", "ms1"]);
    assert_eq!(r.code, 0, "update --memory -1: {}", r.stderr);
    if v2() {
        assert_eq!(read("ms1", "memory", "memory.max"), "max");
        assert_eq!(read("ms1", "memory", "memory.swap.max"), "max");
    } else {
        for f in ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"] {
            let v = read("ms1", "memory", f);
            assert!(unlimited(&v), "{f} is {v}");
        }
    }
    assert_eq!(alloc_32m(&env, "ms1"), "rc=0");
    // Down from unlimited (memory first), up past the current memsw (memsw first),
    // then down again.
    for (m, s) in [("64m", "128m"), ("256m", "512m"), ("16m", "16m")] {
        let r = env.rsrun(&["update", "--memory", m, "--memory-swap", s, "ms1"]);
        assert_eq!(
            r.code, 0,
            "update --memory {m} --memory-swap {s}: {}",
            r.stderr
        );
    }
    assert_eq!(
        mem("memory.limit_in_bytes", "memory.max"),
        (16u64 << 20).to_string()
    );
    assert_eq!(
        mem("memory.memsw.limit_in_bytes", "memory.swap.max"),
        if v2() {
            "0".into()
        } else {
            (16u64 << 20).to_string()
        }
    );
    // And the limit bites from inside.
    assert_eq!(alloc_32m(&env, "ms1"), "rc=137");
    env.delete_and_assert_clean("ms1");
}

#[test]
fn update_cpu_quota_minus_one_as_two_arguments() {
    let env = Env::new("rc-quota");
    env.edit(|v| v["linux"]["resources"]["cpu"] = json!({"quota": 20000, "period": 100000}));
    env.set_args(&["sleep", "100"]);
    env.run_detached("cq1");
    let r = env.rsrun(&["update", "--cpu-quota", "-1", "cq1"]);
    assert_eq!(r.code, 0, "update --cpu-quota -1: {}", r.stderr);
    if v2() {
        assert_eq!(read("cq1", "cpu", "cpu.max"), "max 100000");
    } else {
        assert_eq!(read("cq1", "cpu", "cpu.cfs_quota_us"), "-1");
    }
    assert_eq!(env.rsrun(&["delete", "-f", "cq1"]).code, 0);
}

/// `blockIO.weight` and `weightDevice` go to blkio.weight where CFQ provides it, to
/// BFQ's files otherwise; with neither, the error is ENOENT naming the BFQ file. On v2
/// with BFQ loaded, a device BFQ does not schedule refuses its per-device weight
/// (EOPNOTSUPP, naming the field and file).
#[test]
fn blkio_weight_falls_back_to_bfq() {
    let env = Env::new("rc-bfq");
    env.set_args(&["sleep", "100"]);
    // A block device of this machine (a guest on a 9p root may have none: 8:0 then,
    // which the kernel refuses with ENODEV).
    let real = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("dev")).ok())
        .min();
    let dev = real.clone().unwrap_or_else(|| "8:0".into());
    let dev = dev.trim();
    let (maj, min) = dev.split_once(':').unwrap();
    let (maj, min): (i64, i64) = (maj.parse().unwrap(), min.parse().unwrap());
    for (i, (blkio, field, v1_files, want)) in [
        (
            json!({"weight": 500}),
            "linux.resources.blockIO.weight",
            ["blkio.weight", "blkio.bfq.weight"],
            "500".to_string(),
        ),
        (
            json!({"weightDevice": [{"major": maj, "minor": min, "weight": 500}]}),
            "linux.resources.blockIO.weightDevice",
            ["blkio.weight_device", "blkio.bfq.weight_device"],
            format!("{dev} "),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("bw{i}");
        env.edit(|v| v["linux"]["resources"]["blockIO"] = blkio.clone());
        let r = env.rsrun(&["run", "-d", "--bundle", env.bundle.to_str().unwrap(), &id]);
        if i == 1 && real.is_none() {
            assert_one_line_error(&r, "ENODEV");
            assert!(r.stderr.contains(field), "{}", r.stderr);
        } else if v2() {
            // BFQ's io.bfq.weight (blkio's scale) where BFQ runs, else io.weight.
            if r.code == 0 {
                let bfq = dir_of(None, &id, "io").join("io.bfq.weight").exists();
                let (f, w) = if bfq {
                    ("io.bfq.weight", "500")
                } else {
                    ("io.weight", "4950")
                };
                let v = read(&id, "io", f);
                let line = if i == 0 {
                    format!("default {w}")
                } else {
                    format!("{dev} {w}")
                };
                assert!(v.lines().any(|l| l == line), "{f}: {v:?}, want {line:?}");
            } else if i == 1 && r.stderr.contains("io.bfq.weight") {
                // BFQ loaded but not this device's scheduler: the kernel refuses a
                // per-device BFQ weight (runc writes the same file and fails the same).
                let sched =
                    std::fs::read_to_string(format!("/sys/dev/block/{dev}/queue/scheduler"))
                        .unwrap_or_default();
                assert!(
                    sched.contains("bfq") && !sched.contains("[bfq]"),
                    "BFQ is loaded but does not schedule {dev} ({sched:?}): {}",
                    r.stderr
                );
                assert_one_line_error(&r, "io.bfq.weight");
                assert!(r.stderr.contains("EOPNOTSUPP"), "{}", r.stderr);
                assert!(r.stderr.contains(field), "{}", r.stderr);
            } else {
                assert_one_line_error(&r, "io.weight: ENOENT");
            }
        } else {
            // The parent shows which of the files this kernel has.
            let parent = dir_of(None, &id, "blkio").parent().unwrap().to_path_buf();
            match v1_files.iter().find(|f| parent.join(f).exists()) {
                Some(f) => {
                    assert_eq!(r.code, 0, "{field}: {}", r.stderr);
                    let v = read(&id, "blkio", f);
                    assert!(v.contains(&want) && v.contains("500"), "{f}: {v}");
                }
                None => {
                    assert_one_line_error(&r, &format!("{}: ENOENT", v1_files[1]));
                    assert!(r.stderr.contains(field), "{}", r.stderr);
                }
            }
        }
        let _ = env.rsrun(&["delete", "-f", &id]);
        env.assert_clean(&id, None);
    }
}

/// A knob this kernel does not have is ENOENT naming it (never EACCES from an O_CREAT).
#[test]
fn missing_cgroup_knob_is_enoent_naming_it() {
    let env = Env::new("rc-enoent");
    env.set_args(&["sleep", "100"]);
    if v2() {
        env.edit(|v| v["linux"]["resources"]["unified"] = json!({"pids.nonexistent": "1"}));
        let r = env.create("ne1");
        assert_one_line_error(&r, "pids.nonexistent: ENOENT");
        assert!(
            r.stderr
                .contains("linux.resources.unified.pids.nonexistent"),
            "{}",
            r.stderr
        );
    } else {
        // blkio.leaf_weight is CFQ's: kernels without CFQ do not have it.
        env.edit(|v| v["linux"]["resources"]["blockIO"] = json!({"leafWeight": 300}));
        let r = env.create("ne1");
        let parent = dir_of(None, "ne1", "blkio").parent().unwrap().to_path_buf();
        if parent.join("blkio.leaf_weight").exists() {
            assert_eq!(r.code, 0, "{}", r.stderr);
            assert_eq!(read("ne1", "blkio", "blkio.leaf_weight"), "300");
            assert_eq!(env.rsrun(&["delete", "-f", "ne1"]).code, 0);
        } else {
            assert_one_line_error(&r, "blkio.leaf_weight: ENOENT");
            assert!(
                r.stderr.contains("linux.resources.blockIO.leafWeight"),
                "{}",
                r.stderr
            );
        }
    }
    env.assert_clean("ne1", None);
}

/// A pod-level cgroup made by an engine with empty cpuset files (v1): rsrun fills every
/// ancestor from the nearest one that has them, top down, so the init can join.
#[test]
fn empty_cpusets_in_existing_parents_are_filled() {
    let env = Env::new("rc-cpuset");
    let pod = format!("rsrun-it-pod-{}", std::process::id());
    let path = format!("/{pod}/mid/ctr");
    let ctr = dir_of(Some(&path), "cs1", "cpuset");
    let (mid, podd) = (
        ctr.parent().unwrap().to_path_buf(),
        ctr.parent().unwrap().parent().unwrap().to_path_buf(),
    );
    std::fs::create_dir_all(&mid).unwrap();
    struct Rm(Vec<PathBuf>);
    impl Drop for Rm {
        fn drop(&mut self) {
            for d in &self.0 {
                let _ = std::fs::remove_dir(d);
            }
        }
    }
    let _rm = Rm(vec![ctr.clone(), mid.clone(), podd.clone()]);
    let root = podd.parent().unwrap().to_path_buf();
    if !v2() {
        for d in [&podd, &mid] {
            assert_eq!(
                std::fs::read_to_string(d.join("cpuset.cpus"))
                    .unwrap()
                    .trim(),
                "",
                "a new v1 cpuset cgroup starts empty"
            );
        }
    }
    env.edit(|v| v["linux"]["cgroupsPath"] = json!(path));
    let r = env.run(
        "cs1",
        &["sh", "-c", "grep Cpus_allowed_list /proc/self/status"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("Cpus_allowed_list:"), "{}", r.stdout);
    if !v2() {
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let want = std::fs::read_to_string(root.join(f)).unwrap();
            for d in [&podd, &mid] {
                assert_eq!(
                    std::fs::read_to_string(d.join(f)).unwrap(),
                    want,
                    "{}",
                    d.join(f).display()
                );
            }
        }
    }
    // The container's own directory is gone; the parents it did not make stay.
    assert!(!ctr.exists(), "{} left behind", ctr.display());
    assert!(mid.exists());
}

/// kernelTCP is written where the kernel has memory.kmem.tcp (v1), refused where not.
#[test]
fn kernel_tcp_is_applied_or_refused() {
    let env = Env::new("rc-ktcp");
    env.edit(|v| v["linux"]["resources"]["memory"] = json!({"kernelTCP": 8388608}));
    env.set_args(&["sleep", "100"]);
    let r = env.rsrun(&["run", "-d", "--bundle", env.bundle.to_str().unwrap(), "kt1"]);
    let parent = dir_of(None, "kt1", "memory")
        .parent()
        .unwrap()
        .to_path_buf();
    if v2() {
        assert_one_line_error(&r, "linux.resources.memory.kernelTCP");
    } else if parent.join("memory.kmem.tcp.limit_in_bytes").exists() {
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(
            read("kt1", "memory", "memory.kmem.tcp.limit_in_bytes"),
            "8388608"
        );
        assert_eq!(env.rsrun(&["delete", "-f", "kt1"]).code, 0);
    } else {
        assert_one_line_error(&r, "memory.kmem.tcp.limit_in_bytes: ENOENT");
    }
    env.assert_clean("kt1", None);
}

/// Fields the kernel would not honour are refused, naming them; none is dropped.
#[test]
fn unenforceable_fields_are_refused() {
    let env = Env::new("rc-refuse");
    env.set_args(&["true"]);
    // A kernel memory limit: Linux no longer enforces memory.kmem.limit_in_bytes.
    env.edit(|v| v["linux"]["resources"]["memory"] = json!({"kernel": 8388608}));
    assert_one_line_error(&env.create("rf1rr"), "linux.resources.memory.kernel");
    env.assert_clean("rf1rr", None);
    // -1 (no limit) asks for nothing.
    env.edit(|v| v["linux"]["resources"]["memory"] = json!({"kernel": -1}));
    let r = env.run("rf2", &["true"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    env.assert_clean("rf2", None);
    // memory.use_hierarchy can no longer be turned off (v1), v2 is always hierarchical.
    env.edit(|v| v["linux"]["resources"]["memory"] = json!({"useHierarchy": false}));
    assert_one_line_error(&env.create("rf3"), "linux.resources.memory.useHierarchy");
    env.assert_clean("rf3", None);
    // Huge page limits: written where the hugetlb controller is, refused elsewhere.
    env.edit(|v| {
        v["linux"]["resources"]["memory"] = json!(null);
        v["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "2MB", "limit": 4194304}]);
    });
    env.set_args(&["sleep", "100"]);
    let r = env.rsrun(&["run", "-d", "--bundle", env.bundle.to_str().unwrap(), "rf4"]);
    let cg = Cgroup::resolve(None, "rf4").unwrap();
    if v2() {
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(read("rf4", "hugetlb", "hugetlb.2MB.max"), "4194304");
    } else if cg
        .dirs
        .iter()
        .any(|d| d.controllers.split(',').any(|c| c == "hugetlb"))
    {
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(
            read("rf4", "hugetlb", "hugetlb.2MB.limit_in_bytes"),
            "4194304"
        );
    } else {
        assert_one_line_error(&r, "linux.resources.hugepageLimits");
        assert!(r.stderr.contains("hugetlb"), "{}", r.stderr);
    }
    let _ = env.rsrun(&["delete", "-f", "rf4"]);
    env.assert_clean("rf4", None);
}

/// cgroups.bats "runc run (cgroup v2 resources.unified only)", "(cgroup v2
/// resources.unified override)", "runc run (cgroup v1 + unified resources should fail)",
/// "runc run (cpu.idle)": on v2 the unified map is written as given and wins over the
/// same knob set by a field; on v1 it is refused by name; cpu.idle is written at create.
#[test]
fn unified_resources_and_cpu_idle_at_create() {
    let env = Env::new("rc-unified");
    env.set_args(&["sleep", "100"]);
    env.edit(|v| {
        v["linux"]["resources"]["memory"] = json!({"limit": 33554432});
        v["linux"]["resources"]["pids"] = json!({"limit": 50});
        v["linux"]["resources"]["cpu"] = json!({"idle": 1});
        v["linux"]["resources"]["unified"] =
            json!({"pids.max": "42", "memory.max": "67108864", "memory.high": "60000000"});
    });
    let r = env.rsrun(&["run", "-d", "--bundle", env.bundle.to_str().unwrap(), "un1"]);
    if v2() {
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(read("un1", "pids", "pids.max"), "42");
        assert_eq!(read("un1", "memory", "memory.max"), "67108864");
        // memory.high is page-aligned by the kernel.
        assert_eq!(read("un1", "memory", "memory.high"), "59998208");
        assert_eq!(read("un1", "cpu", "cpu.idle"), "1");
        env.delete_and_assert_clean("un1");
    } else {
        assert_one_line_error(&r, "linux.resources.unified");
        assert!(r.stderr.contains("cgroup v2"), "{}", r.stderr);
        env.assert_clean("un1", None);
        env.edit(|v| {
            v["linux"]["resources"]
                .as_object_mut()
                .unwrap()
                .remove("unified");
        });
        env.run_detached("un2");
        assert_eq!(read("un2", "cpu", "cpu.idle"), "1");
        env.delete_and_assert_clean("un2");
    }
}

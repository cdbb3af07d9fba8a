//! cgroup v2 device control: the device rules compiled to a BPF_PROG_TYPE_CGROUP_DEVICE
//! program (default deny; the last matching rule decides, as v1's list would), attached
//! to the container's cgroup.

use super::device_rules::{DeviceKind, DeviceRule};
use super::Cgroup;
use crate::error::Result;
use crate::sys::bpf::{self, Insn};
use nix::fcntl::OFlag;

const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND_K: u8 = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
const RSH_K: u8 = 0x77; // BPF_ALU64 | BPF_RSH | BPF_K
const MOV_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

fn access_bits(a: &str) -> i32 {
    a.chars()
        .map(|c| match c {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => 0,
        })
        .fold(0, |x, y| x | y)
}

/// Compile the rules. Registers: r2 = device type, r3 = access, r4 = major, r5 = minor.
pub fn compile(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut prog = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    // Last rule first: the first block that matches decides.
    for r in rules.iter().rev() {
        let mut block: Vec<Insn> = Vec::new();
        let mut jumps = Vec::new();
        match r.kind {
            DeviceKind::All => {}
            DeviceKind::Block => {
                jumps.push(block.len());
                block.push(insn(JNE_K, 2, 0, 0, 1));
            }
            DeviceKind::Char => {
                jumps.push(block.len());
                block.push(insn(JNE_K, 2, 0, 0, 2));
            }
            // fifos are not device-controlled
            DeviceKind::Fifo => continue,
        }
        // The immediate is the number's 32 bits (the kernel compares 32-bit values).
        if let Some(m) = r.major {
            jumps.push(block.len());
            block.push(insn(JNE_K, 4, 0, 0, m as i32));
        }
        if let Some(m) = r.minor {
            jumps.push(block.len());
            block.push(insn(JNE_K, 5, 0, 0, m as i32));
        }
        let acc = access_bits(&r.access);
        if acc != 7 {
            block.push(insn(MOV_X, 6, 3, 0, 0));
            block.push(insn(AND_K, 6, 0, 0, !acc & 7));
            jumps.push(block.len());
            block.push(insn(JNE_K, 6, 0, 0, 0));
        }
        block.push(insn(MOV_K, 0, 0, 0, r.allow as i32));
        block.push(insn(EXIT, 0, 0, 0, 0));
        let len = block.len();
        let unconditional = jumps.is_empty();
        for j in jumps {
            block[j].off = (len - j - 1) as i16;
        }
        prog.extend(block);
        if unconditional {
            // This rule matches everything: nothing after it can run (the verifier
            // refuses unreachable instructions).
            return prog;
        }
    }
    prog.push(insn(MOV_K, 0, 0, 0, 0));
    prog.push(insn(EXIT, 0, 0, 0, 0));
    prog
}

/// Load the program for `rules` and attach it to the container's v2 cgroup, in place of
/// any program of rsrun's an earlier attempt left there (a create killed half-way through
/// in a cgroup that existed before): as runc replaces its own, so that only the rules of
/// this container decide. Another program (systemd's for a scope) stays: a device has to
/// pass both.
pub fn attach(cg: &Cgroup, rules: &[DeviceRule]) -> Result<()> {
    let Some(dir) = cg.v2_dir() else {
        return Ok(());
    };
    let prog = bpf::load_device_prog(&compile(rules))?;
    let fd = crate::sys::fs::open(dir, OFlag::O_DIRECTORY | OFlag::O_RDONLY)?;
    let stale: Vec<u32> = bpf::attached_device_progs(&fd, dir)?
        .into_iter()
        // One detached meanwhile has no name left to read: not ours to detach.
        .filter(|id| bpf::prog_name(*id).is_ok_and(|n| n == bpf::PROG_NAME))
        .collect();
    bpf::attach_device_prog(&fd, &prog, dir)?;
    for id in stale {
        bpf::detach_device_prog(&fd, id, dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(v: serde_json::Value) -> Vec<DeviceRule> {
        let spec: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_value(v).unwrap();
        spec.iter()
            .enumerate()
            .map(|(i, r)| DeviceRule::from_spec(i, r).unwrap())
            .collect()
    }

    /// The kernel's verifier accepts the programs of long rule lists (it runs as root,
    /// as the whole suite does). With a verifier log always on, these failed (ENOSPC).
    #[test]
    fn long_rule_lists_load() {
        let mut list = vec![serde_json::json!({"allow": false, "access": "rwm"})];
        for i in 0..100 {
            list.push(serde_json::json!({"allow": true, "type": "c", "major": 200 + i, "minor": 0, "access": "rw"}));
        }
        let mut all = rules(serde_json::Value::Array(list));
        all.extend(crate::cgroups::device_rules::default_allowed());
        bpf::load_device_prog(&compile(&all)).unwrap();
    }

    /// A program the verifier refuses fails in one line that says why.
    #[test]
    fn refused_program_is_explained_in_one_line() {
        let prog = [insn(MOV_K, 0, 0, 0, 0)]; // no exit
        let e = bpf::load_device_prog(&prog).unwrap_err().to_string();
        assert!(!e.contains('\n'), "{e}");
        assert!(e.contains("verifier: ") && e.contains("EINVAL"), "{e}");
    }

    #[test]
    fn deny_all_then_allow_null() {
        let rules = rules(serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rw"}
        ]));
        let p = compile(&rules);
        // prologue 6; pts block: type, major, access(3), mov, exit = 7;
        // null block: type, major, minor, mov, exit = 5; deny-all block: mov, exit = 2
        // (unconditional: no default tail after it)
        assert_eq!(p.len(), 6 + 7 + 5 + 2);
        // the pts block's type check skips the 6 instructions after it
        assert_eq!(p[6], insn(JNE_K, 2, 0, 6, 2));
        // its access mask forbids mknod (bit 1)
        assert_eq!(p[9].imm, 1);
        // the deny-all block returns 0 unconditionally
        assert_eq!(p[18], insn(MOV_K, 0, 0, 0, 0));
        assert_eq!(p.last().unwrap().code, EXIT);
        // without a catch-all rule the program ends in the default deny
        let p = compile(&rules[1..]);
        assert_eq!(p[p.len() - 2], insn(MOV_K, 0, 0, 0, 0));
    }
}

//! The -ENOSYS stub (runc's): a profile whose default action denies answers a syscall
//! *newer than every syscall it names* with ENOSYS instead of the default errno, so
//! programs fall back to older calls as they do on an older kernel (glibc 2.39 tries
//! fchmodat2 first; Docker's profile, written before it existed, would say EPERM and
//! the program would give up). The stub is a short cBPF prefix: per architecture of the
//! filter, load the syscall number and return ENOSYS when it is above the highest number
//! the profile names for that architecture; everything else falls through to the
//! program libseccomp compiled.

use libseccomp::{ScmpArch, ScmpSyscall};

const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JSET_K: u16 = 0x45;
const JA: u16 = 0x05;
const RET_K: u16 = 0x06;
const RET_ERRNO: u32 = 0x0005_0000;
/// The x32 ABI marks its syscall numbers with this bit (they share x86_64's audit arch).
const X32_BIT: u32 = 0x4000_0000;

/// The audit architecture value `seccomp_data.arch` holds for `arch`; `None` for the
/// ones the stub leaves alone (s390's multiplexed numbers need more than a compare).
fn audit_arch(arch: ScmpArch) -> Option<u32> {
    Some(match arch {
        ScmpArch::X8664 | ScmpArch::X32 => 0xc000_003e,
        ScmpArch::X86 => 0x4000_0003,
        ScmpArch::Aarch64 => 0xc000_00b7,
        ScmpArch::Arm => 0x4000_0028,
        ScmpArch::Riscv64 => 0xc000_00f3,
        ScmpArch::Ppc64Le => 0xc000_0015,
        _ => return None,
    })
}

/// The highest syscall number `names` resolve to on `arch` (pseudo-syscalls, which
/// resolve to negative numbers, and unknown names do not count).
fn last_syscall<'a>(arch: ScmpArch, names: impl Iterator<Item = &'a str>) -> Option<u32> {
    names
        .filter_map(|n| ScmpSyscall::from_name_by_arch(n, arch).ok())
        .map(|s| s.as_raw_syscall())
        .filter(|nr| *nr >= 0)
        .map(|nr| nr as u32)
        .max()
}

/// One cBPF instruction, as the kernel's `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Insn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

/// Jump targets, resolved to relative offsets once the stub is laid out.
#[derive(Clone, Copy)]
enum To {
    Next,
    /// Over the next n instructions.
    Skip(usize),
    Section(usize),
    Enosys,
    Filter,
}

/// The stub for the filter's architectures (native first, then `extra`) and the
/// profile's syscall `names`, as bytes to put before libseccomp's program. Empty when
/// no architecture can have one.
pub fn stub(extra: &[ScmpArch], names: &[&str]) -> Vec<u8> {
    let groups = last_per_arch(extra, names);
    if groups.is_empty() {
        return Vec::new();
    }
    Layout::of(&groups).encode()
}

/// An audit arch's last syscall of the plain ABI and of x32's, when named.
struct ArchLast {
    audit: u32,
    plain: Option<u32>,
    x32: Option<u32>,
}

/// The last syscall `names` has on each of the filter's architectures the stub can
/// serve, by audit arch (x86_64 and x32 share one).
fn last_per_arch(extra: &[ScmpArch], names: &[&str]) -> Vec<ArchLast> {
    let mut groups: Vec<ArchLast> = Vec::new();
    for arch in std::iter::once(ScmpArch::native()).chain(extra.iter().copied()) {
        let Some(audit) = audit_arch(arch) else {
            continue;
        };
        let Some(last) = last_syscall(arch, names.iter().copied()) else {
            continue;
        };
        let i = match groups.iter().position(|g| g.audit == audit) {
            Some(i) => i,
            None => {
                groups.push(ArchLast {
                    audit,
                    plain: None,
                    x32: None,
                });
                groups.len() - 1
            }
        };
        if arch == ScmpArch::X32 {
            groups[i].x32 = Some(last);
        } else {
            groups[i].plain = Some(last);
        }
    }
    groups
}

/// The stub laid out as: the arch dispatch, one section per arch, the ENOSYS return;
/// each instruction with its targets, resolved by `encode`.
struct Layout {
    prog: Vec<(u16, To, To, u32)>,
    /// Where each arch's section starts.
    sections: Vec<usize>,
    enosys: usize,
    /// The first instruction after the stub: libseccomp's program.
    filter: usize,
}

impl Layout {
    fn of(groups: &[ArchLast]) -> Layout {
        let mut prog: Vec<(u16, To, To, u32)> = vec![(LD_W_ABS, To::Next, To::Next, 4)];
        for (i, g) in groups.iter().enumerate() {
            prog.push((JEQ_K, To::Section(i), To::Next, g.audit));
        }
        prog.push((JA, To::Filter, To::Filter, 0));
        let mut sections = Vec::new();
        for g in groups {
            sections.push(prog.len());
            prog.push((LD_W_ABS, To::Next, To::Next, 0));
            match (g.plain, g.x32) {
                (Some(plain), Some(x32)) => {
                    // x32 numbers carry X32_BIT: compare each ABI with its own last.
                    prog.push((JSET_K, To::Skip(1), To::Next, X32_BIT));
                    prog.push((JGT_K, To::Enosys, To::Filter, plain));
                    prog.push((JGT_K, To::Enosys, To::Filter, x32));
                }
                (Some(plain), None) if g.audit == 0xc000_003e => {
                    // An x32 call is not this ABI's: leave it to the filter.
                    prog.push((JSET_K, To::Filter, To::Next, X32_BIT));
                    prog.push((JGT_K, To::Enosys, To::Filter, plain));
                }
                (None, Some(x32)) => {
                    prog.push((JSET_K, To::Next, To::Filter, X32_BIT));
                    prog.push((JGT_K, To::Enosys, To::Filter, x32));
                }
                (Some(plain), _) => prog.push((JGT_K, To::Enosys, To::Filter, plain)),
                (None, None) => prog.push((JA, To::Filter, To::Filter, 0)),
            }
        }
        let enosys = prog.len();
        prog.push((RET_K, To::Next, To::Next, RET_ERRNO | libc::ENOSYS as u32));
        let filter = prog.len();
        Layout {
            prog,
            sections,
            enosys,
            filter,
        }
    }

    /// Where `to`, from the instruction at `at`, leads.
    fn target(&self, at: usize, to: To) -> usize {
        match to {
            To::Next => at + 1,
            To::Skip(n) => at + 1 + n,
            To::Section(n) => self.sections[n],
            To::Enosys => self.enosys,
            To::Filter => self.filter,
        }
    }

    /// The instructions as the kernel's `struct sock_filter` bytes, targets made
    /// relative.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prog.len() * 8);
        for (at, (code, jt, jf, k)) in self.prog.iter().enumerate() {
            let rel = |to: To| self.target(at, to) - at - 1;
            let insn = if *code == JA {
                Insn {
                    code: *code,
                    jt: 0,
                    jf: 0,
                    k: rel(*jt) as u32,
                }
            } else if *code == LD_W_ABS || *code == RET_K {
                Insn {
                    code: *code,
                    jt: 0,
                    jf: 0,
                    k: *k,
                }
            } else {
                // The stub is a few instructions per arch: every jump fits in 8 bits.
                Insn {
                    code: *code,
                    jt: rel(*jt).min(255) as u8,
                    jf: rel(*jf).min(255) as u8,
                    k: *k,
                }
            };
            out.extend_from_slice(&insn.code.to_ne_bytes());
            out.push(insn.jt);
            out.push(insn.jf);
            out.extend_from_slice(&insn.k.to_ne_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insns(b: &[u8]) -> Vec<Insn> {
        b.chunks(8)
            .map(|c| Insn {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect()
    }

    /// Run the stub on (arch, nr): Some(errno) when it answers, None when it falls
    /// through to the filter.
    fn eval(b: &[u8], arch: u32, nr: u32) -> Option<u32> {
        let p = insns(b);
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            if pc == p.len() {
                return None;
            }
            let i = p[pc];
            let jump = |c: bool| if c { i.jt as usize } else { i.jf as usize };
            pc += 1 + match i.code {
                LD_W_ABS => {
                    acc = if i.k == 4 { arch } else { nr };
                    0
                }
                JEQ_K => jump(acc == i.k),
                JGT_K => jump(acc > i.k),
                JSET_K => jump(acc & i.k != 0),
                JA => i.k as usize,
                RET_K => return Some(i.k & 0xffff),
                c => panic!("unexpected code {c:#x}"),
            };
        }
    }

    #[test]
    fn newer_syscalls_get_enosys_per_abi() {
        let b = stub(
            &[ScmpArch::X86, ScmpArch::X32],
            &["read", "openat", "close_range"],
        );
        let x86_64 = 0xc000_003e;
        let close_range = 436;
        assert_eq!(eval(&b, x86_64, 0), None, "read goes to the filter");
        assert_eq!(eval(&b, x86_64, close_range), None);
        assert_eq!(
            eval(&b, x86_64, close_range + 16),
            Some(libc::ENOSYS as u32)
        );
        // i386: close_range is 436 there too; openat is 295.
        assert_eq!(eval(&b, 0x4000_0003, 300), None);
        assert_eq!(eval(&b, 0x4000_0003, 500), Some(libc::ENOSYS as u32));
        // x32 numbers carry the x32 bit and are compared with x32's last.
        assert_eq!(eval(&b, x86_64, X32_BIT | 10), None);
        assert_eq!(eval(&b, x86_64, X32_BIT | 1000), Some(libc::ENOSYS as u32));
        // Another architecture falls through.
        assert_eq!(eval(&b, 0xc000_00b7, 9999), None);
    }

    #[test]
    fn native_only_leaves_x32_to_the_filter() {
        let b = stub(&[], &["read", "write"]);
        assert_eq!(eval(&b, 0xc000_003e, 1), None);
        assert_eq!(eval(&b, 0xc000_003e, 2), Some(libc::ENOSYS as u32));
        assert_eq!(eval(&b, 0xc000_003e, 450), Some(libc::ENOSYS as u32));
        assert_eq!(eval(&b, 0xc000_003e, X32_BIT | 450), None);
    }
}

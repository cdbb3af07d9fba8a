//! Reading which cgroup hierarchies are mounted (/proc/self/mountinfo) and where the
//! current process sits in each (/proc/self/cgroup). Pure parsing, unit-tested.

use super::Mode;
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub mountpoint: PathBuf,
    /// The cgroup shown at the mount point (`/` unless the mount is of a sub-cgroup).
    pub root: PathBuf,
    /// v1 controllers (`cpu`, `cpuacct`, `name=systemd`); empty for v2.
    pub controllers: Vec<String>,
    pub v2: bool,
}

/// Undo mountinfo's octal escapes (`\040` for a space).
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("x"), 8)
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup hierarchies in a mountinfo text, first mount of each wins.
pub fn parse_mountinfo(text: &str) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let fstype = post[0];
        let h = match fstype {
            "cgroup2" => Hierarchy {
                mountpoint: PathBuf::from(unescape(pre[4])),
                root: PathBuf::from(unescape(pre[3])),
                controllers: Vec::new(),
                v2: true,
            },
            "cgroup" => Hierarchy {
                mountpoint: PathBuf::from(unescape(pre[4])),
                root: PathBuf::from(unescape(pre[3])),
                controllers: post[2]
                    .split(',')
                    .filter(|o| is_controller(o))
                    .map(String::from)
                    .collect(),
                v2: false,
            },
            _ => continue,
        };
        let dup = out
            .iter()
            .any(|o| o.v2 == h.v2 && o.controllers == h.controllers);
        if !dup {
            out.push(h);
        }
    }
    out
}

fn is_controller(opt: &str) -> bool {
    const NOT: &[&str] = &[
        "rw",
        "ro",
        "nosuid",
        "nodev",
        "noexec",
        "relatime",
        "noatime",
        "clone_children",
        "xattr",
        "noprefix",
        "nsdelegate",
        "memory_recursiveprot",
        "favordynmods",
        "memory_localevents",
        "memory_hugetlb_accounting",
        "cpuset_v2_mode",
    ];
    !NOT.contains(&opt) && !opt.starts_with("release_agent=")
}

pub fn mode(hs: &[Hierarchy]) -> Mode {
    let v1 = hs.iter().any(|h| !h.v2);
    let v2 = hs.iter().any(|h| h.v2);
    match (v1, v2) {
        (true, true) => Mode::Hybrid,
        (true, false) => Mode::V1,
        _ => Mode::V2,
    }
}

/// `/proc/self/cgroup` as controllers → path (`""` is the v2 hierarchy).
pub fn parse_proc_cgroup(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            let ctrl = it.next()?;
            let path = it.next()?;
            Some((ctrl.to_string(), path.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_space() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn controllers_from_super_options() {
        let hs = parse_mountinfo(
            "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
        );
        assert_eq!(hs[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(mode(&hs), Mode::V1);
    }
}

//! Mount options of a `mounts[]` entry → mount(2) flags, propagation flags and data.
//! The table is runc's: flags it knows are flags, everything else is filesystem data.

use nix::mount::MsFlags;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount call itself (MS_BIND, MS_RDONLY, MS_NOSUID, ...).
    pub flags: MsFlags,
    /// Flags to clear (e.g. `rw` after a default `ro`); only meaningful on remount.
    pub cleared: MsFlags,
    /// Propagation changes applied after the mount, in order.
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific data (`mode=755,size=65536k`).
    pub data: String,
    /// Recursive mount attributes (`rro`, `rnosuid`, ...): MOUNT_ATTR_* to set and clear
    /// with mount_setattr(AT_RECURSIVE) after the mount.
    pub rec_set: u64,
    pub rec_clr: u64,
    /// `idmap` / `ridmap`: the bind is id-mapped (recursively for ridmap).
    pub idmap: Option<bool>,
    /// `tmpcopyup`: a tmpfs starts with a copy of the directory it covers.
    pub copyup: bool,
}

pub use crate::sys::fs::{
    MOUNT_ATTR_IDMAP, MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME,
    MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_RDONLY,
    MOUNT_ATTR_RELATIME, MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME,
};

/// A recursive attribute option → (set, clear).
fn recursive(o: &str) -> Option<(u64, u64)> {
    Some(match o {
        "rro" => (MOUNT_ATTR_RDONLY, 0),
        "rrw" => (0, MOUNT_ATTR_RDONLY),
        "rnosuid" => (MOUNT_ATTR_NOSUID, 0),
        "rsuid" => (0, MOUNT_ATTR_NOSUID),
        "rnodev" => (MOUNT_ATTR_NODEV, 0),
        "rdev" => (0, MOUNT_ATTR_NODEV),
        "rnoexec" => (MOUNT_ATTR_NOEXEC, 0),
        "rexec" => (0, MOUNT_ATTR_NOEXEC),
        "rnodiratime" => (MOUNT_ATTR_NODIRATIME, 0),
        "rdiratime" => (0, MOUNT_ATTR_NODIRATIME),
        "rrelatime" | "ratime" | "rnostrictatime" => (MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME),
        "rnoatime" => (MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME),
        "rstrictatime" => (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME),
        // runc clears MOUNT_ATTR_RELATIME, which is 0: nothing changes.
        "rnorelatime" => (0, 0),
        "rnosymfollow" => (MOUNT_ATTR_NOSYMFOLLOW, 0),
        "rsymfollow" => (0, MOUNT_ATTR_NOSYMFOLLOW),
        _ => return None,
    })
}

/// Every option `parse` knows (everything else is filesystem data), as `rsrun features`
/// lists them.
pub const KNOWN: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "tmpcopyup",
    "unbindable",
];

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
    pub fn is_recursive_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND | MsFlags::MS_REC)
    }

    /// Take an option that is no mount(2) flag: propagation, `idmap`/`ridmap`,
    /// `tmpcopyup`, a recursive attribute. False when it is none of those (filesystem
    /// data).
    fn set_other(&mut self, o: &str) -> bool {
        match o {
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => self
                .propagation
                .push(propagation(o).unwrap_or(MsFlags::MS_PRIVATE)),
            "idmap" => self.idmap = Some(false),
            "ridmap" => self.idmap = Some(true),
            "tmpcopyup" => self.copyup = true,
            r => {
                let Some((set, clr)) = recursive(r) else {
                    return false;
                };
                // A later option wins over an earlier one for the same attribute.
                let touched = set
                    | clr
                    | if clr & MOUNT_ATTR__ATIME != 0 {
                        MOUNT_ATTR__ATIME
                    } else {
                        0
                    };
                self.rec_set = (self.rec_set & !touched) | set;
                self.rec_clr = (self.rec_clr & !touched) | clr;
            }
        }
        true
    }
}

/// Parse one mount's option list. Errors are the message for `mounts[i].options`.
pub fn parse(options: &[String]) -> Result<MountOptions, String> {
    let mut out = MountOptions {
        flags: MsFlags::empty(),
        cleared: MsFlags::empty(),
        propagation: Vec::new(),
        data: String::new(),
        rec_set: 0,
        rec_clr: 0,
        idmap: None,
        copyup: false,
    };
    let mut data: Vec<&str> = Vec::new();
    for o in options {
        let (set, clear) = match o.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
            "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "" => return Err("empty option".into()),
            other => {
                if !out.set_other(other) {
                    data.push(other);
                }
                continue;
            }
        };
        out.flags |= set;
        out.flags &= !clear;
        out.cleared |= clear;
        out.cleared &= !set;
    }
    out.data = data.join(",");
    Ok(out)
}

/// A propagation keyword (`rslave`, `private`, ...) as mount(2) flags.
pub fn propagation(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn every_known_option_is_parsed_as_one() {
        for o in KNOWN {
            let parsed = parse(&v(&[o])).unwrap();
            assert_eq!(parsed.data, "", "{o} taken as filesystem data");
        }
        assert!(KNOWN.windows(2).all(|w| w[0] < w[1]), "KNOWN is not sorted");
        assert_eq!(parse(&v(&["rfoo"])).unwrap().data, "rfoo");
    }

    #[test]
    fn flags_and_data_split() {
        let o = parse(&v(&["nosuid", "strictatime", "mode=755", "size=65536k"])).unwrap();
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
    }

    #[test]
    fn later_option_wins() {
        let o = parse(&v(&["ro", "rw"])).unwrap();
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.cleared.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn rbind_and_propagation() {
        let o = parse(&v(&["rbind", "rprivate", "ro"])).unwrap();
        assert!(o.is_recursive_bind());
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
    }

    #[test]
    fn recursive_attributes() {
        let o = parse(&v(&["rbind", "rro", "rnosuid", "rnoatime"])).unwrap();
        assert_eq!(
            o.rec_set,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOATIME
        );
        assert_eq!(o.rec_clr, MOUNT_ATTR__ATIME);
        let o = parse(&v(&["rnorelatime"])).unwrap();
        assert_eq!((o.rec_set, o.rec_clr), (0, 0));
        let o = parse(&v(&["rnoatime", "rnorelatime"])).unwrap();
        assert_eq!(
            (o.rec_set, o.rec_clr),
            (MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME)
        );
        let o = parse(&v(&["rro", "rrw"])).unwrap();
        assert_eq!((o.rec_set, o.rec_clr), (0, MOUNT_ATTR_RDONLY));
        assert_eq!(parse(&v(&["ridmap"])).unwrap().idmap, Some(true));
        let o = parse(&v(&["tmpcopyup", "mode=755"])).unwrap();
        assert!(o.copyup);
        assert_eq!(o.data, "mode=755");
    }
}

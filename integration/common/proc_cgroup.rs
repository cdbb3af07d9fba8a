//! Where a process is in the cgroup tree, as `/proc/PID/cgroup` says. Shared with the CRI
//! crate (integration/cri includes this file by its path).

/// The cgroup path in `text` (a `/proc/PID/cgroup`): the cgroup v2 one (`0::`), or on a
/// hybrid host the name=systemd hierarchy's, whichever comes first; empty if neither.
pub fn v2_or_systemd_path(text: &str) -> String {
    text.lines()
        .find_map(|l| {
            l.strip_prefix("0::")
                .or_else(|| l.strip_prefix("1:name=systemd:"))
        })
        .unwrap_or_default()
        .to_string()
}

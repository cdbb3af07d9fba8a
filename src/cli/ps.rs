//! `rsrun ps`: the container's processes. JSON is the array of host pids (runc); the table
//! is `ps` (with the given arguments, default `-ef`) filtered to the container's pids.

use crate::container::Runtime;
use crate::error::{Error, Result};

pub fn ps(rt: &Runtime, id: &str, json: bool, args: &[String]) -> Result<String> {
    let pids = rt.pids(id)?;
    if json {
        return Ok(serde_json::to_string(&pids).unwrap_or_default() + "\n");
    }
    let args: Vec<String> = if args.is_empty() {
        vec!["-ef".into()]
    } else {
        args.to_vec()
    };
    let mut cmd = std::process::Command::new("ps");
    cmd.args(&args);
    crate::sys::spawn::only_stdio(&mut cmd);
    let out = cmd
        .output()
        .map_err(|e| Error::sys("exec", "ps", crate::error::io_errno(&e)))?;
    if !out.status.success() {
        return Err(Error::container(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    filter(&String::from_utf8_lossy(&out.stdout), &pids)
}

/// Keep the header and the lines whose PID column is one of `pids`.
pub fn filter(table: &str, pids: &[i32]) -> Result<String> {
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or_else(|| Error::container("ps output has no PID column"))?;
    let mut out = format!("{header}\n");
    for l in lines {
        if let Some(p) = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok())
        {
            if pids.contains(&p) {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn filters_by_pid_column() {
        let t = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 08:00 ? 00:00:01 init\nroot 42 1 0 08:00 ? 00:00:00 sleep 100\n";
        assert_eq!(
            super::filter(t, &[42]).unwrap(),
            "UID PID PPID C STIME TTY TIME CMD\nroot 42 1 0 08:00 ? 00:00:00 sleep 100\n"
        );
    }
}

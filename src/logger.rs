//! rsrun's log: `--log FILE` (stderr when absent) in runc's text or JSON line format.
//! JSON lines are `{"level":"error","msg":"…","time":"…"}`; containerd's shim shows the
//! last error line to the user.

use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Logger {
    pub file: Option<PathBuf>,
    pub format: Format,
    pub debug: bool,
}

impl Logger {
    pub fn line(&self, level: &str, msg: &str) -> String {
        let time = crate::clock::now_rfc3339();
        match self.format {
            Format::Json => {
                let v = serde_json::json!({"level": level, "msg": msg, "time": time});
                format!("{v}\n")
            }
            Format::Text => format!("time=\"{time}\" level={level} msg={msg:?}\n"),
        }
    }

    pub fn log(&self, level: &str, msg: &str) {
        if level == "debug" && !self.debug {
            return;
        }
        let line = self.line(level, msg);
        match &self.file {
            Some(f) => {
                let _ = crate::sys::fs::append(f, line.as_bytes());
            }
            None => {
                // Without --log, only warnings and errors go to stderr, as plain text.
                if level != "debug" || self.debug {
                    let _ = std::io::stderr().write_all(line.as_bytes());
                }
            }
        }
    }

    pub fn warn(&self, msg: &str) {
        self.log("warning", msg)
    }
    pub fn debug(&self, msg: &str) {
        self.log("debug", msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_shape() {
        let l = Logger {
            file: None,
            format: Format::Json,
            debug: false,
        };
        let v: serde_json::Value =
            serde_json::from_str(l.line("error", "boom \"x\"").trim()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "boom \"x\"");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }
}

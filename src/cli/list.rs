//! `rsrun list`: runc's table (tab-aligned) or JSON array.

use crate::state::OciState;

pub fn table(items: &[OciState]) -> String {
    let owner = |o: &OciState| {
        if o.owner.is_empty() {
            "root".to_string()
        } else {
            o.owner.clone()
        }
    };
    let rows: Vec<[String; 6]> =
        std::iter::once(["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from))
            .chain(items.iter().map(|s| {
                [
                    s.id.clone(),
                    s.pid.to_string(),
                    s.status.clone(),
                    s.bundle.clone(),
                    s.created.clone(),
                    owner(s),
                ]
            }))
            .collect();
    let mut widths = [0usize; 6];
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len());
        }
    }
    let mut out = String::new();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if i == 5 {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}", w = widths[i] + 4));
            }
        }
        out.push('\n');
    }
    out
}

pub fn json(items: &[OciState]) -> String {
    let v: Vec<serde_json::Value> = items
        .iter()
        .map(|s| {
            let mut v = serde_json::to_value(s).unwrap_or_default();
            v["owner"] = serde_json::Value::String(if s.owner.is_empty() {
                "root".into()
            } else {
                s.owner.clone()
            });
            v
        })
        .collect();
    serde_json::Value::Array(v).to_string() + "\n"
}

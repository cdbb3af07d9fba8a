//! The docs cite only what exists. README.md, docs/*.md and the Makefile's test lists
//! name tests as `module::test` (integration/<module>.rs), `unit.rs::test`,
//! `src/<path>.rs::test` or `cri.rs::test`, code as item paths (`sys::exe::container_env`,
//! `Env::assert_clean`) and files as paths (`src/state.rs`, `scripts/criu.sh`). A test
//! renamed or removed, a function moved, a file deleted: this test names each citation
//! that no longer holds, with the document it is in. The names tests skip under, which
//! the Makefile's skip lists match exactly, are checked the same way.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The documents whose citations are checked.
const DOCUMENTS: &[&str] = &[
    "README.md",
    "docs/design.md",
    "docs/testing.md",
    "docs/security.md",
    "docs/performance.md",
    "Makefile",
];

/// Directories of the repository a path citation may start with.
const ROOTS: &[&str] = &[
    "src/",
    "integration/",
    "scripts/",
    "tests/",
    "bench/",
    "docs/",
];

/// Crates outside this repository whose paths the docs name.
const EXTERNAL_CRATES: &[&str] = &[
    "std",
    "nix",
    "libc",
    "clap",
    "oci_spec",
    "serde",
    "serde_json",
    "caps",
    "libseccomp",
];

/// Where the source files live: the crate, its unit tests, the integration suite and
/// the CRI crate.
const SOURCE_DIRS: &[&str] = &["src", "tests", "integration"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

struct Sources {
    /// (path relative to the repository, text)
    files: Vec<(String, String)>,
}

impl Sources {
    fn load() -> Sources {
        let mut paths = Vec::new();
        for d in SOURCE_DIRS {
            rust_files(&repo().join(d), &mut paths);
        }
        let files = paths
            .into_iter()
            .map(|p| {
                let text = fs::read_to_string(&p).unwrap();
                let rel = p
                    .strip_prefix(repo())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                (rel, text)
            })
            .collect();
        Sources { files }
    }

    fn text(&self, rel: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|(p, _)| p == rel)
            .map(|(_, t)| t.as_str())
    }

    /// Files whose path ends with `/suffix` (or is `suffix`).
    fn ending_with<'a>(&'a self, suffix: &'a str) -> impl Iterator<Item = &'a (String, String)> {
        self.files
            .iter()
            .filter(move |(p, _)| p == suffix || p.ends_with(&format!("/{suffix}")))
    }
}

/// Whether `text` defines an item called `name` (a fn, type, trait, module, constant or
/// macro), or a field or enum variant of that name.
fn defines(text: &str, name: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "fn",
        "struct",
        "enum",
        "trait",
        "type",
        "mod",
        "const",
        "static",
        "macro_rules!",
    ];
    let lines = || text.lines().map(str::trim_start);
    let item = lines().any(|l| {
        let l = l
            .strip_prefix("pub(crate) ")
            .or_else(|| l.strip_prefix("pub "))
            .unwrap_or(l);
        let l = l.strip_prefix("unsafe ").unwrap_or(l);
        KEYWORDS.iter().any(|k| {
            l.strip_prefix(k)
                .and_then(|r| r.strip_prefix(' '))
                .is_some_and(|r| {
                    r.strip_prefix(name).is_some_and(|after| {
                        !after.starts_with(|c: char| c.is_alphanumeric() || c == '_')
                    })
                })
        })
    });
    // An enum variant or struct field: `Name {`, `Name(`, `Name,`, `name: Type`.
    item || lines().any(|l| {
        let l = l.strip_prefix("pub ").unwrap_or(l);
        l.strip_prefix(name).is_some_and(|after| {
            after.starts_with([' ', '(', ',', '{', ':']) && !after.starts_with("::")
        })
    })
}

/// Whether `text` has a test function `name` (`#[test]` among the attributes above
/// `fn name(`).
fn has_test(text: &str, name: &str) -> bool {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines.iter().enumerate().any(|(i, l)| {
        let l = l.strip_prefix("pub ").unwrap_or(l);
        let l = l.strip_prefix("async ").unwrap_or(l);
        let is_fn = l
            .strip_prefix("fn ")
            .and_then(|r| r.strip_prefix(name))
            .is_some_and(|r| r.starts_with('('));
        is_fn
            && lines[..i]
                .iter()
                .rev()
                .take_while(|l| l.starts_with("#[") || l.starts_with("//"))
                .any(|l| *l == "#[test]" || l.starts_with("#[tokio::test"))
    })
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// The citations of one document: words made of identifier and path characters that
/// name a path in the repository, an item path or a test.
fn citations(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let word_char = |c: char| c.is_ascii_alphanumeric() || "_:./<>*-".contains(c);
    for word in text.split(|c: char| !word_char(c)) {
        let word = word
            .trim_end_matches(['.', ':', '-'])
            .trim_start_matches(['.', '-']);
        // Placeholders (`src/<path>`, `integration/<file>.rs`) and globs.
        if word.contains(['<', '>', '*']) || word.is_empty() {
            continue;
        }
        let path_like = ROOTS.iter().any(|r| word.starts_with(r));
        if path_like || word.contains("::") || word.ends_with(".rs") {
            out.insert(word.to_string());
        }
    }
    out
}

/// What is wrong with one citation, if anything.
fn check(src: &Sources, cite: &str) -> Option<String> {
    let (path, items) = match cite.split_once(".rs::") {
        Some((p, rest)) => (Some(format!("{p}.rs")), Some(rest)),
        None if cite.contains("::") => (None, Some(cite)),
        None => (Some(cite.to_string()), None),
    };
    match (path, items) {
        (Some(path), None) => check_path(src, &path),
        (Some(path), Some(test)) => check_test_in_file(src, &path, test),
        (None, Some(items)) => check_item_path(src, items),
        (None, None) => None,
    }
}

fn check_path(src: &Sources, path: &str) -> Option<String> {
    if ROOTS.iter().any(|r| path.starts_with(r)) {
        return (!repo().join(path).exists()).then(|| format!("{path}: no such file"));
    }
    // A file named by its path inside src/ (`sys/exe.rs`) or by its name (`fs.rs`).
    (src.ending_with(path).next().is_none()).then(|| format!("{path}: no such source file"))
}

fn check_test_in_file(src: &Sources, path: &str, test: &str) -> Option<String> {
    let files: Vec<_> = if ROOTS.iter().any(|r| path.starts_with(r)) {
        src.text(path)
            .map(|t| (path.to_string(), t.to_string()))
            .into_iter()
            .collect()
    } else {
        src.ending_with(path).cloned().collect()
    };
    if files.is_empty() {
        return Some(format!("{path}::{test}: no such source file {path}"));
    }
    (!files.iter().any(|(_, t)| has_test(t, test)))
        .then(|| format!("{path}::{test}: no #[test] fn {test} in {path}"))
}

/// `module::test` for integration/<module>.rs, a prefix filter (`checkpoint::systemd_`),
/// or an item path resolved from src/ or integration/ (`process::channel::tests::x`,
/// `common::skip`), or anchored at a type (`Env::wait_status`).
fn check_item_path(src: &Sources, items: &str) -> Option<String> {
    let segs: Vec<&str> = items.split("::").collect();
    if !segs.iter().all(|s| is_ident(s)) || EXTERNAL_CRATES.contains(&segs[0]) {
        return None;
    }
    if let [module, test] = segs[..] {
        if let Some(text) = src.text(&format!("integration/{module}.rs")) {
            if test.ends_with('_') {
                let prefix = format!("fn {test}");
                return (!text.contains(&prefix))
                    .then(|| format!("{items}: no test in integration/{module}.rs starts so"));
            }
            return (!has_test(text, test))
                .then(|| format!("{items}: no #[test] fn {test} in integration/{module}.rs"));
        }
    }
    for root in ["src", "integration"] {
        let mut dir = root.to_string();
        let mut file = None;
        let mut rest = &segs[..];
        while let Some((first, tail)) = rest.split_first() {
            let as_file = format!("{dir}/{first}.rs");
            let as_dir = format!("{dir}/{first}/mod.rs");
            let found = [as_file, as_dir]
                .into_iter()
                .find(|f| src.text(f).is_some());
            match found {
                Some(f) => {
                    file = Some(f);
                    dir = format!("{dir}/{first}");
                    rest = tail;
                }
                None => break,
            }
        }
        if let Some(file) = file {
            let text = src.text(&file).unwrap();
            return rest
                .iter()
                .find(|s| !defines(text, s))
                .map(|s| format!("{items}: {s} is not defined in {file}"));
        }
    }
    // Not a module path: a type and what its impl blocks define (`Runtime::resolve_cgroup`).
    let (ty, members) = segs.split_first().unwrap();
    let impls: Vec<&str> = src
        .files
        .iter()
        .filter(|(_, t)| defines(t, ty) && implements(t, ty))
        .map(|(_, t)| t.as_str())
        .collect();
    if impls.is_empty() {
        return Some(format!(
            "{items}: no type {ty} with an impl block in {SOURCE_DIRS:?}"
        ));
    }
    members
        .iter()
        .find(|m| !impls.iter().any(|t| defines(t, m)))
        .map(|m| format!("{items}: {ty} has no {m}"))
}

/// Whether `text` has an impl block for the type `ty` (`impl Ty {`, `impl<'a> Ty<'a>`,
/// `impl Trait for Ty`).
fn implements(text: &str, ty: &str) -> bool {
    text.lines().map(str::trim_start).any(|l| {
        l.starts_with("impl")
            && l.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|w| w == ty)
            && l.trim_end().ends_with('{')
    })
}

#[test]
fn every_test_item_and_file_the_docs_cite_exists() {
    let src = Sources::load();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for doc in DOCUMENTS {
        let text = fs::read_to_string(repo().join(doc)).unwrap();
        for cite in citations(&text) {
            checked += 1;
            if let Some(why) = check(&src, &cite) {
                wrong.push(format!("{doc}: {why}"));
            }
        }
    }
    assert!(
        checked > 300,
        "only {checked} citations found: is the parser broken?"
    );
    assert!(
        wrong.is_empty(),
        "citations that do not hold (a renamed test or moved item: cite its new name; a \
         crate outside this repository: add it to EXTERNAL_CRATES; a placeholder: write \
         it as `<module>::<test>`):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_checker_refuses_what_does_not_exist() {
    let src = Sources::load();
    for bad in [
        "lifecycle::no_such_test",
        "bad_input::refused",
        "unit.rs::no_such_test",
        "src/no_such_file.rs",
        "process::channel::tests::no_such_test",
        "Env::no_such_method",
        "Runtime::assert_clean",
        "no_such_file.rs",
    ] {
        assert!(check(&src, bad).is_some(), "{bad} was accepted");
    }
    for good in [
        "lifecycle::create_start_kill_delete",
        "unit.rs::default_spec_is_valid",
        "process::channel::tests::oversized_frame_refused",
        "Env::assert_clean",
        "sys/exe.rs",
        "src/state.rs",
        "common::skip",
    ] {
        assert_eq!(check(&src, good), None, "{good}");
    }
}

/// The names tests skip under (`common::skip`, and the `*_or_skip`/`systemd_booted`
/// helpers that call it): `RSRUN_ALLOWED_SKIPS` and the Makefile's lists match them
/// exactly, so each is the `module::test` of a test in the file that skips, and none is a
/// bare name the lists could not check.
#[test]
fn every_skip_names_a_test_of_its_module() {
    let src = Sources::load();
    let mut wrong = Vec::new();
    let mut named = 0;
    for (path, text) in &src.files {
        let Some(module) = path
            .strip_prefix("integration/")
            .and_then(|p| p.strip_suffix(".rs"))
            .filter(|m| !m.contains('/'))
        else {
            continue;
        };
        for (i, quoted) in text.split('"').enumerate() {
            // Odd pieces are inside a string literal.
            if i % 2 == 0 {
                continue;
            }
            let before = text.split('"').nth(i - 1).unwrap_or("").trim_end();
            let in_skip_call = before.ends_with("skip(") || before.ends_with("systemd_booted(");
            match quoted.split_once("::") {
                Some((m, test))
                    if is_ident(m)
                        && is_ident(test)
                        && src.text(&format!("integration/{m}.rs")).is_some() =>
                {
                    named += 1;
                    if m != module || !has_test(text, test) {
                        wrong.push(format!("{path}: \"{quoted}\" is no test of {module}"));
                    }
                }
                _ if in_skip_call => wrong.push(format!(
                    "{path}: skip name \"{quoted}\" is not module::test"
                )),
                _ => {}
            }
        }
    }
    assert!(
        named > 30,
        "only {named} skip names found: is the parser broken?"
    );
    assert!(
        wrong.is_empty(),
        "skip names that name no test:\n{}",
        wrong.join("\n")
    );
}

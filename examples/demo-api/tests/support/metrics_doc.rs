//! The README's "Metrics" table as data, and the checks against it. Plain std, included with
//! `#[path]` by demo-api's `tests/readme_metrics.rs` (the table against every metric macro in
//! `crates/`) and by both quickstarts' `tests/metrics.rs` (the table against `GET /metrics`),
//! so the README is the one list: a metric added to keygate without a row, or a row whose
//! metric no longer appears, fails a test.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace README, read at compile time (a change to it rebuilds the tests).
pub(crate) const README: &str = include_str!("../../../../README.md");

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Documented {
    /// e.g. `keygate_cache_total`.
    pub(crate) name: String,
    /// `counter`, `gauge` or `histogram`.
    pub(crate) kind: String,
    /// Each label and the values it can take.
    pub(crate) labels: BTreeMap<String, BTreeSet<String>>,
}

/// The text between backticks in `s`, in order.
fn backticked(s: &str) -> Vec<&str> {
    s.split('`').skip(1).step_by(2).collect()
}

/// The rows of the README's "Metrics" table. Panics when the section or its rows are missing.
pub(crate) fn documented() -> Vec<Documented> {
    let section = README
        .split("\n## Metrics\n")
        .nth(1)
        .expect("README.md has a \"## Metrics\" section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let rows: Vec<Documented> = section
        .lines()
        .filter(|l| l.starts_with("| `keygate_"))
        .map(|line| {
            let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
            assert!(cells.len() >= 4, "a metrics row has 4 cells: {line}");
            let name = backticked(cells[0])[0].to_owned();
            let kind = cells[1].trim().to_owned();
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind.as_str()),
                "{name}: type {kind:?} is not counter, gauge or histogram"
            );
            let mut labels = BTreeMap::new();
            for part in cells[2].split(';') {
                let ticks = backticked(part);
                if let Some((key, values)) = ticks.split_first() {
                    assert!(!values.is_empty(), "{name}: label {key} lists no values");
                    labels.insert(
                        (*key).to_owned(),
                        values.iter().map(|v| (*v).to_owned()).collect(),
                    );
                }
            }
            Documented { name, kind, labels }
        })
        .collect();
    assert!(!rows.is_empty(), "README's Metrics table has no rows");
    rows
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every metric named by a `counter!`, `gauge!` or `histogram!` in the sources of the
/// workspace's `crates/*/src`, with its type: name → (type, where).
pub(crate) fn emitted_in_sources() -> BTreeMap<String, (String, String)> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates");
    let mut files = Vec::new();
    for krate in std::fs::read_dir(&crates)
        .expect("crates/ is readable")
        .flatten()
    {
        rust_files(&krate.path().join("src"), &mut files);
    }
    assert!(!files.is_empty(), "no sources under {}", crates.display());
    let mut found = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a source file is readable");
        for kind in ["counter", "gauge", "histogram"] {
            let call = format!("{kind}!(");
            for (at, _) in text.match_indices(&call) {
                // Not `describe_counter!(` and the like.
                let before = text[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let rest = text[at + call.len()..].trim_start();
                let name = rest
                    .strip_prefix('"')
                    .and_then(|r| r.split('"').next())
                    .unwrap_or_else(|| {
                        panic!(
                            "{}: a {kind}! whose name is not a string literal",
                            file.display()
                        )
                    });
                found.insert(
                    name.to_owned(),
                    (kind.to_owned(), file.display().to_string()),
                );
            }
        }
    }
    found
}

/// One sample line of the text format: name, labels, value.
fn parse_sample(line: &str) -> Option<(&str, Vec<(String, String)>)> {
    let (series, _value) = line.rsplit_once(' ')?;
    let Some((name, labels)) = series.split_once('{') else {
        return Some((series, Vec::new()));
    };
    let labels = labels.strip_suffix('}')?;
    let mut out = Vec::new();
    let mut rest = labels;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => value.push(chars.next()?.1),
                (_, c) => value.push(c),
            }
        };
        out.push((key.trim_start_matches(',').to_owned(), value));
        rest = after[end + 1..].trim_start_matches(',');
    }
    Some((name, out))
}

/// What is wrong with a Prometheus text exposition against the table: a documented metric
/// with no sample, a `keygate_` series, type, label or label value the table lacks.
pub(crate) fn problems(exposition: &str, documented: &[Documented]) -> Vec<String> {
    let doc = |name: &str| documented.iter().find(|d| d.name == name);
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for line in exposition.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Some(d) = doc(name) {
                if d.kind != kind {
                    problems.push(format!("{name} is a {kind}, documented as a {}", d.kind));
                }
            } else if name.starts_with("keygate_") {
                problems.push(format!("{name} ({kind}) is not in the README's table"));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let Some((series, labels)) = parse_sample(line) else {
            problems.push(format!("cannot parse the sample line {line:?}"));
            continue;
        };
        if !series.starts_with("keygate_") {
            continue;
        }
        // A histogram's series are NAME_bucket{le}, NAME_sum and NAME_count.
        let found = doc(series).map(|d| (d, false)).or_else(|| {
            ["_bucket", "_sum", "_count"].iter().find_map(|s| {
                let d = doc(series.strip_suffix(s)?)?;
                (d.kind == "histogram").then_some((d, true))
            })
        });
        let Some((d, histogram_part)) = found else {
            problems.push(format!("series {series} is not in the README's table"));
            continue;
        };
        seen.insert(d.name.clone());
        for (key, value) in labels {
            if histogram_part && key == "le" {
                continue;
            }
            match d.labels.get(&key) {
                None => problems.push(format!("{series}: label {key} is not documented")),
                Some(values) if !values.contains(&value) => problems.push(format!(
                    "{series}: {key}=\"{value}\" is not among the documented values {values:?}"
                )),
                Some(_) => {}
            }
        }
    }
    for d in documented {
        if !seen.contains(&d.name) {
            problems.push(format!("{} is documented but has no sample", d.name));
        }
    }
    problems
}

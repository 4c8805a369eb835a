//! The README's "Metrics" table is the list of every metric keygate emits: checked here
//! against the metric macros in `crates/*/src`, and by the quickstarts' `tests/metrics.rs`
//! against `GET /metrics` after traffic.

#[path = "support/metrics_doc.rs"]
mod metrics_doc;

use metrics_doc::{documented, emitted_in_sources, problems};

#[test]
fn the_readme_lists_every_metric_keygate_emits_with_its_type() {
    let documented = documented();
    let emitted = emitted_in_sources();
    let mut wrong = Vec::new();
    for (name, (kind, file)) in &emitted {
        match documented.iter().find(|d| &d.name == name) {
            None => wrong.push(format!(
                "{name} ({kind}, {file}) has no row in README's Metrics"
            )),
            Some(d) if &d.kind != kind => wrong.push(format!(
                "{name} is a {kind} ({file}), README says {}",
                d.kind
            )),
            Some(_) => {}
        }
    }
    for d in &documented {
        if !emitted.contains_key(&d.name) {
            wrong.push(format!("README documents {}, which nothing emits", d.name));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(
        emitted.len() >= 8,
        "the source scan found too few metrics: {emitted:?}"
    );
}

#[test]
fn the_exposition_check_catches_what_the_table_lacks() {
    let documented = documented();
    let mut text = String::new();
    for d in &documented {
        text.push_str(&format!("# TYPE {} {}\n", d.name, d.kind));
        let labels: Vec<String> = d
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", v.iter().next().unwrap()))
            .collect();
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", labels.join(","))
        };
        if d.kind == "histogram" {
            let with_le = if labels.is_empty() {
                "{le=\"+Inf\"}".to_owned()
            } else {
                format!("{},le=\"+Inf\"}}", labels.trim_end_matches('}'))
            };
            text.push_str(&format!("{}_bucket{with_le} 1\n", d.name));
            text.push_str(&format!("{}_sum{labels} 0.5\n", d.name));
            text.push_str(&format!("{}_count{labels} 1\n", d.name));
        } else {
            text.push_str(&format!("{}{labels} 1\n", d.name));
        }
    }
    text.push_str("other_metric_total 3\n");
    assert_eq!(problems(&text, &documented), Vec::<String>::new(), "{text}");

    let first = &documented[0];
    for (extra, expect) in [
        ("keygate_new_thing_total 1\n", "keygate_new_thing_total"),
        (
            "keygate_verifications_total{outcome=\"surprise\"} 1\n",
            "surprise",
        ),
        ("keygate_hash_seconds_count{key_id=\"x\"} 1\n", "key_id"),
    ] {
        let found = problems(&format!("{text}{extra}"), &documented);
        assert!(
            found.iter().any(|p| p.contains(expect)),
            "{extra:?} went unnoticed: {found:?}"
        );
    }
    let without_first: String = text
        .lines()
        .filter(|l| !l.contains(&first.name))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(problems(&without_first, &documented)
        .iter()
        .any(|p| p.contains(&first.name) && p.contains("no sample")));
}

#[test]
fn metrics_handle_can_be_taken_twice() {
    let a = demo_api::metrics_handle();
    let b = demo_api::metrics_handle();
    // Both render (nothing recorded yet in this process); neither call panicked.
    assert_eq!(a.render(), b.render());
}

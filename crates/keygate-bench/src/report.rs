//! The result table.

use std::fmt::Write;

/// Which bare framework a row is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Axum,
    Actix,
    Django,
    None,
}

/// One line of the table.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) key: &'static str,
    pub(crate) scenario: String,
    pub(crate) family: Family,
    pub(crate) rps: Option<f64>,
    pub(crate) p50_us: Option<f64>,
    pub(crate) p99_us: Option<f64>,
    /// Server CPU, in cores (1.0 = one core busy all the time).
    pub(crate) server_cpu: Option<f64>,
    /// Server CPU time per request, in microseconds.
    pub(crate) cpu_per_req_us: Option<f64>,
    pub(crate) ratio: Option<f64>,
    pub(crate) target: String,
    pub(crate) met: Option<bool>,
    pub(crate) notes: Vec<String>,
}

impl Row {
    pub(crate) fn new(key: &'static str, scenario: impl Into<String>, family: Family) -> Self {
        Row {
            key,
            scenario: scenario.into(),
            family,
            rps: None,
            p50_us: None,
            p99_us: None,
            server_cpu: None,
            cpu_per_req_us: None,
            ratio: None,
            target: String::new(),
            met: None,
            notes: Vec::new(),
        }
    }
}

/// A latency in readable units.
pub(crate) fn latency(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

fn rate(rps: f64) -> String {
    if rps >= 100.0 {
        let n = rps.round() as u64;
        let s = n.to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else {
        format!("{rps:.1}")
    }
}

/// Server CPU per request, readable.
fn cpu_per_req(us: f64) -> String {
    if us < 100.0 {
        format!("{us:.1} µs")
    } else {
        latency(us)
    }
}

/// Renders the rows as one markdown table.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut s = String::new();
    s.push_str(
        "| scenario | req/s | p50 | p99 | server CPU | CPU/req | × bare | target | met | notes |\n",
    );
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---|:---:|---|\n");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.scenario,
            r.rps.map(rate).unwrap_or_else(|| "—".into()),
            r.p50_us.map(latency).unwrap_or_else(|| "—".into()),
            r.p99_us.map(latency).unwrap_or_else(|| "—".into()),
            r.server_cpu
                .map(|c| format!("{:.0}%", c * 100.0))
                .unwrap_or_else(|| "—".into()),
            r.cpu_per_req_us
                .map(cpu_per_req)
                .unwrap_or_else(|| "—".into()),
            r.ratio
                .map(|x| format!("{x:.2}"))
                .unwrap_or_else(|| "—".into()),
            if r.target.is_empty() {
                "—"
            } else {
                &r.target
            },
            match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "—",
            },
            r.notes.join("; "),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_pick_a_readable_unit() {
        assert_eq!(latency(812.4), "812 µs");
        assert_eq!(latency(1_234.0), "1.23 ms");
        assert_eq!(latency(2_500_000.0), "2.50 s");
    }

    #[test]
    fn rates_are_grouped_by_thousands() {
        assert_eq!(rate(1_234_567.4), "1,234,567");
        assert_eq!(rate(950.0), "950");
        assert_eq!(rate(42.25), "42.2");
    }

    #[test]
    fn a_row_without_figures_renders_dashes() {
        let t = table(&[Row::new("x", "nothing", Family::None)]);
        assert!(t
            .lines()
            .nth(2)
            .unwrap()
            .starts_with("| nothing | — | — | — | — | — | — |"));
    }
}

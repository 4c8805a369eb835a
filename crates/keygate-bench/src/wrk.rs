//! Driving `wrk` (Debian's package) and reading its report.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::children::{self, Proc};

/// One wrk run's figures.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WrkReport {
    pub(crate) requests: u64,
    pub(crate) seconds: f64,
    pub(crate) rps: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    /// Responses that were not 2xx/3xx.
    pub(crate) non_2xx: u64,
    /// connect + read + write + timeout errors.
    pub(crate) socket_errors: u64,
}

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct WrkSpec {
    pub(crate) url: String,
    pub(crate) connections: u32,
    pub(crate) duration: Duration,
    pub(crate) headers: Vec<String>,
    /// A Lua script and its arguments.
    pub(crate) script: Option<(PathBuf, Vec<String>)>,
    /// taskset CPU list for the load generator.
    pub(crate) cpus: Option<String>,
}

/// Makes sure `wrk` is installed (installs Debian's package when missing and we are root).
pub(crate) fn ensure_installed() -> Result<()> {
    let present = |()| {
        Command::new("wrk")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    if present(()) {
        return Ok(());
    }
    eprintln!("keygate-bench: wrk not found; installing Debian's package (apt-get install -y wrk)");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "wrk"])
            .stdout(Stdio::null())
            .status()
    };
    if !install().is_ok_and(|s| s.success()) {
        let _ = Command::new("apt-get")
            .args(["update", "-qq"])
            .stdout(Stdio::null())
            .status();
        let _ = install();
    }
    if !present(()) {
        bail!(
            "wrk is not installed and `apt-get install -y wrk` failed; install wrk and run again"
        );
    }
    Ok(())
}

/// Starts wrk (one thread) in the background.
pub(crate) fn start(spec: &WrkSpec) -> Result<Proc> {
    let mut cmd = children::command(Path::new("wrk"), spec.cpus.as_deref());
    cmd.arg("-t1")
        .arg(format!("-c{}", spec.connections))
        .arg(format!("-d{}s", spec.duration.as_secs().max(1)))
        .arg("--timeout")
        .arg("10s")
        .arg("--latency");
    for h in &spec.headers {
        cmd.arg("-H").arg(h);
    }
    if let Some((script, _)) = &spec.script {
        cmd.arg("-s").arg(script);
    }
    cmd.arg(&spec.url);
    if let Some((_, args)) = &spec.script {
        cmd.arg("--").args(args);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Proc::spawn(&mut cmd, "wrk")
}

/// Waits for a started wrk and parses its report.
pub(crate) fn finish(proc: Proc, spec: &WrkSpec) -> Result<WrkReport> {
    let (out, _) = proc.wait_output(spec.duration + Duration::from_secs(30))?;
    parse(&out).with_context(|| format!("reading wrk's report:\n{out}"))
}

/// Runs wrk to completion.
pub(crate) fn run(spec: &WrkSpec) -> Result<WrkReport> {
    let p = start(spec)?;
    finish(p, spec)
}

/// A latency as wrk prints it (`812.00us`, `1.23ms`, `2.00s`, `1.50m`), in microseconds.
fn latency_us(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    Some(n * scale)
}

/// Parses wrk's report (`--latency` output).
pub(crate) fn parse(out: &str) -> Result<WrkReport> {
    let mut rps = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut requests = None;
    let mut seconds = None;
    let mut non_2xx = 0;
    let mut socket_errors = 0;
    for line in out.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            rps = v.trim().parse::<f64>().ok();
        } else if let Some(v) = line.strip_prefix("50%") {
            p50 = latency_us(v);
        } else if let Some(v) = line.strip_prefix("99%") {
            p99 = latency_us(v);
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            socket_errors = v
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum();
        } else if line.contains(" requests in ") {
            // "680000 requests in 10.00s, 80.00MB read"
            let mut words = line.split_whitespace();
            requests = words.next().and_then(|w| w.parse::<u64>().ok());
            seconds = words
                .nth(2)
                .and_then(|w| latency_us(w.trim_end_matches(',')))
                .map(|us| us / 1e6);
        }
    }
    match (rps, p50, p99, requests, seconds) {
        (Some(rps), Some(p50_us), Some(p99_us), Some(requests), Some(seconds)) => Ok(WrkReport {
            requests,
            seconds,
            rps,
            p50_us,
            p99_us,
            non_2xx,
            socket_errors,
        }),
        _ => bail!("wrk's output lacks Requests/sec, the 50%/99% latencies or the request count"),
    }
}

/// Lua for wrk: each request carries `Authorization: Bearer <token>` with the next token of
/// the file given as the script's argument (cycling).
pub(crate) const TOKEN_FILE_LUA: &str = r#"
local tokens = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do
    tokens[#tokens + 1] = line
  end
end
function request()
  i = i % #tokens + 1
  return wrk.format("GET", "/", { ["Authorization"] = "Bearer " .. tokens[i] }, nil)
end
"#;

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 10s test @ http://127.0.0.1:40411/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   468.35us  123.45us   5.67ms   90.12%
    Req/Sec    68.12k     3.21k   72.00k    80.00%
  Latency Distribution
     50%  450.00us
     75%  500.00us
     90%  600.00us
     99%    1.20ms
  680123 requests in 10.00s, 80.00MB read
  Non-2xx or 3xx responses: 123
  Socket errors: connect 0, read 2, write 0, timeout 12
Requests/sec:  68012.30
Transfer/sec:      8.00MB
";

    #[test]
    fn reads_throughput_percentiles_and_errors() {
        let r = parse(REPORT).unwrap();
        assert_eq!(r.requests, 680_123);
        assert!((r.seconds - 10.0).abs() < 1e-9);
        assert!((r.rps - 68_012.30).abs() < 1e-6);
        assert!((r.p50_us - 450.0).abs() < 1e-9);
        assert!((r.p99_us - 1_200.0).abs() < 1e-9);
        assert_eq!(r.non_2xx, 123);
        assert_eq!(r.socket_errors, 14);
    }

    #[test]
    fn a_clean_run_has_no_errors() {
        let clean: String = REPORT
            .lines()
            .filter(|l| !l.contains("Non-2xx") && !l.contains("Socket errors"))
            .map(|l| format!("{l}\n"))
            .collect();
        let r = parse(&clean).unwrap();
        assert_eq!((r.non_2xx, r.socket_errors), (0, 0));
    }

    #[test]
    fn latency_units_are_converted_to_microseconds() {
        assert_eq!(latency_us("812.00us"), Some(812.0));
        assert_eq!(latency_us("1.50ms"), Some(1_500.0));
        assert_eq!(latency_us("2.00s"), Some(2_000_000.0));
        assert_eq!(latency_us("1.00m"), Some(60_000_000.0));
        assert_eq!(latency_us("fast"), None);
    }

    #[test]
    fn output_without_a_report_is_an_error() {
        assert!(parse("unable to connect to 127.0.0.1:1 Connection refused").is_err());
    }
}

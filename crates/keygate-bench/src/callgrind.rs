//! What one request costs each server, in instructions counted by callgrind: deterministic
//! where the load harness's ratios move by a few percent from run to run.
//!
//! Each server runs under `valgrind --tool=callgrind` twice: once answering `few` requests,
//! once answering `many`, all on one keep-alive connection and each with the `Authorization:
//! Bearer` header the load harness sends. Both runs count the same start-up (keygate's one
//! argon2 check included) and the same shutdown, so `(total(many) − total(few)) / (many − few)`
//! is what one request costs. A server's figure minus its bare framework's is what its
//! authentication adds to a request.
//!
//! ```text
//! cargo run --release -p keygate-bench -- instructions
//! ```
//!
//! The counts are of user-space instructions in the server process (the kernel's share of a
//! request, about the same for every server, is not counted), on one connection (the load
//! harness spreads its requests over 32, so per-wake-up costs of the runtime weigh a little
//! more here).

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

use crate::children::{self, Proc};
use crate::servers::{ServerKind, READY};

/// The servers measured, each with the bare framework it is compared to.
const SERVERS: [(ServerKind, ServerKind); 8] = [
    (ServerKind::AxumBare, ServerKind::AxumBare),
    (ServerKind::AxumTowerHttp, ServerKind::AxumBare),
    (ServerKind::AxumHashMap, ServerKind::AxumBare),
    (ServerKind::AxumRequiredSteps, ServerKind::AxumBare),
    (ServerKind::AxumKeygate, ServerKind::AxumBare),
    (ServerKind::ActixBare, ServerKind::ActixBare),
    (ServerKind::ActixHttpauth, ServerKind::ActixBare),
    (ServerKind::ActixKeygate, ServerKind::ActixBare),
];

/// How long one run under valgrind may take (start-up with argon2 under callgrind included).
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// Measures every server of [`SERVERS`] and prints (and writes to `out`) a markdown table.
pub(crate) fn measure(few: u32, many: u32, out: Option<&Path>) -> Result<()> {
    ensure!(
        many > few,
        "--many ({many}) must be larger than --few ({few})"
    );
    ensure_valgrind()?;
    children::install_interrupt_handler()?;
    let exe = std::env::current_exe()?;
    let dir = children::ScratchDir::create(
        std::env::temp_dir().join(format!("keygate-bench-callgrind-{}", std::process::id())),
    )?;
    let per_request = measure_in(&exe, dir.path(), few, many).inspect_err(|_| {
        // A child killed by Ctrl-C fails the run: let the handler report and exit instead.
        children::stop_if_interrupted_soon();
    })?;
    drop(dir);
    let table = table(&per_request, few, many);
    print!("{table}");
    if let Some(path) = out {
        fs::write(path, &table).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn measure_in(exe: &Path, dir: &Path, few: u32, many: u32) -> Result<Vec<(ServerKind, f64)>> {
    let mut per_request = Vec::new();
    for (kind, _) in SERVERS {
        let (a, b) = (total(exe, dir, kind, few)?, total(exe, dir, kind, many)?);
        let cost = per_request_cost(a, b, few, many)
            .with_context(|| format!("{kind:?}: {few} requests counted {a}, {many} counted {b}"))?;
        eprintln!("keygate-bench: {kind:?}: {cost:.0} instructions per request");
        per_request.push((kind, cost));
    }
    Ok(per_request)
}

/// `(total(many) − total(few)) / (many − few)`; `None` when the larger run counted less.
pub(crate) fn per_request_cost(
    few_total: u64,
    many_total: u64,
    few: u32,
    many: u32,
) -> Option<f64> {
    let extra = many_total.checked_sub(few_total)?;
    let requests = many.checked_sub(few).filter(|&n| n > 0)?;
    Some(extra as f64 / f64::from(requests))
}

/// The markdown table: instructions per request, and over the bare framework.
fn table(per_request: &[(ServerKind, f64)], few: u32, many: u32) -> String {
    let cost = |k: ServerKind| per_request.iter().find(|(s, _)| *s == k).map(|(_, c)| *c);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Instructions per request (callgrind, one keep-alive connection, {few} and {many} \
         requests per run):\n"
    );
    let _ = writeln!(t, "| server | per request | over bare |");
    let _ = writeln!(t, "|---|---:|---:|");
    for (kind, bare) in SERVERS {
        let Some(c) = cost(kind) else { continue };
        let over = match cost(bare) {
            Some(b) if kind != bare => format!("{:+.0}", c - b),
            _ => "—".to_owned(),
        };
        let _ = writeln!(t, "| {} | {c:.0} | {over} |", kind.cli_name());
    }
    t
}

fn ensure_valgrind() -> Result<()> {
    let ok = Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ensure!(
        ok,
        "valgrind is not installed (Debian: apt-get install valgrind)"
    );
    Ok(())
}

/// The instructions one run of `kind` under callgrind counts, answering `requests` requests.
fn total(exe: &Path, dir: &Path, kind: ServerKind, requests: u32) -> Result<u64> {
    let name = kind.cli_name();
    let run_dir = dir.join(format!("{name}-{requests}"));
    // Not `create_dir_all`: after Ctrl-C removed `dir`, this fails instead of recreating it.
    fs::create_dir(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    let profile: PathBuf = run_dir.join("callgrind.out");
    let mut cmd = Command::new("valgrind");
    cmd.arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", profile.display()))
        .arg(exe)
        .arg("serve")
        .arg(&name)
        .arg("--dir")
        .arg(&run_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut proc = Proc::spawn(&mut cmd, &format!("{name} under callgrind"))?;
    let line = proc.wait_for_line(READY, RUN_LIMIT)?;
    let v: serde_json::Value = serde_json::from_str(&line).context("reading the ready line")?;
    let port = v["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .context("no port in the ready line")?;
    let token = v["token"].as_str().unwrap_or_default().to_owned();
    send(SocketAddr::from(([127, 0, 0, 1], port)), &token, requests)
        .with_context(|| format!("{name}: sending {requests} requests"))?;
    proc.close_stdin_and_wait(RUN_LIMIT)?;
    let text =
        fs::read_to_string(&profile).with_context(|| format!("reading {}", profile.display()))?;
    totals(&text).with_context(|| format!("no totals in {}", profile.display()))
}

/// Sends `requests` requests on one keep-alive connection; each must be answered 200.
fn send(addr: SocketAddr, token: &str, requests: u32) -> Result<()> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let request =
        format!("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n");
    for i in 0..requests {
        writer.write_all(request.as_bytes())?;
        let status = read_response(&mut reader)?;
        ensure!(status == 200, "request {i} was answered {status}");
    }
    Ok(())
}

/// Reads one response with a `Content-Length` body; returns its status.
fn read_response(reader: &mut impl BufRead) -> Result<u16> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("not a status line: {line:?}"))?;
    let mut length = 0usize;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("the connection closed inside a response");
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().context("a bad content-length")?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(status)
}

/// The `totals:` (or, from older valgrind, `summary:`) line of a callgrind profile: the
/// instructions of the whole run.
pub(crate) fn totals(profile: &str) -> Option<u64> {
    profile.lines().find_map(|l| {
        l.strip_prefix("totals:")
            .or_else(|| l.strip_prefix("summary:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cost_of_a_request_is_the_difference_of_two_runs_over_their_difference_in_requests() {
        assert_eq!(per_request_cost(1_000, 21_000, 100, 2_100), Some(10.0));
        assert_eq!(per_request_cost(21_000, 1_000, 100, 2_100), None);
        assert_eq!(per_request_cost(1_000, 2_000, 100, 100), None);
    }

    #[test]
    fn totals_are_read_from_the_totals_or_summary_line() {
        let profile = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nsummary: 2373238\n\
                       fl=(1)\n1 5\ntotals: 2373238\n";
        assert_eq!(totals(profile), Some(2_373_238));
        assert_eq!(totals("summary: 42\n"), Some(42));
        assert_eq!(totals("events: Ir\n"), None);
    }

    #[test]
    fn a_response_is_read_to_the_end_of_its_body_leaving_the_next_one() {
        let raw: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello\
                            HTTP/1.1 401 X\r\nContent-Length: 0\r\n\r\n";
        let mut reader = BufReader::new(raw);
        assert_eq!(read_response(&mut reader).unwrap(), 200);
        assert_eq!(read_response(&mut reader).unwrap(), 401);
        assert!(read_response(&mut reader).is_err());
    }

    #[test]
    fn kinds_are_named_as_on_the_command_line() {
        assert_eq!(ServerKind::AxumTowerHttp.cli_name(), "axum-tower-http");
        assert_eq!(ServerKind::ActixKeygate.cli_name(), "actix-keygate");
    }
}

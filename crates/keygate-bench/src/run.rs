//! The whole run: every scenario, in one invocation, then one table.
//!
//! # Method: interleaved rounds
//!
//! On a shared 2-core VM the throughput of one server drifts by more than the differences this
//! harness is after (best-of-N runs measured the same axum + keygate server at 0.73× and 0.91×
//! of bare axum in one run, and a peer at 1.18× the framework it wraps). So servers that are
//! compared are not measured one after the other in separate runs but in interleaved rounds:
//!
//! - Per framework, every server of the comparison is started first and they all run side by
//!   side, each with one worker thread pinned to CPU 0 (only the one being measured gets
//!   requests; the others are idle). Then `--pairs` rounds (default 5, 3 with `--quick`), each
//!   measuring every server once in the same order: bare, keygate, then the peers (axum:
//!   rate limit, tower-http, the `HashMap` floor, the required-steps floor; actix-web:
//!   actix-web-httpauth). Bare and keygate are thus measured
//!   back to back in every round: bare, keygate, …, bare, keygate, … Every measurement has the
//!   same warm-up (2 s, 1 s with `--quick`), duration (5 s, 2 s with `--quick`), connections
//!   and pinning, with wrk pinned to CPU 1.
//! - Django without auth and djangorestframework-api-key (one gunicorn, two paths) run in
//!   rounds the same way.
//! - The floods run against one axum + keygate server in `min(--pairs, 3)` rounds of: the
//!   control (a second client sending the same valid requests), the forged-secret flood, the
//!   garbage flood. In each, the second client starts `FLOOD_LEAD` before the valid client,
//!   whose measurement is the same in all three; the three second clients are the same
//!   Lua-scripted wrk (also pinned to CPU 1), only their token file differs.
//! - Naive argon2 and the flood baseline (valid traffic alone) are measured once.
//!
//! Round `i` of a row and round `i` of its reference make one pair and one ratio; the report
//! (`report.rs`) gives the median with its min–max, and judges the targets on the median.
//! Timing of the default run on 2 cores: axum 6 servers × 5 rounds × 7 s, actix-web 3 × 5 × 7 s,
//! Django 2 × 5 × 7 s, floods 3 × 3 × 7 s plus the baseline, then memory and cold start:
//! about 9 minutes.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::children::{self, Proc};
use crate::paired::{self, Sample};
use crate::report::{self, Family, Row};
use crate::servers::{ServerKind, READY};
use crate::wrk::{self, WrkReport, WrkSpec};
use crate::{cold, drf, http, machine, memory};

/// How the run is shaped.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) quick: bool,
    pub(crate) duration: Duration,
    pub(crate) warmup: Duration,
    pub(crate) connections: u32,
    /// Interleaved rounds (pairs) per framework comparison.
    pub(crate) pairs: u32,
    pub(crate) only: Vec<String>,
    pub(crate) pin: bool,
    pub(crate) out: Option<PathBuf>,
}

/// Shared state of a run.
struct Ctx {
    s: Settings,
    exe: PathBuf,
    dir: PathBuf,
    cache: PathBuf,
    server_cpus: Option<String>,
    client_cpus: Option<String>,
}

impl Ctx {
    fn wanted(&self, key: &str) -> bool {
        self.s.only.is_empty() || self.s.only.iter().any(|o| key.contains(o.as_str()))
    }

    /// Interleaved rounds of the flood comparison: at most 3 (each round runs three
    /// second-client measurements).
    fn flood_pairs(&self) -> u32 {
        self.s.pairs.min(3)
    }

    fn spec(&self, addr: SocketAddr, authorization: &str, duration: Duration) -> WrkSpec {
        WrkSpec {
            url: format!("http://{addr}/"),
            connections: self.s.connections,
            duration,
            headers: vec![format!("Authorization: {authorization}")],
            script: None,
            cpus: self.client_cpus.clone(),
        }
    }
}

/// A server child and what it announced.
struct Server {
    proc: Proc,
    addr: SocketAddr,
    token: String,
    id: String,
    store: String,
    /// The key's rate limit as the server stored it (empty: none).
    rate_limit: String,
}

fn start_server(ctx: &Ctx, kind: ServerKind) -> Result<Server> {
    let mut cmd = children::command(&ctx.exe, ctx.server_cpus.as_deref());
    cmd.arg("serve")
        .arg(kind.cli_name())
        .arg("--dir")
        .arg(&ctx.dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut proc = Proc::spawn(&mut cmd, &format!("server {kind:?}"))?;
    let line = proc.wait_for_line(READY, Duration::from_secs(120))?;
    let v: serde_json::Value = serde_json::from_str(&line).context("reading the ready line")?;
    let port = v["port"].as_u64().context("no port")? as u16;
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    Ok(Server {
        proc,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        token: text("token"),
        id: text("id"),
        store: text("store"),
        rate_limit: text("rate_limit"),
    })
}

/// A measurement: wrk's report and the server's CPU use during it.
struct Measured {
    wrk: WrkReport,
    /// Server CPU seconds during the measurement.
    cpu_seconds: f64,
    /// Wall-clock seconds of the measurement.
    wall: f64,
    /// Requests the server answered in that time (wrk's, plus a flood's).
    served: f64,
}

impl Measured {
    fn cpu_per_req_us(&self) -> Option<f64> {
        (self.served > 0.0).then(|| self.cpu_seconds * 1e6 / self.served)
    }

    fn sample(&self) -> Sample {
        Sample {
            rps: self.wrk.rps,
            cpu_per_req_us: self.cpu_per_req_us(),
        }
    }
}

/// Fills a row from its measurements: one per round of `group` (the figures shown are the
/// medians of the rounds), or a single one (`group` `None`: compared as a separate run).
fn fill(row: &mut Row, group: Option<&'static str>, ms: &[Measured]) {
    let med = |f: &dyn Fn(&Measured) -> Option<f64>| {
        paired::median(&ms.iter().filter_map(f).collect::<Vec<_>>())
    };
    row.rps = med(&|m| Some(m.wrk.rps));
    row.p50_us = med(&|m| Some(m.wrk.p50_us));
    row.p99_us = med(&|m| Some(m.wrk.p99_us));
    row.server_cpu = med(&|m| Some(m.cpu_seconds / m.wall));
    row.cpu_per_req_us = med(&|m| m.cpu_per_req_us());
    row.samples = ms.iter().map(Measured::sample).collect();
    row.group = group;
    let rounds = if ms.len() > 1 { " (all rounds)" } else { "" };
    let non_2xx: u64 = ms.iter().map(|m| m.wrk.non_2xx).sum();
    if non_2xx > 0 {
        row.notes
            .push(format!("{non_2xx} non-2xx responses{rounds}"));
    }
    let socket_errors: u64 = ms.iter().map(|m| m.wrk.socket_errors).sum();
    if socket_errors > 0 {
        row.notes
            .push(format!("{socket_errors} socket errors{rounds}"));
    }
}

/// The method note of a row measured on its own.
fn single_note(ctx: &Ctx) -> String {
    format!(
        "method: one measurement ({} s warm-up + {} s), compared as a separate run",
        ctx.s.warmup.as_secs(),
        ctx.s.duration.as_secs()
    )
}

/// The method note of the rows measured in interleaved rounds.
fn rounds_note(rounds: u32, order: &[&str], each: &str) -> String {
    format!(
        "method: paired, {rounds} interleaved rounds of {} ({each}); medians of the rounds",
        order.join(" → "),
    )
}

/// Warms up, then measures once with wrk while sampling the server's CPU time.
fn measure(ctx: &Ctx, pid: u32, spec: &WrkSpec) -> Result<Measured> {
    if !ctx.s.warmup.is_zero() {
        let mut w = spec.clone();
        w.duration = ctx.s.warmup;
        wrk::run(&w)?;
    }
    let cpu0 = machine::tree_cpu_seconds(pid);
    let t0 = Instant::now();
    let report = wrk::run(spec)?;
    let cpu_seconds = machine::tree_cpu_seconds(pid) - cpu0;
    let wall = t0.elapsed().as_secs_f64().max(report.seconds);
    Ok(Measured {
        cpu_seconds,
        wall,
        served: report.requests as f64,
        wrk: report,
    })
}

/// One server (or one path of a server) of a comparison measured in interleaved rounds.
struct Member {
    key: &'static str,
    pid: u32,
    spec: WrkSpec,
    samples: Vec<Measured>,
}

/// Measures `members` in `rounds` interleaved rounds: in each round every member once, in
/// order, each with the same warm-up, duration, connections and pinning (`measure`). Every
/// member's server runs for the whole sequence; only the one being measured gets requests.
fn interleave(ctx: &Ctx, members: &mut [Member], rounds: u32) -> Result<()> {
    for round in 1..=rounds {
        for m in members.iter_mut() {
            children::stop_if_interrupted();
            eprintln!("keygate-bench:   round {round}/{rounds}: {}", m.key);
            let x = measure(ctx, m.pid, &m.spec).with_context(|| m.key)?;
            m.samples.push(x);
        }
    }
    Ok(())
}

/// Checks the server answers 200 to the valid request and refuses one without credentials.
fn sanity(addr: SocketAddr, path: &str, authorization: &str, refuses: Option<u16>) -> Result<()> {
    let (status, body) = http::get_blocking(addr, path, Some(authorization))?;
    if status != 200 {
        bail!("valid request answered {status}: {body}");
    }
    if let Some(expected) = refuses {
        let (status, _) = http::get_blocking(addr, path, None)?;
        if status != expected {
            bail!("request without credentials answered {status}, expected {expected}");
        }
    }
    Ok(())
}

/// The token with the last character of its secret changed and its checksum recomputed: a
/// well-formed key of the same id with a wrong secret.
fn forged(token: &str) -> Option<String> {
    let body = token.get(..token.len().checked_sub(keygate::token::CHECKSUM_LEN)?)?;
    let head = body.get(..body.len().checked_sub(1)?)?;
    let changed = if body.ends_with('a') { 'b' } else { 'a' };
    Some(keygate::token::with_checksum(&format!("{head}{changed}")))
}

/// Checks an authenticating server refuses a well-formed key with a wrong secret as it refuses
/// a request without credentials: a reference that accepted any well-formed key would be no
/// reference.
fn refuses_forged(addr: SocketAddr, token: &str, expected: u16) -> Result<()> {
    let forged = forged(token).context("the server's token is too short to forge")?;
    let (status, _) = http::get_blocking(addr, "/", Some(&format!("Bearer {forged}")))?;
    if status != expected {
        bail!("a forged secret answered {status}, expected {expected}");
    }
    Ok(())
}

/// A scenario served by one of our own servers: its row key, server, and the status a request
/// without credentials must get (`None`: no authentication).
type Step = (&'static str, ServerKind, Option<u16>);

/// Per framework: bare first, keygate second (the pair the target is about), then the others
/// of the family; the first two always run when any of the family is wanted (the references of
/// the others' ratios).
const FAMILIES: [(&str, &[Step]); 2] = [
    (
        "axum",
        &[
            ("axum-bare", ServerKind::AxumBare, None),
            ("axum-keygate", ServerKind::AxumKeygate, Some(401)),
            (
                "axum-keygate-rate-limit",
                ServerKind::AxumKeygateRateLimit,
                Some(401),
            ),
            ("axum-tower-http", ServerKind::AxumTowerHttp, Some(401)),
            ("axum-hash-map", ServerKind::AxumHashMap, Some(401)),
            (
                "axum-required-steps",
                ServerKind::AxumRequiredSteps,
                Some(401),
            ),
        ],
    ),
    (
        "actix",
        &[
            ("actix-bare", ServerKind::ActixBare, None),
            ("actix-keygate", ServerKind::ActixKeygate, Some(401)),
            ("actix-httpauth", ServerKind::ActixHttpauth, Some(401)),
        ],
    ),
];

/// The servers of one framework compared in interleaved rounds: the bare server first, the
/// keygate server second (the pair the target is about, measured back to back), then the
/// others. All are started first and run side by side, all pinned alike.
fn framework(ctx: &Ctx, rows: &mut [Row], group: &'static str, steps: &[Step]) -> Result<()> {
    let mut servers = Vec::new();
    for &(key, kind, refuses) in steps {
        let server = start_server(ctx, kind).with_context(|| key)?;
        let auth = format!("Bearer {}", server.token);
        sanity(server.addr, "/", &auth, refuses).with_context(|| key)?;
        if let Some(expected) = refuses {
            refuses_forged(server.addr, &server.token, expected).with_context(|| key)?;
        }
        servers.push((key, kind, server, auth));
    }
    let mut members: Vec<Member> = servers
        .iter()
        .map(|(key, _, server, auth)| Member {
            key,
            pid: server.proc.pid(),
            spec: ctx.spec(server.addr, auth, ctx.s.duration),
            samples: Vec::new(),
        })
        .collect();
    interleave(ctx, &mut members, ctx.s.pairs)?;
    let order: Vec<&str> = steps.iter().map(|s| s.0).collect();
    let note = rounds_note(
        ctx.s.pairs,
        &order,
        &format!(
            "each {} s warm-up + {} s, servers side by side",
            ctx.s.warmup.as_secs(),
            ctx.s.duration.as_secs()
        ),
    );
    for ((key, kind, server, _), m) in servers.iter().zip(&members) {
        let row = get(rows, key);
        fill(row, Some(group), &m.samples);
        row.notes.push(note.clone());
        server_notes(row, *kind, server, &m.samples)?;
    }
    Ok(())
}

/// What a server tells about itself: store, usage counting, rate limit, argon2 checks.
fn server_notes(row: &mut Row, kind: ServerKind, server: &Server, ms: &[Measured]) -> Result<()> {
    if !server.store.is_empty() && kind != ServerKind::NaiveArgon2 {
        row.notes.push(format!("store: {}", server.store));
    }
    match kind {
        ServerKind::AxumKeygate => row.notes.push(
            "per-key usage counting on (keygate always counts, on the hot path); key without a rate limit"
                .into(),
        ),
        ServerKind::AxumKeygateRateLimit => {
            if server.rate_limit.is_empty() {
                bail!("the server's key has no rate limit");
            }
            let refused: u64 = ms.iter().map(|m| m.wrk.non_2xx).sum();
            let requests: u64 = ms.iter().map(|m| m.wrk.requests).sum();
            row.notes.push(format!(
                "per-key usage counting on; key's rate limit {} (as stored), checked on every request: {refused} of the measured {requests} requests refused",
                server.rate_limit
            ));
        }
        _ => {}
    }
    if matches!(
        kind,
        ServerKind::AxumKeygate | ServerKind::AxumKeygateRateLimit
    ) {
        if let Some(calls) = hash_calls(server.addr) {
            row.notes
                .push(format!("argon2 checks in the whole run: {calls} (the key's first use and the start's forged-secret check)"));
        }
    }
    Ok(())
}

/// One of our own servers measured on its own (no pair).
fn http_scenario(ctx: &Ctx, row: &mut Row, kind: ServerKind, refuses: Option<u16>) -> Result<()> {
    let server = start_server(ctx, kind)?;
    let auth = format!("Bearer {}", server.token);
    sanity(server.addr, "/", &auth, refuses)?;
    let m = measure(
        ctx,
        server.proc.pid(),
        &ctx.spec(server.addr, &auth, ctx.s.duration),
    )?;
    fill(row, None, std::slice::from_ref(&m));
    row.notes.push(single_note(ctx));
    server_notes(row, kind, &server, std::slice::from_ref(&m))
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_until_up(addr: SocketAddr, path: &str, limit: Duration) -> Result<()> {
    let started = Instant::now();
    loop {
        if let Ok((s, _)) = http::get_blocking(addr, path, None) {
            if s != 0 {
                return Ok(());
            }
        }
        if started.elapsed() > limit {
            bail!("nothing answered on {addr} within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Django: no auth (AllowAny) and djangorestframework-api-key, one gunicorn for both, measured
/// in interleaved rounds (no auth, then the API key).
fn django(ctx: &Ctx, bare: &mut Row, keyed: &mut Row) -> Result<String> {
    let project = drf::prepare(&ctx.cache, &ctx.dir.join("django"))?;
    let port = free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut cmd = drf::gunicorn(&project, port, ctx.server_cpus.as_deref());
    let proc = Proc::spawn(&mut cmd, "gunicorn")?;
    wait_until_up(addr, "/open", Duration::from_secs(60))?;
    let auth = format!("Api-Key {}", project.key);
    sanity(addr, "/", &auth, Some(403))?;
    let mk = |key: &'static str, path: &str| Member {
        key,
        pid: proc.pid(),
        spec: WrkSpec {
            url: format!("http://{addr}{path}"),
            ..ctx.spec(addr, &auth, ctx.s.duration)
        },
        samples: Vec::new(),
    };
    let mut members = [mk(bare.key, "/open"), mk(keyed.key, "/")];
    interleave(ctx, &mut members, ctx.s.pairs)?;
    let note = rounds_note(
        ctx.s.pairs,
        &[bare.key, keyed.key],
        &format!(
            "each {} s warm-up + {} s, one gunicorn",
            ctx.s.warmup.as_secs(),
            ctx.s.duration.as_secs()
        ),
    );
    let [b, k] = members;
    fill(bare, Some("django"), &b.samples);
    fill(keyed, Some("django"), &k.samples);
    bare.notes.push(note.clone());
    keyed.notes.push(note);
    keyed.notes.push("store: SQLite (Django ORM)".into());
    drop(proc);
    Ok(project.versions)
}

/// Token files for the second clients: forged, garbage, valid (the control's), and the Lua
/// script that sends them.
fn flood_files(ctx: &Ctx, server: &Server) -> Result<(PathBuf, PathBuf, PathBuf, PathBuf)> {
    let n = 20_000;
    let prefix = server
        .token
        .rsplit_once('_')
        .map(|(p, _)| p.to_owned())
        .context("token without prefix")?;
    let mut forged = String::new();
    let mut garbage = String::new();
    for i in 0..n {
        let other = keygate::token::generate(&prefix)?;
        let other = other.expose_secret();
        let secret = other
            .split_once('.')
            .map(|(_, s)| &s[..keygate::token::SECRET_LEN])
            .context("generated token without secret")?;
        forged.push_str(&keygate::token::with_checksum(&format!(
            "{prefix}_{}.{secret}",
            server.id
        )));
        forged.push('\n');
        // Half look like keys with a broken checksum, half are plain noise.
        if i % 2 == 0 {
            let mut g = other.to_owned().into_bytes();
            let last = g.len() - 1;
            g[last] = if g[last] == b'A' { b'B' } else { b'A' };
            garbage.push_str(&String::from_utf8_lossy(&g));
        } else {
            garbage.push_str(&secret.repeat(2)[..20 + i % 60]);
        }
        garbage.push('\n');
    }
    let f = ctx.dir.join("forged.txt");
    let g = ctx.dir.join("garbage.txt");
    let v = ctx.dir.join("valid.txt");
    let lua = ctx.dir.join("tokens.lua");
    fs::write(&f, forged)?;
    fs::write(&g, garbage)?;
    fs::write(&v, format!("{}\n", server.token))?;
    fs::write(&lua, wrk::TOKEN_FILE_LUA)?;
    Ok((f, g, v, lua))
}

fn hash_calls(addr: SocketAddr) -> Option<u64> {
    let (_, body) = http::get_blocking(addr, "/stats", None).ok()?;
    serde_json::from_str::<serde_json::Value>(&body).ok()?["hash_verify_calls"].as_u64()
}

/// How long the second client of a flood (or of the control) runs before the valid client's
/// measurement starts.
const FLOOD_LEAD: Duration = Duration::from_millis(500);

/// What one flood (or control) measurement gave besides the valid client's figures.
struct FloodRound {
    /// The second client's report.
    second: WrkReport,
    /// argon2 checks the server ran while the second client was sending.
    hash_calls: Option<u64>,
}

/// One measurement of the valid client while a second client sends `flood` (started
/// `FLOOD_LEAD` earlier, ending after the valid client).
fn flood_once(server: &Server, valid: &WrkSpec, flood: &WrkSpec) -> Result<(Measured, FloodRound)> {
    let calls0 = hash_calls(server.addr);
    let flooding = wrk::start(flood)?;
    std::thread::sleep(FLOOD_LEAD);
    let cpu0 = machine::tree_cpu_seconds(server.proc.pid());
    let t0 = Instant::now();
    let report = wrk::run(valid)?;
    let cpu_seconds = machine::tree_cpu_seconds(server.proc.pid()) - cpu0;
    let wall = t0.elapsed().as_secs_f64().max(report.seconds);
    let second = wrk::finish(flooding, flood)?;
    let served = report.requests as f64 + second.rps * wall;
    let hash_calls = calls0
        .zip(hash_calls(server.addr))
        .map(|(a, b)| b.saturating_sub(a));
    Ok((
        Measured {
            wrk: report,
            cpu_seconds,
            wall,
            served,
        },
        FloodRound { second, hash_calls },
    ))
}

/// Valid traffic alone (once), then against one axum + keygate server in interleaved rounds
/// of: the control (a second client sending the same valid requests), the forged-secret
/// flood, the garbage flood. Every member of a round runs the same way: second client started
/// `FLOOD_LEAD` before the valid client, valid client measured for the same duration.
fn attack(
    ctx: &Ctx,
    baseline: &mut Row,
    control_row: &mut Row,
    forged_row: &mut Row,
    garbage_row: &mut Row,
) -> Result<()> {
    let server = start_server(ctx, ServerKind::AxumKeygate)?;
    let auth = format!("Bearer {}", server.token);
    sanity(server.addr, "/", &auth, Some(401))?;
    let (forged, garbage, valid_file, lua) = flood_files(ctx, &server)?;
    let valid = ctx.spec(server.addr, &auth, ctx.s.duration);
    let m = measure(ctx, server.proc.pid(), &valid)?;
    fill(baseline, None, std::slice::from_ref(&m));
    baseline.notes.push(single_note(ctx));

    // The control "flood" is a second client sending the same valid requests: what the
    // valid client loses there is the server's one core being shared, not keygate. All three
    // second clients are the same wrk with the same Lua script (so they cost the load
    // generator's core alike), only the token file differs.
    let second = |file: &PathBuf| WrkSpec {
        duration: ctx.s.duration + Duration::from_secs(2),
        headers: Vec::new(),
        script: Some((lua.clone(), vec![file.display().to_string()])),
        ..valid.clone()
    };
    let floods = [second(&valid_file), second(&forged), second(&garbage)];
    let rounds = ctx.flood_pairs();
    let mut got: [Vec<(Measured, FloodRound)>; 3] = Default::default();
    for round in 1..=rounds {
        for (i, (flood, name)) in floods
            .iter()
            .zip(["control", "forged", "garbage"])
            .enumerate()
        {
            children::stop_if_interrupted();
            eprintln!("keygate-bench:   round {round}/{rounds}: {name}");
            got[i].push(flood_once(&server, &valid, flood).with_context(|| name)?);
        }
    }
    let note = rounds_note(
        rounds,
        &["flood-control", "flood-forged", "flood-garbage"],
        &format!(
            "second client started {:.1} s before the valid client's {} s",
            FLOOD_LEAD.as_secs_f64(),
            ctx.s.duration.as_secs()
        ),
    );
    for (row, rounds) in [control_row, forged_row, garbage_row].into_iter().zip(got) {
        let (ms, fr): (Vec<Measured>, Vec<FloodRound>) = rounds.into_iter().unzip();
        fill(row, Some("flood"), &ms);
        row.notes.push(note.clone());
        let rps: Vec<f64> = fr.iter().map(|f| f.second.rps).collect();
        let refused: u64 = fr.iter().map(|f| f.second.non_2xx).sum();
        let sent: u64 = fr.iter().map(|f| f.second.requests).sum();
        row.notes.push(format!(
            "second client: {:.0} req/s (median), {} of them refused",
            paired::median(&rps).unwrap_or(0.0),
            if refused == sent {
                "all".to_owned()
            } else {
                format!("{refused}/{sent}")
            }
        ));
        let calls: Vec<String> = fr
            .iter()
            .map(|f| f.hash_calls.map_or("?".into(), |c| c.to_string()))
            .collect();
        row.notes.push(format!(
            "argon2 checks during the second client, per round: {}",
            calls.join(", ")
        ));
    }
    Ok(())
}

fn cold_start(ctx: &Ctx, row: &mut Row) -> Result<()> {
    let server = start_server(ctx, ServerKind::AxumKeygate)?;
    let before = hash_calls(server.addr).context("reading /stats")?;
    let n = 1_000;
    let b = cold::burst(server.addr, &server.token, n)?;
    let after = hash_calls(server.addr).context("reading /stats")?;
    let calls = after - before;
    row.p50_us = Some(b.p50.as_secs_f64() * 1e6);
    row.p99_us = Some(b.p99.as_secs_f64() * 1e6);
    row.target = "1 argon2 check (docs/architecture.md)".into();
    row.met = Some(calls == 1 && b.ok == n);
    row.notes.push(format!(
        "{n} requests: {} × 200, {} other; argon2 checks: {calls}; max {}",
        b.ok,
        b.other,
        report::latency(b.max.as_secs_f64() * 1e6)
    ));
    Ok(())
}

fn memory_scenario(ctx: &Ctx, row: &mut Row, keys: usize) -> Result<()> {
    let mut cmd = std::process::Command::new(&ctx.exe);
    // argon2's scratch blocks (8 KiB with the cheap parameters) would otherwise stay in the
    // heap as holes between the store's records; mapped separately they are returned on free,
    // as OWASP's 19 MiB blocks are. The figure per cached key is the same either way.
    cmd.env("MALLOC_MMAP_THRESHOLD_", "8192")
        .arg("memory")
        .arg("--keys")
        .arg(keys.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut proc = Proc::spawn(&mut cmd, "memory measurement")?;
    let line = proc.wait_for_line(memory::RESULT, Duration::from_secs(420))?;
    let v: serde_json::Value = serde_json::from_str(&line)?;
    let per_key = v["bytes_per_key"].as_f64().context("no bytes_per_key")?;
    row.target = "≤ 512 B/key".into();
    row.met = Some(per_key <= 512.0);
    row.notes.push(format!(
        "**{per_key:.0} B per cached key** (RSS {:.1} → {:.1} MiB; {} keys, {} rejected tokens cached; {} failed)",
        v["rss_before"].as_f64().unwrap_or(0.0) / 1048576.0,
        v["rss_after"].as_f64().unwrap_or(0.0) / 1048576.0,
        v["cached_keys"],
        v["cached_rejections"],
        v["failed"],
    ));
    Ok(())
}

fn rows() -> Vec<Row> {
    vec![
        Row::new("axum-bare", "axum, no auth (ceiling)", Family::Axum),
        Row::new(
            "axum-tower-http",
            "axum + tower-http `ValidateRequestHeaderLayer` (static token, constant-time)",
            Family::Axum,
        ),
        Row::new(
            "axum-hash-map",
            "axum + tower-http `ValidateRequestHeaderLayer` (bearer token looked up in a `HashMap`)",
            Family::Axum,
        ),
        Row::new(
            "axum-required-steps",
            "axum + a cached check's required steps alone (keygate's extraction and parse, keyed BLAKE3, one `HashMap` read; no usage, expiry or telemetry)",
            Family::Axum,
        ),
        Row::new(
            "axum-keygate",
            "**axum + keygate** (cached valid key)",
            Family::Axum,
        ),
        Row::new(
            "axum-keygate-rate-limit",
            "axum + keygate + counting + rate limit (not hit)",
            Family::Axum,
        ),
        Row::new("actix-bare", "actix-web, no auth (ceiling)", Family::Actix),
        Row::new(
            "actix-httpauth",
            "actix-web + actix-web-httpauth bearer (HashMap lookup)",
            Family::Actix,
        ),
        Row::new(
            "actix-keygate",
            "**actix-web + keygate** (cached valid key)",
            Family::Actix,
        ),
        Row::new(
            "django-bare",
            "Django REST framework, no auth (`AllowAny`)",
            Family::Django,
        ),
        Row::new(
            "drf-api-key",
            "djangorestframework-api-key 3.x (`HasAPIKey`) on gunicorn",
            Family::Django,
        ),
        Row::new(
            "naive-argon2",
            "naive: axum + argon2id (OWASP) on every request, no cache",
            Family::Axum,
        ),
        Row::new(
            "flood-baseline",
            "attack baseline: axum + keygate, valid traffic alone",
            Family::Axum,
        ),
        Row::new(
            "flood-control",
            "attack control: valid traffic while a second client sends the same valid requests",
            Family::Axum,
        ),
        Row::new(
            "flood-garbage",
            "attack (a): valid traffic during a garbage-token flood",
            Family::Axum,
        ),
        Row::new(
            "flood-forged",
            "attack (b): valid traffic during a forged-secret flood (known id)",
            Family::Axum,
        ),
        Row::new("memory-100k", "memory: 100k cached keys", Family::None),
        Row::new("memory-1m", "memory: 1M cached keys", Family::None),
        Row::new(
            "cold-start",
            "cold start: 1,000 concurrent first requests, one new key (OWASP argon2id)",
            Family::None,
        ),
    ]
}

fn get<'a>(rows: &'a mut [Row], key: &str) -> &'a mut Row {
    let i = rows.iter().position(|r| r.key == key).unwrap_or(0);
    &mut rows[i]
}

fn record(row: &mut Row, r: Result<()>) {
    children::stop_if_interrupted();
    if let Err(e) = r {
        eprintln!("keygate-bench: {}: {e:#}", row.scenario);
        row.notes.push(format!("error: {e:#}"));
    }
}

/// Runs everything and prints the report.
pub(crate) fn all(s: Settings) -> Result<()> {
    let started = Instant::now();
    let date = chrono::Utc::now();
    children::install_interrupt_handler()?;
    wrk::ensure_installed()?;
    let exe = std::env::current_exe()?;
    let cache = exe
        .parent()
        .and_then(Path::parent)
        .map(|t| t.join("keygate-bench"))
        .unwrap_or_else(|| std::env::temp_dir().join("keygate-bench"));
    let scratch = children::ScratchDir::create(cache.join(format!("run-{}", std::process::id())))?;
    let dir = scratch.path().to_path_buf();
    let pin = s.pin && children::can_pin();
    let ctx = Ctx {
        exe,
        dir: dir.clone(),
        cache,
        server_cpus: pin.then(|| "0".to_owned()),
        client_cpus: pin.then(|| "1".to_owned()),
        s,
    };
    let compilers = machine::running_compilers();
    let load = machine::load_average();
    let mut rows = rows();
    let mut django_versions = String::new();

    let families = FAMILIES;
    for (group, all_steps) in families {
        if !all_steps.iter().any(|s| ctx.wanted(s.0)) {
            continue;
        }
        let steps: Vec<Step> = all_steps
            .iter()
            .enumerate()
            .filter(|(i, s)| *i < 2 || ctx.wanted(s.0))
            .map(|(_, s)| *s)
            .collect();
        eprintln!(
            "keygate-bench: {group}: {} in {} interleaved rounds",
            steps.iter().map(|s| s.0).collect::<Vec<_>>().join(", "),
            ctx.s.pairs
        );
        if let Err(e) = framework(&ctx, &mut rows, group, &steps) {
            children::stop_if_interrupted();
            eprintln!("keygate-bench: {group}: {e:#}");
            for s in &steps {
                get(&mut rows, s.0).notes.push(format!("error: {e:#}"));
            }
        }
    }
    if ctx.wanted("drf-api-key") || ctx.wanted("django-bare") {
        eprintln!("keygate-bench: django");
        let mut bare = get(&mut rows, "django-bare").clone();
        let mut keyed = get(&mut rows, "drf-api-key").clone();
        match django(&ctx, &mut bare, &mut keyed) {
            Ok(v) => django_versions = v,
            Err(e) => {
                eprintln!("keygate-bench: django: {e:#}");
                keyed.notes.push(format!("error: {e:#}"));
            }
        }
        *get(&mut rows, "django-bare") = bare;
        *get(&mut rows, "drf-api-key") = keyed;
    }
    if ctx.wanted("naive-argon2") {
        eprintln!("keygate-bench: naive-argon2");
        let r = http_scenario(
            &ctx,
            get(&mut rows, "naive-argon2"),
            ServerKind::NaiveArgon2,
            Some(401),
        );
        record(get(&mut rows, "naive-argon2"), r);
    }
    if ctx.wanted("flood") {
        eprintln!("keygate-bench: floods");
        let mut b = get(&mut rows, "flood-baseline").clone();
        let mut c = get(&mut rows, "flood-control").clone();
        let mut g = get(&mut rows, "flood-garbage").clone();
        let mut f = get(&mut rows, "flood-forged").clone();
        let r = attack(&ctx, &mut b, &mut c, &mut f, &mut g);
        record(&mut b, r);
        *get(&mut rows, "flood-baseline") = b;
        *get(&mut rows, "flood-control") = c;
        *get(&mut rows, "flood-garbage") = g;
        *get(&mut rows, "flood-forged") = f;
    }
    let sizes: &[(&str, usize)] = if ctx.s.quick {
        &[("memory-100k", 100_000)]
    } else {
        &[("memory-100k", 100_000), ("memory-1m", 1_000_000)]
    };
    for &(key, n) in sizes {
        if ctx.wanted(key) {
            eprintln!("keygate-bench: {key}");
            let r = memory_scenario(&ctx, get(&mut rows, key), n);
            record(get(&mut rows, key), r);
        }
    }
    if ctx.s.quick {
        get(&mut rows, "memory-1m")
            .notes
            .push("skipped with --quick".into());
    }
    if ctx.wanted("cold-start") {
        eprintln!("keygate-bench: cold-start");
        let r = cold_start(&ctx, get(&mut rows, "cold-start"));
        record(get(&mut rows, "cold-start"), r);
    }
    children::stop_if_interrupted();
    report::judge(&mut rows);
    // The rows asked for, and those measured as their references.
    let rows: Vec<Row> = rows
        .into_iter()
        .filter(|r| {
            ctx.wanted(r.key)
                || r.rps.is_some()
                || (r.key.starts_with("flood") && ctx.wanted("flood"))
        })
        .collect();

    let mut out = String::new();
    out.push_str(&format!(
        "Machine: {} × {} ({} logical CPUs), {} MiB RAM, Linux {}. Date: {} UTC.\n",
        machine::cores(),
        machine::cpu_model(),
        machine::cores(),
        machine::memory_mib().unwrap_or(0),
        machine::kernel(),
        date.format("%Y-%m-%d %H:%M"),
    ));
    out.push_str(&format!(
        "Load: wrk 1 thread, {} connections, {} s per measurement after {} s warm-up. \
         Each framework's servers (bare first, keygate second, then its peers) and Django \
         without/with the API key in {} interleaved rounds; the flood control, forged-secret \
         and garbage floods in {} interleaved rounds (the second client started {:.1} s before \
         the valid client, no warm-up); figures are medians of the rounds, ratios between rows \
         of the same rounds are medians of per-round pairs (min–max in brackets); naive argon2 \
         and the flood baseline measured once; {}. \
         rustc processes at start: {compilers}; load average at start: {load}.\n",
        ctx.s.connections,
        ctx.s.duration.as_secs(),
        ctx.s.warmup.as_secs(),
        ctx.s.pairs,
        ctx.flood_pairs(),
        FLOOD_LEAD.as_secs_f64(),
        if pin {
            "server pinned to CPU 0 (one worker thread), wrk pinned to CPU 1"
        } else {
            "no CPU pinning"
        },
    ));
    if !django_versions.is_empty() {
        out.push_str(&format!(
            "Django stack: {django_versions}; gunicorn {} gthread workers × {} threads.\n",
            drf::WORKERS,
            drf::THREADS
        ));
    }
    out.push('\n');
    out.push_str(&report::table(&rows));
    out.push_str(&format!(
        "\nWhole run: {:.0} s{}.\n",
        started.elapsed().as_secs_f64(),
        if ctx.s.quick { " (--quick)" } else { "" }
    ));
    println!("{out}");
    if let Some(path) = &ctx.s.out {
        fs::write(path, &out).with_context(|| format!("writing {}", path.display()))?;
    }
    drop(scratch);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forged_key_is_well_formed_with_the_same_id_and_another_secret() {
        let key = keygate::token::generate("mk_live").unwrap();
        let token = key.expose_secret();
        let forged = forged(token).unwrap();
        let (a, b) = (
            keygate::token::parse(token).unwrap(),
            keygate::token::parse(&forged).unwrap(),
        );
        assert_eq!((a.prefix(), a.id()), (b.prefix(), b.id()));
        assert_ne!(token, forged);
        assert_eq!(token.len(), forged.len());
    }

    #[test]
    fn every_server_the_harness_runs_has_a_row_of_its_own() {
        let rows = rows();
        for (_, steps) in FAMILIES {
            for (key, _, _) in steps {
                assert!(rows.iter().any(|r| r.key == *key), "no row for {key}");
            }
        }
        let mut keys: Vec<_> = rows.iter().map(|r| r.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), rows.len(), "row keys are unique");
    }
}

//! `keygate-soak`: see the library docs (`cargo doc -p keygate-soak`) and the crate README.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use keygate::{KeyManager, KeyStore, MemoryStore, Verifier};
use tokio::time::Instant;

use keygate_soak::churn::{ChurnReport, ChurnSettings};
use keygate_soak::client::{ClientSettings, Connection};
use keygate_soak::oracle::{Policy, Tally, Wrong};
use keygate_soak::pool::{lock, Pool};

/// Requests answered so far, across clients (for the progress lines).
static ANSWERED: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Parser)]
#[command(
    name = "keygate-soak",
    about = "Bounded soak of keygate: valid, forged, expired and revoked keys while keys churn; exits non-zero on any wrong answer"
)]
struct Args {
    /// How long to run (`20s`, `5m`, …).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    duration: Duration,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Total request rate cap, requests per second (0: as fast as answers come).
    #[arg(long, default_value_t = 2000)]
    rps: u64,
    /// The verifier's revocation window.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    revocation_window: Duration,
    /// Tolerance on top of the window for revocations by "another process".
    #[arg(long, default_value = "250ms", value_parser = parse_duration)]
    slack: Duration,
    /// One key created (and at most one revoked) this often.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    churn_every: Duration,
    /// Keep about this many unrevoked, unexpired keys in play.
    #[arg(long, default_value_t = 24)]
    live_keys: usize,
    /// Share of new keys that expire within seconds, in percent.
    #[arg(long, default_value_t = 30)]
    expiring_percent: usize,
    /// Key store: `sqlite` (a fresh temporary SQLite file, removed afterwards), `sqlite://PATH`
    /// (created if missing) or `memory`.
    #[arg(long, default_value = "sqlite")]
    database_url: String,
    /// The verifier's cache capacity (keys, rejected tokens, failure counts). Small by
    /// default so that the caches reach their bound within the first minute and the memory
    /// check sees the plateau (the library's default is 100 000: the same curve, later).
    #[arg(long, default_value_t = 4096)]
    key_capacity: u64,
    /// Resident memory sampling interval.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    sample_every: Duration,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Also fail when the resident-memory floor grows more than this over the second half
    /// (percent).
    #[arg(long)]
    max_rss_growth: Option<f64>,
}

/// A human duration (`5m`, `250ms`, …; `m` is minutes), as `humantime` reads it.
fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers.max(1))
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keygate-soak: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(soak(&args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("keygate-soak: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The store the server reads and the store "another process" revokes through.
struct Stores {
    server: Arc<dyn KeyStore>,
    remote: Arc<dyn KeyStore>,
    label: String,
    /// A temporary database file to remove at the end.
    temp_file: Option<std::path::PathBuf>,
}

async fn open_stores(url: &str) -> anyhow::Result<Stores> {
    if url == "memory" {
        let store: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
        return Ok(Stores {
            server: Arc::clone(&store),
            remote: store,
            label: "memory".into(),
            temp_file: None,
        });
    }
    let (url, temp_file) = if url == "sqlite" {
        let path = std::env::temp_dir().join(format!("keygate-soak-{}.db", std::process::id()));
        (format!("sqlite://{}", path.display()), Some(path))
    } else {
        (url.to_owned(), None)
    };
    let server = keygate_sqlx::connect(&url)
        .await
        .with_context(|| format!("opening {url}"))?;
    // A second connection pool on the same database: revocations made through it reach the
    // server only through the store, like those of another process.
    let remote = keygate_sqlx::connect(&url)
        .await
        .with_context(|| format!("opening {url} again"))?;
    Ok(Stores {
        server,
        remote,
        label: url,
        temp_file,
    })
}

fn remove_database(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

/// Runs the soak; `Ok(true)` when every answer was right.
async fn soak(args: &Args) -> anyhow::Result<bool> {
    let stores = open_stores(&args.database_url).await?;
    let result = run(args, &stores).await;
    if let Some(path) = &stores.temp_file {
        remove_database(path);
    }
    result
}

async fn run(args: &Args, stores: &Stores) -> anyhow::Result<bool> {
    let verifier = Verifier::builder(Arc::clone(&stores.server))
        .revocation_window(args.revocation_window)
        .key_capacity(args.key_capacity)
        .build();
    let local = KeyManager::new(Arc::clone(&stores.server)).with_verifier(&verifier);
    // A manager the verifier does not know: its revocations reach the server only through the
    // store, like those of another process.
    let remote = KeyManager::new(Arc::clone(&stores.remote));
    let server = keygate_soak::server::start(verifier.clone()).await?;
    let policy = Policy {
        revocation_window_ms: millis(args.revocation_window),
        slack_ms: millis(args.slack),
    };
    println!(
        "keygate soak: {} s, {} clients, rps cap {}, store {}, revocation window {} ms, server {}",
        args.duration.as_secs(),
        args.clients,
        if args.rps == 0 {
            "none".to_owned()
        } else {
            args.rps.to_string()
        },
        stores.label,
        policy.revocation_window_ms,
        server.addr
    );

    let started = Instant::now();
    let deadline = started + args.duration;
    let pool = Arc::new(Pool::default());

    let mut churn_conn = Connection::open(server.addr)
        .await
        .context("connecting the churn task")?;
    let churn_settings = ChurnSettings {
        every: args.churn_every,
        target_live: args.live_keys,
        expiring_percent: args.expiring_percent,
        retire_after: (args.revocation_window * 5).max(Duration::from_secs(10)),
        deadline,
        policy,
    };
    let churn = {
        let pool = Arc::clone(&pool);
        tokio::spawn(async move {
            keygate_soak::churn::run(pool, local, remote, &mut churn_conn, churn_settings).await
        })
    };
    // Let the pool fill a little before the clients start.
    while pool.len() < args.live_keys.min(4) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let pace = (args.rps > 0)
        .then(|| Duration::from_secs_f64(args.clients.max(1) as f64 / args.rps as f64));
    let clients: Vec<_> = (0..args.clients.max(1))
        .map(|_| {
            let pool = Arc::clone(&pool);
            let settings = ClientSettings {
                addr: server.addr,
                deadline,
                pace,
                policy,
                answered: &ANSWERED,
            };
            tokio::spawn(keygate_soak::client::run(pool, settings))
        })
        .collect();

    // Every `sample_every`: resident memory at that moment, and its floor (the lowest of the
    // once-a-second readings since the previous sample). The floor leaves out the 19 MiB
    // working sets of argon2 runs that happen to be in flight when a sample is taken.
    let samples = Arc::new(Mutex::new(Vec::<(u64, u64, u64)>::new()));
    let sampler = {
        let samples = Arc::clone(&samples);
        let verifier = verifier.clone();
        let pool = Arc::clone(&pool);
        let every = args.sample_every.max(Duration::from_millis(100));
        let poll = every.min(Duration::from_secs(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(poll);
            let mut next_sample = Instant::now();
            let mut floor = u64::MAX;
            loop {
                tick.tick().await;
                let rss = keygate_soak::memory::rss_kib().unwrap_or(0);
                floor = floor.min(rss);
                if Instant::now() < next_sample {
                    continue;
                }
                next_sample += every;
                let t = started.elapsed().as_secs();
                lock(&samples).push((t, rss, floor));
                let (keys, rejections) = verifier.cached_entries();
                println!(
                    "t={t:>4}s rss={rss} KiB floor={floor} KiB answered={} pool={} cached keys={keys} rejections={rejections}",
                    ANSWERED.load(Ordering::Relaxed),
                    pool.len()
                );
                floor = u64::MAX;
                if Instant::now() >= deadline {
                    break;
                }
            }
        })
    };

    let mut tally = Tally::default();
    for c in clients {
        tally.merge(c.await.context("a client task panicked")?);
    }
    let churned = churn.await.context("the churn task panicked")?;
    let elapsed = started.elapsed();
    sampler.abort();
    let final_rss = keygate_soak::memory::rss_kib().unwrap_or(0);
    lock(&samples).push((elapsed.as_secs(), final_rss, final_rss));
    server.stop().await?;
    verifier.shutdown().await?;

    let samples = lock(&samples).clone();
    Ok(report(args, &tally, &churned, elapsed, &samples))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Prints the figures; true when the run passed.
fn report(
    args: &Args,
    tally: &Tally,
    churned: &ChurnReport,
    elapsed: Duration,
    samples: &[(u64, u64, u64)],
) -> bool {
    let secs = elapsed.as_secs_f64().max(0.001);
    let warm = &churned.warmups;
    let requests = tally.requests + warm.requests;
    println!("\n== keygate soak: {:.1} s ==", secs);
    println!(
        "requests: {requests} ({:.0} rps), transport errors: {}",
        requests as f64 / secs,
        tally.transport_errors + warm.transport_errors
    );
    println!(
        "churn: created {} ({} expiring), revoked {} locally + {} remotely, deleted {}, failed calls {}",
        churned.created,
        churned.expiring,
        churned.revoked_local,
        churned.revoked_remote,
        churned.deleted,
        churned.errors
    );
    let mut all = tally.clone();
    all.merge(warm.clone());
    println!("answers (presented -> outcome: count):");
    for ((class, outcome), n) in &all.outcomes {
        println!("  {class:<17} -> {outcome:<22} {n}");
    }
    println!("wrong answers:");
    for w in Wrong::ALL {
        println!("  {w:<45} {}", all.wrong.get(&w).copied().unwrap_or(0));
    }
    for e in &all.examples {
        println!("  e.g. {e}");
    }
    println!("resident memory (VmRSS, KiB; floor = lowest 1 s reading since the previous sample):");
    for (t, kib, floor) in samples {
        println!("  t={t:>4}s {kib:>9} floor {floor:>9}");
    }
    let series = |pick: fn(&(u64, u64, u64)) -> u64| -> Vec<(u64, u64)> {
        samples.iter().map(|s| (s.0, pick(s))).collect()
    };
    let growth = keygate_soak::memory::growth_over_last_half(&series(|s| s.1));
    let floor_growth = keygate_soak::memory::growth_over_last_half(&series(|s| s.2));
    let shown =
        |g: Option<f64>| g.map_or("n/a (too few samples)".to_owned(), |g| format!("{g:+.1} %"));
    println!(
        "  growth over the last half: {} (floor: {})",
        shown(growth),
        shown(floor_growth)
    );
    let memory_ok = match (args.max_rss_growth, floor_growth) {
        (Some(max), Some(g)) => g <= max,
        _ => true,
    };
    let pass =
        all.wrong_total() == 0 && all.transport_errors == 0 && churned.errors == 0 && memory_ok;
    println!("result: {}", if pass { "PASS" } else { "FAIL" });
    pass
}

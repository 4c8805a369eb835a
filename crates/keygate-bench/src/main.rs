//! # keygate-bench
//!
//! One invocation runs every scenario of BENCHMARKS.md on 127.0.0.1 and prints one markdown
//! table: keygate (axum and actix-web; on axum also with a per-key rate limit that is never
//! hit) next to the bare frameworks, the usual peers
//! (tower-http's `ValidateRequestHeaderLayer`, actix-web-httpauth, djangorestframework-api-key
//! on gunicorn), two floors on axum (a `HashMap` lookup, and a cached check's required steps
//! alone), a naive argon2-per-request verifier, keygate under garbage and forged-secret
//! floods, memory per cached key, and a cold start of 1,000 concurrent first requests.
//!
//! ```text
//! cargo run --release -p keygate-bench            # full run, about 9 minutes on 2 cores
//! cargo run --release -p keygate-bench -- --quick # about 3 minutes
//! ```
//!
//! `keygate-bench instructions` counts, with callgrind, the instructions one request costs
//! each server: a figure that does not move between runs (`callgrind.rs`).
//!
//! Servers run as child processes of this binary (`keygate-bench serve KIND`), one worker
//! thread each, pinned to CPU 0; `wrk` (one thread) is pinned to CPU 1. Every child is killed
//! at the end, on error and on Ctrl-C. Servers that are compared are measured in interleaved
//! rounds and compared pair by pair (`run.rs`, `report.rs`).

mod callgrind;
mod children;
mod cold;
mod drf;
mod http;
mod machine;
mod memory;
mod paired;
mod report;
mod run;
mod servers;
mod wrk;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Load harness: keygate against the authentication layers people use today.
#[derive(Debug, Parser)]
#[command(name = "keygate-bench", version)]
struct Cli {
    /// Short run (about 3 minutes): 3 interleaved rounds of 2 s measurements after 1 s warm-up,
    /// memory at 100k keys only.
    #[arg(long)]
    quick: bool,
    /// Seconds of each measurement (default 5, or 2 with --quick).
    #[arg(long)]
    duration: Option<u64>,
    /// Interleaved pairs per framework comparison (default 5, or 3 with --quick); the floods
    /// use at most 3.
    #[arg(long)]
    pairs: Option<u32>,
    /// Concurrent connections of the load generator.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// Run only the scenarios whose name contains one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Do not pin the server to CPU 0 and wrk to CPU 1.
    #[arg(long)]
    no_pin: bool,
    /// Also write the markdown report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Internal>,
}

/// Other measurements, and the modes the harness starts itself in (child processes).
#[derive(Debug, Subcommand)]
enum Internal {
    /// Count, under valgrind's callgrind, the instructions one request costs each server
    /// (bare axum and actix-web, their peers, keygate) and what authentication adds.
    Instructions {
        /// Requests of the shorter run.
        #[arg(long, default_value_t = 100)]
        few: u32,
        /// Requests of the longer run.
        #[arg(long, default_value_t = 2_100)]
        many: u32,
        /// Also write the markdown table to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run one server until stdin closes.
    #[command(hide = true)]
    Serve {
        kind: servers::ServerKind,
        #[arg(long)]
        dir: PathBuf,
    },
    /// Measure resident memory per cached key.
    #[command(hide = true)]
    Memory {
        #[arg(long)]
        keys: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Internal::Serve { kind, dir }) => servers::serve(kind, &dir),
        Some(Internal::Memory { keys }) => memory::measure(keys),
        Some(Internal::Instructions { few, many, out }) => {
            callgrind::measure(few, many, out.as_deref())
        }
        None => run::all(run::Settings {
            quick: cli.quick,
            duration: std::time::Duration::from_secs(
                cli.duration.unwrap_or(if cli.quick { 2 } else { 5 }).max(1),
            ),
            warmup: std::time::Duration::from_secs(if cli.quick { 1 } else { 2 }),
            connections: cli.connections,
            pairs: cli.pairs.unwrap_or(if cli.quick { 3 } else { 5 }).max(1),
            only: cli.only,
            pin: !cli.no_pin,
            out: cli.out,
        }),
    }
}

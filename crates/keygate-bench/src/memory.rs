//! Resident memory per cached key (`keygate-bench memory --keys N`, run as its own process).
//!
//! Fills a store with N keys, measures RSS, verifies every key once through the verifier (so
//! both caches hold one entry per key, exactly as in production), measures RSS again. Hashing
//! N keys with OWASP argon2id would take hours, so the keys are hashed with a cheap
//! `Argon2Hasher::with_params` (m=8 KiB, t=1, p=1): the hash string stored and cached has the
//! same length either way, and what is measured is the memory per cached key, not the hash cost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use keygate::{Argon2Hasher, Argon2Params, KeyHasher, KeyRecord, KeyStore, MemoryStore, Verifier};

use crate::machine::self_rss_bytes;

/// Marker of the result line.
pub(crate) const RESULT: &str = "KEYGATE_BENCH_MEMORY";

/// Lets the verifier's background work (the last-used flusher) and the allocator settle.
async fn settle(_verifier: &Verifier) {
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the measurement and prints one JSON result line.
pub(crate) fn measure(keys: usize) -> Result<()> {
    crate::children::exit_when_stdin_closes();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let started = Instant::now();
        let cheap = Argon2Hasher::with_params(Argon2Params {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        })?;
        let store = Arc::new(MemoryStore::new());
        let mut tokens = Vec::with_capacity(keys);
        let now = chrono::Utc::now();
        let scopes = keygate::ScopeSet::parse(["entities:read", "entities:write"])
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for i in 0..keys {
            let key = keygate::token::generate("mk_live").context("generating a key")?;
            let token = key.expose_secret().to_owned();
            let record = KeyRecord {
                id: key.id().to_owned(),
                prefix: "mk_live".into(),
                name: format!("key-{i}"),
                org: "bench-org".into(),
                team: None,
                owner: None,
                scopes: scopes.clone(),
                metadata: serde_json::Value::Null,
                hash: cheap.hash(token.as_bytes())?,
                created_at: now,
                expires_at: None,
                revoked_at: None,
                last_used_at: None,
                rotated_from: None,
                rotated_to: None,
                rate_limit: None,
            };
            store.insert(&record, &[]).await?;
            tokens.push(token);
        }
        let capacity = keys as u64 + 1024;
        let verifier = Verifier::builder(store)
            .hasher(cheap)
            .key_capacity(capacity)
            // Long enough that no entry ages out while a million keys are being verified.
            .revocation_window(Duration::from_secs(3600))
            .build();
        let filled = started.elapsed();
        settle(&verifier).await;
        let before = self_rss_bytes();
        let tokens = Arc::new(tokens);
        let workers = 8;
        let mut tasks = Vec::new();
        for w in 0..workers {
            let v = verifier.clone();
            let tokens = Arc::clone(&tokens);
            tasks.push(tokio::spawn(async move {
                let mut failed = 0usize;
                for t in tokens.iter().skip(w).step_by(workers) {
                    if v.verify(t).await.is_err() {
                        failed += 1;
                    }
                }
                failed
            }));
        }
        let mut failed = 0;
        for t in tasks {
            failed += t.await?;
        }
        settle(&verifier).await;
        let after = self_rss_bytes();
        let (keys, rejections) = verifier.cached_entries();
        let per_key = after.saturating_sub(before) as f64 / keys as f64;
        println!(
            "{RESULT} {}",
            serde_json::json!({
                "keys": keys,
                "failed": failed,
                "cached_keys": keys,
                "cached_rejections": rejections,
                "rss_before": before,
                "rss_after": after,
                "bytes_per_key": per_key,
                "fill_seconds": filled.as_secs_f64(),
                "total_seconds": started.elapsed().as_secs_f64(),
            })
        );
        drop(tokens);
        Ok(())
    })
}

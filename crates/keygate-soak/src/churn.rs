//! The churn task: creates keys (some expiring within seconds), revokes keys — through the
//! server's own verifier or "from another process" — and deletes long-dead keys so the
//! store and the pool stay bounded.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use keygate::{KeyManager, NewKey};
use tokio::time::Instant;

use crate::client::{now_ms, Connection, Credential};
use crate::oracle::{Exchange, KeyFacts, Policy, Presented, Revocation, RevokeMode, Tally};
use crate::pool::{Pool, PooledKey};
use crate::rng::Rng;

/// Settings of the churn task.
#[derive(Debug, Clone)]
pub struct ChurnSettings {
    /// One create (and at most one revoke) per tick.
    pub every: Duration,
    /// Revoke while more unrevoked, unexpired keys than this are in the pool.
    pub target_live: usize,
    /// Share of new keys that expire within seconds, in percent.
    pub expiring_percent: usize,
    /// Delete a key this long after its revocation or expiry.
    pub retire_after: Duration,
    /// When to stop.
    pub deadline: Instant,
    /// The oracle's tolerances (for the warm-up requests).
    pub policy: Policy,
}

/// What the churn task did.
#[derive(Debug, Default, Clone)]
pub struct ChurnReport {
    /// Keys created.
    pub created: u64,
    /// Keys revoked through the server's verifier.
    pub revoked_local: u64,
    /// Keys revoked by a manager the verifier does not know.
    pub revoked_remote: u64,
    /// Keys created with a short expiry.
    pub expiring: u64,
    /// Keys deleted.
    pub deleted: u64,
    /// Lifecycle calls that failed.
    pub errors: u64,
    /// The warm-up requests (one per new key, judged like the clients' requests).
    pub warmups: Tally,
}

/// Runs until the deadline. `local` invalidates the server's verifier; `remote` does not.
pub async fn run(
    pool: Arc<Pool>,
    local: KeyManager,
    remote: KeyManager,
    conn: &mut Connection,
    settings: ChurnSettings,
) -> ChurnReport {
    let mut rng = Rng::from_os();
    let mut report = ChurnReport::default();
    let mut tick = tokio::time::interval(settings.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0u64;
    while Instant::now() < settings.deadline {
        tick.tick().await;
        n += 1;
        if create(&pool, &local, conn, &settings, &mut rng, n, &mut report)
            .await
            .is_err()
        {
            report.errors += 1;
        }
        if revoke(&pool, &local, &remote, &settings, &mut rng, n, &mut report)
            .await
            .is_err()
        {
            report.errors += 1;
        }
        let retire_after = i64::try_from(settings.retire_after.as_millis()).unwrap_or(i64::MAX);
        let now = now_ms();
        let gone = pool.retire(|f| {
            let ended = match (f.revoked.and_then(|r| r.done_ms), f.expires_at_ms) {
                (Some(r), Some(e)) => Some(r.min(e)),
                (r, e) => r.or(e),
            };
            ended.is_some_and(|t| t.saturating_add(retire_after) < now)
        });
        for k in gone {
            k.set_deleted(now_ms());
            match local.delete(&k.id()).await {
                Ok(()) => report.deleted += 1,
                Err(_) => report.errors += 1,
            }
        }
    }
    report
}

async fn create(
    pool: &Pool,
    local: &KeyManager,
    conn: &mut Connection,
    settings: &ChurnSettings,
    rng: &mut Rng,
    n: u64,
    report: &mut ChurnReport,
) -> anyhow::Result<()> {
    let mut new = NewKey::new(format!("soak-{n}"), "soak").scopes(["soak:read"])?;
    let expiring = rng.chance(settings.expiring_percent);
    if expiring {
        // 2–6 s from now, on a whole second so no store can round it.
        let secs = (now_ms() / 1_000) + 3 + rng.below(5) as i64;
        if let Some(at) = Utc.timestamp_opt(secs, 0).single() {
            new = new.expires_at(at);
        }
    }
    let created = local.create(new).await?;
    report.created += 1;
    report.expiring += u64::from(expiring);
    let facts = KeyFacts {
        id: created.record.id.clone(),
        expires_at_ms: created.record.expires_at.map(|t| t.timestamp_millis()),
        revoked: None,
        deleted_ms: None,
    };
    let key = Arc::new(PooledKey::new(
        created.key.expose_secret().to_owned(),
        facts,
        rng,
    ));
    // Verify the new key once before anyone forges secrets for its id: a throttled id would
    // otherwise refuse a not-yet-verified genuine secret (a documented trade-off, not a bug).
    let sent_ms = now_ms();
    let answer = conn.ask(&Credential::ApiKey(key.token.clone())).await?;
    report.warmups.record(
        &Exchange {
            presented: Presented::Genuine(key.facts()),
            sent_ms,
            received_ms: now_ms(),
            answer,
        },
        &settings.policy,
    );
    pool.publish(key);
    Ok(())
}

async fn revoke(
    pool: &Pool,
    local: &KeyManager,
    remote: &KeyManager,
    settings: &ChurnSettings,
    rng: &mut Rng,
    n: u64,
    report: &mut ChurnReport,
) -> anyhow::Result<()> {
    let now = now_ms();
    let live: Vec<_> = pool
        .all()
        .into_iter()
        .filter(|k| {
            let f = k.facts();
            f.revoked.is_none() && f.expires_at_ms.is_none_or(|e| e > now)
        })
        .collect();
    if live.len() <= settings.target_live {
        return Ok(());
    }
    let key = &live[rng.below(live.len())];
    let (mode, manager) = if n.is_multiple_of(2) {
        (RevokeMode::Local, local)
    } else {
        (RevokeMode::Remote, remote)
    };
    let started_ms = now_ms();
    key.set_revocation(Revocation {
        mode,
        started_ms,
        done_ms: None,
    });
    manager.revoke(&key.id()).await?;
    key.set_revocation(Revocation {
        mode,
        started_ms,
        done_ms: Some(now_ms()),
    });
    match mode {
        RevokeMode::Local => report.revoked_local += 1,
        RevokeMode::Remote => report.revoked_remote += 1,
    }
    Ok(())
}

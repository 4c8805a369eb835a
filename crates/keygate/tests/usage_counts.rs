//! Per-key usage counts (issue 11): counted in memory on the hot path, written behind with
//! `last_used_at`, added (not overwritten) by several verifiers, kept 90 days. All on a
//! controllable clock; no sleeps.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DurationRound, Utc};
use keygate::{
    Clock, KeyManager, KeyStore, NewKey, ScopeRequirement, UsageCount, Verifier, USAGE_RETENTION,
};
use support::{cheap_argon2, forge_secret, Rig};

fn hour_of(t: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
    t.duration_trunc(chrono::Duration::hours(1)).unwrap()
}

async fn counts(rig: &Rig, id: &str) -> (u64, u64) {
    let rows = rig
        .store
        .usage(id, rig.clock.now() - chrono::Duration::days(1))
        .await
        .unwrap();
    rows.iter()
        .fold((0, 0), |(a, r), c| (a + c.requests, r + c.refused))
}

/// Flushes 20 times while `tasks` run, then waits for them and flushes what is left.
async fn flush_while(rig: &Rig, tasks: Vec<tokio::task::JoinHandle<()>>) {
    for _ in 0..20 {
        rig.verifier.flush_last_used().await.unwrap();
        tokio::task::yield_now().await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    rig.verifier.flush_last_used().await.unwrap();
}

#[tokio::test]
async fn accepted_requests_are_counted_in_the_current_hour_and_written_in_one_flush() {
    let rig = Rig::new();
    let (token, id) = rig.key().await;
    for _ in 0..7 {
        rig.verifier.verify(&token).await.unwrap();
    }
    assert_eq!(
        counts(&rig, &id).await,
        (0, 0),
        "nothing written per request"
    );
    rig.verifier.flush_last_used().await.unwrap();
    let rows = rig
        .store
        .usage(&id, hour_of(rig.clock.now()))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].requests, rows[0].refused), (7, 0));
    assert_eq!(rows[0].hour, hour_of(rig.clock.now()));
}

#[tokio::test]
async fn refusals_of_a_parsed_key_are_counted_but_unknown_ids_are_not() {
    let rig = Rig::new();
    let (token, id) = rig.key().await;
    rig.verifier.verify(&token).await.unwrap();
    // A wrong secret for the id.
    let forged = forge_secret(&token, 1);
    assert!(rig.verifier.verify(&forged).await.is_err());
    // A scope the key lacks.
    let denied = rig
        .verifier
        .authorize(&token, &ScopeRequirement::all_of(["boards:write"]))
        .await;
    assert!(denied.is_err());
    // Revoked: the correct secret, refused.
    rig.manager.revoke(&id).await.unwrap();
    assert!(rig.verifier.verify(&token).await.is_err());
    // An id nobody has: no slot, no row.
    let unknown = keygate::token::generate("mk_live").unwrap();
    assert!(rig.verifier.verify(unknown.expose_secret()).await.is_err());

    rig.verifier.flush_last_used().await.unwrap();
    assert_eq!(counts(&rig, &id).await, (1, 3));
    assert!(rig
        .store
        .usage(unknown.id(), rig.clock.now() - chrono::Duration::days(1))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn an_expired_key_with_its_correct_secret_counts_as_refused() {
    let rig = Rig::new();
    let expiry = rig.clock.now() + chrono::Duration::minutes(5);
    let (token, id) = rig
        .key_with(
            NewKey::new("short", "acme")
                .scopes(["entities:read"])
                .unwrap()
                .expires_at(expiry),
        )
        .await;
    rig.verifier.verify(&token).await.unwrap();
    rig.clock.advance(Duration::from_secs(600));
    assert!(rig.verifier.verify(&token).await.is_err());
    rig.verifier.flush_last_used().await.unwrap();
    assert_eq!(counts(&rig, &id).await, (1, 1));
}

#[tokio::test]
async fn counts_survive_a_graceful_restart() {
    let rig = Rig::new();
    let (token, id) = rig.key().await;
    for _ in 0..3 {
        rig.verifier.verify(&token).await.unwrap();
    }
    rig.verifier.shutdown().await.unwrap();
    // The next process on the same store sees them.
    let next = Verifier::builder(rig.store.clone())
        .clock(rig.clock.clone())
        .hasher(cheap_argon2())
        .build();
    let manager = KeyManager::new(rig.store.clone()).with_verifier(&next);
    let totals = manager
        .usage_totals(std::slice::from_ref(&id))
        .await
        .unwrap();
    assert_eq!(totals[&id].requests_24h, 3);
    assert_eq!(totals[&id].requests_30d, 3);
}

#[tokio::test]
async fn two_verifiers_on_one_store_add_their_counts() {
    let rig = Rig::new();
    let (token, id) = rig.key().await;
    let other = Verifier::builder(rig.store.clone())
        .clock(rig.clock.clone())
        .hasher(cheap_argon2())
        .build();
    for _ in 0..4 {
        rig.verifier.verify(&token).await.unwrap();
    }
    for _ in 0..5 {
        other.verify(&token).await.unwrap();
    }
    rig.verifier.flush_last_used().await.unwrap();
    other.flush_last_used().await.unwrap();
    assert_eq!(counts(&rig, &id).await, (9, 0));
}

#[tokio::test]
async fn counts_of_a_failed_flush_are_written_by_the_next_one() {
    let rig = Rig::new();
    let (token, id) = rig.key().await;
    rig.verifier.verify(&token).await.unwrap();
    rig.verifier.verify(&token).await.unwrap();
    rig.store.failing.store(true, Ordering::SeqCst);
    assert!(rig.verifier.flush_last_used().await.is_err());
    rig.store.failing.store(false, Ordering::SeqCst);
    rig.verifier.verify(&token).await.unwrap();
    rig.verifier.flush_last_used().await.unwrap();
    assert_eq!(counts(&rig, &id).await, (3, 0));
}

#[tokio::test]
async fn counts_older_than_90_days_are_pruned_by_the_flusher() {
    let rig = Rig::new();
    let (token, id) = rig.key().await;
    let now = hour_of(rig.clock.now());
    let retention = chrono::Duration::from_std(USAGE_RETENTION).unwrap();
    let old = UsageCount {
        key_id: id.clone(),
        hour: now - retention - chrono::Duration::hours(1),
        requests: 11,
        refused: 0,
    };
    let kept = UsageCount {
        key_id: id.clone(),
        hour: now - retention + chrono::Duration::hours(1),
        requests: 13,
        refused: 0,
    };
    rig.store.add_usage(&[old, kept.clone()]).await.unwrap();
    rig.verifier.verify(&token).await.unwrap();
    rig.verifier.flush_last_used().await.unwrap();
    let rows = rig
        .store
        .usage(&id, now - retention - chrono::Duration::days(2))
        .await
        .unwrap();
    let hours: Vec<_> = rows.iter().map(|r| (r.hour, r.requests)).collect();
    assert_eq!(hours, [(kept.hour, 13), (now, 1)]);
}

#[tokio::test]
async fn daily_usage_has_one_entry_per_day_oldest_first() {
    let rig = Rig::new();
    let (token, id) = rig.key().await;
    let today = hour_of(rig.clock.now());
    rig.store
        .add_usage(&[UsageCount {
            key_id: id.clone(),
            hour: today - chrono::Duration::days(2),
            requests: 5,
            refused: 2,
        }])
        .await
        .unwrap();
    rig.verifier.verify(&token).await.unwrap();
    rig.verifier.flush_last_used().await.unwrap();
    let days = rig.manager.daily_usage(&id, 30).await.unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(days[29].day, rig.clock.now().date_naive());
    assert_eq!((days[29].requests, days[29].refused), (1, 0));
    assert_eq!((days[27].requests, days[27].refused), (5, 2));
    assert!(days.windows(2).all(|w| w[0].day < w[1].day));
    let total: u64 = days.iter().map(|d| d.requests).sum();
    assert_eq!(total, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_uses_are_all_counted() {
    let rig = Arc::new(Rig::new());
    let (token, id) = rig.key().await;
    rig.verifier.verify(&token).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let rig = Arc::clone(&rig);
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..250 {
                rig.verifier.verify(&token).await.unwrap();
            }
        }));
    }
    // Flushes racing the uses must neither lose nor double any count.
    flush_while(&rig, tasks).await;
    assert_eq!(counts(&rig, &id).await, (2001, 0));
}

/// A request the key's entry admitted and the route then refused (a missing scope) is counted
/// once, as refused, even when the entry was replaced in between by a fresher read of the key
/// (its revocation window passed, or it was invalidated) that has no accepted request yet.
#[tokio::test]
async fn a_refusal_after_the_entry_was_replaced_counts_the_request_once() {
    for invalidated in [false, true] {
        let rig = Rig::new();
        let (token, id) = rig.key().await;
        let admitted = rig.verifier.verify(&token).await.unwrap();
        let reads = rig.store.get_count();
        if invalidated {
            rig.verifier.invalidator().invalidate(&id);
        } else {
            rig.clock.advance(Duration::from_secs(31));
        }
        // Another request reads the key again (a new entry) and is refused: a wrong secret.
        assert!(rig.verifier.verify(&forge_secret(&token, 1)).await.is_err());
        assert_eq!(rig.store.get_count(), reads + 1, "the entry was read again");
        // The route refuses the first request.
        let denied = rig
            .verifier
            .require(&admitted, &ScopeRequirement::all_of(["boards:write"]));
        assert!(denied.is_err());
        rig.verifier.flush_last_used().await.unwrap();
        assert_eq!(
            counts(&rig, &id).await,
            (0, 2),
            "two requests, both refused (invalidated: {invalidated})"
        );
    }
}

/// A request whose acceptance was already written when its route refused it stays counted
/// once, as accepted.
#[tokio::test]
async fn a_refusal_after_the_acceptance_was_flushed_counts_the_request_once() {
    let rig = Rig::new();
    let (token, id) = rig.key().await;
    let admitted = rig.verifier.verify(&token).await.unwrap();
    rig.verifier.flush_last_used().await.unwrap();
    let denied = rig
        .verifier
        .require(&admitted, &ScopeRequirement::all_of(["boards:write"]));
    assert!(denied.is_err());
    rig.verifier.flush_last_used().await.unwrap();
    assert_eq!(counts(&rig, &id).await, (1, 0), "one request, counted once");
}

/// With a zero revocation window every request reads the key again and its entry replaces the
/// last one, taking over its counts: with flushes and route refusals racing the reads, every
/// request is still counted exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_handed_over_by_racing_rereads_are_neither_lost_nor_doubled() {
    let rig = Arc::new(Rig::with(|b| b.revocation_window(Duration::ZERO)));
    let (token, id) = rig.key().await;
    rig.verifier.verify(&token).await.unwrap();
    let lacking = ScopeRequirement::all_of(["boards:write"]);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let rig = Arc::clone(&rig);
        let token = token.clone();
        let lacking = lacking.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..100 {
                let p = rig.verifier.verify(&token).await.unwrap();
                if i % 2 == 0 {
                    assert!(rig.verifier.require(&p, &lacking).is_err());
                }
            }
        }));
    }
    flush_while(&rig, tasks).await;
    let (accepted, refused) = counts(&rig, &id).await;
    assert_eq!(accepted + refused, 401, "({accepted}, {refused})");
    assert!(refused <= 200, "({accepted}, {refused})");
}

/// A request the key's own rate limit refuses is a use of the key (`last_used_at` moves) and
/// is counted once, as refused: never as accepted, not even for a moment a flush could write.
#[tokio::test]
async fn requests_over_the_keys_rate_limit_are_counted_as_refused_uses() {
    let rig = Rig::new();
    let new = NewKey::new("limited", "acme")
        .scopes(["entities:read"])
        .unwrap()
        .rate_limit("2/1h".parse().unwrap());
    let (token, id) = rig.key_with(new).await;
    for _ in 0..2 {
        rig.verifier.verify(&token).await.unwrap();
    }
    rig.verifier.flush_last_used().await.unwrap();
    assert_eq!(counts(&rig, &id).await, (2, 0));
    let before = rig.store.get(&id).await.unwrap().unwrap().last_used_at;
    rig.clock.advance(Duration::from_secs(5));
    for _ in 0..3 {
        assert!(matches!(
            rig.verifier.verify(&token).await,
            Err(keygate::AuthError::RateLimited { .. })
        ));
        // A flush between refusals writes nothing as accepted.
        rig.verifier.flush_last_used().await.unwrap();
        assert_eq!(counts(&rig, &id).await.0, 2);
    }
    assert_eq!(counts(&rig, &id).await, (2, 3));
    let after = rig.store.get(&id).await.unwrap().unwrap().last_used_at;
    assert!(after > before, "{before:?} -> {after:?}");
}

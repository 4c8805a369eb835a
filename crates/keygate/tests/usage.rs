//! Write-behind `last_used_at`: one batched store write per flush interval, and a flush on
//! graceful shutdown.

mod support;

use std::time::Duration;

use keygate::{KeyStore, NewKey};
use support::Rig;

async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn many_verifications_make_one_batched_write_per_flush_interval() {
    let rig = Rig::with(|b| b.last_used_flush_interval(Duration::from_secs(60)));
    let mut tokens = Vec::new();
    for name in ["a", "b", "c"] {
        tokens.push(rig.key_with(NewKey::new(name, "acme")).await);
    }
    // Warm the caches (argon2 runs on the blocking pool) before freezing time.
    for (t, _) in &tokens {
        rig.verifier.verify(t).await.unwrap();
    }
    tokio::time::pause();
    for _ in 0..300 {
        for (t, _) in &tokens {
            rig.verifier.verify(t).await.unwrap();
        }
    }
    settle().await;
    assert!(
        rig.store.touch_batches().is_empty(),
        "nothing is written per request"
    );

    tokio::time::advance(Duration::from_secs(61)).await;
    settle().await;
    let batches = rig.store.touch_batches();
    assert_eq!(batches.len(), 1, "one write for the interval");
    assert_eq!(batches[0].len(), 3, "one entry per key, not per request");
    for (_, id) in &tokens {
        assert!(rig
            .store
            .inner
            .get(id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at
            .is_some());
    }

    // Nothing new happened: the next interval writes nothing.
    tokio::time::advance(Duration::from_secs(60)).await;
    settle().await;
    assert_eq!(rig.store.touch_batches().len(), 1);
}

/// Review of the compact cache entry: queued entries stay alive until they are flushed (evicted
/// or replaced ones too), so a queue as long as the key capacity is flushed at once instead of
/// waiting for the interval: what usage pins beyond the cache stays bounded.
#[tokio::test]
async fn a_queue_as_long_as_the_key_capacity_is_flushed_before_its_interval() {
    let rig = Rig::with(|b| {
        b.last_used_flush_interval(Duration::from_secs(3600))
            .key_capacity(2)
    });
    let mut tokens = Vec::new();
    for name in ["a", "b"] {
        tokens.push(rig.key_with(NewKey::new(name, "acme")).await);
    }
    rig.verifier.verify(&tokens[0].0).await.unwrap();
    settle().await;
    assert!(
        rig.store.touch_batches().is_empty(),
        "one key queued of a capacity of two: nothing written yet"
    );
    rig.verifier.verify(&tokens[1].0).await.unwrap();
    // The interval is an hour away: only the full queue can make this write.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while rig.store.touch_batches().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "a queue as long as the capacity was not flushed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(rig.store.touch_batches()[0].len(), 2);
}

#[tokio::test]
async fn graceful_shutdown_flushes_pending_last_use() {
    let rig = Rig::with(|b| b.last_used_flush_interval(Duration::from_secs(3600)));
    let (token, id) = rig.key().await;
    rig.verifier.verify(&token).await.unwrap();
    assert_eq!(rig.verifier.pending_last_used(), 1);
    assert_eq!(rig.verifier.shutdown().await.unwrap(), 1);
    assert_eq!(rig.store.touch_batches().len(), 1);
    assert!(rig
        .store
        .inner
        .get(&id)
        .await
        .unwrap()
        .unwrap()
        .last_used_at
        .is_some());
}

#[tokio::test]
async fn a_failed_flush_keeps_its_batch_for_the_next_one() {
    let rig = Rig::with(|b| b.last_used_flush_interval(Duration::from_secs(3600)));
    let (token, id) = rig.key().await;
    rig.verifier.verify(&token).await.unwrap();
    rig.store
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(rig.verifier.flush_last_used().await.is_err());
    rig.store
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(rig.verifier.flush_last_used().await.unwrap(), 1);
    assert!(rig
        .store
        .inner
        .get(&id)
        .await
        .unwrap()
        .unwrap()
        .last_used_at
        .is_some());
}

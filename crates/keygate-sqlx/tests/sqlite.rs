//! What only the SQLite store must show: the file it makes, no plaintext in it, an
//! append-only audit table, its own migration bookkeeping, and outages as store errors.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use keygate::{
    AuditAction, AuditEvent, AuthError, KeyManager, KeyStore, ManualClock, NewKey, RotateOutcome,
    Rotation, StoreError,
};
use keygate_sqlx::{SqliteStore, StoreOptions};
use sqlx::{Connection, SqliteConnection};
use support::{cheap_argon2, record, t, verifier};

#[tokio::test]
async fn connect_creates_a_missing_file_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    assert!(!path.exists());
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert!(path.exists());
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn no_plaintext_secret_is_in_the_sqlite_files_after_create_rotate_revoke() {
    let (store, dir, _url) = support::sqlite().await;
    let store = Arc::new(store);
    let manager = KeyManager::new(store.clone()).with_hasher(cheap_argon2());
    let created = manager
        .create(
            NewKey::new("scan-me", "acme")
                .scopes(["entities:read"])
                .unwrap(),
        )
        .await
        .unwrap();
    let rotated = manager
        .rotate(&created.record.id, Duration::from_secs(60))
        .await
        .unwrap();
    manager.revoke(&rotated.record.id).await.unwrap();
    store.pool().close().await; // checkpoints the WAL into the main file

    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
    }
    let contains =
        |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    for key in [&created.key, &rotated.key] {
        let token = key.expose_secret();
        let (_, secret) = token.split_once('.').unwrap();
        // The id is stored in the clear: finding it proves the scan reads what was written.
        assert!(files.iter().any(|(_, bytes)| contains(bytes, key.id())));
        for (name, bytes) in &files {
            assert!(!contains(bytes, token), "full token found in {name}");
            assert!(!contains(bytes, &secret[..24]), "secret found in {name}");
        }
    }
}

#[tokio::test]
async fn the_audit_table_refuses_updates_and_deletes() {
    let (store, _dir, _url) = support::sqlite().await;
    store.insert(&record("k1", "acme", 0), &[]).await.unwrap();
    let manager = KeyManager::new(Arc::new(store.clone())).with_hasher(cheap_argon2());
    manager.revoke("k1").await.unwrap();
    for sql in [
        "UPDATE keygate_audit SET actor = 'someone else'",
        "DELETE FROM keygate_audit",
    ] {
        let err = sqlx::query(sql).execute(store.pool()).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(store.audit_trail("k1").await.unwrap().len(), 1);
}

#[tokio::test]
async fn migrations_are_tracked_in_keygate_migrations_and_applied_once() {
    let (store, _dir, url) = support::sqlite().await;
    store.insert(&record("k1", "acme", 0), &[]).await.unwrap();
    let again = SqliteStore::connect(&url).await.unwrap();
    assert!(
        again.get("k1").await.unwrap().is_some(),
        "a second connect keeps the data"
    );
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM keygate_migrations")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(applied, 3);
    // The application's own sqlx migrations table is left alone.
    let sqlx_table: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name = '_sqlx_migrations'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(sqlx_table, 0);
}

#[tokio::test]
async fn with_migrate_off_the_schema_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bare.db").display());
    let options = StoreOptions {
        migrate: false,
        ..StoreOptions::default()
    };
    let store = SqliteStore::connect_with(&url, options).await.unwrap();
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name LIKE 'keygate_%'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(tables, 0);
    assert!(store.get("k1").await.is_err());
}

#[tokio::test]
async fn a_locked_database_fails_within_the_timeout_instead_of_hanging() {
    let (_, _dir, url) = support::sqlite().await;
    let options = StoreOptions {
        timeout: Duration::from_millis(300),
        ..StoreOptions::default()
    };
    let store = SqliteStore::connect_with(&url, options).await.unwrap();
    store.insert(&record("k1", "acme", 0), &[]).await.unwrap();
    // Another process holds the write lock.
    let mut other = SqliteConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();

    // Bounded so that a store ignoring its timeout fails here instead of hanging the suite;
    // how fast the timeout answers is not asserted (timing belongs in benchmarks).
    let err = tokio::time::timeout(
        Duration::from_secs(60),
        store.revoke("k1", t(1), &support::audit("k1", AuditAction::Revoked)),
    )
    .await
    .expect("the revoke gave up instead of waiting for the lock forever")
    .unwrap_err();
    // The store's own deadline (or SQLite's busy timeout, set to the same value) answered.
    assert!(
        matches!(err, StoreError::Timeout(d) if d == Duration::from_millis(300))
            || matches!(err, StoreError::Unavailable(_)),
        "{err:?}"
    );
    sqlx::raw_sql("ROLLBACK").execute(&mut other).await.unwrap();
}

#[tokio::test]
async fn a_closed_store_is_unavailable_and_the_verifier_answers_503() {
    let (store, _dir, _url) = support::sqlite().await;
    let store = Arc::new(store);
    let manager = KeyManager::new(store.clone()).with_hasher(cheap_argon2());
    let created = manager
        .create(NewKey::new("k", "acme").scopes(["entities:read"]).unwrap())
        .await
        .unwrap();
    store.pool().close().await;
    assert!(matches!(
        store.get(&created.record.id).await,
        Err(StoreError::Unavailable(_))
    ));
    let verifier = verifier(store, &ManualClock::new(t(0)));
    let err = verifier
        .verify(created.key.expose_secret())
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::StoreUnavailable { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_waiting_on_a_revoke_in_progress_sees_it_and_writes_nothing() {
    let (store, _dir, url) = support::sqlite().await;
    let store = Arc::new(store);
    store.insert(&record("old", "acme", 0), &[]).await.unwrap();
    // Another process is revoking the key: its write transaction is open, not committed.
    let mut other = SqliteConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE; UPDATE keygate_keys SET revoked_at = 5000 WHERE id = 'old'")
        .execute(&mut other)
        .await
        .unwrap();
    let rotation = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut new = record("new", "acme", 100);
            new.rotated_from = Some("old".into());
            let audit = [AuditEvent {
                key_id: "old".into(),
                action: AuditAction::Rotated,
                at: t(100),
                org: "acme".into(),
                actor: None,
                detail: serde_json::Value::Null,
            }];
            store
                .rotate(&Rotation {
                    old_id: "old",
                    successor: &new,
                    old_expires_at: t(60_000),
                    now: t(100),
                    audit: &audit,
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !rotation.is_finished(),
        "the rotation must wait for the writer"
    );
    sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
    assert_eq!(rotation.await.unwrap().unwrap(), RotateOutcome::NotActive);
    assert_eq!(store.get("new").await.unwrap(), None);
    let old = store.get("old").await.unwrap().unwrap();
    assert_eq!((old.rotated_to, old.expires_at), (None, None));
    assert!(store.audit_trail("old").await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unparsable_stored_rate_limit_is_corrupt() {
    let (store, _dir, _url) = support::sqlite().await;
    store.insert(&record("k1", "acme", 0), &[]).await.unwrap();
    sqlx::query("UPDATE keygate_keys SET rate_limit = 'lots/forever' WHERE id = 'k1'")
        .execute(store.pool())
        .await
        .unwrap();
    let err = store.get("k1").await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { id, reason } if id == "k1" && reason.contains("rate_limit")),
        "{err:?}"
    );
}

#[tokio::test]
async fn stored_usage_counts_clamp_negatives_to_zero_and_a_bad_hour_is_corrupt() {
    let (store, _dir, _url) = support::sqlite().await;
    // Rows no store call writes (hand-edited): negative counts, an hour out of range.
    sqlx::query(
        "INSERT INTO keygate_usage (key_id, hour, requests, refused) \
         VALUES ('k1', ?, -5, 3), ('k1', ?, 2, -1), ('bad', ?, 1, 1)",
    )
    .bind(t(0).timestamp_micros())
    .bind(t(3_600_000).timestamp_micros())
    .bind(i64::MAX)
    .execute(store.pool())
    .await
    .unwrap();
    let rows = store.usage("k1", t(0)).await.unwrap();
    let counts: Vec<(u64, u64)> = rows.iter().map(|c| (c.requests, c.refused)).collect();
    assert_eq!(counts, [(0, 3), (2, 0)]);
    let totals = store
        .usage_totals(&["k1".into()], t(0), t(0))
        .await
        .unwrap();
    assert_eq!(
        (
            totals[0].requests_30d,
            totals[0].requests_24h,
            totals[0].refused_24h
        ),
        (2, 2, 3)
    );
    // Adding to a negative row adds to what is stored.
    store
        .add_usage(&[keygate::UsageCount {
            key_id: "k1".into(),
            hour: t(0),
            requests: 10,
            refused: 0,
        }])
        .await
        .unwrap();
    assert_eq!(store.usage("k1", t(0)).await.unwrap()[0].requests, 5);
    let err = store.usage("bad", t(0)).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { id, reason } if id == "bad" && reason.contains("hour")),
        "{err:?}"
    );
}

/// Holds every connection the store's pool may open at once (forcing them all open), so a
/// check can be run on each of them.
async fn every_pooled_connection(
    store: &SqliteStore,
) -> Vec<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
    let size = store.pool().options().get_max_connections();
    let mut held = Vec::new();
    for _ in 0..size {
        held.push(store.pool().acquire().await.unwrap());
    }
    held
}

/// Issue 13, finding 2: a committed revoke (and its audit row) must survive power loss. In
/// WAL mode that takes `synchronous=FULL` on the connection that commits it (`NORMAL` only
/// syncs at checkpoints); lifecycle writes commit on any pooled connection, so every one of
/// them must be FULL.
#[tokio::test]
async fn lifecycle_writes_are_durable_every_pooled_connection_syncs_each_commit() {
    let (store, _dir, _url) = support::sqlite().await;
    let held = every_pooled_connection(&store).await;
    assert!(held.len() > 1, "the file store pools several connections");
    for mut conn in held {
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        // 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(
            synchronous, 2,
            "a commit on this connection is not synced to disk before it returns"
        );
    }
    // And the revoke of a key goes through that pool.
    store.insert(&record("k1", "acme", 0), &[]).await.unwrap();
    assert!(store
        .revoke("k1", t(1), &support::audit("k1", AuditAction::Revoked))
        .await
        .unwrap());
}

/// Whether the database's write lock is free right now (probed from a connection of its own
/// that does not wait for it).
async fn write_lock_is_free(url: &str) -> bool {
    use std::str::FromStr;
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .unwrap()
        .busy_timeout(Duration::ZERO);
    let mut probe = SqliteConnection::connect_with(&options).await.unwrap();
    let free = sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut probe)
        .await
        .is_ok();
    if free {
        sqlx::raw_sql("ROLLBACK").execute(&mut probe).await.unwrap();
    }
    probe.close().await.unwrap();
    free
}

/// Cancels `write` right after SQLite began its transaction, before the write goes on: the
/// `BEGIN IMMEDIATE` has run and holds the write lock, and its answer has not been taken in
/// by the write (the store begins in a task of its own, which takes the answer and, its caller
/// gone, drops the transaction; sqlx's worker also rolls back a `BEGIN` nobody takes). The
/// connection must go back to the pool with no transaction open.
///
/// A blocker holds the write lock, so the store's `BEGIN IMMEDIATE` waits in SQLite's busy
/// handler; `write` is polled by hand (with a waker that does nothing, so it only moves when
/// polled) meanwhile; the blocker lets go, and `write` is polled on only while the lock is
/// still free, then dropped once the store's transaction holds it. (A write that got to its
/// end during those polls is left as it is: that run tests a plain write.)
async fn cancel_between_begin_and_commit<F: std::future::Future>(url: &str, write: F) {
    use std::str::FromStr;
    use std::task::{Context, Waker};

    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .unwrap()
        .busy_timeout(Duration::from_secs(5));
    let mut blocker = SqliteConnection::connect_with(&options).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();

    let mut write = std::pin::pin!(write);
    let mut cx = Context::from_waker(Waker::noop());
    // The pool has an idle connection (the store was used): a few polls take it and send the
    // `BEGIN IMMEDIATE`, which then waits for the blocker.
    for _ in 0..20 {
        assert!(
            write.as_mut().poll(&mut cx).is_pending(),
            "the write finished while another connection held the write lock"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut blocker)
        .await
        .unwrap();
    blocker.close().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while write_lock_is_free(url).await {
        if write.as_mut().poll(&mut cx).is_ready() {
            return;
        }
        assert!(Instant::now() < deadline, "the write never took the lock");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A later write succeeds (waiting for the lock up to the store's timeout), and no pooled
/// connection is inside a transaction: a plain `BEGIN` works on each.
async fn assert_no_transaction_left_open(store: &SqliteStore, id: &str) {
    store.insert(&record(id, "acme", 0), &[]).await.unwrap();
    assert!(store
        .revoke(id, t(1), &support::audit(id, AuditAction::Revoked))
        .await
        .unwrap());
    for mut conn in every_pooled_connection(store).await {
        sqlx::raw_sql("BEGIN").execute(&mut *conn).await.unwrap();
        sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await.unwrap();
    }
}

/// A store whose calls may wait up to 5 s (for a lock left behind, before the fix).
async fn patient_store(url: &str) -> SqliteStore {
    let options = StoreOptions {
        timeout: Duration::from_secs(5),
        ..StoreOptions::default()
    };
    SqliteStore::connect_with(url, options).await.unwrap()
}

/// Issue 13, finding 8: a migration cancelled between its `BEGIN IMMEDIATE` and its commit
/// (the deadline, or a caller that gives up) must not leave that transaction open on a
/// pooled connection: it would hold the write lock and break every later write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_cancelled_between_begin_and_commit_leaves_no_transaction_open() {
    let (_, _dir, url) = support::sqlite().await;
    // Migrated once already: a later `migrate` still takes the write lock to look.
    let store = patient_store(&url).await;
    for round in 0..3 {
        cancel_between_begin_and_commit(&url, store.migrate()).await;
        assert_no_transaction_left_open(&store, &format!("k{round}")).await;
    }
    // The migration itself, run to the end, still applies everything.
    store.migrate().await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM keygate_migrations")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(applied, 3);
}

/// The same for a lifecycle write: every one of them takes its transaction the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_cancelled_between_begin_and_commit_leaves_no_transaction_open() {
    let (_, _dir, url) = support::sqlite().await;
    let store = patient_store(&url).await;
    store.insert(&record("k", "acme", 0), &[]).await.unwrap();
    let audit = support::audit("k", AuditAction::Revoked);
    cancel_between_begin_and_commit(&url, store.revoke("k", t(1), &audit)).await;
    assert_no_transaction_left_open(&store, "after").await;
    // Cancelled around its commit: the revoke and its audit row happened together or not at
    // all (a run whose polls took the write to its end made a plain, complete revoke).
    let revoked = store.get("k").await.unwrap().unwrap().revoked_at.is_some();
    let audited = !store.audit_trail("k").await.unwrap().is_empty();
    assert_eq!(revoked, audited, "revoked: {revoked}, audited: {audited}");
}

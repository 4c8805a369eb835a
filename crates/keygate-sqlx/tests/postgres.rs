//! What only the PostgreSQL store must show: pushed revocations between verifiers (measured),
//! the revocation window without them, reconnection dropping the cache, no plaintext in the
//! tables, an append-only audit table. Each test uses a schema of its own on
//! `KEYGATE_TEST_POSTGRES_URL` and is SKIPPED, visibly, when that is unset.

mod support;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keygate::{
    AuthError, KeyManager, KeyStore, ManualClock, NewKey, RotateOutcome, Rotation, StoreError,
    Verifier,
};
use keygate_sqlx::{PostgresStore, StoreOptions};
use support::{cheap_argon2, record, t, verifier, Pg};

fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn options(notifications: bool) -> StoreOptions {
    StoreOptions {
        notifications,
        ..StoreOptions::default()
    }
}

/// Waits (bounded) until `n` connections of this test are listening for invalidations.
async fn wait_for_listeners(pg: &Pg, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let listening: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = $1 AND query LIKE 'LISTEN%'",
        )
        .bind(&pg.schema)
        .fetch_one(&pg.admin)
        .await
        .unwrap();
        if listening >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{listening} of {n} listeners after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls `verifier` (bounded, 10 s) until `token` is refused with `expected`; the time taken.
async fn time_until_refused(verifier: &Verifier, token: &str, expected: AuthError) -> Duration {
    let started = Instant::now();
    loop {
        match verifier.verify(token).await {
            Err(e) if e == expected => return started.elapsed(),
            Err(e) => panic!("unexpected {e:?}"),
            Ok(_) => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still accepted after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Two processes' worth of stores on one database: A (where the operator acts) and B.
struct TwoNodes {
    pg: Pg,
    a: Arc<PostgresStore>,
    b: Arc<PostgresStore>,
}

async fn two_nodes(test: &str, notifications: bool) -> Option<TwoNodes> {
    let pg = Pg::fixture(test).await?;
    let a = Arc::new(pg.store(options(notifications)).await);
    let b = Arc::new(pg.store(options(notifications)).await);
    Some(TwoNodes { pg, a, b })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_through_one_verifier_is_pushed_to_the_other() {
    let Some(n) = two_nodes(
        "postgres::a_revoke_through_one_verifier_is_pushed_to_the_other",
        true,
    )
    .await
    else {
        return;
    };
    let clock = ManualClock::new(t(0)); // B's cache never expires by itself: only a push helps
    let verifier_a = verifier(n.a.clone(), &clock);
    let verifier_b = verifier(n.b.clone(), &clock);
    assert!(n.b.pushes_invalidations());
    wait_for_listeners(&n.pg, 2).await;
    let manager = KeyManager::new(n.a.clone()).with_verifier(&verifier_a);
    let created = manager
        .create(
            NewKey::new("shared", "acme")
                .scopes(["entities:read"])
                .unwrap(),
        )
        .await
        .unwrap();
    let token = created.key.expose_secret();
    verifier_b.verify(token).await.unwrap(); // cached in B

    let started = Instant::now();
    manager.revoke(&created.record.id).await.unwrap();
    let _ = time_until_refused(&verifier_b, token, AuthError::RevokedKey).await;
    let propagation = started.elapsed();
    report(&format!(
        "MEASURED postgres revocation propagation with LISTEN/NOTIFY: {:.1} ms (revoke call to rejection by the other verifier)",
        propagation.as_secs_f64() * 1000.0
    ));
    // B's clock never moves, so its cached entry cannot age out: only the pushed invalidation
    // can have made it refuse (within time_until_refused's bound). How fast is measured and
    // reported above, not asserted: timing belongs in benchmarks.
    n.pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_and_rotation_are_pushed_to_the_other_verifier_too() {
    let Some(n) = two_nodes(
        "postgres::delete_and_rotation_are_pushed_to_the_other_verifier_too",
        true,
    )
    .await
    else {
        return;
    };
    let clock = ManualClock::new(t(0));
    let verifier_a = verifier(n.a.clone(), &clock);
    let verifier_b = verifier(n.b.clone(), &clock);
    wait_for_listeners(&n.pg, 2).await;
    let manager = KeyManager::new(n.a.clone()).with_verifier(&verifier_a);
    let new = || NewKey::new("k", "acme").scopes(["entities:read"]).unwrap();
    let doomed = manager.create(new()).await.unwrap();
    let rotated = manager.create(new()).await.unwrap();
    for c in [&doomed, &rotated] {
        verifier_b.verify(c.key.expose_secret()).await.unwrap();
    }
    manager.delete(&doomed.record.id).await.unwrap();
    let deleted = time_until_refused(
        &verifier_b,
        doomed.key.expose_secret(),
        AuthError::InvalidKey,
    )
    .await;
    // Rotation with no grace: the old key's expiry moves to now.
    manager
        .rotate(&rotated.record.id, Duration::ZERO)
        .await
        .unwrap();
    let expired = time_until_refused(
        &verifier_b,
        rotated.key.expose_secret(),
        AuthError::ExpiredKey,
    )
    .await;
    report(&format!(
        "MEASURED postgres propagation: delete {:.1} ms, rotation {:.1} ms",
        deleted.as_secs_f64() * 1000.0,
        expired.as_secs_f64() * 1000.0
    ));
    // As above: B's clock never moves, so only the pushes explain the refusals; the times are
    // reported, not asserted.
    n.pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_notifications_a_revoke_bites_within_the_revocation_window() {
    let Some(n) = two_nodes(
        "postgres::without_notifications_a_revoke_bites_within_the_revocation_window",
        false,
    )
    .await
    else {
        return;
    };
    assert!(!n.b.pushes_invalidations());
    let clock = ManualClock::new(t(0));
    let verifier_a = verifier(n.a.clone(), &clock);
    let verifier_b = verifier(n.b.clone(), &clock); // 30 s window
    let manager = KeyManager::new(n.a.clone()).with_verifier(&verifier_a);
    let created = manager
        .create(
            NewKey::new("shared", "acme")
                .scopes(["entities:read"])
                .unwrap(),
        )
        .await
        .unwrap();
    let token = created.key.expose_secret();
    verifier_b.verify(token).await.unwrap();

    manager.revoke(&created.record.id).await.unwrap();
    assert_eq!(
        verifier_a.verify(token).await.unwrap_err(),
        AuthError::RevokedKey
    );
    // Nothing is pushed: B trusts its cached record for the rest of its window…
    clock.advance(Duration::from_secs(29));
    assert!(verifier_b.verify(token).await.is_ok());
    // …and not a moment past it.
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        verifier_b.verify(token).await.unwrap_err(),
        AuthError::RevokedKey
    );
    report("MEASURED postgres without notifications: revoke honoured by the other verifier once its 30 s revocation window passed (ManualClock), not before");
    n.pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_listener_reconnects_and_drops_the_whole_record_cache() {
    let Some(pg) =
        Pg::fixture("postgres::a_dropped_listener_reconnects_and_drops_the_whole_record_cache")
            .await
    else {
        return;
    };
    let store = Arc::new(pg.store(options(true)).await);
    let clock = ManualClock::new(t(0));
    let v = verifier(store.clone(), &clock);
    wait_for_listeners(&pg, 1).await;
    let manager = KeyManager::new(store.clone()).with_hasher(cheap_argon2());
    let created = manager
        .create(NewKey::new("k", "acme").scopes(["entities:read"]).unwrap())
        .await
        .unwrap();
    let token = created.key.expose_secret();
    v.verify(token).await.unwrap();
    // A change that announces nothing (as if its notification were lost)…
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {}.keygate_keys SET revoked_at = now() WHERE id = $1",
        pg.schema
    )))
    .bind(&created.record.id)
    .execute(&pg.admin)
    .await
    .unwrap();
    assert!(v.verify(token).await.is_ok(), "cached and not announced");
    // …then the listening connection dies.
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1 AND query LIKE 'LISTEN%') AS k",
    )
    .bind(&pg.schema)
    .fetch_one(&pg.admin)
    .await
    .unwrap();
    assert_eq!(killed, 1);
    let recovered = time_until_refused(&v, token, AuthError::RevokedKey).await;
    report(&format!(
        "MEASURED postgres listener reconnect to whole-cache drop: {:.1} ms",
        recovered.as_secs_f64() * 1000.0
    ));
    wait_for_listeners(&pg, 1).await;
    pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_plaintext_secret_is_in_the_postgres_tables_after_create_rotate_revoke() {
    let Some(pg) = Pg::fixture(
        "postgres::no_plaintext_secret_is_in_the_postgres_tables_after_create_rotate_revoke",
    )
    .await
    else {
        return;
    };
    let store = Arc::new(pg.store(StoreOptions::default()).await);
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

    let mut dump = String::new();
    for table in ["keygate_keys", "keygate_audit", "keygate_migrations"] {
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT t::text FROM {}.{table} t",
            pg.schema
        )))
        .fetch_all(&pg.admin)
        .await
        .unwrap();
        dump.push_str(&rows.join("\n"));
    }
    for key in [&created.key, &rotated.key] {
        let token = key.expose_secret();
        let (_, secret) = token.split_once('.').unwrap();
        assert!(
            dump.contains(key.id()),
            "the scan must see what was written"
        );
        assert!(!dump.contains(token));
        assert!(!dump.contains(&secret[..24]));
    }
    pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_audit_table_refuses_updates_deletes_and_truncation() {
    let Some(pg) =
        Pg::fixture("postgres::the_postgres_audit_table_refuses_updates_deletes_and_truncation")
            .await
    else {
        return;
    };
    let store = pg.store(StoreOptions::default()).await;
    store
        .insert(&support::record("k1", "acme", 0), &[])
        .await
        .unwrap();
    KeyManager::new(Arc::new(store.clone()))
        .revoke("k1")
        .await
        .unwrap();
    for sql in [
        "UPDATE keygate_audit SET actor = 'someone else'",
        "DELETE FROM keygate_audit",
        "TRUNCATE keygate_audit",
    ] {
        let err = sqlx::query(sql).execute(store.pool()).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(store.audit_trail("k1").await.unwrap().len(), 1);
    pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_postgres_store_is_unavailable_and_the_verifier_answers_503() {
    let Some(pg) = Pg::fixture(
        "postgres::a_closed_postgres_store_is_unavailable_and_the_verifier_answers_503",
    )
    .await
    else {
        return;
    };
    let store = Arc::new(pg.store(options(false)).await);
    let created = KeyManager::new(store.clone())
        .with_hasher(cheap_argon2())
        .create(NewKey::new("k", "acme").scopes(["entities:read"]).unwrap())
        .await
        .unwrap();
    store.pool().close().await;
    let v = verifier(store, &ManualClock::new(t(0)));
    let err = v.verify(created.key.expose_secret()).await.unwrap_err();
    assert!(matches!(err, AuthError::StoreUnavailable { .. }), "{err:?}");
    pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_waiting_on_a_revoke_in_progress_sees_it_and_writes_nothing() {
    let Some(pg) = Pg::fixture(
        "postgres::a_rotation_waiting_on_a_revoke_in_progress_sees_it_and_writes_nothing",
    )
    .await
    else {
        return;
    };
    let store = Arc::new(pg.store(options(false)).await);
    store.insert(&record("old", "acme", 0), &[]).await.unwrap();
    // Another session is revoking the key: its transaction holds the row, not committed.
    let mut other = pg.admin.begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {}.keygate_keys SET revoked_at = now() WHERE id = 'old'",
        pg.schema
    )))
    .execute(&mut *other)
    .await
    .unwrap();
    let rotation = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut new = record("new", "acme", 100);
            new.rotated_from = Some("old".into());
            store
                .rotate(&Rotation {
                    old_id: "old",
                    successor: &new,
                    old_expires_at: t(60_000),
                    now: t(100),
                    audit: &[],
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !rotation.is_finished(),
        "the rotation must wait for the row lock"
    );
    other.commit().await.unwrap();
    assert_eq!(rotation.await.unwrap().unwrap(), RotateOutcome::NotActive);
    assert_eq!(store.get("new").await.unwrap(), None);
    let old = store.get("old").await.unwrap().unwrap();
    assert!(old.revoked_at.is_some());
    assert_eq!((old.rotated_to, old.expires_at), (None, None));
    pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unparsable_stored_rate_limit_is_corrupt() {
    let Some(pg) = Pg::fixture("postgres::an_unparsable_stored_rate_limit_is_corrupt").await else {
        return;
    };
    let store = pg.store(options(false)).await;
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
    pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_usage_counts_clamp_negatives_to_zero() {
    let Some(pg) = Pg::fixture("postgres::stored_usage_counts_clamp_negatives_to_zero").await
    else {
        return;
    };
    let store = pg.store(options(false)).await;
    // Rows no store call writes (hand-edited): negative counts, and sums past BIGINT.
    sqlx::query(
        "INSERT INTO keygate_usage (key_id, hour, requests, refused) \
         VALUES ('k1', $1, -5, 3), ('k1', $2, 2, -1), \
                ('big', $1, 9223372036854775807, 0), ('big', $2, 9223372036854775807, 0)",
    )
    .bind(t(0))
    .bind(t(3_600_000))
    .execute(store.pool())
    .await
    .unwrap();
    let rows = store.usage("k1", t(0)).await.unwrap();
    let counts: Vec<(u64, u64)> = rows.iter().map(|c| (c.requests, c.refused)).collect();
    assert_eq!(counts, [(0, 3), (2, 0)]);
    let totals = store
        .usage_totals(&["k1".into(), "big".into()], t(0), t(0))
        .await
        .unwrap();
    let got: Vec<(&str, u64, u64, u64)> = totals
        .iter()
        .map(|x| {
            (
                x.key_id.as_str(),
                x.requests_30d,
                x.requests_24h,
                x.refused_24h,
            )
        })
        .collect();
    let max = i64::MAX as u64;
    assert_eq!(got, [("big", max, max, 0), ("k1", 2, 2, 3)]);
    pg.cleanup().await;
}

/// `url` with `param` added to its query string.
fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_encrypts_every_connection_and_a_key_round_trips() {
    let Some(pg) =
        Pg::fixture("postgres::sslmode_require_encrypts_every_connection_and_a_key_round_trips")
            .await
    else {
        return;
    };
    let url = with_param(&pg.url, "sslmode=require");
    let store = Arc::new(
        PostgresStore::connect_with(&url, options(true))
            .await
            .unwrap(),
    );
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert!(encrypted, "sslmode=require gave an unencrypted connection");

    // A create and a verification through the store, with the listener connected too.
    let clock = ManualClock::new(t(0));
    let v = verifier(store.clone(), &clock);
    wait_for_listeners(&pg, 1).await;
    let created = KeyManager::new(store.clone())
        .with_hasher(cheap_argon2())
        .with_verifier(&v)
        .create(
            NewKey::new("tls", "acme")
                .scopes(["entities:read"])
                .unwrap(),
        )
        .await
        .unwrap();
    let principal = v.verify(created.key.expose_secret()).await.unwrap();
    assert_eq!(principal.id, created.record.id);
    assert_eq!(
        store.get(&created.record.id).await.unwrap().unwrap().name,
        "tls"
    );

    // Every connection of this test (the pool's and the listener's) is encrypted.
    let (plain, all): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE NOT s.ssl), count(*) \
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
         WHERE a.application_name = $1",
    )
    .bind(&pg.schema)
    .fetch_one(&pg.admin)
    .await
    .unwrap();
    assert!(all >= 2, "{all} connections");
    assert_eq!(plain, 0, "{plain} of {all} connections unencrypted");
    v.shutdown().await.unwrap();
    store.pool().close().await;
    pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_verify_full_against_an_untrusted_certificate_is_a_clear_store_error() {
    let Some(pg) = Pg::fixture(
        "postgres::sslmode_verify_full_against_an_untrusted_certificate_is_a_clear_store_error",
    )
    .await
    else {
        return;
    };
    // The server's certificate (Debian's self-signed snakeoil one in CI) is issued by no root
    // this process trusts, and names no 127.0.0.1.
    let url = with_param(&pg.url, "sslmode=verify-full");
    for err in [
        PostgresStore::connect_with(&url, options(false))
            .await
            .unwrap_err(),
        keygate_sqlx::connect(&url).await.map(drop).unwrap_err(),
    ] {
        let StoreError::Unavailable(message) = &err else {
            panic!("expected an unavailable store, got {err:?}");
        };
        report(&format!("verify-full refused: {message}"));
        assert!(message.contains("TLS"), "{message}");
        assert!(message.contains("certificate"), "{message}");
        assert!(!message.contains("keygate:keygate"), "{message}");
    }
    pg.cleanup().await;
}

/// The certificate the test server presents, as a PEM file, and the host name it carries
/// (`.ci/pg-setup.sh` exports both).
const ROOT_CERT_ENV: &str = "KEYGATE_TEST_POSTGRES_ROOT_CERT";
const CERT_HOST_ENV: &str = "KEYGATE_TEST_POSTGRES_CERT_HOST";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_trusts_a_private_root_from_sslrootcert_and_checks_the_host_name_verify_ca_only_the_root(
) {
    const TEST: &str =
        "postgres::verify_full_trusts_a_private_root_from_sslrootcert_and_checks_the_host_name_verify_ca_only_the_root";
    let Some(pg) = Pg::fixture(TEST).await else {
        return;
    };
    let (Ok(root), Ok(host)) = (std::env::var(ROOT_CERT_ENV), std::env::var(CERT_HOST_ENV)) else {
        report(&format!(
            "SKIPPED {TEST}: set {ROOT_CERT_ENV} and {CERT_HOST_ENV} to the server's PEM certificate and the host name in it (.ci/pg-setup.sh exports them)"
        ));
        pg.cleanup().await;
        return;
    };
    // Only ever talk to this machine: the certificate's name must resolve to loopback alone.
    let addrs: Vec<_> = tokio::net::lookup_host((host.as_str(), 5432))
        .await
        .map(Iterator::collect)
        .unwrap_or_default();
    if addrs.is_empty()
        || !addrs
            .iter()
            .all(|a: &std::net::SocketAddr| a.ip().is_loopback())
    {
        report(&format!(
            "SKIPPED {TEST}: {host:?} (the name in the server's certificate) does not resolve to loopback only: {addrs:?}"
        ));
        pg.cleanup().await;
        return;
    }
    assert!(pg.url.contains("@127.0.0.1:"), "{}", pg.url);
    let tls = format!("sslmode=verify-full&sslrootcert={root}");

    // The server's own (self-signed) certificate as the trusted root, as with a private CA,
    // and the name it carries as the host: verified, encrypted, and a key round-trips.
    let url = with_param(&pg.url.replace("@127.0.0.1:", &format!("@{host}:")), &tls);
    let store = PostgresStore::connect_with(&url, options(false))
        .await
        .unwrap();
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert!(encrypted);
    store.insert(&record("k1", "acme", 0), &[]).await.unwrap();
    assert!(store.get("k1").await.unwrap().is_some());
    store.pool().close().await;

    // The same root with a host the certificate does not name (127.0.0.1): refused.
    let url = with_param(&pg.url, &tls);
    let err = PostgresStore::connect_with(&url, options(false))
        .await
        .unwrap_err();
    let StoreError::Unavailable(message) = &err else {
        panic!("expected an unavailable store, got {err:?}");
    };
    report(&format!(
        "verify-full for the wrong name refused: {message}"
    ));
    assert!(message.contains("TLS"), "{message}");
    assert!(message.contains("not valid for name"), "{message}");

    // `verify-ca` checks the issuer only: the same root and host 127.0.0.1 connect...
    let url = with_param(&pg.url, &format!("sslmode=verify-ca&sslrootcert={root}"));
    let store = PostgresStore::connect_with(&url, options(false))
        .await
        .unwrap();
    assert!(store.get("k1").await.unwrap().is_some());
    store.pool().close().await;
    // ...and without the root that issued the certificate it is refused.
    let url = with_param(&pg.url, "sslmode=verify-ca");
    let err = PostgresStore::connect_with(&url, options(false))
        .await
        .unwrap_err();
    let StoreError::Unavailable(message) = &err else {
        panic!("expected an unavailable store, got {err:?}");
    };
    assert!(message.contains("TLS"), "{message}");
    assert!(message.contains("UnknownIssuer"), "{message}");
    pg.cleanup().await;
}

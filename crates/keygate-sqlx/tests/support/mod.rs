//! Fixtures shared by the store tests: one store of each kind, records to put in them, and the
//! PostgreSQL switch (`KEYGATE_TEST_POSTGRES_URL`; unset, PostgreSQL tests pass and say SKIPPED).
#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use keygate::{
    Argon2Hasher, Argon2Params, AuditAction, AuditEvent, KeyRecord, KeyStore, ManualClock,
    MemoryStore, ScopeSet, Verifier,
};
use keygate_sqlx::{PostgresStore, SqliteStore, StoreOptions};
use sqlx::postgres::PgPool;

/// The variable that turns the PostgreSQL tests on.
pub const PG_ENV: &str = "KEYGATE_TEST_POSTGRES_URL";

/// argon2id with tiny parameters: the same code path, much faster.
pub fn cheap_argon2() -> Argon2Hasher {
    Argon2Hasher::with_params(Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    })
    .expect("valid argon2 parameters")
}

/// A verifier over `store` on a manual clock with a 30 s revocation window.
pub fn verifier(store: Arc<dyn KeyStore>, clock: &ManualClock) -> Verifier {
    Verifier::builder(store)
        .hasher(cheap_argon2())
        .clock(clock.clone())
        .revocation_window(Duration::from_secs(30))
        .build()
}

/// 2026-01-01T00:00:00Z plus `ms` milliseconds.
pub fn t(ms: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::milliseconds(ms)
}

/// A plain record: id `id`, org `org`, created at `t(created_ms)`.
pub fn record(id: &str, org: &str, created_ms: i64) -> KeyRecord {
    KeyRecord {
        id: id.to_owned(),
        prefix: "mk_test".to_owned(),
        name: format!("key {id}"),
        org: org.to_owned(),
        team: None,
        owner: None,
        scopes: ScopeSet::parse(["entities:read"]).unwrap(),
        metadata: serde_json::Value::Null,
        hash: format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ${id}"),
        created_at: t(created_ms),
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        rotated_from: None,
        rotated_to: None,
        rate_limit: None,
    }
}

/// An audit event of key `id` (org `acme`, actor `ops`, at `t(0)`), for the store writes
/// that append one with their change.
pub fn audit(id: &str, action: AuditAction) -> AuditEvent {
    AuditEvent {
        key_id: id.to_owned(),
        action,
        at: t(0),
        org: "acme".to_owned(),
        actor: Some("ops".to_owned()),
        detail: serde_json::Value::Null,
    }
}

/// A fresh in-memory store.
pub fn memory() -> Arc<dyn KeyStore> {
    Arc::new(MemoryStore::new())
}

/// A fresh SQLite file in a temporary directory (kept alive by the returned guard).
pub async fn sqlite() -> (SqliteStore, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keys.db").display());
    let store = SqliteStore::connect(&url).await.unwrap();
    (store, dir, url)
}

/// Prints the visible skip notice (straight to the stderr handle, past libtest's capture).
pub fn skip(test: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: set {PG_ENV}=postgres://USER:PASSWORD@HOST/DB to run (e.g. eval \"$(bash .ci/pg-setup.sh)\")"
    );
}

/// One PostgreSQL schema of its own for one test, so tests run in parallel on one database.
pub struct Pg {
    /// URL whose connections use the test's schema (and name themselves after it).
    pub url: String,
    /// The schema (also the `application_name` of the test's connections).
    pub schema: String,
    /// A connection pool outside the schema, for inspection and sabotage.
    pub admin: PgPool,
}

impl Pg {
    /// The fixture, or `None` (after printing SKIPPED) when no PostgreSQL URL is set.
    pub async fn fixture(test: &str) -> Option<Pg> {
        let Ok(base) = std::env::var(PG_ENV) else {
            skip(test);
            return None;
        };
        let admin = PgPool::connect(&base)
            .await
            .unwrap_or_else(|e| panic!("{PG_ENV} is set but unusable: {e}"));
        let schema = format!("kg_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url =
            format!("{base}{sep}options=-c%20search_path%3D{schema}&application_name={schema}");
        Some(Pg { url, schema, admin })
    }

    /// A store on the test's schema.
    pub async fn store(&self, options: StoreOptions) -> PostgresStore {
        PostgresStore::connect_with(&self.url, options)
            .await
            .unwrap()
    }

    /// Drops the schema.
    pub async fn cleanup(self) {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            self.schema
        )))
        .execute(&self.admin)
        .await;
    }
}

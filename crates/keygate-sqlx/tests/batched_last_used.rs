//! `touch_last_used` writes a whole flush in ONE statement, never one per key. sqlx logs every
//! statement it runs (target `sqlx::query`); a tracing layer counts the ones that write
//! `last_used_at`.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use keygate::KeyStore;
use support::{record, t};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// Statements seen per backend, told apart by their text (tests in this file run in parallel).
#[derive(Default)]
struct Counts {
    sqlite: AtomicUsize,
    postgres: AtomicUsize,
}

struct CountWrites(Arc<Counts>);

struct Statement(String);

impl tracing::field::Visit for Statement {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "db.statement" || field.name() == "summary" {
            self.0.push_str(value);
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "db.statement" || field.name() == "summary" {
            self.0.push_str(&format!("{value:?}"));
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for CountWrites {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let mut s = Statement(String::new());
        event.record(&mut s);
        if s.0.contains("SET last_used_at") {
            if s.0.contains("json_each") {
                self.0.sqlite.fetch_add(1, Ordering::SeqCst);
            } else if s.0.contains("UNNEST") {
                self.0.postgres.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

fn counts() -> &'static Arc<Counts> {
    static COUNTS: OnceLock<Arc<Counts>> = OnceLock::new();
    COUNTS.get_or_init(|| {
        let counts = Arc::new(Counts::default());
        let subscriber = tracing_subscriber::registry().with(CountWrites(counts.clone()));
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
        counts
    })
}

async fn flush_of_200_keys(store: &dyn KeyStore) {
    let mut uses = Vec::new();
    for i in 0..200 {
        let id = format!("k{i:03}");
        store.insert(&record(&id, "acme", 0), &[]).await.unwrap();
        uses.push((id, t(10_000 + i)));
    }
    store.touch_last_used(&uses).await.unwrap();
    assert_eq!(
        store.get("k199").await.unwrap().unwrap().last_used_at,
        Some(t(10_199))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_a_flush_of_200_keys_in_one_statement() {
    let counts = counts();
    let (store, _dir, _url) = support::sqlite().await;
    flush_of_200_keys(&store).await;
    assert_eq!(counts.sqlite.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_writes_a_flush_of_200_keys_in_one_statement() {
    let counts = counts();
    let Some(pg) = support::Pg::fixture(
        "batched_last_used::postgres_writes_a_flush_of_200_keys_in_one_statement",
    )
    .await
    else {
        return;
    };
    let store = pg.store(keygate_sqlx::StoreOptions::default()).await;
    flush_of_200_keys(&store).await;
    assert_eq!(counts.postgres.load(Ordering::SeqCst), 1);
    pg.cleanup().await;
}

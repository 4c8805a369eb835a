//! `keygate_sqlx::connect`: the URL scheme picks the store; unusable URLs are clear errors.

mod support;

use std::sync::Arc;

use keygate::{KeyStore, StoreError};
use keygate_sqlx::UnsupportedUrl;

#[tokio::test]
async fn a_sqlite_url_opens_a_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("k.db").display());
    let store: Arc<dyn KeyStore> = keygate_sqlx::connect(&url).await.unwrap();
    store
        .insert(&support::record("k1", "acme", 0), &[])
        .await
        .unwrap();
    assert!(!store.pushes_invalidations());
    assert!(dir.path().join("k.db").exists());
}

#[tokio::test]
async fn an_unknown_scheme_says_which_urls_work() {
    let Err(StoreError::Backend(e)) = keygate_sqlx::connect("mysql://localhost/keys").await else {
        panic!("mysql:// must be refused");
    };
    let e = e
        .downcast_ref::<UnsupportedUrl>()
        .expect("an UnsupportedUrl");
    assert_eq!(e.scheme(), "mysql");
    assert!(e.to_string().contains("sqlite://PATH"), "{e}");
}

#[tokio::test]
async fn an_unreachable_postgres_is_unavailable_at_once() {
    // Bounded against a hang; how fast the refusal comes is not asserted (timing belongs in
    // benchmarks). "At once" is the kind of error: the refusal itself (Unavailable), not a
    // retry loop that ran out of time (Timeout).
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        keygate_sqlx::connect("postgres://keygate:secret@127.0.0.1:1/x"),
    )
    .await
    .expect("connect gave up instead of retrying forever")
    .err()
    .expect("nothing listens on port 1");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(!err.to_string().contains("secret"), "{err}");
}

#[tokio::test]
async fn an_unwritable_sqlite_path_is_unavailable() {
    let err = keygate_sqlx::connect("sqlite:///proc/keygate-nope/keys.db")
        .await
        .err()
        .expect("/proc is not writable");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_memory_sqlite_url_keeps_one_database_across_calls() {
    let store = keygate_sqlx::connect("sqlite::memory:").await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .insert(&support::record(&format!("k{i}"), "acme", i), &[])
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let all = store.list(&keygate::KeyFilter::all()).await.unwrap();
    assert_eq!(all.len(), 8);
}

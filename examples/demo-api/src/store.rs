//! Opening the key store and building the verifier.

use std::sync::Arc;
use std::time::Duration;

use keygate::{KeyStore, MemoryStore, StoreError, Verifier};
use keygate_sqlx::redact_url;

use crate::Args;

/// Opens the store named by `url`: `sqlite://PATH` (created if missing), `postgres://…`, or
/// `memory:` (nothing persisted; for tests and experiments).
pub async fn open_store(url: &str) -> Result<Arc<dyn KeyStore>, StoreError> {
    if url == "memory:" || url == "memory://" {
        return Ok(Arc::new(MemoryStore::new()));
    }
    keygate_sqlx::connect(url).await
}

/// A verifier over `store` whose cached key states are trusted for `revocation_ttl`.
pub fn build_verifier(store: Arc<dyn KeyStore>, revocation_ttl: Duration) -> Verifier {
    Verifier::builder(store)
        .revocation_window(revocation_ttl)
        .build()
}

/// How every quickstart starts: the key store at `args.database_url` with `args.store` (an
/// error never shows the URL's password) and a verifier over it with `args.verifier` and
/// `args.revocation_ttl` (both filled from `--config` where the file sets them).
pub async fn open_verifier(args: &Args) -> Result<(Arc<dyn KeyStore>, Verifier), String> {
    let url = &args.database_url;
    let store = if url == "memory:" || url == "memory://" {
        Arc::new(MemoryStore::new())
    } else {
        keygate_sqlx::connect_with(url, args.store.clone())
            .await
            .map_err(|e| format!("cannot open key store {}: {e}", redact_url(url)))?
    };
    let verifier = Verifier::builder(Arc::clone(&store))
        .config(&args.verifier)
        .map_err(|e| format!("config: [verifier] argon2: {e}"))?
        .revocation_window(args.revocation_ttl)
        .build();
    Ok((store, verifier))
}

/// How every quickstart ends: writes the last-used times still buffered in memory and says
/// how many.
pub async fn flush_on_shutdown(verifier: &Verifier) -> Result<(), String> {
    let flushed = verifier
        .shutdown()
        .await
        .map_err(|e| format!("could not flush last-used times: {e}"))?;
    println!("shut down; flushed last-used times of {flushed} key(s)");
    Ok(())
}

//! Opening the key store and building the verifier.

use std::sync::Arc;
use std::time::Duration;

use keygate::{KeyStore, MemoryStore, StoreError, Verifier};

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

//! The task that turns `NOTIFY keygate_invalidate` into cache invalidations.

use std::time::Duration;

use keygate::Invalidator;
use sqlx::postgres::{PgListener, PgPool};

use super::NOTIFY_CHANNEL;

/// How often an idle listener checks whether its verifier still exists.
const LIVENESS_CHECK: Duration = Duration::from_millis(500);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Starts forwarding notifications to `invalidator` on the current tokio runtime. Without a
/// runtime it logs a warning and the verifier relies on its revocation window.
pub(super) fn spawn(pool: PgPool, invalidator: Invalidator) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(run(pool, invalidator));
        }
        Err(_) => tracing::warn!(
            target: "keygate_sqlx::listen",
            "no tokio runtime: revocations from other processes bite within the revocation window only"
        ),
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    Ok(listener)
}

/// Listens until the verifier behind `invalidator` is gone. Every time a listening
/// connection is (re-)established the whole record cache is dropped: whatever was announced
/// while nobody listened is lost, and reads cached before are no longer trusted.
async fn run(pool: PgPool, invalidator: Invalidator) {
    let mut backoff = FIRST_BACKOFF;
    'connect: while invalidator.is_alive() {
        let mut listener = match connect(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(
                    target: "keygate_sqlx::listen",
                    error = %e,
                    retry_in_ms = backoff.as_millis() as u64,
                    "cannot listen for key invalidations; retrying"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = FIRST_BACKOFF;
        invalidator.invalidate_all();
        tracing::debug!(target: "keygate_sqlx::listen", "listening for key invalidations");
        loop {
            // `try_recv` is cancel-safe, so waking up for the liveness check loses nothing.
            tokio::select! {
                next = listener.try_recv() => match next {
                    Ok(Some(n)) => invalidator.invalidate(n.payload()),
                    // The connection is gone. Keep the cache: while the database is away,
                    // cached keys keep working within their revocation window, exactly as
                    // with a store that pushes nothing. The cache is dropped once a new
                    // listening connection is up (above), since announcements were missed.
                    Ok(None) => {
                        tracing::warn!(
                            target: "keygate_sqlx::listen",
                            "invalidation listener lost its connection; reconnecting"
                        );
                        continue 'connect;
                    }
                    Err(e) => {
                        tracing::warn!(
                            target: "keygate_sqlx::listen",
                            error = %e,
                            "invalidation listener failed; reconnecting"
                        );
                        continue 'connect;
                    }
                },
                () = tokio::time::sleep(LIVENESS_CHECK) => {}
            }
            if !invalidator.is_alive() {
                break 'connect;
            }
        }
    }
}

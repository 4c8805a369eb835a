//! The task that turns `NOTIFY keygate_invalidate` into cache invalidations.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use keygate::Invalidator;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgRow};
use sqlx::Row;
use tokio::time::Instant;

use super::NOTIFY_CHANNEL;

/// How often an idle listener checks whether its verifier still exists.
const LIVENESS_CHECK: Duration = Duration::from_millis(500);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The shortest heartbeat interval and timeout (shorter settings are raised to it).
const MIN_HEARTBEAT: Duration = Duration::from_millis(100);

/// The heartbeat: a round trip that changes nothing (the connection already listens on the
/// channel) and answers the server process of the connection, which must stay the same (see
/// [`forward`]). It leaves `LISTEN …` as the connection's last statement in
/// `pg_stat_activity`, where operators see what the connection is for.
const HEARTBEAT: &str = "LISTEN \"keygate_invalidate\"; SELECT pg_backend_pid()";

/// How the listener watches its connection (see `StoreOptions::listener_heartbeat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Heartbeat {
    /// Time between two heartbeats.
    interval: Duration,
    /// How long a heartbeat may wait for its answer.
    timeout: Duration,
}

impl Heartbeat {
    pub(super) fn new(interval: Duration, timeout: Duration) -> Self {
        Heartbeat {
            interval: interval.max(MIN_HEARTBEAT),
            timeout: timeout.max(MIN_HEARTBEAT),
        }
    }
}

/// What the listener needs: where to connect, how long connecting may take, its heartbeat.
#[derive(Debug, Clone)]
pub(super) struct Listen {
    pub(super) connect: Arc<PgConnectOptions>,
    pub(super) connect_timeout: Duration,
    pub(super) heartbeat: Heartbeat,
}

/// Starts forwarding notifications to `invalidator` on the current tokio runtime. Without a
/// runtime it logs a warning and the verifier relies on its revocation window.
pub(super) fn spawn(listen: Listen, invalidator: Invalidator) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(run(listen, invalidator));
        }
        Err(_) => tracing::warn!(
            target: "keygate_sqlx::listen",
            "no tokio runtime: revocations from other processes bite within the revocation window only"
        ),
    }
}

/// A listening connection and its server process id.
///
/// The connection is in a pool of its own: sqlx sends `UNLISTEN *` on a dropped listener's
/// connection before giving it back, which on a dead connection waits until the operating
/// system gives up on it. Meanwhile it must hold no connection of the store's pool, and keep
/// none from a new listener.
///
/// sqlx's listener reconnects by itself when it is used after losing its connection, or
/// right after losing it ("eager" reconnection, which a cancelled `try_recv` can leave half
/// done and the next call completes). Such a reconnection would not drop the cache although
/// notifications were missed, so eager reconnection is off and every loss ends this listener
/// (see [`forward`]).
async fn connect(listen: &Listen) -> Result<(PgListener, i32), sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(listen.connect_timeout)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with((*listen.connect).clone());
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.eager_reconnect(false);
    listener.listen(NOTIFY_CHANNEL).await?;
    let pid = backend_pid(beat(&mut listener).await?)?;
    Ok((listener, pid))
}

/// Why a listening connection was given up.
enum Lost {
    /// The verifier is gone: stop.
    Done,
    /// Reconnect.
    Reconnect,
}

/// Listens until the verifier behind `invalidator` is gone. Every time a listening
/// connection is (re-)established the whole record cache is dropped: whatever was announced
/// while nobody listened is lost, and reads cached before are no longer trusted.
async fn run(listen: Listen, invalidator: Invalidator) {
    let mut backoff = FIRST_BACKOFF;
    while invalidator.is_alive() {
        let connected = tokio::time::timeout(listen.connect_timeout, connect(&listen)).await;
        let (listener, pid) = match connected {
            Ok(Ok(l)) => l,
            failed => {
                let error = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no connection within {:?}", listen.connect_timeout),
                };
                tracing::warn!(
                    target: "keygate_sqlx::listen",
                    %error,
                    retry_in_ms = backoff.as_millis() as u64,
                    "cannot listen for key invalidations; retrying"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        invalidator.invalidate_all();
        tracing::debug!(target: "keygate_sqlx::listen", "listening for key invalidations");
        let since = Instant::now();
        match forward(listener, pid, listen.heartbeat, &invalidator).await {
            Lost::Done => break,
            Lost::Reconnect => {}
        }
        let lived = since.elapsed();
        match after_loss(lived, backoff, listen.heartbeat.interval) {
            None => backoff = FIRST_BACKOFF,
            Some(pause) => {
                tracing::warn!(
                    target: "keygate_sqlx::listen",
                    lived_ms = lived.as_millis() as u64,
                    retry_in_ms = pause.as_millis() as u64,
                    "the listening connection was lost soon after it was made (behind a \
                     transaction-mode pooler, LISTEN cannot work: connect keygate directly); \
                     backing off"
                );
                tokio::time::sleep(pause).await;
                backoff = (pause * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// After a listening connection that lived `lived` was lost: reconnect at once (`None`) when
/// it lived a few heartbeats, else wait `backoff` first, so a connection that keeps dying
/// (or a pooler that changes the server process under it) cannot make the listener reconnect
/// and drop the whole cache in a tight loop.
fn after_loss(lived: Duration, backoff: Duration, heartbeat: Duration) -> Option<Duration> {
    (lived < heartbeat.saturating_mul(3)).then_some(backoff)
}

/// One heartbeat on `listener`'s connection (the executor's own boxed future: a generic one
/// over `&mut PgListener` is not `Send` for every lifetime, which the spawned task needs).
fn beat(
    listener: &mut PgListener,
) -> Pin<Box<dyn Future<Output = Result<Option<PgRow>, sqlx::Error>> + Send + '_>> {
    sqlx::Executor::fetch_optional(listener, HEARTBEAT)
}

/// The server process id a heartbeat answered.
fn backend_pid(answer: Option<PgRow>) -> Result<i32, sqlx::Error> {
    answer
        .ok_or_else(|| sqlx::Error::Protocol("the heartbeat returned no row".into()))?
        .try_get(0)
}

/// What woke the listening loop.
enum Wake {
    Message(Result<Option<sqlx::postgres::PgNotification>, sqlx::Error>),
    Heartbeat,
    LivenessCheck,
}

/// Forwards notifications from `listener` (connected to server process `pid`) until its
/// connection is lost, stops answering its heartbeat, is found connected to another server
/// process (reconnected behind our back: notifications may have been missed), or the verifier
/// is gone.
///
/// While the connection is away the cache is kept: cached keys keep working within their
/// revocation window, exactly as with a store that pushes nothing. It is dropped once a new
/// listening connection is up (in `run`), since announcements may have been missed.
async fn forward(
    mut listener: PgListener,
    pid: i32,
    heartbeat: Heartbeat,
    invalidator: &Invalidator,
) -> Lost {
    let mut next_beat = Instant::now() + heartbeat.interval;
    loop {
        // `try_recv` is cancel-safe: waking up for a heartbeat or the liveness check loses
        // nothing (notifications that arrive during a heartbeat are buffered by sqlx).
        let wake = tokio::select! {
            next = listener.try_recv() => Wake::Message(next),
            () = tokio::time::sleep_until(next_beat) => Wake::Heartbeat,
            () = tokio::time::sleep(LIVENESS_CHECK) => Wake::LivenessCheck,
        };
        match wake {
            Wake::Message(Ok(Some(n))) => invalidator.invalidate(n.payload()),
            Wake::Message(Ok(None)) => {
                tracing::warn!(
                    target: "keygate_sqlx::listen",
                    "invalidation listener lost its connection; reconnecting"
                );
                return Lost::Reconnect;
            }
            Wake::Message(Err(e)) => {
                tracing::warn!(
                    target: "keygate_sqlx::listen",
                    error = %e,
                    "invalidation listener failed; reconnecting"
                );
                return Lost::Reconnect;
            }
            Wake::Heartbeat => {
                let answer = tokio::time::timeout(heartbeat.timeout, beat(&mut listener)).await;
                match answer.map(|a| a.and_then(backend_pid)) {
                    Ok(Ok(same)) if same == pid => {}
                    Ok(Ok(other)) => {
                        tracing::warn!(
                            target: "keygate_sqlx::listen",
                            pid,
                            now = other,
                            "invalidation listener was reconnected without notice; reconnecting"
                        );
                        return Lost::Reconnect;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(
                            target: "keygate_sqlx::listen",
                            error = %e,
                            "invalidation listener heartbeat failed; reconnecting"
                        );
                        return Lost::Reconnect;
                    }
                    Err(_) => {
                        // A connection that is open but silent (a failover, a dropped route):
                        // notifications would be lost without a word.
                        tracing::warn!(
                            target: "keygate_sqlx::listen",
                            timeout_ms = heartbeat.timeout.as_millis() as u64,
                            "invalidation listener connection does not answer; reconnecting"
                        );
                        return Lost::Reconnect;
                    }
                }
                next_beat = Instant::now() + heartbeat.interval;
            }
            Wake::LivenessCheck => {}
        }
        if !invalidator.is_alive() {
            return Lost::Done;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_settings_below_the_floor_are_raised_to_it() {
        let h = Heartbeat::new(Duration::ZERO, Duration::from_millis(1));
        assert_eq!((h.interval, h.timeout), (MIN_HEARTBEAT, MIN_HEARTBEAT));
        let h = Heartbeat::new(Duration::from_secs(5), Duration::from_secs(3));
        assert_eq!(
            (h.interval, h.timeout),
            (Duration::from_secs(5), Duration::from_secs(3))
        );
    }

    #[test]
    fn a_connection_lost_soon_after_it_was_made_backs_off_one_that_lived_does_not() {
        let beat = Duration::from_secs(5);
        assert_eq!(
            after_loss(Duration::from_secs(60), FIRST_BACKOFF, beat),
            None
        );
        assert_eq!(
            after_loss(Duration::from_secs(5), FIRST_BACKOFF, beat),
            Some(FIRST_BACKOFF)
        );
        assert_eq!(
            after_loss(Duration::ZERO, Duration::from_secs(4), beat),
            Some(Duration::from_secs(4))
        );
    }

    #[test]
    fn the_heartbeat_listens_on_the_notify_channel() {
        assert!(HEARTBEAT.starts_with(&format!("LISTEN \"{NOTIFY_CHANNEL}\";")));
    }
}

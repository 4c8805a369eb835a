//! [`StoreOptions`]: how a store connects and behaves.

use std::time::Duration;

/// Settings shared by the SQL stores. `StoreOptions::default()` is the production default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Apply the embedded migrations on connect (default `true`). Turn off when migrations
    /// are run by a deployment step; the store then expects the schema to exist.
    pub migrate: bool,
    /// Longest time any store call may take, connection acquisition included (default 2 s).
    /// Past it the call fails with [`keygate::StoreError::Timeout`], so a hung database
    /// cannot hang requests.
    pub timeout: Duration,
    /// PostgreSQL only: forward `LISTEN`/`NOTIFY` invalidations to subscribed verifiers
    /// (default `true`). Off, verifiers rely on their revocation window. Changes made through
    /// the store always send notifications, whatever this says.
    pub notifications: bool,
    /// PostgreSQL only: how often the notification listener checks its connection (default
    /// 5 s). A connection can die without being closed (a failover, a dropped route): no
    /// notification arrives and none of them is missed as far as the listener can tell. So
    /// every `listener_heartbeat` it sends `LISTEN` again on its connection and waits up to
    /// [`StoreOptions::listener_heartbeat_timeout`] for the answer; without one it drops the
    /// connection, reconnects and drops the verifier's whole record cache, as after any
    /// reconnection. A silent connection is thus noticed within about
    /// `listener_heartbeat + listener_heartbeat_timeout` (10 s by default), well inside the
    /// default 30 s revocation window. Values under 100 ms count as 100 ms.
    pub listener_heartbeat: Duration,
    /// PostgreSQL only: how long the listener waits for the answer to its heartbeat before it
    /// gives the connection up (default 5 s; see [`StoreOptions::listener_heartbeat`]). Values
    /// under 100 ms count as 100 ms.
    pub listener_heartbeat_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            migrate: true,
            timeout: Duration::from_secs(2),
            notifications: true,
            listener_heartbeat: Duration::from_secs(5),
            listener_heartbeat_timeout: Duration::from_secs(5),
        }
    }
}

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
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            migrate: true,
            timeout: Duration::from_secs(2),
            notifications: true,
        }
    }
}

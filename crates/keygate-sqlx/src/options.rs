//! [`StoreOptions`]: how a store connects and behaves.

use std::time::Duration;

/// Settings shared by the SQL stores. `StoreOptions::default()` is the production default.
///
/// With the `config` feature (on by default) it is read with serde from a configuration file
/// or the environment: every field optional (absent ones keep their default), durations
/// human (`"2s"`, `"500ms"`), unknown fields refused.
///
/// ```
/// # #[cfg(feature = "config")]
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use keygate_sqlx::StoreOptions;
///
/// let options: StoreOptions = toml::from_str(r#"
///     timeout = "750ms"
///     migrate = false
/// "#)?;
/// assert_eq!(options.timeout, Duration::from_millis(750));
/// assert!(!options.migrate);
/// assert_eq!(options.listener_heartbeat, StoreOptions::default().listener_heartbeat);
/// # Ok(()) }
/// # #[cfg(not(feature = "config"))]
/// # fn main() {}
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "config", derive(serde::Deserialize))]
#[cfg_attr(feature = "config", serde(default, deny_unknown_fields))]
pub struct StoreOptions {
    /// Apply the embedded migrations on connect (default `true`). Turn off when migrations
    /// are run by a deployment step; the store then expects the schema to exist.
    pub migrate: bool,
    /// Longest time any store call may take, connection acquisition included (default 2 s).
    /// Past it the call fails with [`keygate::StoreError::Timeout`], so a hung database
    /// cannot hang requests.
    #[cfg_attr(feature = "config", serde(with = "humantime_serde"))]
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
    #[cfg_attr(feature = "config", serde(with = "humantime_serde"))]
    pub listener_heartbeat: Duration,
    /// PostgreSQL only: how long the listener waits for the answer to its heartbeat before it
    /// gives the connection up (default 5 s; see [`StoreOptions::listener_heartbeat`]). Values
    /// under 100 ms count as 100 ms.
    #[cfg_attr(feature = "config", serde(with = "humantime_serde"))]
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

#[cfg(all(test, feature = "config"))]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<StoreOptions, String> {
        toml::from_str(text).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn every_field_is_read_and_absent_ones_keep_their_default() {
        let o = parse(
            r#"
            migrate = false
            timeout = "750ms"
            notifications = false
            listener_heartbeat = "1m"
            listener_heartbeat_timeout = "3s"
            "#,
        )
        .unwrap();
        assert_eq!(
            o,
            StoreOptions {
                migrate: false,
                timeout: Duration::from_millis(750),
                notifications: false,
                listener_heartbeat: Duration::from_secs(60),
                listener_heartbeat_timeout: Duration::from_secs(3),
            }
        );
        assert_eq!(parse("").unwrap(), StoreOptions::default());
        let o = parse(r#"timeout = "5s""#).unwrap();
        assert_eq!(
            o,
            StoreOptions {
                timeout: Duration::from_secs(5),
                ..StoreOptions::default()
            }
        );
    }

    #[test]
    fn bad_durations_and_unknown_fields_are_errors_naming_them() {
        let e = parse(r#"timeout = "2""#).unwrap_err();
        assert!(e.contains(r#"string "2", expected a duration"#), "{e}");
        let e = parse("timeout = 2").unwrap_err();
        assert!(e.contains("invalid type"), "{e}");
        let e = parse("migrations = false").unwrap_err();
        assert!(e.contains("unknown field `migrations`"), "{e}");
    }
}

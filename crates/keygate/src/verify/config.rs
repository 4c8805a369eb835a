//! [`VerifierConfig`]: the verifier's settings as a configuration file or the environment
//! states them (serde, human durations), applied by [`VerifierBuilder::config`].

use std::time::Duration;

use serde::Deserialize;

use super::builder::VerifierBuilder;
use crate::hash::{Argon2Hasher, Argon2Params, HashError};

/// The settings of a [`Verifier`](crate::Verifier) that a deployment tunes, read with serde
/// from any serde source: TOML, YAML, JSON, or environment variables through a crate that
/// maps them onto fields (unknown fields are refused, so such a source must hand over only the
/// verifier's own variables, say those under one prefix). Every field is optional: what is absent keeps the builder's value
/// (the production defaults of [`VerifierBuilder`]). Durations are human (`"30s"`,
/// `"500ms"`, `"1h"`, `"2h 30m"`; `m` is minutes), and unknown fields are refused, so a
/// misspelt setting is an error instead of a silently ignored line.
///
/// Each field is the builder method of the same name; see it for the meaning and default.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use keygate::{MemoryStore, Verifier, VerifierConfig};
///
/// let config: VerifierConfig = toml::from_str(r#"
///     revocation_window = "10s"
///     failure_window = "2m"
///     max_failures = 5
///     argon2 = { memory_kib = 47104, iterations = 1, parallelism = 1 }
/// "#)?;
/// let verifier = Verifier::builder(Arc::new(MemoryStore::new()))
///     .config(&config)?
///     .build();
/// # drop(verifier);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct VerifierConfig {
    /// [`VerifierBuilder::revocation_window`].
    #[serde(with = "humantime_serde")]
    pub revocation_window: Option<Duration>,
    /// [`VerifierBuilder::absent_ttl`].
    #[serde(with = "humantime_serde")]
    pub absent_ttl: Option<Duration>,
    /// [`VerifierBuilder::verified_ttl`].
    #[serde(with = "humantime_serde")]
    pub verified_ttl: Option<Duration>,
    /// [`VerifierBuilder::rejected_ttl`].
    #[serde(with = "humantime_serde")]
    pub rejected_ttl: Option<Duration>,
    /// The `max` of [`VerifierBuilder::failure_throttle`].
    pub max_failures: Option<u32>,
    /// The `window` of [`VerifierBuilder::failure_throttle`].
    #[serde(with = "humantime_serde")]
    pub failure_window: Option<Duration>,
    /// [`VerifierBuilder::id_failure_budget`].
    pub id_failure_budget: Option<u32>,
    /// [`VerifierBuilder::hash_queue_timeout`].
    #[serde(with = "humantime_serde")]
    pub hash_queue_timeout: Option<Duration>,
    /// [`VerifierBuilder::store_timeout`].
    #[serde(with = "humantime_serde")]
    pub store_timeout: Option<Duration>,
    /// [`VerifierBuilder::retry_after_secs`].
    pub retry_after_secs: Option<u32>,
    /// [`VerifierBuilder::last_used_flush_interval`].
    #[serde(with = "humantime_serde")]
    pub last_used_flush_interval: Option<Duration>,
    /// [`VerifierBuilder::shutdown_flush_deadline`].
    #[serde(with = "humantime_serde")]
    pub shutdown_flush_deadline: Option<Duration>,
    /// [`VerifierBuilder::accept_prefixes`].
    pub accept_prefixes: Option<Vec<String>>,
    /// [`VerifierBuilder::key_capacity`].
    pub key_capacity: Option<u64>,
    /// [`VerifierBuilder::hash_concurrency`].
    pub hash_concurrency: Option<usize>,
    /// The parameters of the default hasher, an [`Argon2Hasher`]
    /// ([`Argon2Hasher::with_params`]); `memory_kib`, `iterations` and `parallelism`, all
    /// three required.
    pub argon2: Option<Argon2Params>,
}

/// A builder method taking a duration.
type SetDuration = fn(VerifierBuilder, Duration) -> VerifierBuilder;

impl VerifierBuilder {
    /// Applies what `config` sets, over what this builder has; what it leaves out stays.
    /// `config.argon2`, when set, replaces the hasher (any [`hasher`](Self::hasher) set
    /// before, and its stored-hash limit) with an [`Argon2Hasher`] of those parameters. Errs
    /// only when those are parameters argon2 refuses ([`Argon2Hasher::with_params`]).
    pub fn config(mut self, config: &VerifierConfig) -> Result<Self, HashError> {
        let c = config;
        if let Some(params) = c.argon2 {
            self = self.hasher(Argon2Hasher::with_params(params)?);
        }
        let durations: [(Option<Duration>, SetDuration); 9] = [
            (c.revocation_window, Self::revocation_window),
            (c.absent_ttl, Self::absent_ttl),
            (c.verified_ttl, Self::verified_ttl),
            (c.rejected_ttl, Self::rejected_ttl),
            (c.hash_queue_timeout, Self::hash_queue_timeout),
            (c.store_timeout, Self::store_timeout),
            (c.last_used_flush_interval, Self::last_used_flush_interval),
            (c.shutdown_flush_deadline, Self::shutdown_flush_deadline),
            (c.failure_window, |mut b, d| {
                b.settings.failure_window = d;
                b
            }),
        ];
        for (value, set) in durations {
            if let Some(d) = value {
                self = set(self, d);
            }
        }
        if let Some(max) = c.max_failures {
            self.settings.max_failures = max;
        }
        if let Some(max) = c.id_failure_budget {
            self = self.id_failure_budget(max);
        }
        if let Some(secs) = c.retry_after_secs {
            self = self.retry_after_secs(secs);
        }
        if let Some(prefixes) = &c.accept_prefixes {
            self = self.accept_prefixes(prefixes.iter().cloned());
        }
        if let Some(n) = c.key_capacity {
            self = self.key_capacity(n);
        }
        if let Some(n) = c.hash_concurrency {
            self = self.hash_concurrency(n);
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<VerifierConfig, String> {
        toml::from_str(text).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn human_durations_and_numbers_are_read_into_their_fields() {
        let c = parse(
            r#"
            revocation_window = "10s"
            absent_ttl = "0s"
            verified_ttl = "2h 30m"
            rejected_ttl = "500ms"
            max_failures = 5
            failure_window = "2m"
            id_failure_budget = 40
            hash_queue_timeout = "1s"
            store_timeout = "750ms"
            retry_after_secs = 7
            last_used_flush_interval = "15s"
            shutdown_flush_deadline = "3s"
            accept_prefixes = ["acme"]
            key_capacity = 4096
            hash_concurrency = 3
            argon2 = { memory_kib = 47104, iterations = 1, parallelism = 1 }
            "#,
        )
        .unwrap();
        assert_eq!(c.revocation_window, Some(Duration::from_secs(10)));
        assert_eq!(c.absent_ttl, Some(Duration::ZERO));
        assert_eq!(c.verified_ttl, Some(Duration::from_secs(9000)));
        assert_eq!(c.rejected_ttl, Some(Duration::from_millis(500)));
        assert_eq!(c.max_failures, Some(5));
        assert_eq!(c.failure_window, Some(Duration::from_secs(120)));
        assert_eq!(c.id_failure_budget, Some(40));
        assert_eq!(c.hash_queue_timeout, Some(Duration::from_secs(1)));
        assert_eq!(c.store_timeout, Some(Duration::from_millis(750)));
        assert_eq!(c.retry_after_secs, Some(7));
        assert_eq!(c.last_used_flush_interval, Some(Duration::from_secs(15)));
        assert_eq!(c.shutdown_flush_deadline, Some(Duration::from_secs(3)));
        assert_eq!(c.accept_prefixes, Some(vec!["acme".to_owned()]));
        assert_eq!(c.key_capacity, Some(4096));
        assert_eq!(c.hash_concurrency, Some(3));
        assert_eq!(
            c.argon2,
            Some(Argon2Params {
                memory_kib: 47104,
                iterations: 1,
                parallelism: 1
            })
        );
    }

    #[test]
    fn a_config_is_applied_over_the_builder_and_leaves_the_rest_as_it_was() {
        let store = std::sync::Arc::new(crate::MemoryStore::new());
        let builder = crate::Verifier::builder(store)
            .revocation_window(Duration::from_secs(5))
            .absent_ttl(Duration::from_secs(1))
            .key_capacity(10);
        let c = parse(
            r#"
            revocation_window = "10s"
            max_failures = 3
            failure_window = "2m"
            hash_concurrency = 5
            "#,
        )
        .unwrap();
        let b = builder.config(&c).unwrap();
        let defaults = super::super::builder::Settings::default();
        assert_eq!(b.settings.revocation_window, Duration::from_secs(10));
        assert_eq!(b.settings.max_failures, 3);
        assert_eq!(b.settings.failure_window, Duration::from_secs(120));
        assert_eq!(b.hash_concurrency, 5);
        // Set on the builder, absent from the config: kept.
        assert_eq!(b.settings.absent_ttl, Duration::from_secs(1));
        assert_eq!(b.capacity, 10);
        // Set nowhere: the defaults.
        assert_eq!(b.settings.verified_ttl, defaults.verified_ttl);
        assert_eq!(b.settings.store_timeout, defaults.store_timeout);
        assert_eq!(b.settings.accepted_prefixes, None);

        let every = parse(
            r#"
            absent_ttl = "2s"
            verified_ttl = "3s"
            rejected_ttl = "4s"
            id_failure_budget = 9
            hash_queue_timeout = "5s"
            store_timeout = "6s"
            retry_after_secs = 7
            last_used_flush_interval = "8s"
            shutdown_flush_deadline = "9s"
            accept_prefixes = ["acme"]
            key_capacity = 11
            argon2 = { memory_kib = 4096, iterations = 3, parallelism = 2 }
            "#,
        )
        .unwrap();
        let b = b.config(&every).unwrap();
        let s = &b.settings;
        assert_eq!(
            (s.absent_ttl, s.verified_ttl, s.rejected_ttl),
            (
                Duration::from_secs(2),
                Duration::from_secs(3),
                Duration::from_secs(4)
            )
        );
        assert_eq!(s.id_failure_budget, Some(9));
        assert_eq!(
            (s.hash_queue_timeout, s.store_timeout),
            (Duration::from_secs(5), Duration::from_secs(6))
        );
        assert_eq!(s.retry_after_secs, 7);
        assert_eq!(
            (s.flush_interval, s.shutdown_flush_deadline),
            (Duration::from_secs(8), Duration::from_secs(9))
        );
        assert_eq!(s.accepted_prefixes, Some(vec!["acme".to_owned()]));
        assert_eq!(b.capacity, 11);
        let phc = b.hasher.hash(b"secret").unwrap();
        assert!(phc.contains("$m=4096,t=3,p=2$"), "{phc}");
        // The earlier config's values stay where the later one is silent.
        assert_eq!(s.revocation_window, Duration::from_secs(10));
    }

    #[test]
    fn an_empty_config_sets_nothing() {
        assert_eq!(parse("").unwrap(), VerifierConfig::default());
    }

    #[test]
    fn bad_values_and_unknown_fields_are_errors_naming_them() {
        let e = parse(r#"revocation_window = "30""#).unwrap_err();
        assert!(e.contains(r#"string "30", expected a duration"#), "{e}");
        let e = parse(r#"revocation_window = "soon""#).unwrap_err();
        assert!(e.contains(r#"string "soon", expected a duration"#), "{e}");
        let e = parse("revocation_windw = \"30s\"").unwrap_err();
        assert!(e.contains("unknown field `revocation_windw`"), "{e}");
        let e = parse("max_failures = -1").unwrap_err();
        assert!(e.contains("invalid value"), "{e}");
        let e = parse("argon2 = { memory_kib = 8 }").unwrap_err();
        assert!(e.contains("missing field `iterations`"), "{e}");
        let e = parse("argon2 = { memory_kib = 8, iterations = 1, parallelism = 1, salt = 1 }")
            .unwrap_err();
        assert!(e.contains("unknown field `salt`"), "{e}");
    }

    #[test]
    fn argon2_parameters_argon2_refuses_are_an_error_when_applied() {
        let c = parse("argon2 = { memory_kib = 1, iterations = 1, parallelism = 1 }").unwrap();
        let store = std::sync::Arc::new(crate::MemoryStore::new());
        assert!(crate::Verifier::builder(store).config(&c).is_err());
    }
}

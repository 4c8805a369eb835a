//! What a verification reports: its tracing span and the `keygate_*` metrics (the README's
//! "Metrics" table lists them; a test holds the table to the code).

use std::sync::Arc;

use tracing::field;

use crate::error::AuthError;
use crate::principal::Principal;

/// The span of one verification (key id, outcome, cache hit or miss; never the secret).
///
/// When no subscriber listens at `DEBUG`, no span at all: a disabled span still costs about 150
/// instructions on the cached path (more with `tracing`'s `log` feature, which some dependency
/// trees turn on). Then, with that feature, a `log` logger no longer sees the span's (fieldless)
/// enter and exit lines; keygate's events still reach it.
#[inline]
pub(crate) fn verify_span() -> tracing::Span {
    // What `tracing`'s span macros check first, with its public items: the level compiled in,
    // and the most verbose level any subscriber (global or scoped, whatever its per-target
    // filters) may want.
    if tracing::Level::DEBUG > tracing::level_filters::STATIC_MAX_LEVEL
        || tracing::Level::DEBUG > tracing::level_filters::LevelFilter::current()
    {
        return tracing::Span::none();
    }
    tracing::debug_span!(
        "keygate.verify",
        key_id = field::Empty,
        outcome = field::Empty,
        cache = field::Empty
    )
}

/// Records `value` in the span's `field`, when a subscriber is interested in the span: a
/// disabled span keeps its metadata, and recording into it still looks the field up by name
/// (about 380 instructions per call on the cached path).
#[inline]
pub(crate) fn record(span: &tracing::Span, field: &str, value: &str) {
    if !span.is_disabled() {
        span.record(field, value);
    }
}

/// Records a verification's outcome on its span and in the metrics, and hands it on.
pub(crate) fn report_outcome(
    span: &tracing::Span,
    result: Result<Arc<Principal>, AuthError>,
) -> Result<Arc<Principal>, AuthError> {
    match &result {
        Ok(_) => {
            record(span, "outcome", "ok");
            // A literal label: the key is built at compile time (see `cache_lookup`).
            metrics::counter!("keygate_verifications_total", "outcome" => "ok").increment(1);
        }
        Err(e) => {
            let outcome = e.reason();
            record(span, "outcome", outcome);
            // The refusals of floods (garbage, forged secrets) with literal labels too.
            match e {
                AuthError::MalformedKey(_) => {
                    metrics::counter!("keygate_verifications_total", "outcome" => "malformed_key")
                        .increment(1);
                }
                AuthError::InvalidKey => {
                    metrics::counter!("keygate_verifications_total", "outcome" => "invalid_key")
                        .increment(1);
                }
                AuthError::TooManyAttempts { .. } => {
                    metrics::counter!("keygate_verifications_total", "outcome" => "too_many_attempts")
                        .increment(1);
                }
                _ => {
                    metrics::counter!("keygate_verifications_total", "outcome" => outcome)
                        .increment(1);
                }
            }
        }
    }
    result
}

/// Which of the key's cached facts a lookup was about: the key's record, or the verdict on
/// the presented secret.
#[derive(Clone, Copy)]
pub(crate) enum CacheKind {
    Record,
    Verdict,
}

/// Counts a cache lookup (and marks the span for the record lookup). Every label is a
/// literal, so the `metrics` macros build their keys at compile time (a label held in a
/// variable would cost an allocation per request).
#[inline]
pub(crate) fn cache_lookup(span: &tracing::Span, kind: CacheKind, hit: bool) {
    match (kind, hit) {
        (CacheKind::Record, true) => {
            record(span, "cache", "hit");
            metrics::counter!("keygate_cache_total", "cache" => "record", "result" => "hit")
                .increment(1);
        }
        (CacheKind::Record, false) => {
            record(span, "cache", "miss");
            metrics::counter!("keygate_cache_total", "cache" => "record", "result" => "miss")
                .increment(1);
        }
        (CacheKind::Verdict, true) => {
            metrics::counter!("keygate_cache_total", "cache" => "verdict", "result" => "hit")
                .increment(1);
        }
        (CacheKind::Verdict, false) => {
            metrics::counter!("keygate_cache_total", "cache" => "verdict", "result" => "miss")
                .increment(1);
        }
    }
}

/// Counts and logs a client throttled for an id.
#[cold]
pub(crate) fn throttled(id: &str, retry_after_secs: u32) -> AuthError {
    metrics::counter!("keygate_throttled_total").increment(1);
    tracing::debug!(
        key_id = id,
        "keygate: client throttled after repeated wrong secrets for this id"
    );
    AuthError::TooManyAttempts { retry_after_secs }
}

/// Counts and logs a verification refused for want of a hashing slot.
#[cold]
pub(crate) fn busy(id: &str, retry_after_secs: u32) -> AuthError {
    metrics::counter!("keygate_verifier_busy_total").increment(1);
    tracing::warn!(
        key_id = id,
        "keygate: no hashing slot within the queue deadline"
    );
    AuthError::VerifierBusy { retry_after_secs }
}

/// Counts and logs a request refused by its key's own rate limit.
#[cold]
pub(crate) fn rate_limited(
    id: &str,
    limit: crate::rate_limit::RateLimit,
    retry_after_secs: u32,
) -> AuthError {
    metrics::counter!("keygate_rate_limited_total").increment(1);
    tracing::debug!(key_id = id, "keygate: key's own rate limit spent");
    AuthError::RateLimited {
        limit,
        retry_after_secs,
    }
}

/// Records the time of one store read.
pub(crate) fn store_read(started: std::time::Instant) {
    metrics::histogram!("keygate_store_seconds", "op" => "get")
        .record(started.elapsed().as_secs_f64());
}

/// Records the time of one argon2 check.
pub(crate) fn hashed(started: std::time::Instant) {
    metrics::histogram!("keygate_hash_seconds").record(started.elapsed().as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_util::debugging::DebuggingRecorder;

    /// The outcome label of one reported verification.
    fn outcome_label(result: Result<Arc<Principal>, AuthError>) -> String {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let _ = report_outcome(&tracing::Span::none(), result);
        });
        let snapshot = snapshotter.snapshot().into_vec();
        assert_eq!(snapshot.len(), 1, "one counter");
        let (key, _, _, _) = &snapshot[0];
        assert_eq!(key.key().name(), "keygate_verifications_total");
        let labels: Vec<_> = key.key().labels().collect();
        assert_eq!(labels.len(), 1);
        assert_eq!(labels[0].key(), "outcome");
        labels[0].value().to_owned()
    }

    #[test]
    fn the_outcome_label_is_the_errors_reason_literal_or_not() {
        for e in [
            AuthError::MalformedKey(crate::error::Malformed::EmptyBearer),
            AuthError::InvalidKey,
            AuthError::TooManyAttempts {
                retry_after_secs: 3,
            },
            AuthError::ExpiredKey,
            AuthError::RevokedKey,
            AuthError::StoreUnavailable {
                retry_after_secs: 1,
            },
        ] {
            let reason = e.reason();
            assert_eq!(outcome_label(Err(e)), reason);
        }
    }

    #[test]
    fn a_subscriber_that_wants_keygates_debug_spans_gets_them_under_an_info_default() {
        let filtered = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info,keygate=debug"))
            .with_writer(std::io::sink)
            .finish();
        tracing::subscriber::with_default(filtered, || {
            let span = verify_span();
            assert!(!span.is_disabled(), "{span:?}");
        });
        let info = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(std::io::sink)
            .finish();
        tracing::subscriber::with_default(info, || {
            assert!(verify_span().is_disabled());
        });
    }
}

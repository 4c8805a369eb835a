//! What a verification reports: its tracing span and the `keygate_*` metrics (the README's
//! "Metrics" table lists them; a test holds the table to the code).

use std::sync::Arc;

use tracing::field;

use crate::error::AuthError;
use crate::principal::Principal;

/// The span of one verification (key id, outcome, cache hit or miss; never the secret).
pub(crate) fn verify_span() -> tracing::Span {
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
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.reason(),
    };
    record(span, "outcome", outcome);
    metrics::counter!("keygate_verifications_total", "outcome" => outcome).increment(1);
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

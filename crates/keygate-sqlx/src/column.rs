//! Column values both SQL stores convert the same way.

use chrono::{DateTime, Utc};
use keygate::{RateLimit, StoreError};

/// A stored rate limit (its canonical `N/period` text); one that does not parse is corrupt.
pub(crate) fn rate_limit(id: &str, v: Option<String>) -> Result<Option<RateLimit>, StoreError> {
    v.map(|s| {
        s.parse::<RateLimit>().map_err(|e| StoreError::Corrupt {
            id: id.to_owned(),
            reason: format!("rate_limit: {e}"),
        })
    })
    .transpose()
}

/// The text a rate limit is stored as.
pub(crate) fn rate_limit_text(v: Option<RateLimit>) -> Option<String> {
    v.map(|l| l.to_string())
}

/// Whether a key with these columns is active at `now` (the rule of
/// [`KeyRecord::status_at`](keygate::KeyRecord::status_at)).
pub(crate) fn is_active(
    revoked: bool,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    !revoked && expires_at.is_none_or(|e| e > now)
}

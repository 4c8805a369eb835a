//! Column values both SQL stores convert the same way.

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};
use keygate::{RateLimit, StoreError, UsageCount};

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

/// A count as stored (signed 64-bit): saturates at `i64::MAX`.
pub(crate) fn count_in(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored count: a negative one (only a hand-edited row has it) reads as 0.
pub(crate) fn count_out(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The SQL of a saturating add of `add` (never negative) to the stored count `col`: the
/// database neither overflows (PostgreSQL would fail, SQLite turn the column REAL) nor
/// wraps.
pub(crate) fn saturating_add_sql(col: &str, add: &str) -> String {
    format!(
        "CASE WHEN {col} > {max} - {add} THEN {max} ELSE {col} + {add} END",
        max = i64::MAX
    )
}

/// One row of a batch for [`add_usage`](keygate::KeyStore::add_usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UsageRow<'a> {
    pub(crate) key_id: &'a str,
    /// The hour at the stores' microsecond precision.
    pub(crate) hour: DateTime<Utc>,
    pub(crate) requests: i64,
    pub(crate) refused: i64,
}

/// A batch of counts with one row per (key, hour) (duplicates added up, saturating), in
/// (key, hour) order, so one upsert never meets the same row twice and concurrent batches
/// lock rows in the same order.
pub(crate) fn merge_usage(counts: &[UsageCount]) -> Vec<UsageRow<'_>> {
    let mut merged: BTreeMap<(&str, DateTime<Utc>), (u64, u64)> = BTreeMap::new();
    for c in counts {
        let e = merged
            .entry((c.key_id.as_str(), c.hour.trunc_subsecs(6)))
            .or_default();
        e.0 = e.0.saturating_add(c.requests);
        e.1 = e.1.saturating_add(c.refused);
    }
    merged
        .into_iter()
        .map(|((key_id, hour), (requests, refused))| UsageRow {
            key_id,
            hour,
            requests: count_in(requests),
            refused: count_in(refused),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_saturate_on_the_way_in_and_clamp_negatives_on_the_way_out() {
        assert_eq!(count_in(0), 0);
        assert_eq!(count_in(u64::MAX), i64::MAX);
        assert_eq!(count_out(-5), 0);
        assert_eq!(count_out(i64::MAX), i64::MAX as u64);
    }

    #[test]
    fn a_batch_merges_duplicate_key_hours_saturating() {
        let hour = DateTime::from_timestamp(3_600, 0).unwrap_or_default();
        let c = |key: &str, requests, refused| UsageCount {
            key_id: key.into(),
            hour,
            requests,
            refused,
        };
        let batch = [
            c("b", 1, 0),
            c("a", 2, 1),
            c("b", 3, 4),
            c("a", u64::MAX, 0),
        ];
        let rows = merge_usage(&batch);
        assert_eq!(
            rows,
            [
                UsageRow {
                    key_id: "a",
                    hour,
                    requests: i64::MAX,
                    refused: 1
                },
                UsageRow {
                    key_id: "b",
                    hour,
                    requests: 4,
                    refused: 4
                },
            ]
        );
    }
}

//! Conversions between `chrono` times and stored microseconds.

use chrono::{DateTime, Utc};
use keygate::StoreError;

/// Microseconds since the Unix epoch (stores keep microsecond precision).
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The time `micros` microseconds after the Unix epoch; a value out of range is corrupt.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn from_micros(
    id: &str,
    column: &str,
    micros: i64,
) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| StoreError::Corrupt {
        id: id.to_owned(),
        reason: format!("{column} is out of range"),
    })
}

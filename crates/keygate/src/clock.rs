//! The clock the verifier and the key manager read: the system clock in production, a
//! [`ManualClock`] in tests so TTLs and expiry are checked without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};

/// A source of "now".
pub trait Clock: Send + Sync + 'static {
    /// The current time, in milliseconds since the Unix epoch.
    fn now_millis(&self) -> i64;

    /// The current time as a UTC date-time.
    fn now(&self) -> DateTime<Utc> {
        millis_to_datetime(self.now_millis())
    }

    /// A reading for measuring intervals (per-key rate limits), in nanoseconds since an
    /// arbitrary origin; it must never go backwards. The default is [`Clock::now_millis`] in
    /// nanoseconds, which suits clocks that only move forward, like [`ManualClock`].
    fn monotonic_nanos(&self) -> u64 {
        u64::try_from(self.now_millis())
            .unwrap_or(0)
            .saturating_mul(1_000_000)
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// Straight from the OS clock, without building a calendar date on the way (every
    /// verification reads it).
    fn now_millis(&self) -> i64 {
        unix_millis(std::time::SystemTime::now())
    }

    /// The OS monotonic clock: a wall clock set back (NTP, an operator) cannot hold a rate
    /// limit shut.
    fn monotonic_nanos(&self) -> u64 {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        let origin = *ORIGIN.get_or_init(Instant::now);
        u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Milliseconds since the Unix epoch, rounded toward the past (as chrono's
/// `timestamp_millis`; a time before 1970 is negative).
fn unix_millis(t: std::time::SystemTime) -> i64 {
    let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(after) => millis(after),
        Err(before) => {
            let d = before.duration();
            let whole = millis(d);
            if d.subsec_nanos() % 1_000_000 == 0 {
                -whole
            } else {
                -whole - 1
            }
        }
    }
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock(Arc::new(AtomicI64::new(start.timestamp_millis())))
    }

    /// A clock standing at the current system time.
    pub fn starting_now() -> Self {
        Self::new(Utc::now())
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(duration_millis(by), Ordering::SeqCst);
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: DateTime<Utc>) {
        self.0.store(to.timestamp_millis(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Converts milliseconds since the epoch to a date-time, saturating on out-of-range input.
pub(crate) fn millis_to_datetime(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn unix_millis_agrees_with_chrono_before_and_after_the_epoch() {
        let times = [
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::from_nanos(1),
            UNIX_EPOCH + Duration::new(1_764_531_234, 999_999_999),
            UNIX_EPOCH + Duration::new(1_764_531_234, 5_000_000),
            UNIX_EPOCH - Duration::from_nanos(1),
            UNIX_EPOCH - Duration::from_millis(1),
            UNIX_EPOCH - Duration::new(86_400, 500_000),
            UNIX_EPOCH - Duration::new(86_400, 3_000_000),
        ];
        for t in times {
            let chrono = DateTime::<Utc>::from(t).timestamp_millis();
            assert_eq!(unix_millis(t), chrono, "{t:?}");
        }
        let now = SystemTime::now();
        assert_eq!(
            unix_millis(now),
            DateTime::<Utc>::from(now).timestamp_millis()
        );
    }
}

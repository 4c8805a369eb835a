//! Enforcement of a key's own [`RateLimit`] on this node: one GCRA bucket per cached key.
//!
//! Each key with a limit gets a direct (not keyed) `governor` rate limiter: a burst of
//! `requests`, replenishing one cell every `period / requests`. Spending a cell is one atomic
//! compare-and-swap, with no allocation and no lock, so a limit that is not hit costs the hot
//! path almost nothing.
//!
//! The limiter lives in the key's cache entry (`KeyState` in `verify/cache.rs`), so only cached
//! keys hold one. A record is re-read every revocation window; the new state must keep the
//! *same* bucket, or every refresh would hand the client a fresh burst. [`Limiters`] keeps the
//! buckets by (key id, limit) for that: a refresh with an unchanged limit gets the bucket back,
//! a changed limit starts a new one. A bucket is dropped once no refresh has asked for it for
//! the revocation window plus its period: by then its key has not spent a cell for at least a
//! period, so its bucket is full again and a new one is the same.
//!
//! Limits are per node: N nodes behind a load balancer allow up to N times the limit.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::clock::Clock;
use crate::rate_limit::RateLimit;

/// governor's view of the verifier's clock: its monotonic reading, as a duration since an
/// arbitrary origin. Tests move it with a [`ManualClock`](crate::ManualClock).
#[derive(Clone)]
struct LimiterClock(Arc<dyn Clock>);

impl governor::clock::Clock for LimiterClock {
    type Instant = Duration;

    #[inline]
    fn now(&self) -> Duration {
        Duration::from_nanos(self.0.monotonic_nanos())
    }
}

type Gcra = RateLimiter<NotKeyed, InMemoryState, LimiterClock, NoOpMiddleware<Duration>>;

/// The GCRA bucket of one key.
pub(crate) struct KeyLimiter {
    limit: RateLimit,
    gcra: Gcra,
}

impl KeyLimiter {
    fn new(limit: RateLimit, clock: Arc<dyn Clock>) -> Self {
        let requests = NonZeroU32::new(limit.requests()).unwrap_or(NonZeroU32::MIN);
        // Rounded up so that the rate never exceeds the limit. `RateLimit` keeps the period
        // at least one second and the requests at most 10^9, so the interval is at least 1 ns
        // and `with_period` always answers.
        let interval = Duration::from_nanos(
            u64::try_from(limit.period().as_nanos())
                .unwrap_or(u64::MAX)
                .div_ceil(u64::from(requests.get())),
        );
        let quota = Quota::with_period(interval)
            .unwrap_or_else(|| Quota::per_second(requests))
            .allow_burst(requests);
        KeyLimiter {
            limit,
            gcra: RateLimiter::direct_with_clock(quota, LimiterClock(clock)),
        }
    }

    /// The limit this bucket enforces.
    pub(crate) fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Spends one cell. `Err`: the limit is spent; whole seconds until the next cell (≥ 1).
    #[inline]
    pub(crate) fn check(&self) -> Result<(), u32> {
        match self.gcra.check() {
            Ok(()) => Ok(()),
            Err(not_until) => Err(whole_seconds(
                not_until.wait_time_from(governor::clock::Clock::now(self.gcra.clock())),
            )),
        }
    }
}

/// `wait` rounded up to whole seconds, at least 1 (a `Retry-After` of 0 invites a retry storm).
fn whole_seconds(wait: Duration) -> u32 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    u32::try_from(secs.max(1)).unwrap_or(u32::MAX)
}

/// The buckets of the keys this verifier has cached lately, by (key id, limit): what lets a
/// record refresh keep its key's bucket. Bounded in number; each dropped once unused for
/// the revocation window plus its period.
pub(crate) struct Limiters {
    buckets: moka::sync::Cache<(String, RateLimit), Arc<KeyLimiter>>,
    clock: Arc<dyn Clock>,
}

impl Limiters {
    pub(crate) fn new(capacity: u64, revocation_window: Duration, clock: Arc<dyn Clock>) -> Self {
        Limiters {
            buckets: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .expire_after(KeepWhileRefreshed { revocation_window })
                .build(),
            clock,
        }
    }

    /// The bucket of key `id` under `limit`: the one its previous state held when the limit
    /// is unchanged, else a new, full one.
    pub(crate) fn bucket(&self, id: &str, limit: RateLimit) -> Arc<KeyLimiter> {
        self.buckets.get_with((id.to_owned(), limit), || {
            Arc::new(KeyLimiter::new(limit, Arc::clone(&self.clock)))
        })
    }
}

/// Keeps a bucket while refreshes of its key's record keep asking for it.
struct KeepWhileRefreshed {
    revocation_window: Duration,
}

impl KeepWhileRefreshed {
    /// A record read now is used for at most the revocation window; after a further period
    /// without a spent cell the bucket is full, so forgetting it changes nothing. One second
    /// more for rounding.
    fn keep(&self, limit: RateLimit) -> Option<Duration> {
        Some(
            self.revocation_window
                .saturating_add(limit.period())
                .saturating_add(Duration::from_secs(1)),
        )
    }
}

impl moka::Expiry<(String, RateLimit), Arc<KeyLimiter>> for KeepWhileRefreshed {
    fn expire_after_create(
        &self,
        key: &(String, RateLimit),
        _: &Arc<KeyLimiter>,
        _: Instant,
    ) -> Option<Duration> {
        self.keep(key.1)
    }

    fn expire_after_read(
        &self,
        key: &(String, RateLimit),
        _: &Arc<KeyLimiter>,
        _: Instant,
        _: Option<Duration>,
        _: Instant,
    ) -> Option<Duration> {
        self.keep(key.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn limiter(limit: &str) -> (KeyLimiter, ManualClock) {
        let clock = ManualClock::starting_now();
        let l = KeyLimiter::new(limit.parse().unwrap(), Arc::new(clock.clone()));
        (l, clock)
    }

    #[test]
    fn a_full_bucket_lets_a_burst_of_requests_through_then_refuses() {
        let (l, _clock) = limiter("5/1s");
        for i in 0..5 {
            assert_eq!(l.check(), Ok(()), "request {i}");
        }
        assert_eq!(l.check(), Err(1));
    }

    #[test]
    fn one_cell_comes_back_every_period_over_requests() {
        let (l, clock) = limiter("5/1s");
        for _ in 0..5 {
            l.check().unwrap();
        }
        clock.advance(Duration::from_millis(199));
        assert!(l.check().is_err());
        clock.advance(Duration::from_millis(1));
        assert_eq!(l.check(), Ok(()));
        assert!(l.check().is_err());
    }

    #[test]
    fn retry_after_counts_whole_seconds_until_the_next_cell() {
        let (l, clock) = limiter("2/1m");
        l.check().unwrap();
        l.check().unwrap();
        assert_eq!(l.check(), Err(30));
        clock.advance(Duration::from_millis(29_500));
        assert_eq!(l.check(), Err(1));
    }

    #[test]
    fn a_refresh_with_the_same_limit_gets_the_same_bucket_and_a_new_limit_a_new_one() {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::starting_now());
        let limiters = Limiters::new(10, Duration::from_secs(30), clock);
        let five: RateLimit = "5/1s".parse().unwrap();
        let a = limiters.bucket("k1", five);
        assert!(Arc::ptr_eq(&a, &limiters.bucket("k1", five)));
        assert!(!Arc::ptr_eq(&a, &limiters.bucket("k2", five)));
        assert!(!Arc::ptr_eq(
            &a,
            &limiters.bucket("k1", "6/1s".parse().unwrap())
        ));
    }

    #[test]
    fn whole_seconds_round_up_and_never_say_zero() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(200)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1_001)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(86_400)), 86_400);
    }
}

//! [`Throttle`]: bounds how many wrong secrets are hashed for one key id.
//!
//! Failures are counted per (id, client address) and per id across all addresses, in fixed
//! windows. A client that spent its own failures, or any client of an id whose budget is spent,
//! has its *not yet verified* secrets for that id answered 429 `too_many_attempts` without
//! hashing until the window ends. The throttle never turns a verdict into `invalid_key`: the
//! verifier consults it only before hashing, and a secret already verified is answered without
//! it. Unknown ids are counted exactly like known ones, so the answers do not tell whether an
//! id exists.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::duration_millis;

/// Wrong secrets counted in one failure window (per client, or per id).
struct FailureWindow {
    started_ms: AtomicI64,
    count: AtomicU32,
}

impl FailureWindow {
    fn new(now: i64) -> Arc<Self> {
        Arc::new(FailureWindow {
            started_ms: AtomicI64::new(now),
            count: AtomicU32::new(0),
        })
    }

    /// `Some(seconds until the window ends)` when `limit` failures were counted in the window
    /// running at `now`.
    fn blocks(&self, now: i64, window_ms: i64, limit: u32) -> Option<u32> {
        let left = self
            .started_ms
            .load(Ordering::Relaxed)
            .saturating_add(window_ms)
            .saturating_sub(now);
        (left > 0 && self.count.load(Ordering::Relaxed) >= limit).then(|| {
            // Whole seconds, rounded up: retrying earlier would be refused again.
            u32::try_from(left.saturating_add(999) / 1000).unwrap_or(u32::MAX)
        })
    }

    /// Counts one failure at `now`, starting a new window when the last one ended; returns
    /// the count in the window.
    fn count_failure(&self, now: i64, window_ms: i64) -> u32 {
        if now.saturating_sub(self.started_ms.load(Ordering::Relaxed)) >= window_ms {
            self.started_ms.store(now, Ordering::Relaxed);
            self.count.store(0, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed).saturating_add(1)
    }

    /// Takes back one counted failure; `true` when none is left.
    fn forgive(&self) -> bool {
        self.count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .map_or(true, |before| before <= 1)
    }
}

/// Whether an id is one the store knows: their counts are kept apart (see [`Throttle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdKind {
    /// A key the store holds.
    Known,
    /// An id the store does not know.
    Unknown,
}

/// One set of counts: per (id, client address) and per id.
struct Counts {
    /// Keyed by the hash of (id, address); `None` as the address: the adapter does not know it
    /// (such clients share one count).
    per_client: quick_cache::sync::Cache<u64, Arc<FailureWindow>>,
    /// Keyed by the hash of the id.
    per_id: quick_cache::sync::Cache<u64, Arc<FailureWindow>>,
}

impl Counts {
    fn new(capacity: usize) -> Self {
        Counts {
            per_client: quick_cache::sync::Cache::new(capacity),
            per_id: quick_cache::sync::Cache::new(capacity),
        }
    }
}

/// Failure counts per (id, client address) and per id.
///
/// Both are keyed by a 64-bit hash (random seed per process) rather than by a copy of the id:
/// a lookup allocates nothing, and every request of a forged-secret flood makes one. Two ids
/// whose hashes collide share their counts (a random 64-bit seed makes that vanishingly rare).
///
/// Known and unknown ids are counted alike (same limits, same answers: no existence oracle)
/// but kept in separate caches, each bounded and evicting by count (`quick_cache`): failures
/// for fresh unknown ids cost an attacker nothing but a store read each, and a stream of them
/// would otherwise push a real key's counts out of a full throttle and start them over
/// (`churn_through_a_full_throttle_does_not_reset_a_clients_count`).
pub(crate) struct Throttle {
    known: Counts,
    unknown: Counts,
    hasher: quick_cache::DefaultHashBuilder,
    per_client_limit: u32,
    per_id_limit: u32,
    window_ms: i64,
}

impl Throttle {
    /// At most `per_client` failures per (id, address) and `per_id` per id in each `window`;
    /// counts of at most `capacity` known and as many unknown ids and clients are kept (a
    /// count whose window ended is as good as none, so nothing needs to expire by time; a
    /// success removes the counts it forgave back to zero).
    pub(crate) fn new(capacity: u64, per_client: u32, per_id: u32, window: Duration) -> Self {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX).max(16);
        Throttle {
            known: Counts::new(capacity),
            unknown: Counts::new(capacity),
            per_client_limit: per_client,
            per_id_limit: per_id,
            window_ms: duration_millis(window),
            hasher: quick_cache::DefaultHashBuilder::default(),
        }
    }

    fn counts_of(&self, kind: IdKind) -> &Counts {
        match kind {
            IdKind::Known => &self.known,
            IdKind::Unknown => &self.unknown,
        }
    }

    /// The keys of (id, peer) in `per_client` and of id in `per_id`.
    fn keys(&self, id: &str, peer: Option<IpAddr>) -> (u64, u64) {
        use std::hash::BuildHasher;
        (self.hasher.hash_one((id, peer)), self.hasher.hash_one(id))
    }

    /// `Some(seconds until it may try again)` when `peer` may not have another secret for
    /// `id` hashed at `now`: it spent its own failures, or the id spent its budget.
    pub(crate) fn blocked(
        &self,
        kind: IdKind,
        id: &str,
        peer: Option<IpAddr>,
        now: i64,
    ) -> Option<u32> {
        let (client_key, id_key) = self.keys(id, peer);
        let counts = self.counts_of(kind);
        let client = counts
            .per_client
            .get(&client_key)
            .and_then(|w| w.blocks(now, self.window_ms, self.per_client_limit));
        let all = counts
            .per_id
            .get(&id_key)
            .and_then(|w| w.blocks(now, self.window_ms, self.per_id_limit));
        client.max(all)
    }

    /// Counts a failure of `peer` for `id` at `now` (logged when a limit is reached).
    pub(crate) fn count_failure(&self, kind: IdKind, id: &str, peer: Option<IpAddr>, now: i64) {
        let (client_key, id_key) = self.keys(id, peer);
        let counts = self.counts_of(kind);
        let client = counts
            .per_client
            .get_or_insert_with(&client_key, || Ok::<_, Infallible>(FailureWindow::new(now)))
            .unwrap_or_else(|never| match never {})
            .count_failure(now, self.window_ms);
        if client == self.per_client_limit {
            tracing::warn!(
                key_id = id,
                client = ?peer,
                failures = client,
                "keygate: throttling a client of this key id after repeated wrong secrets"
            );
        }
        let all = counts
            .per_id
            .get_or_insert_with(&id_key, || Ok::<_, Infallible>(FailureWindow::new(now)))
            .unwrap_or_else(|never| match never {})
            .count_failure(now, self.window_ms);
        if all == self.per_id_limit {
            tracing::warn!(
                key_id = id,
                failures = all,
                "keygate: throttling every unverified client of this key id: its failure budget is spent"
            );
        }
    }

    /// Takes back a failure counted before a check that then succeeded. A count back at zero
    /// is dropped, so a key's first verification leaves nothing behind here (a failure
    /// counted concurrently in that instant may be dropped with it: one in a window at most).
    /// Only known ids verify, so only their counts are forgiven.
    pub(crate) fn forgive(&self, id: &str, peer: Option<IpAddr>) {
        let (client_key, id_key) = self.keys(id, peer);
        let counts = &self.known;
        if counts
            .per_client
            .get(&client_key)
            .is_some_and(|w| w.forgive())
        {
            counts.per_client.remove(&client_key);
        }
        if counts.per_id.get(&id_key).is_some_and(|w| w.forgive()) {
            counts.per_id.remove(&id_key);
        }
    }

    /// Number of (id, client) and id counts kept (approximate).
    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        (
            self.known.per_client.len() + self.unknown.per_client.len(),
            self.known.per_id.len() + self.unknown.per_id.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)));
    const B: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)));
    const K: IdKind = IdKind::Known;

    fn throttle() -> Throttle {
        Throttle::new(100, 3, 5, Duration::from_secs(60))
    }

    #[test]
    fn a_client_is_blocked_after_its_own_limit_and_others_are_not() {
        let t = throttle();
        for _ in 0..2 {
            t.count_failure(K, "k", A, 0);
        }
        assert_eq!(t.blocked(K, "k", A, 0), None, "2 of 3");
        t.count_failure(K, "k", A, 0);
        assert_eq!(t.blocked(K, "k", A, 1_000), Some(59));
        assert_eq!(t.blocked(K, "k", B, 1_000), None, "another client");
        assert_eq!(t.blocked(K, "other", A, 1_000), None, "another id");
    }

    #[test]
    fn the_id_budget_blocks_every_client_once_spent_from_many_addresses() {
        let t = throttle();
        for i in 0..5u8 {
            let peer = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 0, i)));
            t.count_failure(K, "k", peer, 0);
        }
        assert_eq!(t.blocked(K, "k", A, 0), Some(60));
        assert_eq!(t.blocked(K, "k", None, 0), Some(60));
    }

    #[test]
    fn the_block_ends_with_its_window_rounded_up_to_whole_seconds() {
        let t = throttle();
        for _ in 0..3 {
            t.count_failure(K, "k", A, 0);
        }
        assert_eq!(t.blocked(K, "k", A, 59_001), Some(1));
        assert_eq!(t.blocked(K, "k", A, 60_000), None);
        t.count_failure(K, "k", A, 60_000);
        assert_eq!(
            t.blocked(K, "k", A, 60_000),
            None,
            "a new window starts at one"
        );
    }

    /// Failures of (`victim`, `A`) counted before the client is blocked, each attempt made as
    /// the verifier makes it (is it blocked? if not, count the failure), with `churn`
    /// attempts for fresh unknown ids from the same client in between (what an attacker sends
    /// to push the victim's count out of a full throttle); `None`: not blocked after 10.
    fn failures_before_blocked(t: &Throttle, churn: usize) -> Option<usize> {
        let mut fresh = 0u64;
        for failures in 0..=10 {
            if t.blocked(K, "victim", A, 0).is_some() {
                return Some(failures);
            }
            t.count_failure(K, "victim", A, 0);
            for _ in 0..churn {
                fresh += 1;
                let id = format!("{fresh:016x}");
                assert_eq!(t.blocked(IdKind::Unknown, &id, A, 0), None);
                t.count_failure(IdKind::Unknown, &id, A, 0);
            }
        }
        None
    }

    /// With one cache for every id, 1,000 fresh unknown ids between attempts on a throttle of
    /// 1,000 evicted the victim's count each time: never blocked.
    #[test]
    fn churn_through_a_full_throttle_does_not_reset_a_clients_count() {
        for churn in [0, 300, 1_000, 3_000, 10_000] {
            let t = Throttle::new(1_000, 3, 1_000_000, Duration::from_secs(60));
            // Full of other clients' counts from the start.
            for i in 0..1_000u32 {
                t.count_failure(K, &format!("other-{i}"), B, 0);
            }
            assert_eq!(
                failures_before_blocked(&t, churn),
                Some(3),
                "{churn} fresh ids between attempts"
            );
        }
    }

    #[test]
    fn unknown_ids_are_counted_like_known_ones() {
        let t = throttle();
        for kind in [IdKind::Known, IdKind::Unknown] {
            for n in 0..3 {
                assert_eq!(t.blocked(kind, "k", A, 0), None, "{kind:?}, {n} failures");
                t.count_failure(kind, "k", A, 0);
            }
            assert_eq!(t.blocked(kind, "k", A, 1_000), Some(59), "{kind:?}");
        }
    }

    #[test]
    fn a_forgiven_failure_does_not_count() {
        let t = throttle();
        for _ in 0..3 {
            t.count_failure(K, "k", A, 0);
        }
        t.forgive("k", A);
        assert_eq!(t.blocked(K, "k", A, 0), None);
    }

    #[test]
    fn a_success_forgiven_back_to_zero_leaves_no_count_behind() {
        let t = throttle();
        t.count_failure(K, "k", A, 0);
        t.forgive("k", A);
        assert_eq!(t.counts(), (0, 0));
        t.count_failure(K, "k", A, 0);
        t.count_failure(K, "k", B, 0);
        t.forgive("k", A);
        assert_eq!(
            t.counts(),
            (1, 1),
            "B's failure still counts, for B and for the id"
        );
    }
}

//! Write-behind recording of `last_used_at` and of per-key, per-hour request counts.
//!
//! A verification only touches atomics of the cached key (the last-use time, an accepted or a
//! refused count: [`UsageCounters`], inside the key's cache entry) and, the first time since
//! the last flush, queues that entry. A flusher writes
//! every queued key in **one** batched [`KeyStore::touch_last_used`] and **one**
//! [`KeyStore::add_usage`] call per interval (sooner when as many keys are queued as the
//! verifier caches), and once more on shutdown. Counts are added to the
//! stored ones, never overwritten, so several nodes on one database sum correctly. A failed
//! write keeps its batch for the next flush, so nothing is lost; counts are attributed to the
//! UTC hour in which they are flushed (at most one flush interval late). Once an hour the
//! flusher removes counts older than [`USAGE_RETENTION`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::{millis_to_datetime, Clock};
use crate::store::{KeyStore, StoreError, UsageCount};

/// How long hourly counts are kept: 90 days.
pub const USAGE_RETENTION: Duration = Duration::from_secs(90 * 86_400);

const HOUR_MS: i64 = 3_600_000;

/// The last-use time and request counts of one cached key since the last flush, held inline
/// in the key's cache entry (no allocation of their own). An entry replaced in the cache by a
/// fresher one of its key hands its counts over to it ([`UsageRecorder::carry_over`]), so that
/// the key's current entry holds the acceptances a route's refusal may reclassify; the
/// recorder holds the replaced entry until the next flush (its last-use time, and any count
/// that lands on it after the hand-over).
pub(crate) struct UsageCounters {
    last_used_ms: AtomicI64,
    accepted: AtomicU64,
    /// The refused count in the low 63 bits, and [`QUEUED`]: whether the holder waits in the
    /// recorder's queue. One word for both keeps the counters at 24 bytes, and a flush takes
    /// the count and clears the flag in one step.
    refused: AtomicU64,
}

/// [`UsageCounters::refused`]'s flag: queued since the last flush.
const QUEUED: u64 = 1 << 63;

impl UsageCounters {
    pub(crate) fn new() -> Self {
        UsageCounters {
            last_used_ms: AtomicI64::new(i64::MIN),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Moves the last-use time up to `now_ms` (it never moves back). A plain load first:
    /// requests within one millisecond of each other find the time already there and skip
    /// the read-modify-write, the costly part on the hot path.
    ///
    /// A flush that takes the count the caller adds next (a `SeqCst` read-modify-write, which
    /// the flush's `SeqCst` swap synchronizes with) then reads a time no older than `now_ms`:
    /// this `fetch_max` happens before its load, or, when it was skipped, this load does, and
    /// by coherence the flush reads the value this load saw or a later (larger) one.
    #[inline]
    fn mark_used(&self, now_ms: i64) {
        if self.last_used_ms.load(Ordering::Relaxed) < now_ms {
            self.last_used_ms.fetch_max(now_ms, Ordering::Release);
        }
    }
}

/// What holds a key's [`UsageCounters`] (a cache entry): queued, shared, until the next flush.
pub(crate) trait CountedKey: Send + Sync + 'static {
    /// The key's id and counters; `None` when there is no key to count for.
    fn counted(&self) -> Option<(&str, &UsageCounters)>;
}

/// What waits to be written: last-use times by key, counts by (key, hour start in ms).
#[derive(Default)]
struct Pending {
    last_used: HashMap<String, i64>,
    counts: HashMap<(String, i64), (u64, u64)>,
}

impl Pending {
    fn add_use(&mut self, id: &str, at_ms: i64) {
        let e = self.last_used.entry(id.to_owned()).or_insert(at_ms);
        *e = (*e).max(at_ms);
    }

    fn add_counts(&mut self, id: &str, hour_ms: i64, accepted: u64, refused: u64) {
        let e = self
            .counts
            .entry((id.to_owned(), hour_ms))
            .or_insert((0, 0));
        e.0 = e.0.saturating_add(accepted);
        e.1 = e.1.saturating_add(refused);
    }

    fn is_empty(&self) -> bool {
        self.last_used.is_empty() && self.counts.is_empty()
    }
}

/// Pending last-use times and counts, and the batch that failed to flush, if any. `K` is
/// what holds the counters (the verifier's cache entry), queued as it is: one pointer per key.
pub(crate) struct UsageRecorder<K> {
    queue: Mutex<Vec<Arc<K>>>,
    retry: Mutex<Pending>,
    flush_lock: tokio::sync::Mutex<()>,
    /// When old counts were last pruned (ms; 0: never).
    pruned_ms: AtomicI64,
    /// Queue length at which the flusher is asked to flush before its interval: queued
    /// entries stay alive until flushed, evicted or replaced ones included, so this bounds
    /// what the queue holds beyond the cache (under churn, or with a zero revocation window,
    /// where every request reads a new entry).
    early_flush_at: usize,
    /// Woken when the queue reaches [`UsageRecorder::early_flush_at`] (shared with the
    /// flusher, which holds the writer only while it flushes).
    queue_full: Arc<Notify>,
}

impl<K> Default for UsageRecorder<K> {
    fn default() -> Self {
        UsageRecorder::with_early_flush_at(usize::MAX)
    }
}

impl<K> UsageRecorder<K> {
    /// A recorder that asks for an early flush once `n` entries are queued.
    pub(crate) fn with_early_flush_at(n: usize) -> Self {
        UsageRecorder {
            queue: Mutex::default(),
            retry: Mutex::default(),
            flush_lock: tokio::sync::Mutex::default(),
            pruned_ms: AtomicI64::new(0),
            early_flush_at: n.max(1),
            queue_full: Arc::new(Notify::new()),
        }
    }
}

impl<K: CountedKey> UsageRecorder<K> {
    /// Queues the counters' holder the first time they change since the last flush.
    ///
    /// Every access here and in [`UsageRecorder::flush`] to the counters and their [`QUEUED`]
    /// flag is `SeqCst`: a count added after the flush read the counters must see the flag
    /// clear and queue the holder again, or it would wait for an unrelated later use (or be
    /// lost at shutdown). On x86 and ARM a `SeqCst` read-modify-write costs what a relaxed one
    /// does.
    fn enqueue(&self, owner: &Arc<K>, counters: &UsageCounters) {
        if counters.refused.load(Ordering::SeqCst) & QUEUED == 0
            && counters.refused.fetch_or(QUEUED, Ordering::SeqCst) & QUEUED == 0
        {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.push(Arc::clone(owner));
            if queue.len() == self.early_flush_at {
                self.queue_full.notify_one();
            }
        }
    }

    /// Records an accepted request of `owner`'s key at `now_ms`.
    #[inline]
    pub(crate) fn touch(&self, owner: &Arc<K>, now_ms: i64) {
        let Some((_, c)) = owner.counted() else {
            return;
        };
        c.mark_used(now_ms);
        c.accepted.fetch_add(1, Ordering::SeqCst);
        self.enqueue(owner, c);
    }

    /// Records a use of `owner`'s key that its own rate limit refused: `last_used_at` moves,
    /// and the request is counted as refused, never as accepted (no acceptance is counted and
    /// taken back, so no flush or hand-over in between can leave it counted as accepted).
    pub(crate) fn touch_refused(&self, owner: &Arc<K>, now_ms: i64) {
        if let Some((_, c)) = owner.counted() {
            c.mark_used(now_ms);
        }
        self.refuse(owner);
    }

    /// Records a refused request of `owner`'s key (wrong secret, expired, revoked, missing
    /// scope, rate limited). It is not a use: `last_used_at` does not move.
    pub(crate) fn refuse(&self, owner: &Arc<K>) {
        let Some((_, c)) = owner.counted() else {
            return;
        };
        c.refused.fetch_add(1, Ordering::SeqCst);
        self.enqueue(owner, c);
    }

    /// Turns the accepted request just counted for `owner`'s key into a refused one: the
    /// key verified, then the route refused it (a missing scope).
    ///
    /// `owner` is the key's entry that holds the acceptance: the one that counted it, or the
    /// one it was carried over to ([`UsageRecorder::carry_over`]). When `owner` holds no
    /// accepted request (a flush wrote it in between), the request stays counted once, as
    /// accepted: it is never counted as both.
    pub(crate) fn reclassify_as_refused(&self, owner: &Arc<K>) {
        let Some((_, c)) = owner.counted() else {
            return;
        };
        let taken = c
            .accepted
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if taken.is_ok() {
            self.refuse(owner);
        }
    }

    /// Moves the counts of `from` not flushed yet to `to`, the entry of the same key that
    /// replaces it in the cache (a fresher read of the key, or its upgraded hash): a request
    /// admitted through `from` and refused by its route after the replacement is then
    /// reclassified where its acceptance is ([`UsageRecorder::reclassify_as_refused`] is
    /// given the key's current entry). `from` stays queued if it was: its last-use time, and
    /// any count that still lands on it, are written by the next flush. Each count is taken by
    /// one atomic swap, so a flush running meanwhile writes it either from `from` or from `to`,
    /// never from both.
    pub(crate) fn carry_over(&self, from: &Arc<K>, to: &Arc<K>) {
        let (Some((from_id, old)), Some((to_id, new))) = (from.counted(), to.counted()) else {
            return;
        };
        if from_id != to_id || std::ptr::eq(old, new) {
            return;
        }
        // The last-use time goes along with the counts, so a flush that takes them from `to`
        // writes it too (`from` stays queued and writes it as well, at the latest one flush
        // later).
        let t = old.last_used_ms.load(Ordering::Acquire);
        if t != i64::MIN {
            new.mark_used(t);
        }
        let accepted = old.accepted.swap(0, Ordering::SeqCst);
        // The count only: the flag stays, as `from` stays in the queue.
        let refused = old.refused.fetch_and(QUEUED, Ordering::SeqCst) & !QUEUED;
        if accepted == 0 && refused == 0 {
            return;
        }
        new.accepted.fetch_add(accepted, Ordering::SeqCst);
        new.refused.fetch_add(refused, Ordering::SeqCst);
        self.enqueue(to, new);
    }

    /// Number of keys waiting to be written.
    pub(crate) fn pending(&self) -> usize {
        let q = self
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        let retry = self.retry.lock().unwrap_or_else(PoisonError::into_inner);
        q + retry.last_used.len().max(retry.counts.len())
    }

    /// What is waiting to be written: (last-use times, hourly count rows), keys still queued
    /// counted in both.
    fn unwritten(&self) -> (usize, usize) {
        let queued = self
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        let retry = self.retry.lock().unwrap_or_else(PoisonError::into_inner);
        (queued + retry.last_used.len(), queued + retry.counts.len())
    }

    /// Writes every pending last-use time and count (one batched store call each), and prunes
    /// counts older than [`USAGE_RETENTION`] once an hour. On failure the batch is kept and
    /// merged into the next flush. Returns how many last-use times were written.
    pub(crate) async fn flush(
        &self,
        store: &dyn KeyStore,
        timeout: Duration,
        now_ms: i64,
        prune: bool,
    ) -> Result<usize, StoreError> {
        let _one_at_a_time = self.flush_lock.lock().await;
        let slots = std::mem::take(&mut *self.queue.lock().unwrap_or_else(PoisonError::into_inner));
        let mut batch =
            std::mem::take(&mut *self.retry.lock().unwrap_or_else(PoisonError::into_inner));
        let hour_ms = now_ms - now_ms.rem_euclid(HOUR_MS);
        for owner in slots {
            let Some((id, c)) = owner.counted() else {
                continue;
            };
            // Takes the refused count and clears the flag at once, before the accepted count
            // is taken: a count added from here on queues the holder again.
            let refused = c.refused.swap(0, Ordering::SeqCst) & !QUEUED;
            let accepted = c.accepted.swap(0, Ordering::SeqCst);
            let t = c.last_used_ms.load(Ordering::Acquire);
            if t != i64::MIN {
                batch.add_use(id, t);
            }
            if accepted > 0 || refused > 0 {
                batch.add_counts(id, hour_ms, accepted, refused);
            }
        }
        let result = if batch.is_empty() {
            Ok(0)
        } else {
            self.write(store, timeout, batch).await
        };
        if prune {
            self.prune_hourly(store, timeout, now_ms).await;
        }
        result
    }

    async fn write(
        &self,
        store: &dyn KeyStore,
        timeout: Duration,
        batch: Pending,
    ) -> Result<usize, StoreError> {
        let bounded = |r: Result<Result<(), StoreError>, _>| match r {
            Ok(r) => r,
            Err(_) => Err(StoreError::Timeout(timeout)),
        };
        let mut uses: Vec<_> = batch
            .last_used
            .iter()
            .map(|(id, &ms)| (id.clone(), millis_to_datetime(ms)))
            .collect();
        uses.sort_by(|a, b| a.0.cmp(&b.0));
        let mut counts: Vec<UsageCount> = batch
            .counts
            .iter()
            .map(|((id, hour), &(requests, refused))| UsageCount {
                key_id: id.clone(),
                hour: millis_to_datetime(*hour),
                requests,
                refused,
            })
            .collect();
        counts.sort_by(|a, b| (&a.key_id, a.hour).cmp(&(&b.key_id, b.hour)));
        let n = uses.len();
        let touched = if uses.is_empty() {
            Ok(())
        } else {
            bounded(tokio::time::timeout(timeout, store.touch_last_used(&uses)).await)
        };
        let counted = if counts.is_empty() {
            Ok(())
        } else {
            bounded(tokio::time::timeout(timeout, store.add_usage(&counts)).await)
        };
        let mut retry = self.retry.lock().unwrap_or_else(PoisonError::into_inner);
        if touched.is_ok() {
            metrics::counter!("keygate_last_used_flushed_total").increment(n as u64);
        } else {
            for (id, ms) in &batch.last_used {
                retry.add_use(id, *ms);
            }
        }
        if counted.is_ok() {
            metrics::counter!("keygate_usage_rows_flushed_total").increment(counts.len() as u64);
        } else {
            // Retried whole: a write that failed after it committed is counted twice, which
            // errs toward showing traffic rather than hiding it.
            for ((id, hour), (a, r)) in batch.counts {
                retry.add_counts(&id, hour, a, r);
            }
        }
        drop(retry);
        match (touched, counted) {
            (Ok(()), Ok(())) => Ok(n),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, keys = n, "keygate: last-used/usage flush failed; will retry");
                Err(e)
            }
        }
    }

    /// Removes counts older than [`USAGE_RETENTION`], at most once an hour.
    async fn prune_hourly(&self, store: &dyn KeyStore, timeout: Duration, now_ms: i64) {
        let last = self.pruned_ms.load(Ordering::Relaxed);
        if last != 0 && now_ms.saturating_sub(last) < HOUR_MS {
            return;
        }
        self.pruned_ms.store(now_ms, Ordering::Relaxed);
        let retention = i64::try_from(USAGE_RETENTION.as_millis()).unwrap_or(i64::MAX);
        let before = millis_to_datetime(now_ms.saturating_sub(retention));
        match tokio::time::timeout(timeout, store.prune_usage(before)).await {
            Ok(Ok(n)) if n > 0 => tracing::debug!(rows = n, "keygate: pruned old usage counts"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "keygate: pruning usage counts failed"),
            Err(_) => tracing::warn!("keygate: pruning usage counts timed out"),
        }
    }
}

/// A verifier's usage: the recorder its verifications count in, and what writes it behind
/// (the store, the clock that stamps the hour, the store timeout, the background flusher).
pub(crate) struct UsageWriter<K> {
    pub(crate) recorder: UsageRecorder<K>,
    store: Arc<dyn KeyStore>,
    clock: Arc<dyn Clock>,
    timeout: Duration,
    stop: Arc<Notify>,
}

impl<K: CountedKey> UsageWriter<K> {
    /// A writer whose flusher also flushes as soon as `early_flush_at` keys are queued (the
    /// verifier passes its key capacity).
    pub(crate) fn new(
        store: Arc<dyn KeyStore>,
        clock: Arc<dyn Clock>,
        timeout: Duration,
        early_flush_at: usize,
    ) -> Self {
        UsageWriter {
            recorder: UsageRecorder::with_early_flush_at(early_flush_at),
            store,
            clock,
            timeout,
            stop: Arc::new(Notify::new()),
        }
    }

    /// Writes everything pending now (see [`UsageRecorder::flush`]).
    pub(crate) async fn flush(&self) -> Result<usize, StoreError> {
        self.recorder
            .flush(
                self.store.as_ref(),
                self.timeout,
                self.clock.now_millis(),
                true,
            )
            .await
    }

    /// The last flush, at shutdown: retried with backoff (100 ms doubling to 2 s) while the
    /// store fails, until `deadline` has passed; then what could not be written is reported.
    /// No pruning, and no attempt starts after the deadline: shutdown takes at most the
    /// deadline plus one attempt (two store calls, each bounded by the store timeout).
    pub(crate) async fn final_flush(&self, deadline: Duration) -> Result<usize, StoreError> {
        let until = tokio::time::Instant::now() + deadline;
        let mut pause = Duration::from_millis(100);
        loop {
            let attempt = self.recorder.flush(
                self.store.as_ref(),
                self.timeout,
                self.clock.now_millis(),
                false,
            );
            let error = match attempt.await {
                Ok(written) => return Ok(written),
                Err(e) => e,
            };
            let now = tokio::time::Instant::now();
            if now >= until {
                let (last_used, usage_rows) = self.recorder.unwritten();
                tracing::error!(
                    last_used,
                    usage_rows,
                    error = %error,
                    "keygate: last-used times and usage counts not written at shutdown: the store kept failing past the deadline"
                );
                return Err(error);
            }
            tokio::time::sleep(pause.min(until - now)).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// Stops the background flusher (the caller flushes once more itself).
    pub(crate) fn stop(&self) {
        self.stop.notify_waiters();
        self.stop.notify_one();
    }

    /// Starts the background flusher, every `every` (at least 10 ms) and whenever the queue
    /// reaches its early-flush length, when a tokio runtime is running; it ends on
    /// [`UsageWriter::stop`] or once the writer is dropped.
    pub(crate) fn spawn_flusher(self: &Arc<Self>, every: Duration) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::debug!(
                "keygate: no tokio runtime at build time; call flush_last_used() yourself"
            );
            return;
        };
        let weak: Weak<Self> = Arc::downgrade(self);
        let stop = Arc::clone(&self.stop);
        let queue_full = Arc::clone(&self.recorder.queue_full);
        let every = every.max(Duration::from_millis(10));
        handle.spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = queue_full.notified() => {}
                    _ = stop.notified() => break,
                }
                let Some(writer) = weak.upgrade() else { break };
                // Errors are logged by the recorder and the batch retried next tick.
                let _ = writer.flush().await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache entry's stand-in: an id and its counters.
    struct Holder(&'static str, UsageCounters);

    impl CountedKey for Holder {
        fn counted(&self) -> Option<(&str, &UsageCounters)> {
            Some((self.0, &self.1))
        }
    }

    #[test]
    fn counts_carried_over_to_a_replacing_entry_bring_their_last_use_time() {
        let recorder = UsageRecorder::<Holder>::with_early_flush_at(100);
        let old = Arc::new(Holder("k", UsageCounters::new()));
        let new = Arc::new(Holder("k", UsageCounters::new()));
        recorder.touch(&old, 1_000);
        recorder.carry_over(&old, &new);
        assert_eq!(new.1.accepted.load(Ordering::SeqCst), 1);
        assert_eq!(old.1.accepted.load(Ordering::SeqCst), 0);
        assert_eq!(new.1.last_used_ms.load(Ordering::SeqCst), 1_000);
        // A later use of the new entry moves the time on; an earlier one never moves it back.
        recorder.touch(&new, 2_000);
        recorder.touch(&new, 1_500);
        assert_eq!(new.1.last_used_ms.load(Ordering::SeqCst), 2_000);
    }
}

//! Single flight: concurrent callers for one key share one run of an async computation.
//!
//! The verifier's cache is synchronous (`quick_cache::sync`) so that a cached verification
//! never awaits; coalescing its misses — one store read per id, one argon2 run per token and
//! stored hash, however many requests arrive together — is done here.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::OnceCell;

/// Runs in flight, by key.
pub(crate) struct Flights<K, V> {
    inflight: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K: Hash + Eq + Clone, V: Clone> Flights<K, V> {
    pub(crate) fn new() -> Self {
        Flights {
            inflight: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<K, Arc<OnceCell<V>>>> {
        self.inflight.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `work`'s result for `key`, or the result of the run for `key` already in flight. When
    /// the caller running `work` is cancelled, a waiting caller runs its own `work` instead.
    pub(crate) async fn run<F: Future<Output = V>>(&self, key: &K, work: F) -> V {
        let cell = Arc::clone(
            self.map()
                .entry(key.clone())
                .or_insert_with(|| Arc::new(OnceCell::new())),
        );
        let leave = Leave {
            flights: self,
            key,
            cell: Some(cell),
        };
        match &leave.cell {
            Some(cell) => cell.get_or_init(|| work).await.clone(),
            None => work.await,
        }
    }

    /// Number of keys in flight (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map().len()
    }
}

/// Takes a finished (or abandoned) run out of the map, on completion and on cancellation.
///
/// Every caller's reference to the run is taken and released under the map's lock, so the
/// reference count seen there is exact: the last caller to leave an unfinished run removes it,
/// whatever order concurrent cancellations happen in.
struct Leave<'a, K: Hash + Eq + Clone, V: Clone> {
    flights: &'a Flights<K, V>,
    key: &'a K,
    cell: Option<Arc<OnceCell<V>>>,
}

impl<K: Hash + Eq + Clone, V: Clone> Drop for Leave<'_, K, V> {
    fn drop(&mut self) {
        let mut map = self.flights.map();
        let Some(mine) = self.cell.take() else { return };
        let ours = map.get(self.key).is_some_and(|c| Arc::ptr_eq(c, &mine));
        drop(mine);
        // Only our own run, and only once it is done or nobody else holds it (the map's
        // reference is the only one left).
        if ours
            && map
                .get(self.key)
                .is_some_and(|c| c.initialized() || Arc::strong_count(c) == 1)
        {
            map.remove(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Callers holding the run of `key` (the map's own reference not counted).
    fn callers(flights: &Flights<u32, u32>, key: u32) -> usize {
        flights
            .map()
            .get(&key)
            .map_or(0, |cell| Arc::strong_count(cell) - 1)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_run() {
        let flights = Arc::new(Flights::<u32, u32>::new());
        let runs = Arc::new(AtomicUsize::new(0));
        // The run cannot finish before every caller has joined it: no sleep standing in for
        // "long enough for the others to arrive".
        let finish = Arc::new(tokio::sync::Notify::new());
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let (flights, runs, finish) =
                (Arc::clone(&flights), Arc::clone(&runs), Arc::clone(&finish));
            tasks.push(tokio::spawn(async move {
                flights
                    .run(&7, async {
                        runs.fetch_add(1, Ordering::SeqCst);
                        finish.notified().await;
                        42
                    })
                    .await
            }));
        }
        // Bounded: a broken single flight (callers never meeting in one run) fails here
        // instead of hanging.
        tokio::time::timeout(Duration::from_secs(30), async {
            while callers(&flights, 7) < 100 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("100 callers in one run");
        assert_eq!(runs.load(Ordering::SeqCst), 1, "one caller runs the work");
        finish.notify_one();
        for t in tasks {
            assert_eq!(t.await.unwrap(), 42);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(flights.len(), 0, "a finished run leaves the map");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_run_leaves_nothing_behind_and_the_next_caller_runs_again() {
        let flights = Flights::<u32, u32>::new();
        let slow = flights.run(&1, async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            1
        });
        assert!(tokio::time::timeout(Duration::from_secs(1), slow)
            .await
            .is_err());
        assert_eq!(flights.len(), 0, "an abandoned run leaves the map");
        assert_eq!(flights.run(&1, async { 2 }).await, 2);
    }

    /// A leader and its waiters all cancelled at once, on different threads: whoever leaves
    /// last removes the run, so nothing stays behind.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_cancelled_together_leave_nothing_behind() {
        let flights = Arc::new(Flights::<u32, u32>::new());
        for round in 0..200u32 {
            let mut tasks = Vec::new();
            for _ in 0..4 {
                let flights = Arc::clone(&flights);
                tasks.push(tokio::spawn(async move {
                    flights
                        .run(&round, async {
                            // Never finishes: every caller leaves by being aborted.
                            std::future::pending::<()>().await;
                            0
                        })
                        .await
                }));
            }
            tokio::task::yield_now().await;
            for t in &tasks {
                t.abort();
            }
            for t in tasks {
                let _ = t.await;
            }
        }
        assert_eq!(flights.len(), 0, "abandoned runs left the map");
    }
}

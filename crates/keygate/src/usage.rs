//! Write-behind recording of `last_used_at`.
//!
//! A verification only stores a timestamp in an atomic of the cached record (and, the first time
//! since the last flush, queues that record). A flusher writes all queued times in **one**
//! batched [`KeyStore::touch_last_used`] call per interval, and once more on shutdown. A failed
//! flush keeps its batch for the next one, so nothing is lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::clock::millis_to_datetime;
use crate::principal::Principal;
use crate::store::{KeyStore, StoreError};

/// The last-use slot of one cached key. It names its key through the cached principal
/// (shared, not copied: this slot exists once per cached key).
pub(crate) struct UsageSlot {
    principal: Arc<Principal>,
    last_used_ms: AtomicI64,
    queued: AtomicBool,
}

impl UsageSlot {
    pub(crate) fn new(principal: Arc<Principal>) -> Arc<Self> {
        Arc::new(UsageSlot {
            principal,
            last_used_ms: AtomicI64::new(i64::MIN),
            queued: AtomicBool::new(false),
        })
    }
}

/// Pending last-use times and the batch that failed to flush, if any.
#[derive(Default)]
pub(crate) struct UsageRecorder {
    queue: Mutex<Vec<Arc<UsageSlot>>>,
    retry: Mutex<HashMap<String, i64>>,
    flush_lock: tokio::sync::Mutex<()>,
}

impl UsageRecorder {
    /// Records a use of the slot's key at `now_ms`: an atomic max, plus a queue push the first
    /// time since the last flush.
    pub(crate) fn touch(&self, slot: &Arc<UsageSlot>, now_ms: i64) {
        slot.last_used_ms.fetch_max(now_ms, Ordering::Relaxed);
        if !slot.queued.load(Ordering::Relaxed) && !slot.queued.swap(true, Ordering::AcqRel) {
            self.queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Arc::clone(slot));
        }
    }

    /// Number of keys waiting to be written.
    pub(crate) fn pending(&self) -> usize {
        let q = self
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        q + self
            .retry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Writes every pending time in one batched store call. On failure the batch is kept and
    /// merged into the next flush.
    pub(crate) async fn flush(
        &self,
        store: &dyn KeyStore,
        timeout: Duration,
    ) -> Result<usize, StoreError> {
        let _one_at_a_time = self.flush_lock.lock().await;
        let slots = std::mem::take(&mut *self.queue.lock().unwrap_or_else(PoisonError::into_inner));
        let mut batch =
            std::mem::take(&mut *self.retry.lock().unwrap_or_else(PoisonError::into_inner));
        for slot in slots {
            slot.queued.store(false, Ordering::Release);
            let t = slot.last_used_ms.load(Ordering::Relaxed);
            let e = batch.entry(slot.principal.id.clone()).or_insert(t);
            *e = (*e).max(t);
        }
        if batch.is_empty() {
            return Ok(0);
        }
        let mut uses: Vec<_> = batch
            .iter()
            .map(|(id, &ms)| (id.clone(), millis_to_datetime(ms)))
            .collect();
        uses.sort_by(|a, b| a.0.cmp(&b.0));
        let n = uses.len();
        let result = match tokio::time::timeout(timeout, store.touch_last_used(&uses)).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Timeout(timeout)),
        };
        match result {
            Ok(()) => {
                metrics::counter!("keygate_last_used_flushed_total").increment(n as u64);
                Ok(n)
            }
            Err(e) => {
                let mut retry = self.retry.lock().unwrap_or_else(PoisonError::into_inner);
                for (id, ms) in batch {
                    let r = retry.entry(id).or_insert(ms);
                    *r = (*r).max(ms);
                }
                tracing::warn!(error = %e, keys = n, "keygate: last-used flush failed; will retry");
                Err(e)
            }
        }
    }
}

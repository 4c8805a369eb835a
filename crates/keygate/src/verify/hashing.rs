//! [`HashSlots`]: argon2 off the async runtime, a bounded number at once, with a bounded wait.
//!
//! Every argon2 computation of a process — checking a presented secret, upgrading a stored
//! hash, hashing a new key — takes one slot. Waiting for a slot has a deadline: past it the
//! caller answers 503 `verifier_busy` instead of queueing without limit.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// No hashing slot became free within the queue deadline.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no hashing slot within the queue deadline")]
pub(crate) struct Busy;

/// The blocking task running a hash panicked or was cancelled.
#[derive(Debug, Clone, thiserror::Error)]
#[error("hash task failed: {0}")]
pub(crate) struct TaskFailed(pub(crate) String);

/// The hashing slots shared by a verifier and the key managers built from it.
#[derive(Clone)]
pub(crate) struct HashSlots {
    permits: Arc<Semaphore>,
    queue_timeout: Duration,
}

/// A held hashing slot.
pub(crate) struct HashSlot {
    _permit: OwnedSemaphorePermit,
}

impl HashSlots {
    /// `concurrency` computations at once (at least one); callers wait at most `queue_timeout`.
    pub(crate) fn new(concurrency: usize, queue_timeout: Duration) -> Self {
        HashSlots {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            queue_timeout,
        }
    }

    /// The default for a key manager without a verifier: one slot per CPU, 2 s deadline.
    pub(crate) fn per_cpu() -> Self {
        Self::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()),
            Duration::from_secs(2),
        )
    }

    /// A slot, waiting at most the queue deadline. Outside a tokio runtime (no timer to
    /// bound the wait) only a slot free at once is taken.
    pub(crate) async fn acquire(&self) -> Result<HashSlot, Busy> {
        if tokio::runtime::Handle::try_current().is_err() {
            return self.try_acquire().ok_or(Busy);
        }
        match tokio::time::timeout(
            self.queue_timeout,
            Arc::clone(&self.permits).acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => Ok(HashSlot { _permit: permit }),
            // The semaphore is never closed; answer busy rather than panic if it were.
            Ok(Err(_)) | Err(_) => Err(Busy),
        }
    }

    /// A slot if one is free now (background work, which must never queue ahead of requests:
    /// upgrading stored hashes).
    pub(crate) fn try_acquire(&self) -> Option<HashSlot> {
        Arc::clone(&self.permits)
            .try_acquire_owned()
            .ok()
            .map(|permit| HashSlot { _permit: permit })
    }
}

impl HashSlot {
    /// Runs `work` on the blocking pool, holding the slot until it is done (also when the
    /// caller stops waiting). Without a tokio runtime it runs in place.
    pub(crate) async fn run<T, F>(self, work: F) -> Result<T, TaskFailed>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle
                .spawn_blocking(move || {
                    let _slot = self;
                    work()
                })
                .await
                .map_err(|e| TaskFailed(e.to_string())),
            Err(_) => Ok(work()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_answers_busy_after_the_deadline() {
        let slots = HashSlots::new(1, Duration::from_millis(500));
        let held = slots.acquire().await.unwrap();
        assert!(matches!(slots.acquire().await, Err(Busy)));
        drop(held);
        assert!(slots.acquire().await.is_ok());
    }

    #[test]
    fn without_a_runtime_a_free_slot_is_taken_and_the_work_runs_in_place() {
        use std::future::Future;
        use std::task::{Context, Poll, Waker};
        let slots = HashSlots::new(1, Duration::from_secs(2));
        let mut cx = Context::from_waker(Waker::noop());
        let mut acquire = std::pin::pin!(slots.acquire());
        let Poll::Ready(Ok(slot)) = acquire.as_mut().poll(&mut cx) else {
            panic!("a free slot is taken at once, without a timer");
        };
        let mut second = std::pin::pin!(slots.acquire());
        assert!(
            matches!(second.as_mut().poll(&mut cx), Poll::Ready(Err(Busy))),
            "none free: busy at once, no panic for want of a timer"
        );
        let mut run = std::pin::pin!(slot.run(|| 41 + 1));
        assert!(matches!(run.as_mut().poll(&mut cx), Poll::Ready(Ok(42))));
    }

    #[tokio::test]
    async fn a_slot_is_held_while_its_work_runs() {
        let slots = HashSlots::new(1, Duration::from_secs(2));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let slot = slots.acquire().await.unwrap();
        let running = tokio::spawn(slot.run(move || {
            let _ = started_tx.send(());
            rx.recv().is_ok()
        }));
        started_rx.await.unwrap();
        assert_eq!(
            slots.permits.available_permits(),
            0,
            "held while the work runs"
        );
        tx.send(()).unwrap();
        assert!(running.await.unwrap().unwrap());
        assert_eq!(slots.permits.available_permits(), 1, "given back when done");
    }
}

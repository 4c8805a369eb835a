//! [`Invalidator`]: the handle through which stores and the key manager drop a verifier's
//! cached state for a key, so that changes bite at once instead of after the revocation window.

use std::sync::Weak;

/// The part of a verifier that invalidation reaches into.
pub(crate) trait InvalidationTarget: Send + Sync {
    fn invalidate(&self, id: &str);
    fn invalidate_all(&self);
}

/// A handle that drops cached state of a verifier: given to stores that push changes made by
/// other processes (see [`KeyStore::subscribe`](crate::KeyStore::subscribe)) and to the
/// [`KeyManager`](crate::KeyManager) so local lifecycle changes bite at once.
///
/// It holds the verifier weakly: once the verifier is dropped, calls do nothing and
/// [`Invalidator::is_alive`] turns false (listener tasks should then stop).
#[derive(Clone)]
pub struct Invalidator {
    target: Weak<dyn InvalidationTarget>,
}

impl Invalidator {
    pub(crate) fn new(target: Weak<dyn InvalidationTarget>) -> Self {
        Invalidator { target }
    }

    /// An invalidator connected to nothing (for a manager without a verifier).
    pub fn detached() -> Self {
        struct Nothing;
        impl InvalidationTarget for Nothing {
            fn invalidate(&self, _: &str) {}
            fn invalidate_all(&self) {}
        }
        let w: Weak<Nothing> = Weak::new();
        Invalidator { target: w }
    }

    /// Marks what is cached about key `id` stale; its next use reads the store (a token
    /// verified against an unchanged stored hash stays verified).
    pub fn invalidate(&self, id: &str) {
        if let Some(t) = self.target.upgrade() {
            t.invalidate(id);
        }
    }

    /// Marks every cached key stale (e.g. after a notification listener reconnects, since
    /// notifications may have been missed).
    pub fn invalidate_all(&self) {
        if let Some(t) = self.target.upgrade() {
            t.invalidate_all();
        }
    }

    /// Whether the verifier behind this handle still exists.
    pub fn is_alive(&self) -> bool {
        self.target.strong_count() > 0
    }
}

impl std::fmt::Debug for Invalidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invalidator")
            .field("alive", &self.is_alive())
            .finish()
    }
}

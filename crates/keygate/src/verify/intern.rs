//! [`Interner`]: one shared allocation per distinct organization, environment and scope set
//! among the cached keys (1M keys of a few organizations hold a few strings, not 1M copies).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use crate::principal::Label;
use crate::scope::{Scope, ScopeSet};

/// Most distinct values kept per kind; beyond it values are used as they come (correct, just
/// not shared), so hostile or unusual data cannot grow the interner without bound.
const MAX_INTERNED: usize = 10_000;

/// The shared values, by kind.
#[derive(Default)]
pub(crate) struct Interner {
    labels: Mutex<HashSet<Arc<str>>>,
    scopes: Mutex<HashSet<Arc<str>>>,
    sets: Mutex<HashSet<ScopeSet>>,
}

/// A value the interner can tell is held by nobody else (its last reference is the
/// interner's own).
trait Shared {
    fn held_elsewhere(&self) -> bool;
}

impl Shared for Arc<str> {
    fn held_elsewhere(&self) -> bool {
        Arc::strong_count(self) > 1
    }
}

impl Shared for ScopeSet {
    fn held_elsewhere(&self) -> bool {
        self.is_shared()
    }
}

fn intern_in<T: Clone + Eq + std::hash::Hash + Shared>(set: &Mutex<HashSet<T>>, value: T) -> T {
    let mut set = set.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(shared) = set.get(&value) {
        return shared.clone();
    }
    if set.len() >= MAX_INTERNED {
        // Full: forget what no cached key uses any more (deleted keys, evicted orgs).
        set.retain(Shared::held_elsewhere);
    }
    if set.len() < MAX_INTERNED {
        set.insert(value.clone());
    }
    value
}

impl Interner {
    /// The shared label equal to `s`.
    pub(crate) fn label(&self, s: String) -> Label {
        Label::from_shared(intern_in(&self.labels, Arc::from(s)))
    }

    /// The shared set equal to `set`, its scopes shared too.
    pub(crate) fn scopes(&self, set: &ScopeSet) -> ScopeSet {
        let shared = set.map_scopes(|s| {
            let text = intern_in(&self.scopes, Arc::<str>::from(s.as_str()));
            Scope::from_shared(text)
        });
        intern_in(&self.sets, shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_one_allocation() {
        let i = Interner::default();
        let (a, b) = (i.label("acme".into()), i.label("acme".into()));
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
        let set = ScopeSet::parse(["b:w", "a:r"]).unwrap();
        let (x, y) = (i.scopes(&set), i.scopes(&set.clone()));
        assert_eq!(x, set);
        assert!(std::ptr::eq(
            x.iter().next().unwrap().as_str(),
            y.iter().next().unwrap().as_str()
        ));
    }

    #[test]
    fn past_the_bound_values_are_used_unshared_and_unused_ones_are_forgotten() {
        let i = Interner::default();
        let held: Vec<Label> = (0..MAX_INTERNED)
            .map(|n| i.label(format!("org-{n}")))
            .collect();
        let extra = i.label("one more".into());
        assert_eq!(extra, "one more", "used, unshared");
        assert_eq!(i.labels.lock().unwrap().len(), MAX_INTERNED);
        drop(held);
        let after = i.label("after".into());
        assert_eq!(after, "after");
        assert_eq!(
            i.labels.lock().unwrap().len(),
            1,
            "values no key holds any more were forgotten"
        );
    }
}

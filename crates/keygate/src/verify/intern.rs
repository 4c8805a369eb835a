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

fn intern_in<T: Clone + Eq + std::hash::Hash>(set: &Mutex<HashSet<T>>, value: T) -> T {
    let mut set = set.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(shared) = set.get(&value) {
        return shared.clone();
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
    fn past_the_bound_values_are_used_unshared() {
        let i = Interner::default();
        for n in 0..MAX_INTERNED + 5 {
            assert_eq!(i.label(format!("org-{n}")), format!("org-{n}"));
        }
        assert_eq!(i.labels.lock().unwrap().len(), MAX_INTERNED);
    }
}

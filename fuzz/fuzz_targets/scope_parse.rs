//! `Scope::new` / `ScopeSet::parse` (the CLI's `--scope` values) on arbitrary strings.
//!
//! Invariants: never panics; an accepted scope is 1–64 bytes of `[a-z0-9_-]` segments joined by
//! `:` or `.`, round-trips through `Display`, `FromStr` and serde; a set parses iff every item
//! does, is sorted and deduplicated, and round-trips through its space-separated `Display` and
//! through JSON; requirements built from the items are satisfied by the set itself.
#![no_main]

use keygate::{validate_scope, MAX_SCOPE_LEN};
use keygate::{Scope, ScopeRequirement, ScopeSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    // Items are separated by NUL (which no scope may contain), like repeated `--scope` flags.
    let items: Vec<&str> = s.split('\0').collect();

    let mut all_ok = true;
    for item in &items {
        match Scope::new(item) {
            Ok(scope) => check_scope(item, &scope),
            Err(e) => {
                all_ok = false;
                assert!(validate_scope(item).is_err());
                assert!(e.to_string().contains("invalid scope"));
            }
        }
    }

    match ScopeSet::parse(&items) {
        Ok(set) => {
            assert!(all_ok, "set accepted an invalid item");
            let strings = set.to_strings();
            let mut sorted = strings.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(strings, sorted, "set is not sorted and deduplicated");
            for item in &items {
                assert!(set.contains(item), "set lost {item:?}");
            }
            let shown = set.to_string();
            let back = if shown.is_empty() {
                ScopeSet::new()
            } else {
                ScopeSet::parse(shown.split(' ')).expect("Display of a set must parse")
            };
            assert_eq!(back, set, "Display round trip");
            let json = serde_json::to_string(&set).expect("serialize");
            let from_json: ScopeSet = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(from_json, set, "JSON round trip");

            let all = ScopeRequirement::try_all_of(&items).expect("items are valid");
            assert!(
                all.check(&set).is_ok(),
                "a set must satisfy all-of its own items"
            );
            let any = ScopeRequirement::try_any_of(&items).expect("items are valid");
            assert!(any.is_satisfied_by(&set));
            assert!(all.check(&ScopeSet::new()).is_err() || items.is_empty());
        }
        Err(_) => assert!(!all_ok, "set refused valid items"),
    }
});

fn check_scope(input: &str, scope: &Scope) {
    assert!(!input.is_empty() && input.len() <= MAX_SCOPE_LEN);
    assert!(input
        .bytes()
        .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b':' | b'.')));
    assert!(!input.starts_with([':', '.']) && !input.ends_with([':', '.']));
    assert!(
        !input.contains("::")
            && !input.contains("..")
            && !input.contains(":.")
            && !input.contains(".:")
    );
    let shown = scope.to_string();
    assert_eq!(shown, input, "Display round trip");
    assert_eq!(scope.as_str(), input);
    let again: Scope = shown.parse().expect("Display output must parse");
    assert_eq!(&again, scope);
    let json = serde_json::to_string(scope).expect("serialize");
    let back: Scope = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(&back, scope);
}

//! Property tests that run in CI: the invariants the fuzz targets in `fuzz/` check, on
//! generated input shaped to reach the accepting paths (the fuzzers explore the rest).

use std::time::Duration;

use keygate::duration::{parse_duration, MAX_DURATION};
use keygate::extract::{credential_from_headers, extract_credential, API_KEY_HEADER};
use keygate::token::{self, is_valid_prefix, CHECKSUM_LEN, ID_LEN, MAX_TOKEN_LEN, SECRET_LEN};
use keygate::MAX_SCOPE_LEN;
use keygate::{Scope, ScopeRequirement, ScopeSet};
use proptest::prelude::*;

/// Bodies that are often, but not always, of the right shape.
fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        ("[a-z][a-z0-9_]{0,31}", "[0-9a-f]{16}", "[0-9A-Za-z]{40}")
            .prop_map(|(p, id, s)| format!("{p}_{id}.{s}")),
        (
            "[a-zA-Z0-9_]{0,40}",
            "[0-9a-fA-F_]{14,18}",
            "[0-9A-Za-z.]{38,42}"
        )
            .prop_map(|(p, id, s)| format!("{p}_{id}.{s}")),
        "\\PC{0,140}",
    ]
}

fn assert_accepted_token_invariants(input: &str) -> Result<(), TestCaseError> {
    let Ok(p) = token::parse(input) else {
        return Ok(());
    };
    prop_assert_eq!(p.token(), input);
    prop_assert!(input.len() <= MAX_TOKEN_LEN);
    prop_assert!(input.bytes().all(|c| c.is_ascii_graphic()));
    prop_assert!(is_valid_prefix(p.prefix()));
    prop_assert_eq!(p.id().len(), ID_LEN);
    prop_assert!(p
        .id()
        .bytes()
        .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
    prop_assert_eq!(
        input.len(),
        p.prefix().len() + 2 + ID_LEN + SECRET_LEN + CHECKSUM_LEN
    );
    let again = token::with_checksum(&input[..input.len() - CHECKSUM_LEN]);
    prop_assert_eq!(&again, input);
    prop_assert_eq!(token::parse(&again), Ok(p));
    Ok(())
}

fn header_values() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..140),
            "[ \t]{0,2}(Bearer|bearer|Basic)?[ \t]{0,2}[!-~]{0,130}[ \t]{0,2}"
                .prop_map(String::into_bytes),
        ],
        0..3,
    )
}

fn scope_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_-]{1,12}([:.][a-z0-9_-]{1,12}){0,3}",
        "[a-zA-Z0-9_:. -]{0,70}",
    ]
}

proptest! {
    #[test]
    fn an_accepted_token_is_short_printable_well_formed_and_self_checksummed(b in body()) {
        assert_accepted_token_invariants(&b)?;
        assert_accepted_token_invariants(&token::with_checksum(&b))?;
    }

    #[test]
    fn a_well_shaped_body_with_its_checksum_is_always_accepted(
        prefix in "[a-z]([a-z0-9_]{0,30}[a-z0-9])?",
        id in "[0-9a-f]{16}",
        secret in "[0-9A-Za-z]{40}",
    ) {
        let t = token::with_checksum(&format!("{prefix}_{id}.{secret}"));
        let p = token::parse(&t).unwrap();
        prop_assert_eq!((p.prefix(), p.id()), (prefix.as_str(), id.as_str()));
    }

    #[test]
    fn an_extracted_credential_is_a_printable_slice_of_a_presented_value(
        api_keys in header_values(),
        authorizations in header_values(),
    ) {
        let result = extract_credential(
            api_keys.iter().map(Vec::as_slice),
            authorizations.iter().map(Vec::as_slice),
        );
        if let Ok(t) = result {
            prop_assert!(!t.is_empty() && t.len() <= MAX_TOKEN_LEN);
            prop_assert!(t.bytes().all(|c| c.is_ascii_graphic()));
            let source = if api_keys.len() == 1 { &api_keys } else { &authorizations };
            prop_assert!(source
                .iter()
                .any(|v| v.windows(t.len()).any(|w| w == t.as_bytes())));
        }
        if api_keys.len() > 1 || (api_keys.is_empty() && authorizations.len() > 1) {
            prop_assert!(result.is_err());
        }
    }

    #[test]
    fn the_header_map_front_end_agrees_with_the_byte_level_extraction(
        api_keys in header_values(),
        authorizations in header_values(),
    ) {
        let mut map = http::HeaderMap::new();
        for v in &api_keys {
            let Ok(v) = http::HeaderValue::from_bytes(v) else { return Ok(()) };
            map.append(API_KEY_HEADER, v);
        }
        for v in &authorizations {
            let Ok(v) = http::HeaderValue::from_bytes(v) else { return Ok(()) };
            map.append(http::header::AUTHORIZATION, v);
        }
        prop_assert_eq!(
            credential_from_headers(&map),
            extract_credential(
                api_keys.iter().map(Vec::as_slice),
                authorizations.iter().map(Vec::as_slice),
            )
        );
    }

    #[test]
    fn an_accepted_duration_is_exactly_number_times_unit_and_at_most_the_maximum(
        s in prop_oneof![
            "[ ]?[0-9]{1,13}(ms|s|m|h|d|w|x|)[ ]?",
            "\\PC{0,20}",
        ]
    ) {
        if let Ok(d) = parse_duration(&s) {
            prop_assert!(d <= MAX_DURATION);
            let t = s.trim();
            let split = t.find(|c: char| !c.is_ascii_digit()).unwrap();
            let n: u128 = t[..split].parse().unwrap();
            let unit: u128 = match &t[split..] {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                "w" => 604_800_000,
                other => return Err(TestCaseError::fail(format!("accepted unit {other:?}"))),
            };
            prop_assert_eq!(d.as_millis(), n * unit);
        }
    }

    #[test]
    fn whole_days_up_to_the_maximum_are_accepted(days in 0u64..=36_500) {
        prop_assert_eq!(
            parse_duration(&format!("{days}d")),
            Ok(Duration::from_secs(days * 86_400))
        );
    }

    #[test]
    fn an_accepted_scope_round_trips_through_display_fromstr_and_json(s in scope_like()) {
        match Scope::new(&s) {
            Ok(scope) => {
                prop_assert!(!s.is_empty() && s.len() <= MAX_SCOPE_LEN);
                prop_assert_eq!(scope.to_string(), s.clone());
                prop_assert_eq!(scope.to_string().parse::<Scope>().unwrap(), scope.clone());
                let json = serde_json::to_string(&scope).unwrap();
                prop_assert_eq!(serde_json::from_str::<Scope>(&json).unwrap(), scope);
            }
            Err(e) => prop_assert!(e.to_string().contains("invalid scope")),
        }
    }

    #[test]
    fn a_scope_set_parses_iff_every_item_does_and_round_trips(
        items in proptest::collection::vec(scope_like(), 0..6)
    ) {
        let all_valid = items.iter().all(|s| Scope::new(s).is_ok());
        match ScopeSet::parse(&items) {
            Ok(set) => {
                prop_assert!(all_valid);
                let strings = set.to_strings();
                let mut sorted = strings.clone();
                sorted.sort();
                sorted.dedup();
                prop_assert_eq!(&strings, &sorted);
                prop_assert!(items.iter().all(|s| set.contains(s)));
                let shown = set.to_string();
                let back = if shown.is_empty() {
                    ScopeSet::new()
                } else {
                    ScopeSet::parse(shown.split(' ')).unwrap()
                };
                prop_assert_eq!(&back, &set);
                let json = serde_json::to_string(&set).unwrap();
                prop_assert_eq!(&serde_json::from_str::<ScopeSet>(&json).unwrap(), &set);
                // A requirement names at least one scope (an empty one is refused).
                match ScopeRequirement::try_all_of(&items) {
                    Ok(required) => prop_assert!(required.check(&set).is_ok()),
                    Err(_) => prop_assert!(items.is_empty()),
                }
            }
            Err(_) => prop_assert!(!all_valid),
        }
    }
}

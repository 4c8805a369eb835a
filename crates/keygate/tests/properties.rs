//! Property tests that run in CI: the invariants the fuzz targets in `fuzz/` check, on
//! generated input shaped to reach the accepting paths (the fuzzers explore the rest).
//!
//! Every generated case asserts something: inputs that must be accepted come from generators
//! of valid input, and mixed input (near misses and garbage) is judged against a model of the
//! documented grammar written out here, so a refusal is checked as carefully as an acceptance.
//! No case is skipped with an early `return Ok(())`.

use keygate::extract::{credential_from_headers, extract_credential, API_KEY_HEADER};
use keygate::token::{
    self, is_valid_prefix, CHECKSUM_LEN, ID_LEN, MAX_PREFIX_LEN, MAX_TOKEN_LEN, SECRET_LEN,
};
use keygate::{AuthError, Malformed, Scope, ScopeRequirement, ScopeSet, MAX_SCOPE_LEN};
use proptest::prelude::*;

// ------------------------------------------------------------------------------ tokens

/// Valid prefixes over the whole grammar: a lowercase letter, then lowercase letters, digits
/// and `_`, not ending in `_`, 1 to 32 bytes.
fn valid_prefix() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]",
        "[a-z][a-z0-9_]{0,30}[a-z0-9]",
        // The usual shapes, with `_` inside: `mk_live`, `qapi`, `a_b_c`.
        "[a-z]{1,4}(_[a-z0-9]{1,6}){0,3}",
    ]
}

/// `<prefix>_<id>.<secret>` bodies of the right shape.
fn valid_body() -> impl Strategy<Value = String> {
    (valid_prefix(), "[0-9a-f]{16}", "[0-9A-Za-z]{40}")
        .prop_map(|(p, id, s)| format!("{p}_{id}.{s}"))
}

/// Bodies that are often, but not always, of the right shape, and garbage.
fn near_miss_body() -> impl Strategy<Value = String> {
    prop_oneof![
        valid_body(),
        ("[a-z][a-z0-9_]{0,33}", "[0-9a-f]{16}", "[0-9A-Za-z]{40}")
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

/// The token grammar written out from its documentation (`token` module docs), independently
/// of `token::parse`: whether `s` is a well-formed key with a matching checksum.
fn token_model(s: &str) -> bool {
    if s.len() > MAX_TOKEN_LEN || !s.bytes().all(|c| c.is_ascii_graphic()) {
        return false;
    }
    let Some((head, tail)) = s.split_once('.') else {
        return false;
    };
    // The id starts after the last `_` before the (first) `.`.
    let Some((prefix, id)) = head.rsplit_once('_') else {
        return false;
    };
    let prefix_ok = (1..=MAX_PREFIX_LEN).contains(&prefix.len())
        && prefix.starts_with(|c: char| c.is_ascii_lowercase())
        && !prefix.ends_with('_')
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let id_ok = id.len() == ID_LEN && id.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'));
    let tail_ok =
        tail.len() == SECRET_LEN + CHECKSUM_LEN && tail.chars().all(|c| c.is_ascii_alphanumeric());
    prefix_ok && id_ok && tail_ok && token::with_checksum(&s[..s.len() - CHECKSUM_LEN]) == s
}

/// What every accepted token satisfies.
fn assert_accepted_token_invariants(
    input: &str,
    p: token::ParsedToken<'_>,
) -> Result<(), TestCaseError> {
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

// ------------------------------------------------------------------------------ headers

/// A header's values: absent (a quarter of the cases), once (most), or repeated.
fn header_list(value: BoxedStrategy<Vec<u8>>) -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop_oneof![
        3 => Just(Vec::new()),
        7 => value.clone().prop_map(|v| vec![v]),
        2 => proptest::collection::vec(value, 2..4),
    ]
}

/// Values shaped like keys, `Bearer` keys, other schemes and empty bearers.
fn key_like_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[ \t]{0,2}(Bearer|bearer|Basic)?[ \t]{0,2}[!-~]{0,130}[ \t]{0,2}",
        "[ ]?(Bearer|bEaReR) [!-~]{1,128}[ ]?",
        "[ \t]{0,2}[!-~]{1,130}[ \t]{0,2}",
        "(Bearer|bearer)[ \t]{0,3}",
    ]
    .prop_map(String::into_bytes)
}

/// Lists of header values: random bytes, or values shaped like keys.
fn header_values() -> impl Strategy<Value = Vec<Vec<u8>>> {
    header_list(
        prop_oneof![
            1 => proptest::collection::vec(any::<u8>(), 0..140),
            3 => key_like_value(),
        ]
        .boxed(),
    )
}

/// Lists of values that `http` accepts as header values (visible ASCII, space, tab and
/// obs-text 0x80–0xFF), shaped like the lists above.
fn http_header_values() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let byte = prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff];
    header_list(
        prop_oneof![
            1 => proptest::collection::vec(byte, 0..140),
            3 => key_like_value(),
        ]
        .boxed(),
    )
}

/// Optional whitespace (space and tab) around a header value, removed.
fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t'))
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|c| !matches!(c, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    &v[start..end]
}

/// A key value: trimmed, non-empty, at most 128 bytes of visible ASCII.
fn key_value_model(v: &[u8]) -> Result<&[u8], AuthError> {
    let v = trim_ows(v);
    if v.is_empty() || v.len() > MAX_TOKEN_LEN || !v.iter().all(u8::is_ascii_graphic) {
        return Err(AuthError::MalformedKey(Malformed::HeaderValue));
    }
    Ok(v)
}

/// The extraction rules of `docs/architecture.md` ("Credential extraction"), written out:
/// `X-Api-Key` wins when present; otherwise `Authorization: Bearer <key>` (scheme up to the
/// first space, case-insensitive); a repeated header used is malformed; nothing is missing.
fn extraction_model<'a>(
    api_keys: &'a [Vec<u8>],
    authorizations: &'a [Vec<u8>],
) -> Result<&'a [u8], AuthError> {
    let repeated = AuthError::MalformedKey(Malformed::RepeatedHeader);
    match api_keys {
        [] => {}
        [one] => return key_value_model(one),
        _ => return Err(repeated),
    }
    let value = match authorizations {
        [] => return Err(AuthError::MissingCredentials),
        [one] => trim_ows(one),
        _ => return Err(repeated),
    };
    let (scheme, rest) = match value.iter().position(|&c| c == b' ') {
        Some(i) => (&value[..i], &value[i + 1..]),
        None => (value, &value[value.len()..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(AuthError::MalformedKey(Malformed::UnsupportedScheme));
    }
    if trim_ows(rest).is_empty() {
        return Err(AuthError::MalformedKey(Malformed::EmptyBearer));
    }
    key_value_model(rest)
}

// ------------------------------------------------------------------------------ scopes

/// The scope grammar (`scope` module docs): 1–64 bytes, segments of `[a-z0-9_-]` joined by
/// `:` or `.`, no segment empty.
fn scope_model(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SCOPE_LEN
        && s.split([':', '.']).all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
        })
}

/// Valid scopes, now and then one of a few common ones (so sets see duplicates).
fn valid_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_-]{1,12}([:.][a-z0-9_-]{1,12}){0,3}",
        prop::sample::select(vec![
            "entities:read",
            "entities:write",
            "content.register",
            "a"
        ])
        .prop_map(str::to_owned),
    ]
}

/// Strings that are not scopes, each for one of the reasons a scope is refused.
fn invalid_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        valid_scope().prop_map(|s| format!("{s}:")),
        valid_scope().prop_map(|s| format!(".{s}")),
        valid_scope().prop_map(|s| s.replacen(':', "::", 1).replacen('.', "..", 1) + "::x"),
        (valid_scope(), "[A-Z !@/\u{e9}]").prop_map(|(s, bad)| format!("{s}{bad}")),
        "[a-z]{65,80}",
    ]
}

/// Scope-like strings: valid ones and near misses.
fn scope_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_-]{1,12}([:.][a-z0-9_-]{1,12}){0,3}",
        "[a-zA-Z0-9_:. -]{0,70}",
    ]
}

proptest! {
    #[test]
    fn a_well_shaped_body_with_its_checksum_is_always_accepted_with_every_invariant(
        prefix in valid_prefix(),
        id in "[0-9a-f]{16}",
        secret in "[0-9A-Za-z]{40}",
    ) {
        let t = token::with_checksum(&format!("{prefix}_{id}.{secret}"));
        let p = token::parse(&t);
        prop_assert!(p.is_ok(), "refused {t}: {p:?}");
        let p = p.unwrap();
        prop_assert_eq!((p.prefix(), p.id()), (prefix.as_str(), id.as_str()));
        assert_accepted_token_invariants(&t, p)?;
    }

    #[test]
    fn a_near_miss_token_is_accepted_exactly_when_the_grammar_says_so(
        body in near_miss_body(),
        checksummed in any::<bool>(),
    ) {
        let input = if checksummed { token::with_checksum(&body) } else { body };
        let parsed = token::parse(&input);
        prop_assert_eq!(parsed.is_ok(), token_model(&input), "{:?}: {:?}", input, parsed);
        if let Ok(p) = parsed {
            assert_accepted_token_invariants(&input, p)?;
        }
    }

    #[test]
    fn extraction_follows_the_documented_rules_for_any_header_values(
        api_keys in header_values(),
        authorizations in header_values(),
    ) {
        let result = extract_credential(
            api_keys.iter().map(Vec::as_slice),
            authorizations.iter().map(Vec::as_slice),
        );
        let expected = extraction_model(&api_keys, &authorizations);
        prop_assert_eq!(result.map(str::as_bytes), expected);
    }

    #[test]
    fn the_header_map_front_end_agrees_with_the_byte_level_extraction(
        api_keys in http_header_values(),
        authorizations in http_header_values(),
    ) {
        let mut map = http::HeaderMap::new();
        for v in &api_keys {
            map.append(API_KEY_HEADER, http::HeaderValue::from_bytes(v).expect("a valid header value"));
        }
        for v in &authorizations {
            map.append(
                http::header::AUTHORIZATION,
                http::HeaderValue::from_bytes(v).expect("a valid header value"),
            );
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
    fn a_scope_is_accepted_exactly_when_the_grammar_says_so_and_round_trips(s in scope_like()) {
        let scope = Scope::new(&s);
        prop_assert_eq!(scope.is_ok(), scope_model(&s), "{:?}: {:?}", s, scope);
        match scope {
            Ok(scope) => {
                prop_assert_eq!(scope.to_string(), s.clone());
                prop_assert_eq!(scope.to_string().parse::<Scope>().unwrap(), scope.clone());
                let json = serde_json::to_string(&scope).unwrap();
                prop_assert_eq!(serde_json::from_str::<Scope>(&json).unwrap(), scope);
            }
            Err(e) => prop_assert!(e.to_string().contains("invalid scope")),
        }
    }

    #[test]
    fn a_set_of_valid_scopes_is_sorted_deduplicated_and_round_trips(
        items in proptest::collection::vec(valid_scope(), 0..6)
    ) {
        let set = ScopeSet::parse(&items);
        prop_assert!(set.is_ok(), "{:?}: {:?}", items, set);
        let set = set.unwrap();
        let strings = set.to_strings();
        let mut expected = items.clone();
        expected.sort();
        expected.dedup();
        prop_assert_eq!(&strings, &expected);
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

    #[test]
    fn a_set_with_one_invalid_item_is_refused(
        mut items in proptest::collection::vec(valid_scope(), 0..5),
        bad in invalid_scope(),
        at in any::<prop::sample::Index>(),
    ) {
        prop_assert!(!scope_model(&bad), "the generator made a valid scope: {:?}", bad);
        let at = at.index(items.len() + 1);
        items.insert(at, bad);
        prop_assert!(ScopeSet::parse(&items).is_err(), "{:?}", items);
    }
}

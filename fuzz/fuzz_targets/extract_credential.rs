//! `extract_credential` over arbitrary lists of `X-Api-Key` and `Authorization` values.
//!
//! Invariants: never panics; `Ok` is non-empty printable ASCII of at most 128 bytes, and is a
//! slice of one of the presented values (nothing is invented or decoded); the `http::HeaderMap`
//! front end (`credential_from_headers`) agrees with the byte-level function whenever `http`
//! accepts every value as a header value.
#![no_main]

use arbitrary::Arbitrary;
use keygate::extract::{credential_from_headers, extract_credential, API_KEY_HEADER};
use keygate::token::MAX_TOKEN_LEN;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Headers {
    api_keys: Vec<Vec<u8>>,
    authorizations: Vec<Vec<u8>>,
}

fuzz_target!(|h: Headers| {
    let result = extract_credential(
        h.api_keys.iter().map(Vec::as_slice),
        h.authorizations.iter().map(Vec::as_slice),
    );
    if let Ok(token) = result {
        assert!(!token.is_empty(), "empty credential accepted");
        assert!(
            token.len() <= MAX_TOKEN_LEN,
            "over-long credential accepted"
        );
        assert!(
            token.bytes().all(|c| c.is_ascii_graphic()),
            "non-printable credential accepted"
        );
        let from_input = h
            .api_keys
            .iter()
            .chain(&h.authorizations)
            .any(|v| v.windows(token.len()).any(|w| w == token.as_bytes()));
        assert!(from_input, "credential is not a slice of a presented value");
        if h.api_keys.len() == 1 {
            assert!(
                h.api_keys[0]
                    .windows(token.len())
                    .any(|w| w == token.as_bytes()),
                "X-Api-Key must win over Authorization"
            );
        }
    }
    if h.api_keys.len() > 1 || (h.api_keys.is_empty() && h.authorizations.len() > 1) {
        assert!(result.is_err(), "a repeated header must be refused");
    }

    let mut map = http::HeaderMap::new();
    for v in &h.api_keys {
        let Ok(v) = http::HeaderValue::from_bytes(v) else {
            return;
        };
        map.append(API_KEY_HEADER, v);
    }
    for v in &h.authorizations {
        let Ok(v) = http::HeaderValue::from_bytes(v) else {
            return;
        };
        map.append(http::header::AUTHORIZATION, v);
    }
    assert_eq!(
        credential_from_headers(&map),
        result,
        "HeaderMap front end disagrees"
    );
});

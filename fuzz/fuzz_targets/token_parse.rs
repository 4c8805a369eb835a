//! `token::parse` on arbitrary input, plus the invariants every accepted token must hold.
//!
//! Two modes, picked by the first byte, so the fuzzer reaches the accepting path too (a random
//! string almost never carries a valid CRC32):
//! - even: the rest of the input is parsed as is;
//! - odd: the rest is taken as a `<prefix>_<id>.<secret>` body and given a correct checksum
//!   with `with_checksum` before parsing, so only the shape checks can refuse it.
#![no_main]

use keygate::token::{self, is_valid_prefix, CHECKSUM_LEN, ID_LEN, MAX_TOKEN_LEN, SECRET_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let candidate = if mode % 2 == 0 {
        text.to_owned()
    } else {
        token::with_checksum(text)
    };
    check(&candidate);
});

fn check(input: &str) {
    let Ok(parsed) = token::parse(input) else {
        return;
    };
    let t = parsed.token();
    assert_eq!(t, input, "the parsed token is the whole input");
    assert!(t.len() <= MAX_TOKEN_LEN, "accepted an over-long token");
    assert!(
        t.bytes().all(|c| c.is_ascii_graphic()),
        "accepted a non-printable byte"
    );
    assert!(
        is_valid_prefix(parsed.prefix()),
        "accepted an invalid prefix"
    );
    let id = parsed.id();
    assert_eq!(id.len(), ID_LEN);
    assert!(
        id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
        "id not lowercase hex"
    );
    assert_eq!(
        t,
        format!(
            "{}_{}.{}",
            parsed.prefix(),
            id,
            &t[parsed.prefix().len() + ID_LEN + 2..]
        )
    );
    assert_eq!(
        t.len(),
        parsed.prefix().len() + 2 + ID_LEN + SECRET_LEN + CHECKSUM_LEN
    );

    // The checksum is a function of the body: re-deriving it gives the same token back.
    let body = &t[..t.len() - CHECKSUM_LEN];
    let again = token::with_checksum(body);
    assert_eq!(
        again, t,
        "with_checksum(body) differs from the accepted token"
    );
    let reparsed = token::parse(&again).expect("re-checksummed body must parse");
    assert_eq!(reparsed, parsed);

    // The Debug form never shows the secret.
    let secret = &t[t.len() - SECRET_LEN - CHECKSUM_LEN..];
    assert!(
        !format!("{parsed:?}").contains(secret),
        "Debug leaks the secret"
    );
}

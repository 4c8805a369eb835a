//! Finding the credential in request headers — one function for every adapter.
//!
//! Rules (`docs/architecture.md`, "Credential extraction"): `X-Api-Key: <key>` or
//! `Authorization: Bearer <key>` (scheme case-insensitive). When both are present `X-Api-Key`
//! wins. A repeated header, an empty, non-ASCII or over-long value, another scheme, or `Bearer`
//! without a token is malformed and refused before any store or hash work. Keys in the query
//! string are never read.

use crate::error::{AuthError, Malformed};
use crate::token::MAX_TOKEN_LEN;

/// Name of the API-key header.
pub const API_KEY_HEADER: &str = "x-api-key";
/// Name of the request-id header echoed on errors.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Picks the credential out of the values of the `X-Api-Key` and `Authorization` headers.
///
/// Framework-free: adapters pass each header's values as bytes.
///
/// ```
/// use keygate::extract::extract_credential;
/// let key = extract_credential([&b"mk_live_x.y"[..]], []).unwrap();
/// assert_eq!(key, "mk_live_x.y");
/// let bearer = extract_credential([], [&b"bearer abc"[..]]).unwrap();
/// assert_eq!(bearer, "abc");
/// ```
pub fn extract_credential<'a, A, B>(api_keys: A, authorizations: B) -> Result<&'a str, AuthError>
where
    A: IntoIterator<Item = &'a [u8]>,
    B: IntoIterator<Item = &'a [u8]>,
{
    if let Some(value) = single(api_keys)? {
        return token_value(value);
    }
    let Some(value) = single(authorizations)? else {
        return Err(AuthError::MissingCredentials);
    };
    let value = trim(value);
    let (scheme, rest) = match value.iter().position(|&c| c == b' ') {
        Some(i) => (&value[..i], &value[i + 1..]),
        None => (value, &value[value.len()..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(AuthError::MalformedKey(Malformed::UnsupportedScheme));
    }
    let rest = trim(rest);
    if rest.is_empty() {
        return Err(AuthError::MalformedKey(Malformed::EmptyBearer));
    }
    token_value(rest)
}

/// The only value of a header, `None` if absent, malformed if repeated.
fn single<'a, I: IntoIterator<Item = &'a [u8]>>(values: I) -> Result<Option<&'a [u8]>, AuthError> {
    let mut it = values.into_iter();
    let first = it.next();
    if first.is_some() && it.next().is_some() {
        return Err(AuthError::MalformedKey(Malformed::RepeatedHeader));
    }
    Ok(first)
}

fn token_value(value: &[u8]) -> Result<&str, AuthError> {
    let value = trim(value);
    if value.is_empty()
        || value.len() > MAX_TOKEN_LEN
        || !crate::token::every_byte(value, u8::is_ascii_graphic)
    {
        return Err(AuthError::MalformedKey(Malformed::HeaderValue));
    }
    std::str::from_utf8(value).map_err(|_| AuthError::MalformedKey(Malformed::HeaderValue))
}

fn trim(v: &[u8]) -> &[u8] {
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

/// [`extract_credential`] over an `http` 1.x header map.
pub fn credential_from_headers(headers: &http::HeaderMap) -> Result<&str, AuthError> {
    extract_credential(
        headers.get_all(API_KEY_HEADER).iter().map(|v| v.as_bytes()),
        headers
            .get_all(http::header::AUTHORIZATION)
            .iter()
            .map(|v| v.as_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn malformed(r: Result<&str, AuthError>) -> Malformed {
        match r {
            Err(AuthError::MalformedKey(m)) => m,
            other => panic!("expected malformed, got {other:?}"),
        }
    }

    #[test]
    fn nothing_is_missing_credentials() {
        assert_eq!(
            extract_credential([], []),
            Err(AuthError::MissingCredentials)
        );
    }

    #[test]
    fn x_api_key_wins_over_authorization() {
        assert_eq!(
            extract_credential([&b"k1"[..]], [&b"Bearer k2"[..]]),
            Ok("k1")
        );
        assert_eq!(
            extract_credential([&b"k1"[..]], [&b"garbage"[..]]),
            Ok("k1")
        );
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for v in ["Bearer k", "bearer k", "BEARER k", "Bearer   k  "] {
            assert_eq!(extract_credential([], [v.as_bytes()]), Ok("k"), "{v}");
        }
    }

    #[test]
    fn malformed_shapes() {
        assert_eq!(
            malformed(extract_credential([&b"a"[..], &b"b"[..]], [])),
            Malformed::RepeatedHeader
        );
        assert_eq!(
            malformed(extract_credential([], [&b"Basic dXNlcjpw"[..]])),
            Malformed::UnsupportedScheme
        );
        assert_eq!(
            malformed(extract_credential([], [&b"Bearer"[..]])),
            Malformed::EmptyBearer
        );
        assert_eq!(
            malformed(extract_credential([], [&b"Bearer "[..]])),
            Malformed::EmptyBearer
        );
        assert_eq!(
            malformed(extract_credential([&b""[..]], [])),
            Malformed::HeaderValue
        );
        assert_eq!(
            malformed(extract_credential([&[0xc3, 0xa9][..]], [])),
            Malformed::HeaderValue
        );
        assert_eq!(
            malformed(extract_credential([&[b'a'; 10_000][..]], [])),
            Malformed::HeaderValue
        );
        assert_eq!(
            malformed(extract_credential([&b"a\0b"[..]], [])),
            Malformed::HeaderValue
        );
    }

    proptest! {
        #[test]
        fn arbitrary_headers_never_panic(
            a in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..3),
            b in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..3),
        ) {
            if let Ok(t) = extract_credential(a.iter().map(|v| v.as_slice()), b.iter().map(|v| v.as_slice())) {
                prop_assert!(!t.is_empty() && t.len() <= MAX_TOKEN_LEN && t.bytes().all(|c| c.is_ascii_graphic()));
            }
        }
    }
}

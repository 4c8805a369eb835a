//! Refusals as gRPC statuses, for gRPC services (tonic and others) behind [`ApiKeyLayer`].
//!
//! [`ApiKeyLayer`]: crate::ApiKeyLayer

use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};

use crate::error::{
    append_header, AuthError, ErrorRenderer, ErrorResponse, RenderContext, X_REQUEST_ID,
};
use crate::scope::Scope;

/// Renders refusals the way a gRPC server answers a failed call, so that a gRPC client (tonic
/// or any other) sees a proper status instead of an HTTP error.
///
/// A gRPC error is a *trailers-only* response: HTTP status 200, `content-type:
/// application/grpc`, the status in `grpc-status` and `grpc-message` headers and an empty
/// body; this is what tonic's own `Status::into_http` builds. The mapping:
///
/// | HTTP status ([`AuthError::status`]) | reasons | gRPC status |
/// |---|---|---|
/// | 401 | `missing_credentials`, `malformed_key`, `invalid_key`, `expired_key`, `revoked_key` | `UNAUTHENTICATED` (16) |
/// | 403 | `insufficient_scope` | `PERMISSION_DENIED` (7) |
/// | 429 | `rate_limited`, `too_many_attempts` | `RESOURCE_EXHAUSTED` (8) |
/// | 503 | `store_unavailable`, `verifier_busy` | `UNAVAILABLE` (14) |
/// | 500 | `misconfigured` | `INTERNAL` (13) |
///
/// Headers (gRPC metadata to the client):
/// - `grpc-message`: [`GrpcRenderer::message`], e.g. `Invalid API key (invalid_key)`,
///   percent-encoded as the gRPC protocol requires (any byte outside `0x20..=0x7E`, and `%`);
/// - `keygate-reason`: the reason alone (`invalid_key`), for programs;
/// - `keygate-missing-scopes` on `insufficient_scope`: the missing scopes, space-separated;
/// - `retry-after` (seconds) wherever [`JsonRenderer`](crate::JsonRenderer) sets it: on
///   `rate_limited`, `too_many_attempts`, `store_unavailable` and `verifier_busy`;
/// - `x-request-id`: the caller's when acceptable, else a fresh one.
///
/// The renderer only writes headers: keygate does not depend on tonic.
///
/// ```
/// use keygate::{AuthError, ErrorRenderer, GrpcRenderer, RenderContext};
///
/// let ctx = RenderContext::new("req-1", chrono::Utc::now());
/// let r = GrpcRenderer::new().render(&AuthError::InvalidKey, &ctx);
/// assert_eq!(r.status, 200);
/// assert!(r.body.is_empty());
/// let header = |name: &str| r.headers.get(name).map(|v| v.to_str().unwrap());
/// assert_eq!(header("content-type"), Some("application/grpc"));
/// assert_eq!(header("grpc-status"), Some("16"));
/// assert_eq!(header("grpc-message"), Some("Invalid API key (invalid_key)"));
/// assert_eq!(header("keygate-reason"), Some("invalid_key"));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcRenderer {
    _private: (),
}

// The gRPC status codes keygate answers with (numbers from the gRPC protocol).
const UNKNOWN: i32 = 2;
const PERMISSION_DENIED: i32 = 7;
const RESOURCE_EXHAUSTED: i32 = 8;
const INTERNAL: i32 = 13;
const UNAVAILABLE: i32 = 14;
const UNAUTHENTICATED: i32 = 16;

const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
const KEYGATE_REASON: HeaderName = HeaderName::from_static("keygate-reason");
const KEYGATE_MISSING_SCOPES: HeaderName = HeaderName::from_static("keygate-missing-scopes");

impl GrpcRenderer {
    /// The renderer (it has no settings).
    pub fn new() -> Self {
        GrpcRenderer::default()
    }

    /// The gRPC status code of `error` (see the [table](GrpcRenderer)): `16` for a 401, `7`
    /// for a 403, `8` for a 429, `14` for a 503, `13` for a 500. Useful to build a status in a
    /// handler, e.g. with tonic's `Code::from_i32`.
    pub fn code(error: &AuthError) -> i32 {
        match error.status() {
            401 => UNAUTHENTICATED,
            403 => PERMISSION_DENIED,
            429 => RESOURCE_EXHAUSTED,
            503 => UNAVAILABLE,
            500 => INTERNAL,
            _ => UNKNOWN,
        }
    }

    /// The status message of `error`, before percent-encoding: its message and its reason in
    /// parentheses (`Invalid API key (invalid_key)`); on `insufficient_scope` followed by the
    /// missing scopes (`…(insufficient_scope): missing boards:write`).
    pub fn message(error: &AuthError) -> String {
        match error {
            AuthError::InsufficientScope { missing, .. } if !missing.is_empty() => {
                format!("{error}: missing {}", scope_words(missing))
            }
            _ => error.to_string(),
        }
    }
}

fn scope_words(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(Scope::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

impl ErrorRenderer for GrpcRenderer {
    fn render(&self, error: &AuthError, ctx: &RenderContext<'_>) -> ErrorResponse {
        let mut headers = HeaderMap::with_capacity(6);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(GRPC_STATUS, HeaderValue::from(Self::code(error)));
        append_header(
            &mut headers,
            GRPC_MESSAGE,
            percent_encode_message(&Self::message(error)),
        );
        headers.insert(KEYGATE_REASON, HeaderValue::from_static(error.reason()));
        match error {
            AuthError::InsufficientScope { missing, .. } if !missing.is_empty() => {
                append_header(&mut headers, KEYGATE_MISSING_SCOPES, scope_words(missing));
            }
            AuthError::TooManyAttempts { retry_after_secs }
            | AuthError::RateLimited {
                retry_after_secs, ..
            }
            | AuthError::StoreUnavailable { retry_after_secs }
            | AuthError::VerifierBusy { retry_after_secs } => {
                headers.insert(RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        append_header(&mut headers, X_REQUEST_ID, ctx.request_id.to_owned());
        ErrorResponse {
            status: 200,
            headers,
            body: bytes::Bytes::new(),
        }
    }
}

/// Percent-encodes a status message as the gRPC protocol asks of `grpc-message`: the UTF-8
/// bytes `0x20..=0x7E` stay as they are, except `%`; every other byte becomes `%XX`
/// (uppercase hex). The result is always a valid header value.
fn percent_encode_message(message: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(message.len());
    for &b in message.as_bytes() {
        if (0x20..=0x7E).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0F)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Malformed;
    use crate::scope::Requirement;
    use crate::token::TokenError;

    fn render(e: &AuthError) -> ErrorResponse {
        let ctx = RenderContext {
            request_id: "req-1",
            now: chrono::Utc::now(),
        };
        GrpcRenderer::new().render(e, &ctx)
    }

    fn header<'a>(r: &'a ErrorResponse, name: &str) -> Option<&'a str> {
        let mut found = r.headers.get_all(name).iter();
        let first = found.next().map(|v| v.to_str().unwrap());
        assert!(found.next().is_none(), "{name} repeated");
        first
    }

    /// Every refusal is a trailers-only gRPC response: 200, gRPC content type, no body, the
    /// request id echoed, the reason in `keygate-reason`.
    fn assert_grpc(r: &ErrorResponse, code: &str, reason: &str) {
        assert_eq!(r.status, 200);
        assert!(r.body.is_empty());
        assert_eq!(header(r, "content-type"), Some("application/grpc"));
        assert_eq!(header(r, "grpc-status"), Some(code));
        assert_eq!(header(r, "keygate-reason"), Some(reason));
        assert_eq!(header(r, "x-request-id"), Some("req-1"));
        assert_eq!(header(r, "www-authenticate"), None);
        let message = header(r, "grpc-message").unwrap();
        assert!(message.contains(&format!("({reason})")), "{message}");
        for (name, value) in &r.headers {
            assert!(
                value.as_bytes().iter().all(|b| (0x20..=0x7E).contains(b)),
                "{name}: {value:?}"
            );
        }
    }

    #[test]
    fn refusals_of_the_key_are_unauthenticated() {
        let cases = [
            (AuthError::MissingCredentials, "missing_credentials"),
            (
                AuthError::MalformedKey(Malformed::Token(TokenError::Checksum)),
                "malformed_key",
            ),
            (
                AuthError::MalformedKey(Malformed::RepeatedHeader),
                "malformed_key",
            ),
            (AuthError::InvalidKey, "invalid_key"),
            (AuthError::ExpiredKey, "expired_key"),
            (AuthError::RevokedKey, "revoked_key"),
        ];
        for (e, reason) in cases {
            let r = render(&e);
            assert_grpc(&r, "16", reason);
            assert_eq!(GrpcRenderer::code(&e), 16);
            assert_eq!(header(&r, "retry-after"), None);
        }
        assert_eq!(
            header(&render(&AuthError::InvalidKey), "grpc-message"),
            Some("Invalid API key (invalid_key)")
        );
        assert_eq!(
            header(&render(&AuthError::MissingCredentials), "grpc-message"),
            Some("Missing authentication header (missing_credentials)")
        );
    }

    #[test]
    fn insufficient_scope_is_permission_denied_naming_the_missing_scopes() {
        let s = |x: &str| Scope::new(x).unwrap();
        let e = AuthError::InsufficientScope {
            requirement: Requirement::AllOf,
            required: vec![s("boards:read"), s("boards:write")],
            missing: vec![s("boards:write")],
        };
        let r = render(&e);
        assert_grpc(&r, "7", "insufficient_scope");
        assert_eq!(
            header(&r, "grpc-message"),
            Some(
                "API key lacks the scopes this endpoint requires (insufficient_scope): \
                 missing boards:write"
            )
        );
        assert_eq!(header(&r, "keygate-missing-scopes"), Some("boards:write"));
        assert_eq!(header(&r, "retry-after"), None);
    }

    #[test]
    fn rate_limits_are_resource_exhausted_with_retry_after() {
        let limited = AuthError::RateLimited {
            limit: "5/1s".parse().unwrap(),
            retry_after_secs: 1,
        };
        let r = render(&limited);
        assert_grpc(&r, "8", "rate_limited");
        assert_eq!(header(&r, "retry-after"), Some("1"));

        let attempts = AuthError::TooManyAttempts {
            retry_after_secs: 42,
        };
        let r = render(&attempts);
        assert_grpc(&r, "8", "too_many_attempts");
        assert_eq!(header(&r, "retry-after"), Some("42"));
    }

    #[test]
    fn outages_are_unavailable_with_retry_after() {
        let r = render(&AuthError::StoreUnavailable {
            retry_after_secs: 5,
        });
        assert_grpc(&r, "14", "store_unavailable");
        assert_eq!(header(&r, "retry-after"), Some("5"));

        let r = render(&AuthError::VerifierBusy {
            retry_after_secs: 3,
        });
        assert_grpc(&r, "14", "verifier_busy");
        assert_eq!(header(&r, "retry-after"), Some("3"));
    }

    #[test]
    fn misconfiguration_is_internal() {
        let r = render(&AuthError::Misconfigured("no layer"));
        assert_grpc(&r, "13", "misconfigured");
        assert_eq!(header(&r, "grpc-message"), Some("no layer (misconfigured)"));
    }

    #[test]
    fn every_status_the_error_model_has_maps_to_its_grpc_code() {
        // The mapping goes by HTTP status, so a future variant lands on the right code.
        for (status, code) in [(401, 16), (403, 7), (429, 8), (503, 14), (500, 13)] {
            let e = match status {
                401 => AuthError::InvalidKey,
                403 => AuthError::InsufficientScope {
                    requirement: Requirement::AnyOf,
                    required: vec![],
                    missing: vec![],
                },
                429 => AuthError::TooManyAttempts {
                    retry_after_secs: 1,
                },
                503 => AuthError::StoreUnavailable {
                    retry_after_secs: 1,
                },
                _ => AuthError::Misconfigured("x"),
            };
            assert_eq!(e.status(), status);
            assert_eq!(GrpcRenderer::code(&e), code);
        }
    }

    #[test]
    fn grpc_message_is_percent_encoded_as_the_protocol_asks() {
        assert_eq!(percent_encode_message("plain text: ok"), "plain text: ok");
        assert_eq!(percent_encode_message("100%"), "100%25");
        assert_eq!(percent_encode_message("a\r\nb\t"), "a%0D%0Ab%09");
        assert_eq!(percent_encode_message("clé"), "cl%C3%A9");
        assert_eq!(percent_encode_message("\u{7f}"), "%7F");
        assert_eq!(percent_encode_message(""), "");
        // A renderer's message may come from anywhere (`Misconfigured`): still a valid value.
        let r = render(&AuthError::Misconfigured("bad\nline é%"));
        assert_eq!(
            header(&r, "grpc-message"),
            Some("bad%0Aline %C3%A9%25 (misconfigured)")
        );
    }

    #[test]
    fn percent_encoding_round_trips_every_byte() {
        let all: String = (0u32..0x800).filter_map(char::from_u32).collect();
        let encoded = percent_encode_message(&all);
        assert!(encoded.bytes().all(|b| (0x20..=0x7E).contains(&b)));
        // Decode as a gRPC client does: %XX to its byte, the rest as is.
        let mut bytes = Vec::new();
        let mut rest = encoded.as_bytes();
        while let Some((&b, tail)) = rest.split_first() {
            if b == b'%' {
                let hex = std::str::from_utf8(&tail[..2]).unwrap();
                bytes.push(u8::from_str_radix(hex, 16).unwrap());
                rest = &tail[2..];
            } else {
                bytes.push(b);
                rest = tail;
            }
        }
        assert_eq!(String::from_utf8(bytes).unwrap(), all);
    }
}

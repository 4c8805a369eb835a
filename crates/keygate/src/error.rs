//! The error model and its framework-free rendering.
//!
//! Every way a request can fail authentication is an [`AuthError`]; an [`ErrorRenderer`] turns
//! it into an [`ErrorResponse`] (status, headers, body bytes) that each adapter copies into its
//! framework's response type. The default [`JsonRenderer`] writes this envelope (see
//! `docs/architecture.md`, "Error envelope" and "The error table"):
//!
//! ```json
//! {"error":{"code":"UNAUTHORIZED","message":"Invalid API key","details":{"reason":"invalid_key"}},
//!  "meta":{"requestId":"…","timestamp":"2026-01-01T00:00:00Z"}}
//! ```

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use serde_json::Value;

use crate::rate_limit::RateLimit;
use crate::scope::{Requirement, Scope, ScopeRequirement, ScopeSet};
use crate::token::TokenError;

/// Why a presented credential was refused as malformed (answered as `malformed_key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// Two or more `X-Api-Key` headers, or two or more `Authorization` headers.
    RepeatedHeader,
    /// A header value that is empty, not ASCII or too long.
    HeaderValue,
    /// `Authorization` with a scheme other than `Bearer`.
    UnsupportedScheme,
    /// `Authorization: Bearer` with no token.
    EmptyBearer,
    /// The token does not parse or its checksum does not match.
    Token(TokenError),
    /// The token's prefix is not one this service accepts.
    WrongPrefix,
}

impl Malformed {
    fn message(self) -> &'static str {
        match self {
            Malformed::RepeatedHeader => "Malformed API key: the credential header is repeated",
            Malformed::HeaderValue => {
                "Malformed API key: the header value is empty, too long or not ASCII"
            }
            Malformed::UnsupportedScheme => {
                "Malformed API key: unsupported authorization scheme, use Bearer"
            }
            Malformed::EmptyBearer => "Malformed API key: the Bearer token is empty",
            Malformed::Token(TokenError::Checksum) => {
                "Malformed API key: checksum mismatch (typo or truncated key?)"
            }
            Malformed::Token(_) => {
                "Malformed API key: not a key of the form <prefix>_<id>.<secret>"
            }
            Malformed::WrongPrefix => {
                "Malformed API key: this service does not accept keys with this prefix"
            }
        }
    }
}

/// Why a request was not let through. Each variant maps to one row of the error table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// No `X-Api-Key` and no `Authorization` header (401 `missing_credentials`).
    MissingCredentials,
    /// The credential cannot be a key (401 `malformed_key`); no store or hash work was done.
    MalformedKey(Malformed),
    /// Unknown id or wrong secret (401 `invalid_key`).
    InvalidKey,
    /// The key is genuine but past its expiry (401 `expired_key`).
    ExpiredKey,
    /// The key is genuine but revoked (401 `revoked_key`).
    RevokedKey,
    /// The key is valid but lacks scopes (403 `insufficient_scope`).
    InsufficientScope {
        /// All-of or any-of.
        requirement: Requirement,
        /// The scopes the route names.
        required: Vec<Scope>,
        /// The required scopes the key does not hold.
        missing: Vec<Scope>,
    },
    /// Too many wrong secrets for this key id from this client within the failure window
    /// (429 `too_many_attempts`): the presented secret was *not* checked. Never a verdict on
    /// the key: retry after `Retry-After` seconds with the same key.
    TooManyAttempts {
        /// Seconds to put in `Retry-After`: until the failure window ends.
        retry_after_secs: u32,
    },
    /// The key is valid but its own rate limit is spent on this node (429 `rate_limited`).
    /// Checked after the secret and the key's status, before scopes: a request refused for
    /// its scopes still spends a request of the limit. Retry after `Retry-After` seconds.
    RateLimited {
        /// The key's limit (announced in `RateLimit-Policy`).
        limit: RateLimit,
        /// Whole seconds (at least 1) until the key may make another request.
        retry_after_secs: u32,
    },
    /// The key store failed or timed out (503 `store_unavailable`); never reported as 401.
    StoreUnavailable {
        /// Seconds to put in `Retry-After`.
        retry_after_secs: u32,
    },
    /// No hashing slot became free within the queue deadline (503 `verifier_busy`): the
    /// secret was not checked. Retry after `Retry-After` seconds with the same key.
    VerifierBusy {
        /// Seconds to put in `Retry-After`.
        retry_after_secs: u32,
    },
    /// keygate is wired up wrongly (500): e.g. a scope guard or extractor without the
    /// authentication layer in front of it. The message names what is missing.
    Misconfigured(&'static str),
}

impl AuthError {
    /// HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::InsufficientScope { .. } => 403,
            AuthError::TooManyAttempts { .. } | AuthError::RateLimited { .. } => 429,
            AuthError::StoreUnavailable { .. } | AuthError::VerifierBusy { .. } => 503,
            AuthError::Misconfigured(_) => 500,
            _ => 401,
        }
    }

    /// `error.code` of the envelope.
    pub fn code(&self) -> &'static str {
        match self.status() {
            403 => "FORBIDDEN",
            429 => "TOO_MANY_REQUESTS",
            503 => "SERVICE_UNAVAILABLE",
            500 => "INTERNAL_ERROR",
            _ => "UNAUTHORIZED",
        }
    }

    /// `details.reason` of the envelope.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::MissingCredentials => "missing_credentials",
            AuthError::MalformedKey(_) => "malformed_key",
            AuthError::InvalidKey => "invalid_key",
            AuthError::ExpiredKey => "expired_key",
            AuthError::RevokedKey => "revoked_key",
            AuthError::InsufficientScope { .. } => "insufficient_scope",
            AuthError::TooManyAttempts { .. } => "too_many_attempts",
            AuthError::RateLimited { .. } => "rate_limited",
            AuthError::StoreUnavailable { .. } => "store_unavailable",
            AuthError::VerifierBusy { .. } => "verifier_busy",
            AuthError::Misconfigured(_) => "misconfigured",
        }
    }

    /// Human message of the envelope.
    pub fn message(&self) -> &'static str {
        match self {
            AuthError::MissingCredentials => "Missing authentication header",
            AuthError::MalformedKey(m) => m.message(),
            AuthError::InvalidKey => "Invalid API key",
            AuthError::ExpiredKey => "API key has expired",
            AuthError::RevokedKey => "API key has been revoked",
            AuthError::InsufficientScope { .. } => {
                "API key lacks the scopes this endpoint requires"
            }
            AuthError::TooManyAttempts { .. } => {
                "Too many failed attempts for this API key from this client, retry later"
            }
            AuthError::RateLimited { .. } => "API key rate limit exceeded, retry later",
            AuthError::StoreUnavailable { .. } => "Key store unavailable, retry later",
            AuthError::VerifierBusy { .. } => "Too many keys waiting to be verified, retry later",
            AuthError::Misconfigured(m) => m,
        }
    }

    /// Whether the request presented a credential (decides `error="invalid_token"`).
    pub fn credential_presented(&self) -> bool {
        !matches!(self, AuthError::MissingCredentials)
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.reason())
    }
}

impl std::error::Error for AuthError {}

/// A rendered answer (a rejection, or a Keys API answer), free of framework types: adapters copy
/// it into their response. Its `Debug` shows the body's length, not the body: a Keys API
/// answer to create or rotate holds a plaintext key.
#[derive(Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    /// HTTP status code.
    pub status: u16,
    /// Headers; a name may carry several values (e.g. two `link` values). Typed, so always
    /// valid: adapters copy them as they are.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

impl fmt::Debug for ErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Appends `value` under `name` if it can be a header value. keygate only builds ASCII
/// values, which always can; anything else is left out rather than answered with a panic.
pub(crate) fn append_header(headers: &mut HeaderMap, name: HeaderName, value: String) {
    if let Ok(v) = HeaderValue::try_from(value) {
        headers.append(name, v);
    }
}

/// `x-request-id`, the header every rendered answer echoes.
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What a renderer may want to know besides the error.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RenderContext<'a> {
    /// The caller's `x-request-id` when it was acceptable, else a fresh UUID.
    pub request_id: &'a str,
    /// Time of the response.
    pub now: DateTime<Utc>,
}

impl<'a> RenderContext<'a> {
    /// The context of a response answered at `now` under `request_id` (see [`request_id`]).
    pub fn new(request_id: &'a str, now: DateTime<Utc>) -> Self {
        RenderContext { request_id, now }
    }
}

/// Turns an [`AuthError`] into a response. Replace it to change bodies or headers; keygate's
/// adapters all go through it.
pub trait ErrorRenderer: Send + Sync + 'static {
    /// Renders one rejection.
    fn render(&self, error: &AuthError, ctx: &RenderContext<'_>) -> ErrorResponse;
}

impl<F> ErrorRenderer for F
where
    F: Fn(&AuthError, &RenderContext<'_>) -> ErrorResponse + Send + Sync + 'static,
{
    fn render(&self, error: &AuthError, ctx: &RenderContext<'_>) -> ErrorResponse {
        self(error, ctx)
    }
}

/// The default renderer: JSON envelope, `WWW-Authenticate` (RFC 6750), `Retry-After`,
/// `x-request-id`; on 429 `rate_limited` also `RateLimit-Policy` and `RateLimit`. The body's
/// object keys are in sorted order, as serde_json prints a `Value` by default, whatever
/// serde_json features the application enables.
#[derive(Debug, Clone)]
pub struct JsonRenderer {
    realm: Arc<str>,
    /// `Bearer realm="…"`, built once.
    challenge: HeaderValue,
    /// `Bearer realm="…", error="invalid_token"`, built once.
    invalid_token_challenge: HeaderValue,
}

impl JsonRenderer {
    /// A renderer announcing `realm` in `WWW-Authenticate`.
    pub fn new(realm: &str) -> Self {
        let clean: String = realm
            .chars()
            .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\' || *c == ' ')
            .collect();
        // `clean` holds printable ASCII only, which is always a valid header value.
        let value = |text: String| {
            HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
        };
        JsonRenderer {
            challenge: value(format!("Bearer realm=\"{clean}\"")),
            invalid_token_challenge: value(format!(
                "Bearer realm=\"{clean}\", error=\"invalid_token\""
            )),
            realm: clean.into(),
        }
    }
}

impl Default for JsonRenderer {
    fn default() -> Self {
        Self::new("api")
    }
}

impl ErrorRenderer for JsonRenderer {
    fn render(&self, error: &AuthError, ctx: &RenderContext<'_>) -> ErrorResponse {
        let mut headers = HeaderMap::with_capacity(5);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match error {
            AuthError::InsufficientScope { required, .. } => {
                let challenge = format!(
                    "Bearer realm=\"{}\", error=\"insufficient_scope\", scope=\"{}\"",
                    self.realm,
                    required
                        .iter()
                        .map(Scope::as_str)
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                append_header(&mut headers, WWW_AUTHENTICATE, challenge);
            }
            AuthError::TooManyAttempts { retry_after_secs }
            | AuthError::StoreUnavailable { retry_after_secs }
            | AuthError::VerifierBusy { retry_after_secs } => {
                headers.insert(RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            AuthError::RateLimited {
                limit,
                retry_after_secs,
            } => {
                headers.insert(RETRY_AFTER, HeaderValue::from(*retry_after_secs));
                for (name, value) in rate_limit_fields(limit, *retry_after_secs) {
                    append_header(&mut headers, name, value);
                }
            }
            AuthError::Misconfigured(_) => {}
            e if e.credential_presented() => {
                headers.append(WWW_AUTHENTICATE, self.invalid_token_challenge.clone());
            }
            _ => {
                headers.append(WWW_AUTHENTICATE, self.challenge.clone());
            }
        }
        if let Ok(id) = HeaderValue::from_str(ctx.request_id) {
            headers.append(X_REQUEST_ID, id);
        }
        let message = match error {
            AuthError::Misconfigured(m) => Text::Given(m),
            e => Text::Known(e.message()),
        };
        let body = write_envelope(Text::Known(error.code()), message, ctx, |out| {
            // Keys in the order serde_json's map gives them (sorted), as `envelope` writes
            // them: the body is byte for byte what `envelope` would answer.
            out.raw("{");
            match error {
                AuthError::MissingCredentials | AuthError::MalformedKey(_) => {
                    out.raw("\"expectedFormat\":");
                    out.known(EXPECTED_FORMAT);
                    out.raw(",");
                }
                AuthError::InsufficientScope {
                    required,
                    missing,
                    requirement,
                } => {
                    out.raw("\"missing\":");
                    out.scopes(missing);
                    out.raw(",\"reason\":");
                    out.known(error.reason());
                    out.raw(",\"required\":");
                    out.scopes(required);
                    out.raw(",\"requirement\":");
                    out.known(match requirement {
                        Requirement::AllOf => "all_of",
                        Requirement::AnyOf => "any_of",
                    });
                    out.raw("}");
                    return;
                }
                AuthError::RateLimited { limit, .. } => {
                    out.raw("\"limit\":");
                    out.string(&limit.to_string());
                    out.raw(",");
                }
                _ => {}
            }
            out.raw("\"reason\":");
            out.known(error.reason());
            out.raw("}");
        });
        ErrorResponse {
            status: error.status(),
            headers,
            body,
        }
    }
}

/// What a missing or malformed credential's details say is expected.
const EXPECTED_FORMAT: &str = "x-api-key header or Authorization: Bearer";

/// A JSON text written straight into bytes: rejections are where floods land, and building a
/// `serde_json::Value` tree to print it cost ten times the writing (an instruction-count
/// benchmark in `crates/keygate-bench` measures the layer's rejection).
struct JsonWriter(Vec<u8>);

impl JsonWriter {
    fn raw(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }

    /// `s` as a JSON string, unchecked: only for keygate's own texts (codes, reasons,
    /// messages), none of which needs escaping (checked by the tests, which compare every
    /// variant's body with serde_json's).
    fn known(&mut self, s: &'static str) {
        debug_assert!(!needs_escape(s), "{s}");
        self.0.push(b'"');
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(b'"');
    }

    fn text(&mut self, t: Text<'_>) {
        match t {
            Text::Known(s) => self.known(s),
            Text::Given(s) => self.string(s),
        }
    }

    /// `s` as a JSON string: as it is when nothing in it needs escaping, else through
    /// serde_json's escaping.
    fn string(&mut self, s: &str) {
        if !needs_escape(s) {
            self.0.push(b'"');
            self.0.extend_from_slice(s.as_bytes());
            self.0.push(b'"');
        } else if serde_json::to_writer(&mut self.0, s).is_err() {
            // Writing into a Vec cannot fail; an empty string keeps the JSON valid regardless.
            self.raw("\"\"");
        }
    }

    fn scopes(&mut self, scopes: &[Scope]) {
        self.raw("[");
        for (i, s) in scopes.iter().enumerate() {
            if i > 0 {
                self.raw(",");
            }
            self.string(s.as_str());
        }
        self.raw("]");
    }

    /// `now` as RFC 3339 in whole seconds, UTC (`2026-01-01T00:00:00Z`), as
    /// `to_rfc3339_opts(SecondsFormat::Secs, true)` writes it.
    fn timestamp(&mut self, now: &DateTime<Utc>) {
        use chrono::{Datelike, Timelike};
        let (year, second) = (now.year(), now.second());
        // Years of four digits without a leap second: every clock keygate reads. Anything else
        // goes through chrono.
        if !(0..=9999).contains(&year) || now.nanosecond() >= 1_000_000_000 {
            let text = now.to_rfc3339_opts(SecondsFormat::Secs, true);
            self.string(&text);
            return;
        }
        let two = |n: u32| [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
        let y = year as u32;
        let mut buf = [0u8; 22];
        buf[0] = b'"';
        buf[1..3].copy_from_slice(&two(y / 100));
        buf[3..5].copy_from_slice(&two(y % 100));
        buf[5] = b'-';
        buf[6..8].copy_from_slice(&two(now.month()));
        buf[8] = b'-';
        buf[9..11].copy_from_slice(&two(now.day()));
        buf[11] = b'T';
        buf[12..14].copy_from_slice(&two(now.hour()));
        buf[14] = b':';
        buf[15..17].copy_from_slice(&two(now.minute()));
        buf[17] = b':';
        buf[18..20].copy_from_slice(&two(second));
        buf[20] = b'Z';
        buf[21] = b'"';
        self.0.extend_from_slice(&buf);
    }
}

/// A text to write: keygate's own, or one given by the application.
enum Text<'a> {
    Known(&'static str),
    Given(&'a str),
}

/// Whether `s` holds a byte that JSON escapes (or that is not ASCII, left to serde_json).
fn needs_escape(s: &str) -> bool {
    s.bytes()
        .any(|b| b < 0x20 || b == b'"' || b == b'\\' || b >= 0x7f)
}

/// The envelope with `details` written by `details` (one JSON value).
fn write_envelope(
    code: Text<'_>,
    message: Text<'_>,
    ctx: &RenderContext<'_>,
    details: impl FnOnce(&mut JsonWriter),
) -> Bytes {
    // Nearly every rejection fits (a long scope list may not): no reallocation.
    let mut out = JsonWriter(Vec::with_capacity(384));
    out.raw("{\"error\":{\"code\":");
    out.text(code);
    out.raw(",\"details\":");
    details(&mut out);
    out.raw(",\"message\":");
    out.text(message);
    out.raw("},\"meta\":{\"requestId\":");
    out.string(ctx.request_id);
    out.raw(",\"timestamp\":");
    out.timestamp(&ctx.now);
    out.raw("}}");
    Bytes::from(out.0)
}

/// The policy name in the rate-limit fields: the limit is the presented key's own.
const RATE_LIMIT_POLICY: &str = "key";

/// `RateLimit-Policy` and `RateLimit` for a spent limit, in the syntax of
/// draft-ietf-httpapi-ratelimit-headers-11 (Structured Field lists; a policy is a String item
/// with `q` = quota and `w` = window in seconds; a service limit names the policy with
/// `r` = remaining quota and `t` = seconds of the effective window):
///
/// ```text
/// RateLimit-Policy: "key";q=5;w=1
/// RateLimit: "key";r=0;t=1
/// ```
///
/// `t` equals `Retry-After`: with GCRA the next request is free after that many seconds.
fn rate_limit_fields(limit: &RateLimit, retry_after_secs: u32) -> [(HeaderName, String); 2] {
    [
        (
            HeaderName::from_static("ratelimit-policy"),
            format!(
                "\"{RATE_LIMIT_POLICY}\";q={};w={}",
                limit.requests(),
                limit.period().as_secs()
            ),
        ),
        (
            HeaderName::from_static("ratelimit"),
            format!("\"{RATE_LIMIT_POLICY}\";r=0;t={retry_after_secs}"),
        ),
    ]
}

/// The JSON envelope `{"error":{code,message,details},"meta":{requestId,timestamp}}`, for
/// application errors that should look like keygate's (e.g. a 400 on a bad JSON body).
pub fn envelope(code: &str, message: &str, details: Value, ctx: &RenderContext<'_>) -> Bytes {
    write_envelope(Text::Given(code), Text::Given(message), ctx, |out| {
        if serde_json::to_writer(&mut out.0, &details).is_err() {
            // A `Value` always serializes (its map keys are strings).
            out.raw("null");
        }
    })
}

/// Longest `x-request-id` that is echoed back; longer or odd ones are replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The request id to answer with: the caller's `x-request-id` when it is 1–128 characters of
/// `[A-Za-z0-9._:-]` (safe to echo into a header and a log), otherwise a new UUID v4.
pub fn request_id(incoming: Option<&[u8]>) -> String {
    match incoming {
        Some(v)
            if !v.is_empty()
                && v.len() <= MAX_REQUEST_ID_LEN
                && v.iter().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-')
                }) =>
        {
            // Every byte was checked to be ASCII just above.
            String::from_utf8_lossy(v).into_owned()
        }
        _ => new_request_id(),
    }
}

/// A fresh random-looking UUID v4 without a system call: the keyed BLAKE3 of a per-process
/// counter, keyed with 32 bytes of OS randomness drawn once. Rejections are where floods
/// land, and `Uuid::new_v4` asks the OS for randomness on every call.
fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let key = KEY.get_or_init(|| {
        let mut k = [0u8; 32];
        if getrandom::fill(&mut k).is_err() {
            // Without OS randomness the ids stay unique (the counter), only predictable.
            k = *blake3::hash(format!("{:?}", std::time::SystemTime::now()).as_bytes()).as_bytes();
        }
        k
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let digest = blake3::keyed_hash(key, &n.to_le_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_bytes()[..16]);
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .encode_lower(&mut text)
        .to_owned()
}

/// The check lives here, beside the error it answers with, so that scopes stay free of
/// errors (`error` uses `scope`, never the reverse).
impl ScopeRequirement {
    /// Checks `granted`; on failure returns the 403 error naming required and missing scopes.
    pub fn check(&self, granted: &ScopeSet) -> Result<(), AuthError> {
        if self.is_satisfied_by(granted) {
            return Ok(());
        }
        let missing = self
            .scopes()
            .iter()
            .filter(|s| !granted.contains(s.as_str()))
            .cloned()
            .collect();
        Err(AuthError::InsufficientScope {
            requirement: self.kind(),
            required: self.scopes().to_vec(),
            missing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The envelope as a `serde_json::Value` tree prints it: what `JsonRenderer` answered
    /// before it wrote its bodies directly, and the reference they must equal byte for byte.
    fn reference_body(e: &AuthError, ctx: &RenderContext<'_>) -> String {
        let mut details = json!({ "reason": e.reason() });
        match e {
            AuthError::MissingCredentials | AuthError::MalformedKey(_) => {
                details["expectedFormat"] =
                    Value::from("x-api-key header or Authorization: Bearer");
            }
            AuthError::InsufficientScope {
                requirement,
                required,
                missing,
            } => {
                details["required"] = scope_list(required);
                details["missing"] = scope_list(missing);
                details["requirement"] = Value::from(match requirement {
                    Requirement::AllOf => "all_of",
                    Requirement::AnyOf => "any_of",
                });
            }
            AuthError::RateLimited { limit, .. } => {
                details["limit"] = Value::from(limit.to_string());
            }
            _ => {}
        }
        json!({
            "error": { "code": e.code(), "message": e.message(), "details": details },
            "meta": {
                "requestId": ctx.request_id,
                "timestamp": ctx.now.to_rfc3339_opts(SecondsFormat::Secs, true),
            }
        })
        .to_string()
    }

    fn scope_list(scopes: &[Scope]) -> Value {
        Value::Array(scopes.iter().map(|s| Value::from(s.as_str())).collect())
    }

    fn every_error() -> Vec<AuthError> {
        let s = |x: &str| Scope::new(x).unwrap();
        vec![
            AuthError::MissingCredentials,
            AuthError::MalformedKey(Malformed::RepeatedHeader),
            AuthError::MalformedKey(Malformed::HeaderValue),
            AuthError::MalformedKey(Malformed::UnsupportedScheme),
            AuthError::MalformedKey(Malformed::EmptyBearer),
            AuthError::MalformedKey(Malformed::Token(TokenError::Checksum)),
            AuthError::MalformedKey(Malformed::Token(TokenError::Shape)),
            AuthError::MalformedKey(Malformed::WrongPrefix),
            AuthError::InvalidKey,
            AuthError::ExpiredKey,
            AuthError::RevokedKey,
            AuthError::InsufficientScope {
                requirement: Requirement::AllOf,
                required: vec![s("a:read"), s("a:write")],
                missing: vec![s("a:write")],
            },
            AuthError::InsufficientScope {
                requirement: Requirement::AnyOf,
                required: vec![s("content.register")],
                missing: vec![],
            },
            AuthError::RateLimited {
                limit: "5/1s".parse().unwrap(),
                retry_after_secs: 1,
            },
            AuthError::TooManyAttempts {
                retry_after_secs: 42,
            },
            AuthError::StoreUnavailable {
                retry_after_secs: 5,
            },
            AuthError::VerifierBusy {
                retry_after_secs: 5,
            },
            AuthError::Misconfigured("no layer \"here\"\n\u{e9}"),
        ]
    }

    #[test]
    fn rendered_bodies_are_byte_for_byte_the_value_trees_printing() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let times = [
            Utc::now(),
            at("2026-01-02T03:04:05.999Z"),
            at("0999-12-31T23:59:59Z"),
            at("1970-01-01T00:00:00Z"),
            // A leap second and a five-digit year: chrono's own formatting.
            chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
                .unwrap()
                .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
                .unwrap()
                .and_utc(),
            chrono::NaiveDate::from_ymd_opt(10000, 1, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc(),
        ];
        let ids = [
            "req-1",
            "0f5c3a1e-7d2b-4c8e-9a6f-1b2c3d4e5f60",
            "a\"b\\c\n\u{1}\u{7f}é",
        ];
        for e in every_error() {
            for now in times {
                for id in ids {
                    let ctx = RenderContext::new(id, now);
                    let rendered = JsonRenderer::default().render(&e, &ctx);
                    let body = std::str::from_utf8(&rendered.body).unwrap();
                    assert_eq!(
                        body,
                        reference_body(&e, &ctx),
                        "{e:?} at {now:?}, id {id:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn envelope_writes_application_details_as_given() {
        let ctx = RenderContext::new("req-1", Utc::now());
        let details = json!({ "field": "name", "why": "too \"long\"", "max": 100 });
        let body = envelope("BAD_REQUEST", "Invalid body", details.clone(), &ctx);
        let expected = json!({
            "error": { "code": "BAD_REQUEST", "message": "Invalid body", "details": details },
            "meta": {
                "requestId": "req-1",
                "timestamp": ctx.now.to_rfc3339_opts(SecondsFormat::Secs, true),
            }
        });
        assert_eq!(std::str::from_utf8(&body).unwrap(), expected.to_string());
    }

    #[test]
    fn all_of_reports_only_missing_scopes() {
        let granted = ScopeSet::parse(["entities:read"]).unwrap();
        let req = ScopeRequirement::all_of(["entities:read", "entities:write"]);
        match req.check(&granted) {
            Err(AuthError::InsufficientScope { missing, .. }) => {
                assert_eq!(missing, vec![Scope::new("entities:write").unwrap()])
            }
            other => panic!("{other:?}"),
        }
    }

    fn render(e: &AuthError) -> (ErrorResponse, Value) {
        let ctx = RenderContext {
            request_id: "req-1",
            now: Utc::now(),
        };
        let r = JsonRenderer::default().render(e, &ctx);
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        (r, v)
    }

    fn header<'a>(r: &'a ErrorResponse, name: &str) -> Option<&'a str> {
        r.headers.get(name).map(|v| v.to_str().unwrap())
    }

    #[test]
    fn missing_credentials_has_plain_challenge() {
        let (r, v) = render(&AuthError::MissingCredentials);
        assert_eq!(r.status, 401);
        assert_eq!(header(&r, "www-authenticate"), Some("Bearer realm=\"api\""));
        assert_eq!(v["error"]["code"], "UNAUTHORIZED");
        assert_eq!(v["error"]["message"], "Missing authentication header");
        assert_eq!(v["error"]["details"]["reason"], "missing_credentials");
        assert_eq!(v["meta"]["requestId"], "req-1");
    }

    #[test]
    fn invalid_key_says_invalid_token() {
        let (r, v) = render(&AuthError::InvalidKey);
        assert_eq!(
            header(&r, "www-authenticate"),
            Some("Bearer realm=\"api\", error=\"invalid_token\"")
        );
        assert_eq!(v["error"]["message"], "Invalid API key");
    }

    #[test]
    fn insufficient_scope_lists_required_and_missing() {
        let s = |x: &str| Scope::new(x).unwrap();
        let (r, v) = render(&AuthError::InsufficientScope {
            requirement: Requirement::AllOf,
            required: vec![s("a:read"), s("a:write")],
            missing: vec![s("a:write")],
        });
        assert_eq!(r.status, 403);
        assert_eq!(v["error"]["code"], "FORBIDDEN");
        assert_eq!(v["error"]["details"]["missing"], json!(["a:write"]));
        assert!(header(&r, "www-authenticate")
            .unwrap()
            .contains("error=\"insufficient_scope\", scope=\"a:read a:write\""));
    }

    #[test]
    fn store_unavailable_is_503_with_retry_after() {
        let (r, v) = render(&AuthError::StoreUnavailable {
            retry_after_secs: 5,
        });
        assert_eq!(r.status, 503);
        assert_eq!(header(&r, "retry-after"), Some("5"));
        assert_eq!(v["error"]["code"], "SERVICE_UNAVAILABLE");
    }

    #[test]
    fn too_many_attempts_is_429_with_retry_after_and_no_challenge() {
        let e = AuthError::TooManyAttempts {
            retry_after_secs: 42,
        };
        let (r, v) = render(&e);
        assert_eq!(r.status, 429);
        assert_eq!(header(&r, "retry-after"), Some("42"));
        assert_eq!(header(&r, "www-authenticate"), None);
        assert_eq!(header(&r, "x-request-id"), Some("req-1"));
        assert_eq!(v["error"]["code"], "TOO_MANY_REQUESTS");
        assert_eq!(v["error"]["details"]["reason"], "too_many_attempts");
        assert_ne!(v["error"]["message"], "Invalid API key");
        assert_eq!(v["meta"]["requestId"], "req-1");
        assert_eq!((e.status(), e.code()), (429, "TOO_MANY_REQUESTS"));
    }

    #[test]
    fn rate_limited_is_429_with_retry_after_and_the_ratelimit_fields() {
        let e = AuthError::RateLimited {
            limit: "5/1s".parse().unwrap(),
            retry_after_secs: 1,
        };
        let (r, v) = render(&e);
        assert_eq!(r.status, 429);
        assert_eq!(header(&r, "retry-after"), Some("1"));
        assert_eq!(header(&r, "ratelimit-policy"), Some("\"key\";q=5;w=1"));
        assert_eq!(header(&r, "ratelimit"), Some("\"key\";r=0;t=1"));
        assert_eq!(header(&r, "www-authenticate"), None);
        assert_eq!(v["error"]["code"], "TOO_MANY_REQUESTS");
        assert_eq!(v["error"]["details"]["reason"], "rate_limited");
        assert_eq!(v["error"]["details"]["limit"], "5/1s");
    }

    #[test]
    fn rate_limit_fields_give_the_window_in_seconds() {
        let e = AuthError::RateLimited {
            limit: "1000/1h".parse().unwrap(),
            retry_after_secs: 4,
        };
        let (r, _) = render(&e);
        assert_eq!(
            header(&r, "ratelimit-policy"),
            Some("\"key\";q=1000;w=3600")
        );
        assert_eq!(header(&r, "ratelimit"), Some("\"key\";r=0;t=4"));
        assert_eq!(header(&r, "retry-after"), Some("4"));
    }

    #[test]
    fn verifier_busy_is_503_with_retry_after() {
        let (r, v) = render(&AuthError::VerifierBusy {
            retry_after_secs: 5,
        });
        assert_eq!(r.status, 503);
        assert_eq!(header(&r, "retry-after"), Some("5"));
        assert_eq!(header(&r, "www-authenticate"), None);
        assert_eq!(v["error"]["code"], "SERVICE_UNAVAILABLE");
        assert_eq!(v["error"]["details"]["reason"], "verifier_busy");
    }

    #[test]
    fn request_id_is_echoed_only_when_safe() {
        assert_eq!(request_id(Some(b"abc-123")), "abc-123");
        assert_ne!(request_id(Some(b"bad\r\nvalue")), "bad\r\nvalue");
        assert_eq!(request_id(Some(&[b'a'; 200])).len(), 36);
        assert_eq!(request_id(None).len(), 36);
    }

    #[test]
    fn generated_request_ids_are_distinct_uuid_v4s() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| request_id(None)).collect();
        assert_eq!(ids.len(), 1000);
        for id in ids.iter().take(10) {
            let u = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(u.get_version_num(), 4, "{id}");
        }
    }
}

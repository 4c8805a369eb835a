//! Request bodies the demo API refuses, answered in keygate's error envelope so that every
//! error of the API has one shape.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use serde_json::json;

use keygate::{envelope, request_id};
use keygate::{ErrorResponse, RenderContext};

use crate::shape::NewItem;

/// Longest item name, in characters.
pub const MAX_NAME_LEN: usize = 200;

/// Why a POST body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The body is not declared as JSON (415 `unsupported_media_type`).
    UnsupportedMediaType,
    /// The body is not JSON at all (400 `invalid_json`).
    InvalidJson(String),
    /// JSON of the wrong shape, or a name that is empty, too long or has control characters
    /// (400 `invalid_body`).
    InvalidBody(String),
}

impl BodyError {
    /// HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            BodyError::UnsupportedMediaType => 415,
            _ => 400,
        }
    }

    /// `error.code` of the envelope.
    pub fn code(&self) -> &'static str {
        match self {
            BodyError::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            _ => "BAD_REQUEST",
        }
    }

    /// `details.reason` of the envelope.
    pub fn reason(&self) -> &'static str {
        match self {
            BodyError::UnsupportedMediaType => "unsupported_media_type",
            BodyError::InvalidJson(_) => "invalid_json",
            BodyError::InvalidBody(_) => "invalid_body",
        }
    }

    /// Human message of the envelope.
    pub fn message(&self) -> String {
        match self {
            BodyError::UnsupportedMediaType => {
                "Send the body as JSON with Content-Type: application/json".to_owned()
            }
            BodyError::InvalidJson(e) => format!("Request body is not valid JSON: {e}"),
            BodyError::InvalidBody(e) => format!("Request body is not acceptable: {e}"),
        }
    }

    /// The error as keygate's JSON envelope, echoing the caller's `x-request-id` when
    /// acceptable (a framework copies it into its response like any keygate rejection).
    pub fn render(&self, request_id_header: Option<&[u8]>) -> ErrorResponse {
        error_response(
            self.status(),
            self.code(),
            &self.message(),
            json!({ "reason": self.reason(), "expectedFormat": "{\"name\": \"…\"}" }),
            request_id_header,
        )
    }
}

/// An application error in keygate's envelope (`content-type: application/json`,
/// `x-request-id` echoed when acceptable, else generated), so that every error of the API
/// has one shape. `details` should hold at least a `reason`.
pub fn error_response(
    status: u16,
    code: &str,
    message: &str,
    details: serde_json::Value,
    request_id_header: Option<&[u8]>,
) -> ErrorResponse {
    let id = request_id(request_id_header);
    let ctx = RenderContext::new(&id, chrono::Utc::now());
    let body: Bytes = envelope(code, message, details, &ctx);
    let mut headers = HeaderMap::with_capacity(2);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // `request_id` answers ASCII only, always a valid value; anything else would be left out.
    if let Ok(id) = HeaderValue::try_from(id) {
        headers.insert("x-request-id", id);
    }
    ErrorResponse {
        status,
        headers,
        body,
    }
}

/// 404 `NOT_FOUND` (`details.reason` `not_found`) in the envelope.
pub fn not_found(request_id_header: Option<&[u8]>) -> ErrorResponse {
    error_response(
        404,
        "NOT_FOUND",
        "No such route",
        json!({ "reason": "not_found" }),
        request_id_header,
    )
}

/// 405 `METHOD_NOT_ALLOWED` (`details.reason` `method_not_allowed`) in the envelope.
pub fn method_not_allowed(request_id_header: Option<&[u8]>) -> ErrorResponse {
    error_response(
        405,
        "METHOD_NOT_ALLOWED",
        "This route does not accept this method",
        json!({ "reason": "method_not_allowed" }),
        request_id_header,
    )
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for BodyError {}

fn is_json(content_type: &[u8]) -> bool {
    let Ok(ct) = std::str::from_utf8(content_type) else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

pub(crate) fn parse_new_item(
    content_type: Option<&[u8]>,
    body: &[u8],
) -> Result<NewItem, BodyError> {
    if !content_type.is_some_and(is_json) {
        return Err(BodyError::UnsupportedMediaType);
    }
    let new: NewItem = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            BodyError::InvalidBody(e.to_string())
        } else {
            BodyError::InvalidJson(e.to_string())
        }
    })?;
    let name = new.name.trim();
    if name.is_empty() {
        return Err(BodyError::InvalidBody("name must not be empty".into()));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(BodyError::InvalidBody(format!(
            "name is longer than {MAX_NAME_LEN} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(BodyError::InvalidBody(
            "name contains control characters".into(),
        ));
    }
    Ok(NewItem {
        name: name.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&[u8]> = Some(b"application/json; charset=utf-8");

    #[test]
    fn a_name_is_accepted_and_trimmed() {
        let n = parse_new_item(JSON, br#"{"name":"  board  "}"#).unwrap();
        assert_eq!(n.name, "board");
    }

    #[test]
    fn broken_json_and_wrong_shapes_have_distinct_reasons() {
        assert_eq!(
            parse_new_item(JSON, b"{nope").unwrap_err().reason(),
            "invalid_json"
        );
        assert_eq!(
            parse_new_item(JSON, b"").unwrap_err().reason(),
            "invalid_json"
        );
        assert_eq!(
            parse_new_item(JSON, br#"{"title":"x"}"#)
                .unwrap_err()
                .reason(),
            "invalid_body"
        );
        assert_eq!(
            parse_new_item(JSON, br#"{"name":"  "}"#)
                .unwrap_err()
                .reason(),
            "invalid_body"
        );
        assert_eq!(
            parse_new_item(JSON, br#"{"name":"a\u0000b"}"#)
                .unwrap_err()
                .reason(),
            "invalid_body"
        );
    }

    #[test]
    fn a_body_not_declared_as_json_is_415() {
        let e = parse_new_item(Some(b"text/plain"), br#"{"name":"x"}"#).unwrap_err();
        assert_eq!(e.status(), 415);
        assert_eq!(parse_new_item(None, b"{}").unwrap_err().status(), 415);
    }

    #[test]
    fn rendered_error_uses_the_keygate_envelope_and_echoes_the_request_id() {
        let r = BodyError::InvalidJson("eof".into()).render(Some(b"req-7"));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(r.status, 400);
        assert_eq!(v["error"]["code"], "BAD_REQUEST");
        assert_eq!(v["error"]["details"]["reason"], "invalid_json");
        assert_eq!(v["meta"]["requestId"], "req-7");
        assert_eq!(r.headers["x-request-id"], "req-7");
    }
}

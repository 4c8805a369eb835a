//! The "API Keys" page: one HTML document, its script and its style sheet, compiled into the
//! crate (no build step, no external network) and served under a strict CSP.

use bytes::Bytes;
use http::header::{
    HeaderMap, HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};

use crate::error::ErrorResponse;

const INDEX: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");
const STYLE: &str = include_str!("page/app.css");

/// Scripts and styles from this origin only, no inline code, no framing, no other network.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

/// The page's three documents, ready to answer.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    html: Bytes,
}

/// Escapes a path for an HTML attribute value.
fn attribute(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

impl Page {
    /// The page for an API at `api_path`, served at `page_path`.
    pub(crate) fn new(api_path: &str, page_path: &str) -> Self {
        let html = INDEX
            .replace("__KEYGATE_API_BASE__", &attribute(api_path))
            .replace("__KEYGATE_PAGE_BASE__", &attribute(page_path));
        Page {
            html: Bytes::from(html),
        }
    }

    /// The answer for `asset` (what follows the page path: empty, `app.js` or `app.css`).
    pub(crate) fn asset(&self, asset: &str) -> Option<ErrorResponse> {
        let (content_type, body) = match asset {
            "" => ("text/html; charset=utf-8", self.html.clone()),
            "app.js" => (
                "text/javascript; charset=utf-8",
                Bytes::from_static(SCRIPT.as_bytes()),
            ),
            "app.css" => (
                "text/css; charset=utf-8",
                Bytes::from_static(STYLE.as_bytes()),
            ),
            _ => return None,
        };
        let headers = HeaderMap::from_iter([
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ]);
        Some(ErrorResponse {
            status: 200,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_substituted_and_escaped() {
        let p = Page::new("/api/\"x", "/keys");
        let html = String::from_utf8(p.html.to_vec()).unwrap();
        assert!(!html.contains("__KEYGATE_"));
        assert!(html.contains("/api/&quot;x"));
        assert!(html.contains("/keys/app.js"));
    }

    #[test]
    fn every_asset_carries_the_csp() {
        let p = Page::new("/api/v1/keys", "/keys");
        for asset in ["", "app.js", "app.css"] {
            let a = p.asset(asset).unwrap();
            assert_eq!(a.headers[CONTENT_SECURITY_POLICY], CSP);
        }
        assert!(p.asset("../secret").is_none());
    }

    #[test]
    fn no_inline_script_or_style_in_the_page() {
        let html = INDEX.to_ascii_lowercase();
        assert!(!html.contains("<script>"), "inline script");
        assert!(!html.contains(" onclick="), "inline handler");
        assert!(!html.contains("style=\""), "inline style");
        assert!(!SCRIPT.contains("innerHTML"), "innerHTML in app.js");
    }
}

//! The "API Keys" page: one HTML document, its script and its style sheet, compiled into the
//! crate (no build step, no external network) and served under a strict CSP.

use bytes::Bytes;

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
        Some(ErrorResponse {
            status: 200,
            headers: vec![
                ("content-type", content_type.to_owned()),
                ("content-security-policy", CSP.to_owned()),
                ("x-content-type-options", "nosniff".to_owned()),
                ("referrer-policy", "no-referrer".to_owned()),
                ("x-frame-options", "DENY".to_owned()),
                ("cache-control", "no-cache".to_owned()),
            ],
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
            assert!(a
                .headers
                .iter()
                .any(|(n, v)| *n == "content-security-policy" && v == CSP));
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

//! [`Rendered`]: any framework-free [`ErrorResponse`] as an axum response.

use axum_core::body::Body;
use axum_core::response::{IntoResponse, Response};
use keygate::adapter::into_http_response;
use keygate::ErrorResponse;

/// A rendered error — by a keygate renderer, or by the application in keygate's envelope
/// (e.g. a 400 for a bad body built with [`keygate::envelope`]) — as an axum response,
/// so that every error of an API can share one shape.
///
/// ```
/// use axum::response::IntoResponse;
/// use keygate::{AuthError, ErrorRenderer, JsonRenderer, RenderContext};
///
/// let ctx = RenderContext::new("req-1", chrono::Utc::now());
/// let rendered = JsonRenderer::default().render(&AuthError::InvalidKey, &ctx);
/// let res = keygate_axum::Rendered(rendered).into_response();
/// assert_eq!(res.status(), 401);
/// assert_eq!(res.headers()["x-request-id"], "req-1");
/// ```
#[derive(Debug, Clone)]
pub struct Rendered(pub ErrorResponse);

impl From<ErrorResponse> for Rendered {
    fn from(r: ErrorResponse) -> Self {
        Rendered(r)
    }
}

impl IntoResponse for Rendered {
    fn into_response(self) -> Response {
        into_http_response::<Body>(self.0)
    }
}

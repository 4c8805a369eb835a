//! Glue shared by keygate's own adapters (`keygate-axum`, `keygate-actix`) and the tower
//! layer, so that the adapters stay glue only. Not part of the public API: hidden from the
//! docs and free to change in any release. Applications use the adapters, [`Gate`], the
//! layers and the extractors instead.
//!
//! [`Gate`]: crate::Gate

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};

use crate::error::{AuthError, ErrorRenderer, ErrorResponse, JsonRenderer};
use crate::gate::{render_rejection, AuthContext};
use crate::principal::Principal;
use crate::scope::ScopeRequirement;

/// What a scope guard or extractor answers when no authentication layer ran before it.
pub const MISSING_TOWER_LAYER: &str =
    "keygate: no ApiKeyLayer in front of this route; add `.layer(ApiKeyLayer::new(verifier))` outside the scope guard or extractor";

/// Copies a rendered rejection into an `http` 1.x response.
pub fn into_http_response<B: From<Bytes>>(rendered: ErrorResponse) -> Response<B> {
    let mut res = Response::new(B::from(rendered.body));
    *res.status_mut() =
        StatusCode::from_u16(rendered.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // The headers are typed, so every one is valid (no renderer can hand us a bad name or
    // value any more) and they are moved over as they are, repeated names included.
    *res.headers_mut() = rendered.headers;
    res
}

/// Renders `error` with `renderer`, echoing the caller's
/// `x-request-id` when acceptable.
pub fn render_with(
    renderer: &dyn ErrorRenderer,
    error: &AuthError,
    request_id_header: Option<&[u8]>,
) -> ErrorResponse {
    render_rejection(renderer, error, request_id_header)
}

/// The principal a guard or extractor needs, or why there is none: no credential (the
/// authentication layer ran in optional mode) or no layer at all (`missing_layer` names it).
pub fn require_principal<'p>(
    principal: Option<&'p Arc<Principal>>,
    context: Option<&AuthContext>,
    missing_layer: &'static str,
) -> Result<&'p Arc<Principal>, AuthError> {
    match (principal, context) {
        (Some(p), _) => Ok(p),
        (None, Some(_)) => Err(AuthError::MissingCredentials),
        (None, None) => Err(AuthError::Misconfigured(missing_layer)),
    }
}

/// What a scope guard or extractor downstream of the layer runs: the principal the layer
/// admitted (see [`require_principal`]) if it holds `requirement`, else 403, counted as a
/// refusal in the key's usage.
pub fn require_scopes<'p>(
    principal: Option<&'p Arc<Principal>>,
    context: Option<&AuthContext>,
    missing_layer: &'static str,
    requirement: &ScopeRequirement,
) -> Result<&'p Arc<Principal>, AuthError> {
    let p = require_principal(principal, context, missing_layer)?;
    match context {
        Some(c) => c.verifier().require(p, requirement)?,
        None => p.require(requirement)?,
    }
    Ok(p)
}

/// The renderer to use downstream of the layer: the layer's, or the default when the layer
/// is missing.
pub fn renderer_of(context: Option<&AuthContext>) -> Arc<dyn ErrorRenderer> {
    context.map_or_else(
        || Arc::new(JsonRenderer::default()) as Arc<dyn ErrorRenderer>,
        |c| Arc::clone(c.renderer()),
    )
}

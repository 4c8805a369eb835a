//! Extractors: [`Principal`], `Option<Principal>`, [`Scoped<S>`], and their rejection.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::HeaderValue;
use keygate::adapter::{render_with, renderer_of, require_principal, require_scopes};
use keygate::extract::REQUEST_ID_HEADER;
use keygate::{AuthContext, AuthError, ErrorResponse, ScopeName, ScopeRequirement};

use crate::{Rendered, MISSING_AXUM_LAYER};

/// Why an extractor refused the request, already rendered by the renderer configured on the
/// `ApiKeyLayer` (this crate's, or the core's [`keygate::ApiKeyLayer`]), or by the default
/// [`keygate::JsonRenderer`] when there is no layer. As a response it is exactly that rendering: 401, 403, 503, or 500 naming the
/// missing layer.
#[derive(Debug, Clone)]
pub struct AuthRejection {
    error: AuthError,
    rendered: ErrorResponse,
}

impl AuthRejection {
    /// Renders `error` for the request whose head is `parts` (echoing its `x-request-id`).
    pub fn new(parts: &Parts, error: AuthError) -> Self {
        let renderer = renderer_of(parts.extensions.get::<AuthContext>());
        let rendered = render_with(
            renderer.as_ref(),
            &error,
            parts
                .headers
                .get(REQUEST_ID_HEADER)
                .map(HeaderValue::as_bytes),
        );
        AuthRejection { error, rendered }
    }

    /// The error behind the rejection.
    pub fn error(&self) -> &AuthError {
        &self.error
    }

    /// The rendered response (status, headers, body), framework-free.
    pub fn rendered(&self) -> &ErrorResponse {
        &self.rendered
    }
}

impl fmt::Display for AuthRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for AuthRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        Rendered(self.rendered).into_response()
    }
}

/// The principal the layer left in the request, or why there is none.
fn principal_of(parts: &Parts) -> Result<Arc<keygate::Principal>, AuthError> {
    require_principal(
        parts.extensions.get::<Arc<keygate::Principal>>(),
        parts.extensions.get::<AuthContext>(),
        MISSING_AXUM_LAYER,
    )
    .cloned()
}

/// The verified principal of the request (key id, name, org, team, owner, scopes, …).
///
/// Needs an `ApiKeyLayer` (this crate's, or the core's [`keygate::ApiKeyLayer`]) in front of
/// the route. Behind an optional
/// layer, take `Option<Principal>`: `None` for anonymous requests.
///
/// ```
/// async fn handler(who: keygate_axum::Principal) -> String {
///     who.org.to_string() // derefs to keygate::Principal
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Principal(pub Arc<keygate::Principal>);

impl Principal {
    /// The shared core principal.
    pub fn into_inner(self) -> Arc<keygate::Principal> {
        self.0
    }
}

impl Deref for Principal {
    type Target = keygate::Principal;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        principal_of(parts)
            .map(Principal)
            .map_err(|e| AuthRejection::new(parts, e))
    }
}

/// `Option<Principal>`: `None` when an optional layer let an anonymous request through.
/// Without any layer it still refuses (500 naming the missing layer) rather than silently
/// treating every caller as anonymous.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match principal_of(parts) {
            Ok(p) => Ok(Some(Principal(p))),
            Err(AuthError::MissingCredentials) => Ok(None),
            Err(e) => Err(AuthRejection::new(parts, e)),
        }
    }
}

/// The principal, proven to hold scope `S` (declared once with [`keygate::scope!`]); a 403
/// `insufficient_scope` naming the scope otherwise.
///
/// ```
/// keygate::scope!(pub BoardsWrite = "boards:write");
///
/// async fn create_board(who: keygate_axum::Scoped<BoardsWrite>) -> String {
///     format!("{} may write boards", who.name)
/// }
/// ```
pub struct Scoped<S: ScopeName>(pub Principal, PhantomData<S>);

impl<S: ScopeName> Scoped<S> {
    /// The principal.
    pub fn into_inner(self) -> Principal {
        self.0
    }
}

impl<S: ScopeName> Clone for Scoped<S> {
    fn clone(&self) -> Self {
        Scoped(self.0.clone(), PhantomData)
    }
}

impl<S: ScopeName> fmt::Debug for Scoped<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Scoped")
            .field(&S::SCOPE)
            .field(&self.0)
            .finish()
    }
}

impl<S: ScopeName> Deref for Scoped<S> {
    type Target = keygate::Principal;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<S: ScopeName, St: Send + Sync> FromRequestParts<St> for Scoped<S> {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, Self::Rejection> {
        let ext = &parts.extensions;
        let checked = require_scopes(
            ext.get(),
            ext.get::<AuthContext>(),
            MISSING_AXUM_LAYER,
            &ScopeRequirement::of::<S>(),
        )
        .cloned();
        checked
            .map(|p| Scoped(Principal(p), PhantomData))
            .map_err(|e| AuthRejection::new(parts, e))
    }
}

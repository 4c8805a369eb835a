//! actix extractors: [`Principal`], `Option<Principal>` (actix's blanket impl), [`Scoped<S>`].

use std::fmt;
use std::future::{ready, Ready};
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header::HeaderValue;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use keygate::adapter::{render_with, renderer_of, require_principal, require_scopes};
use keygate::extract::REQUEST_ID_HEADER;
use keygate::{AuthContext, AuthError, ErrorResponse, ScopeName, ScopeRequirement};

use crate::{into_actix_response, MISSING_ACTIX_MIDDLEWARE};

/// A rejection rendered by keygate's renderer; as an actix error it answers exactly that
/// response (401/403/503 — or 500 naming the missing middleware when misconfigured).
#[derive(Debug, Clone)]
pub struct AuthRejection {
    error: AuthError,
    rendered: ErrorResponse,
}

impl AuthRejection {
    /// Renders `error` for `req`, with the renderer [`ApiKeyAuth`](crate::ApiKeyAuth) left in
    /// the request (or the default one).
    pub fn new(req: &HttpRequest, error: AuthError) -> Self {
        let ext = req.extensions();
        let renderer = renderer_of(ext.get::<AuthContext>());
        let rendered = render_with(
            renderer.as_ref(),
            &error,
            req.headers()
                .get(REQUEST_ID_HEADER)
                .map(HeaderValue::as_bytes),
        );
        AuthRejection { error, rendered }
    }

    /// The error.
    pub fn error(&self) -> &AuthError {
        &self.error
    }
}

impl fmt::Display for AuthRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl ResponseError for AuthRejection {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.rendered.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        into_actix_response(self.rendered.clone())
    }
}

fn principal_of(req: &HttpRequest) -> Result<Arc<keygate::Principal>, AuthError> {
    let ext = req.extensions();
    require_principal(
        ext.get(),
        ext.get::<AuthContext>(),
        MISSING_ACTIX_MIDDLEWARE,
    )
    .cloned()
}

/// The authenticated principal. Use `Option<Principal>` behind an optional
/// [`ApiKeyAuth`](crate::ApiKeyAuth).
#[derive(Clone, Debug)]
pub struct Principal(pub Arc<keygate::Principal>);

impl Deref for Principal {
    type Target = keygate::Principal;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl FromRequest for Principal {
    type Error = AuthRejection;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            principal_of(req)
                .map(Principal)
                .map_err(|e| AuthRejection::new(req, e)),
        )
    }
}

/// The principal, proven to hold scope `S` (declared with [`keygate::scope!`]); 403 otherwise.
pub struct Scoped<S: ScopeName>(pub Principal, PhantomData<S>);

impl<S: ScopeName> Scoped<S> {
    /// The principal.
    pub fn into_inner(self) -> Principal {
        self.0
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

impl<S: ScopeName> FromRequest for Scoped<S> {
    type Error = AuthRejection;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let ext = req.extensions();
        let result = require_scopes(
            ext.get(),
            ext.get::<AuthContext>(),
            MISSING_ACTIX_MIDDLEWARE,
            &ScopeRequirement::of::<S>(),
        )
        .cloned();
        drop(ext);
        ready(
            result
                .map(|p| Scoped(Principal(p), PhantomData))
                .map_err(|e| AuthRejection::new(req, e)),
        )
    }
}

//! actix middleware: [`ApiKeyAuth`] (authentication) and [`RequireScopes`] (scope guard).

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use actix_web::{Error, HttpMessage};
use keygate::adapter::{render_with, renderer_of, require_scopes};
use keygate::extract::{API_KEY_HEADER, REQUEST_ID_HEADER};
use keygate::{
    AuthContext, AuthError, ErrorRenderer, Gate, GateCheck, ScopeName, ScopeRequirement, Verifier,
};
use pin_project_lite::pin_project;

use crate::{into_actix_response, MISSING_ACTIX_MIDDLEWARE};

/// `X-Api-Key`, as a header name (checked at compile time).
const API_KEY: HeaderName = HeaderName::from_static(API_KEY_HEADER);
const REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

fn request_id(req: &ServiceRequest) -> Option<&[u8]> {
    req.headers().get(REQUEST_ID).map(HeaderValue::as_bytes)
}

fn reject<B>(
    req: ServiceRequest,
    renderer: &dyn ErrorRenderer,
    error: &AuthError,
) -> ServiceResponse<EitherBody<B>> {
    let rendered = render_with(renderer, error, request_id(&req));
    let (http_req, _) = req.into_parts();
    ServiceResponse::new(http_req, into_actix_response(rendered)).map_into_right_body()
}

/// Authentication middleware: verifies the key, rejects with keygate's envelope, and puts
/// `Arc<keygate::Principal>` in the request extensions. Wrong secrets are throttled per (key
/// id, [`ServiceRequest::peer_addr`]); behind a reverse proxy that is the proxy's address.
///
/// It marks the `X-Api-Key` and `Authorization` values sensitive on every request it sees,
/// admitted or refused, so the request's `Debug` (in a log line, an error, a panic message)
/// prints `Sensitive` instead of the key — for handlers and for middleware registered inside
/// it; middleware wrapping it sees the request before it is marked.
///
/// Marking needs the request to be the only handle on its head (actix-web panics otherwise,
/// as its own routing would at app and scope level): a middleware wrapping `ApiKeyAuth` on a
/// `resource` must not keep a clone of the `HttpRequest` across the call.
#[derive(Clone, Debug)]
#[must_use = "middleware does nothing until `.wrap`ped around a service"]
pub struct ApiKeyAuth {
    gate: Gate,
}

impl ApiKeyAuth {
    /// Requires a valid key.
    pub fn new(verifier: Verifier) -> Self {
        ApiKeyAuth {
            gate: Gate::new(verifier),
        }
    }

    /// Enforces a prepared [`Gate`].
    pub fn from_gate(gate: Gate) -> Self {
        ApiKeyAuth { gate }
    }

    /// Lets requests without any credential through (handlers use `Option<Principal>`);
    /// presented credentials must still be valid.
    pub fn optional(mut self) -> Self {
        self.gate = self.gate.optional();
        self
    }

    /// Also requires scopes on every request it wraps.
    pub fn require(mut self, requirement: ScopeRequirement) -> Self {
        self.gate = self.gate.require(requirement);
        self
    }

    /// Renders rejections with `renderer` — here and in every guard and extractor below.
    pub fn renderer(mut self, renderer: impl ErrorRenderer) -> Self {
        self.gate = self.gate.renderer(renderer);
        self
    }
}

impl<S, B> Transform<S, ServiceRequest> for ApiKeyAuth
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = ApiKeyMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ApiKeyMiddleware {
            service: Rc::new(service),
            gate: self.gate.clone(),
        }))
    }
}

/// The service made by [`ApiKeyAuth`].
#[derive(Debug)]
pub struct ApiKeyMiddleware<S> {
    service: Rc<S>,
    gate: Gate,
}

impl<S, B> Service<ServiceRequest> for ApiKeyMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = MiddlewareFuture<S::Future, B>;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let (credentials, started) = {
            let headers = req.headers();
            let (api_keys, authorizations) =
                (headers.get_all(API_KEY), headers.get_all(AUTHORIZATION));
            let credentials = CredentialHeaders {
                api_keys: api_keys.len(),
                authorizations: authorizations.len(),
            };
            let started = self.gate.start_from(
                api_keys.map(HeaderValue::as_bytes),
                authorizations.map(HeaderValue::as_bytes),
                || req.peer_addr().map(|a| a.ip()),
            );
            (credentials, started)
        };
        hide_credentials(&mut req, credentials);
        match started {
            GateCheck::Done(Ok(principal)) => {
                admit(&req, principal, &self.gate);
                MiddlewareFuture::calling(self.service.call(req))
            }
            GateCheck::Done(Err(e)) => {
                MiddlewareFuture::rejected(reject(req, self.gate.context().renderer().as_ref(), &e))
            }
            GateCheck::Pending(check) => {
                let service = Rc::clone(&self.service);
                // Wrong secrets are throttled per (key id, client address).
                let peer = req.peer_addr().map(|a| a.ip());
                MiddlewareFuture::checking(Box::pin(async move {
                    let gate = check.gate().clone();
                    match check.finish(peer).await {
                        Ok(principal) => {
                            admit(&req, principal, &gate);
                            service
                                .call(req)
                                .await
                                .map(ServiceResponse::map_into_left_body)
                        }
                        Err(e) => Ok(reject(req, gate.context().renderer().as_ref(), &e)),
                    }
                }))
            }
        }
    }
}

pin_project! {
    /// Response future of keygate's actix middleware ([`ApiKeyMiddleware`] and
    /// [`RequireScopesMiddleware`]): the wrapped service's response, a refusal, or (for a key
    /// not cached yet) the rest of the check and then the service. A request admitted or
    /// refused at once costs no allocation.
    pub struct MiddlewareFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

type Answer<B> = Result<ServiceResponse<EitherBody<B>>, Error>;

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        // Admitted at once: the wrapped service's response.
        Calling { #[pin] future: F },
        // Refused at once (`None` once answered).
        Rejected { response: Option<ServiceResponse<EitherBody<B>>> },
        // The check resumes (store read, argon2), then calls the wrapped service.
        Checking { future: LocalBoxFuture<Answer<B>> },
    }
}

impl<F, B> MiddlewareFuture<F, B> {
    fn calling(future: F) -> Self {
        MiddlewareFuture {
            state: State::Calling { future },
        }
    }

    fn rejected(response: ServiceResponse<EitherBody<B>>) -> Self {
        MiddlewareFuture {
            state: State::Rejected {
                response: Some(response),
            },
        }
    }

    fn checking(future: LocalBoxFuture<Answer<B>>) -> Self {
        MiddlewareFuture {
            state: State::Checking { future },
        }
    }
}

impl<F, B> Future for MiddlewareFuture<F, B>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = Answer<B>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Calling { future } => {
                future.poll(cx).map_ok(ServiceResponse::map_into_left_body)
            }
            StateProj::Rejected { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                // Polled again after completion, a bug of the caller: pending, not a panic.
                None => Poll::Pending,
            },
            StateProj::Checking { future } => future.as_mut().poll(cx),
        }
    }
}

/// How many values each credential header has, counted while the gate reads them: all that
/// [`hide_credentials`] needs to know to mark them.
#[derive(Clone, Copy)]
struct CredentialHeaders {
    api_keys: usize,
    authorizations: usize,
}

/// Marks the credential headers sensitive, in place on the request, once the gate has read
/// them and before the request goes anywhere else: `HeaderValue`'s `Debug` then prints
/// `Sensitive`, so neither `ServiceRequest`'s nor `HttpRequest`'s `Debug` (which print header
/// values; the latter redacts `Authorization` but not `X-Api-Key`) shows the key when a
/// handler or a middleware logs, formats or panics with the request — admitted or refused
/// (the refusal's `ServiceResponse` carries the request too). The tower layer does the same
/// (`keygate::ApiKeyLayer`).
///
/// Only middleware registered inside this one, and handlers, benefit: a middleware that wraps
/// `ApiKeyAuth` sees the request before it is marked.
///
/// `ServiceRequest::headers_mut` needs the request to be the only handle on its head; in
/// actix-web's service chain it is (actix's own routing takes the same mutable access).
fn hide_credentials(req: &mut ServiceRequest, present: CredentialHeaders) {
    if present.api_keys == 0 && present.authorizations == 0 {
        return;
    }
    let headers = req.headers_mut();
    for (name, count) in [
        (API_KEY, present.api_keys),
        (AUTHORIZATION, present.authorizations),
    ] {
        match count {
            0 => {}
            1 => {
                if let Some(value) = headers.get_mut(&name) {
                    value.set_sensitive(true);
                }
            }
            // `get_mut` reaches only the first value of a repeated header: visit them all.
            _ => headers.retain(|n, value| {
                if *n == name {
                    value.set_sensitive(true);
                }
                true
            }),
        }
    }
}

/// Puts the principal (absent for an anonymous request through an optional gate) and the
/// gate's context into the request's extensions.
fn admit(req: &ServiceRequest, principal: Option<Arc<keygate::Principal>>, gate: &Gate) {
    let mut ext = req.extensions_mut();
    if let Some(p) = principal {
        ext.insert(p);
    }
    ext.insert(gate.context().clone());
}

/// Scope guard for a `scope` or `resource`: 403 `insufficient_scope` unless the principal
/// [`ApiKeyAuth`] put in the request satisfies the requirement.
#[derive(Clone, Debug)]
#[must_use = "middleware does nothing until `.wrap`ped around a service"]
pub struct RequireScopes {
    requirement: Arc<ScopeRequirement>,
}

impl RequireScopes {
    /// Guards with any requirement.
    pub fn new(requirement: ScopeRequirement) -> Self {
        RequireScopes {
            requirement: Arc::new(requirement),
        }
    }

    /// Requires every scope listed (panics on an invalid scope literal, at start-up).
    pub fn all_of<I: IntoIterator<Item = T>, T: AsRef<str>>(scopes: I) -> Self {
        Self::new(ScopeRequirement::all_of(scopes))
    }

    /// Requires one of the scopes listed.
    pub fn any_of<I: IntoIterator<Item = T>, T: AsRef<str>>(scopes: I) -> Self {
        Self::new(ScopeRequirement::any_of(scopes))
    }

    /// Requires one typed scope.
    pub fn of<T: ScopeName>() -> Self {
        Self::new(ScopeRequirement::of::<T>())
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequireScopes
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = RequireScopesMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireScopesMiddleware {
            service,
            requirement: Arc::clone(&self.requirement),
        }))
    }
}

/// The service made by [`RequireScopes`].
#[derive(Debug)]
pub struct RequireScopesMiddleware<S> {
    service: S,
    requirement: Arc<ScopeRequirement>,
}

impl<S, B> Service<ServiceRequest> for RequireScopesMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = MiddlewareFuture<S::Future, B>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let verdict = {
            let ext = req.extensions();
            let context = ext.get::<AuthContext>();
            require_scopes(
                ext.get(),
                context,
                MISSING_ACTIX_MIDDLEWARE,
                &self.requirement,
            )
            .map(|_| ())
            .map_err(|e| (e, renderer_of(context)))
        };
        match verdict {
            Ok(()) => MiddlewareFuture::calling(self.service.call(req)),
            Err((e, renderer)) => MiddlewareFuture::rejected(reject(req, renderer.as_ref(), &e)),
        }
    }
}

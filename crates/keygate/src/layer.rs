//! tower middleware over `http` 1.x: [`ApiKeyLayer`] authenticates, [`RequireScopesLayer`]
//! guards a route's scopes (documented on the types).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::header::HeaderValue;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::adapter::{
    into_http_response, render_with, renderer_of, require_scopes, MISSING_TOWER_LAYER,
};
use crate::error::{AuthError, ErrorRenderer, ErrorResponse};
use crate::extract::{API_KEY_HEADER, REQUEST_ID_HEADER};
use crate::gate::{AuthContext, Gate, GateCheck, PendingCheck};
use crate::principal::Principal;
use crate::scope::{ScopeName, ScopeRequirement};
use crate::verify::Verifier;

/// `X-Api-Key` and `X-Request-Id` as header names: a lookup by a `&str` parses the name on every
/// request, a `HeaderName` does not.
const X_API_KEY: http::header::HeaderName = http::header::HeaderName::from_static(API_KEY_HEADER);
const X_REQUEST_ID: http::header::HeaderName =
    http::header::HeaderName::from_static(REQUEST_ID_HEADER);

/// Marks the credential headers sensitive before the request reaches the application: their
/// `Debug` output becomes `Sensitive`, so a handler that logs or panics with the request (or its
/// headers) does not print the key, and HTTP/2 encoders never index them.
fn hide_credentials(headers: &mut http::HeaderMap) {
    for (name, value) in headers.iter_mut() {
        if name == http::header::AUTHORIZATION || name == X_API_KEY {
            value.set_sensitive(true);
        }
    }
}

/// What an admitted request carries on: the principal (absent for an anonymous request
/// through an optional gate) and the gate's context in its extensions, and its credential
/// headers marked sensitive.
fn admit<B>(req: &mut Request<B>, principal: Option<Arc<Principal>>, gate: &Gate) {
    hide_credentials(req.headers_mut());
    if let Some(p) = principal {
        req.extensions_mut().insert(p);
    }
    req.extensions_mut().insert(gate.context().clone());
}

/// The values of `X-Api-Key` and of `Authorization`, as the core's extraction takes them.
fn credential_headers(
    headers: &http::HeaderMap,
) -> (
    impl Iterator<Item = &[u8]> + '_,
    impl Iterator<Item = &[u8]> + '_,
) {
    (
        headers.get_all(X_API_KEY).iter().map(HeaderValue::as_bytes),
        headers
            .get_all(http::header::AUTHORIZATION)
            .iter()
            .map(HeaderValue::as_bytes),
    )
}

fn request_id_header<B>(req: &Request<B>) -> Option<&[u8]> {
    req.headers().get(X_REQUEST_ID).map(HeaderValue::as_bytes)
}

/// Finds the address of the client that sent a request, in the request's extensions (see
/// [`ApiKeyLayer`](ApiKeyLayer#the-clients-address)).
pub type PeerAddr = fn(&http::Extensions) -> Option<IpAddr>;

/// The default [`PeerAddr`]: the IP of a [`SocketAddr`] in the request's extensions.
pub fn socket_addr_peer(extensions: &http::Extensions) -> Option<IpAddr> {
    extensions.get::<SocketAddr>().map(SocketAddr::ip)
}

/// Authenticates every request: a tower layer over `http` 1.x that any tower-based server
/// (axum, tonic, plain hyper) can use; [`RequireScopesLayer`] guards a route's scopes.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use http::{Request, Response, StatusCode};
/// use keygate::{ApiKeyLayer, MemoryStore, RequireScopesLayer, Verifier};
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
///
/// let verifier = Verifier::builder(Arc::new(MemoryStore::new())).build();
/// let svc = ServiceBuilder::new()
///     .layer(ApiKeyLayer::new(verifier))
///     .layer(RequireScopesLayer::all_of(["entities:read"]))
///     .service(service_fn(|req: Request<()>| async move {
///         let who = req.extensions().get::<Arc<keygate::Principal>>().unwrap();
///         Ok::<_, std::convert::Infallible>(Response::new(Bytes::from(who.org.to_string())))
///     }));
/// let res = svc.oneshot(Request::new(())).await.unwrap();
/// assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
/// # }
/// ```
///
/// Rejections are rendered by the gate's [`ErrorRenderer`] into the
/// response body type `B` of the inner service, which only needs `B: From<Bytes>` (true of
/// axum's `Body`, `http_body_util::Full<Bytes>`, `String`-free `Bytes` bodies, …).
///
/// # The client's address
/// Wrong secrets are throttled per (key id, client address) when the layer knows the address
/// (see [`Verifier::verify_from`]). It reads it from the request's extensions with a
/// [`PeerAddr`] function: by default a [`SocketAddr`] extension (insert one per connection, as
/// a hyper server loop can); `keygate-axum`'s `ApiKeyLayer` reads axum's
/// `ConnectInfo<SocketAddr>` instead, so serving with
/// `into_make_service_with_connect_info::<SocketAddr>()` is all an axum application does.
/// Behind a reverse proxy, have an outer layer insert the client's address (from a header your
/// proxy sets) and point [`ApiKeyLayer::peer_addr`] at it. Without an address, failures are
/// throttled per id.
#[derive(Clone, Debug)]
#[must_use = "a layer does nothing until it wraps a service"]
pub struct ApiKeyLayer {
    gate: Gate,
    peer: PeerAddr,
}

impl ApiKeyLayer {
    /// Requires a valid key on every request.
    pub fn new(verifier: Verifier) -> Self {
        Self::from_gate(Gate::new(verifier))
    }

    /// A layer enforcing a prepared [`Gate`].
    pub fn from_gate(gate: Gate) -> Self {
        ApiKeyLayer {
            gate,
            peer: socket_addr_peer,
        }
    }

    /// Reads the client's address with `peer` (default [`socket_addr_peer`]); it only runs for
    /// requests whose key is not cached yet.
    pub fn peer_addr(mut self, peer: PeerAddr) -> Self {
        self.peer = peer;
        self
    }

    /// Lets requests without a credential through anonymously (see [`Gate::optional`]).
    pub fn optional(mut self) -> Self {
        self.gate = self.gate.optional();
        self
    }

    /// Also requires scopes on every request.
    pub fn require(mut self, requirement: ScopeRequirement) -> Self {
        self.gate = self.gate.require(requirement);
        self
    }

    /// Renders rejections with `renderer` (also used by scope guards behind this layer).
    pub fn renderer(mut self, renderer: impl ErrorRenderer) -> Self {
        self.gate = self.gate.renderer(renderer);
        self
    }
}

impl<S> Layer<S> for ApiKeyLayer {
    type Service = ApiKeyService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ApiKeyService {
            inner,
            gate: self.gate.clone(),
            peer: self.peer,
        }
    }
}

/// The service made by [`ApiKeyLayer`].
#[derive(Clone, Debug)]
pub struct ApiKeyService<S> {
    inner: S,
    gate: Gate,
    peer: PeerAddr,
}

type CheckFuture<S, ReqBody> =
    Pin<Box<dyn Future<Output = (Result<Request<ReqBody>, ErrorResponse>, S)> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ApiKeyService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ApiKeyFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let (api_keys, authorizations) = credential_headers(req.headers());
        let (peer, extensions) = (self.peer, req.extensions());
        match self
            .gate
            .start_from(api_keys, authorizations, || peer(extensions))
        {
            GateCheck::Done(Ok(principal)) => {
                admit(&mut req, principal, &self.gate);
                ApiKeyFuture::calling(self.inner.call(req))
            }
            GateCheck::Done(Err(e)) => {
                ApiKeyFuture::rejected(self.gate.render(&e, request_id_header(&req)))
            }
            GateCheck::Pending(check) => {
                let peer = (self.peer)(req.extensions());
                // The clone may not be ready; keep the ready one for this request (tower's rule).
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ApiKeyFuture::checking(check, peer, req, inner)
            }
        }
    }
}

impl<S, ReqBody> ApiKeyFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>> + Send + 'static,
    ReqBody: Send + 'static,
{
    /// The request was admitted at once: the inner service's future.
    fn calling(future: S::Future) -> Self {
        ApiKeyFuture {
            state: State::Calling { future },
        }
    }

    /// The request was refused at once.
    fn rejected<ResBody: From<Bytes>>(rendered: ErrorResponse) -> Self
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    {
        ApiKeyFuture {
            state: State::Rejected {
                response: Some(into_http_response(rendered)),
            },
        }
    }

    /// The check resumes off the hot path (store read, argon2), then calls `inner`.
    fn checking(
        check: PendingCheck,
        peer: Option<IpAddr>,
        mut req: Request<ReqBody>,
        inner: S,
    ) -> Self {
        let check: CheckFuture<S, ReqBody> = Box::pin(async move {
            let gate = check.gate().clone();
            let result = match check.finish(peer).await {
                Ok(principal) => {
                    admit(&mut req, principal, &gate);
                    Ok(req)
                }
                Err(e) => Err(gate.render(&e, request_id_header(&req))),
            };
            (result, inner)
        });
        ApiKeyFuture {
            state: State::Checking { check },
        }
    }
}

pin_project! {
    /// Response future of [`ApiKeyService`].
    pub struct ApiKeyFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        Checking { check: CheckFuture<S, ReqBody> },
        Calling { #[pin] future: S::Future },
        Rejected { response: Option<S::Response> },
    }
}

impl<S, ReqBody, ResBody> Future for ApiKeyFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            match this.state.as_mut().project() {
                StateProj::Checking { check } => {
                    let (result, mut inner) = ready!(check.as_mut().poll(cx));
                    match result {
                        Ok(req) => this.state.set(State::Calling {
                            future: inner.call(req),
                        }),
                        Err(rendered) => {
                            // Done: a further poll answers pending instead of resuming the
                            // finished check.
                            this.state.set(State::Rejected { response: None });
                            return Poll::Ready(Ok(into_http_response(rendered)));
                        }
                    }
                }
                StateProj::Calling { future } => return future.poll(cx),
                StateProj::Rejected { response } => match response.take() {
                    Some(response) => return Poll::Ready(Ok(response)),
                    // Polled again after completion: tower's contract makes that a bug of
                    // the caller; answer pending rather than panic.
                    None => return Poll::Pending,
                },
            }
        }
    }
}

/// Requires scopes of the principal an [`ApiKeyLayer`] put in the request (403 when
/// missing). Use per route, e.g. axum's `.route_layer(RequireScopesLayer::all_of([...]))`.
#[derive(Clone, Debug)]
#[must_use = "a layer does nothing until it wraps a service"]
pub struct RequireScopesLayer {
    requirement: ScopeRequirement,
}

impl RequireScopesLayer {
    /// Guards with any requirement.
    pub fn new(requirement: ScopeRequirement) -> Self {
        RequireScopesLayer { requirement }
    }

    /// Requires every scope listed (panics on an invalid scope literal; see
    /// [`ScopeRequirement::all_of`]).
    pub fn all_of<I: IntoIterator<Item = S>, S: AsRef<str>>(scopes: I) -> Self {
        Self::new(ScopeRequirement::all_of(scopes))
    }

    /// Requires one of the scopes listed.
    pub fn any_of<I: IntoIterator<Item = S>, S: AsRef<str>>(scopes: I) -> Self {
        Self::new(ScopeRequirement::any_of(scopes))
    }

    /// Requires one typed scope (declared with [`scope!`](crate::scope!)).
    pub fn of<T: ScopeName>() -> Self {
        Self::new(ScopeRequirement::of::<T>())
    }
}

impl<S> Layer<S> for RequireScopesLayer {
    type Service = RequireScopesService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequireScopesService {
            inner,
            requirement: Arc::new(self.requirement.clone()),
        }
    }
}

/// The service made by [`RequireScopesLayer`].
#[derive(Clone, Debug)]
pub struct RequireScopesService<S> {
    inner: S,
    requirement: Arc<ScopeRequirement>,
}

/// Checks `requirement` against what [`ApiKeyLayer`] left in a request's `extensions`: the
/// principal must hold it (403 `insufficient_scope`, counted as a refusal in the key's usage);
/// an anonymous request let through by an optional layer is 401 `missing_credentials`, and a
/// request no layer saw is 500 `misconfigured`. For handlers of tower servers that check
/// scopes themselves (e.g. a tonic method).
pub fn check_scopes(
    extensions: &http::Extensions,
    requirement: &ScopeRequirement,
) -> Result<(), AuthError> {
    require_scopes(
        extensions.get::<Arc<Principal>>(),
        extensions.get::<AuthContext>(),
        MISSING_TOWER_LAYER,
        requirement,
    )
    .map(|_| ())
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireScopesService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = RequireScopesFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        match check_scopes(req.extensions(), &self.requirement) {
            Ok(()) => RequireScopesFuture {
                kind: Kind::Inner {
                    future: self.inner.call(req),
                },
            },
            Err(e) => {
                let renderer = renderer_of(req.extensions().get::<AuthContext>());
                let rendered = render_with(renderer.as_ref(), &e, request_id_header(&req));
                RequireScopesFuture {
                    kind: Kind::Rejected {
                        response: Some(into_http_response(rendered)),
                    },
                }
            }
        }
    }
}

pin_project! {
    /// Response future of [`RequireScopesService`].
    pub struct RequireScopesFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Inner { #[pin] future: F },
        Rejected { response: Option<Response<B>> },
    }
}

impl<F, B, E> Future for RequireScopesFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => future.poll(cx),
            KindProj::Rejected { response } => match response.take() {
                Some(r) => Poll::Ready(Ok(r)),
                None => Poll::Pending,
            },
        }
    }
}

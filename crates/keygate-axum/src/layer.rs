//! [`ApiKeyLayer`]: keygate's tower layer, reading the client's address the axum way.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use keygate::PeerAddr;
use keygate::{ApiKeyService, ErrorRenderer, Gate, ScopeRequirement, Verifier};
use tower_layer::Layer;

/// The IP of axum's `ConnectInfo<SocketAddr>` in the request's extensions: what
/// [`ApiKeyLayer`] throttles wrong secrets by (with the key id).
pub fn connect_info_peer(extensions: &http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// Authenticates every request: keygate's tower [`keygate::ApiKeyLayer`], which reads the
/// client's address from axum's [`ConnectInfo<SocketAddr>`](ConnectInfo). Serve the app with
/// `into_make_service_with_connect_info::<SocketAddr>()` and wrong secrets are throttled per
/// (key id, client address), so one client's failures never stop another client's correct
/// secret from being checked; without connect info they are throttled per key id.
///
/// ```no_run
/// # async fn run(verifier: keygate::Verifier) -> std::io::Result<()> {
/// use std::net::SocketAddr;
/// use axum::{routing::get, Router};
/// use keygate_axum::ApiKeyLayer;
///
/// let app: Router = Router::new()
///     .route("/me", get(|| async { "hello" }))
///     .route_layer(ApiKeyLayer::new(verifier));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a layer does nothing until it wraps a service"]
pub struct ApiKeyLayer(keygate::ApiKeyLayer);

impl ApiKeyLayer {
    /// Requires a valid key on every request.
    pub fn new(verifier: Verifier) -> Self {
        Self::from_gate(Gate::new(verifier))
    }

    /// A layer enforcing a prepared [`Gate`].
    pub fn from_gate(gate: Gate) -> Self {
        ApiKeyLayer(keygate::ApiKeyLayer::from_gate(gate).peer_addr(connect_info_peer))
    }

    /// Lets requests without a credential through anonymously (see [`Gate::optional`]).
    pub fn optional(self) -> Self {
        ApiKeyLayer(self.0.optional())
    }

    /// Also requires scopes on every request.
    pub fn require(self, requirement: ScopeRequirement) -> Self {
        ApiKeyLayer(self.0.require(requirement))
    }

    /// Renders rejections with `renderer` (also used by scope guards and extractors behind
    /// this layer).
    pub fn renderer(self, renderer: impl ErrorRenderer) -> Self {
        ApiKeyLayer(self.0.renderer(renderer))
    }

    /// Reads the client's address with `peer` instead of [`connect_info_peer`] (e.g. behind a
    /// reverse proxy; see [`keygate::ApiKeyLayer`](keygate::ApiKeyLayer#the-clients-address)).
    pub fn peer_addr(self, peer: PeerAddr) -> Self {
        ApiKeyLayer(self.0.peer_addr(peer))
    }
}

impl From<ApiKeyLayer> for keygate::ApiKeyLayer {
    fn from(layer: ApiKeyLayer) -> Self {
        layer.0
    }
}

impl<S> Layer<S> for ApiKeyLayer {
    type Service = ApiKeyService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        self.0.layer(inner)
    }
}

//! keygate in front of a tonic gRPC service: the service the binary serves and the tests drive
//! in-process.
//!
//! Every call goes through keygate's tower [`ApiKeyLayer`], which reads the key from the
//! `x-api-key` or `authorization: Bearer` metadata (gRPC metadata are HTTP/2 headers) and
//! answers refusals with [`GrpcRenderer`]: `UNAUTHENTICATED`, `PERMISSION_DENIED`,
//! `RESOURCE_EXHAUSTED` or `UNAVAILABLE`, the reason in `grpc-message` and in the
//! `keygate-reason` metadata.
//!
//! | RPC | needs |
//! |---|---|
//! | `keygate.quickstart.v1.Demo/Whoami` | any valid key: the principal |
//! | `keygate.quickstart.v1.Demo/CreateBoard` | `boards:write` (checked in the handler) |
//!
//! The service, as a `.proto` (the stubs are generated from `build.rs` without `protoc`; the
//! messages below are the `prost` types this file would give):
//!
//! ```proto
//! syntax = "proto3";
//! package keygate.quickstart.v1;
//!
//! service Demo {
//!   rpc Whoami(WhoamiRequest) returns (WhoamiReply);
//!   rpc CreateBoard(CreateBoardRequest) returns (Board);
//! }
//! message WhoamiRequest {}
//! message WhoamiReply {
//!   string id = 1; string name = 2; string org = 3; optional string team = 4;
//!   optional string owner = 5; repeated string scopes = 6; string environment = 7;
//!   optional string expires_at = 8; // RFC 3339
//! }
//! message CreateBoardRequest { string name = 1; }
//! message Board { string id = 1; string name = 2; string org = 3; string created_by = 4; }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use demo_api::{BoardsWrite, Collection, Items, NewItem, MAX_NAME_LEN};
use keygate::{ApiKeyLayer, AuthError, GrpcRenderer, Principal, ScopeRequirement, Verifier};
use tokio::net::TcpListener;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::server::{TcpConnectInfo, TcpIncoming};
use tonic::{Code, Request, Response, Status};

/// The messages and the generated client and server of `keygate.quickstart.v1.Demo`.
pub mod pb {
    /// Asks who the calling key is.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WhoamiRequest {}

    /// The calling key's principal.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WhoamiReply {
        /// Public key id.
        #[prost(string, tag = "1")]
        pub id: String,
        /// Key name.
        #[prost(string, tag = "2")]
        pub name: String,
        /// Organization.
        #[prost(string, tag = "3")]
        pub org: String,
        /// Team, if the key has one.
        #[prost(string, optional, tag = "4")]
        pub team: Option<String>,
        /// Owner, if the key has one.
        #[prost(string, optional, tag = "5")]
        pub owner: Option<String>,
        /// Granted scopes, sorted.
        #[prost(string, repeated, tag = "6")]
        pub scopes: Vec<String>,
        /// Environment named by the key's prefix (`live`, `test`, …).
        #[prost(string, tag = "7")]
        pub environment: String,
        /// Expiry (RFC 3339), if any.
        #[prost(string, optional, tag = "8")]
        pub expires_at: Option<String>,
    }

    /// Creates a board in the caller's organization.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CreateBoardRequest {
        /// 1–200 characters.
        #[prost(string, tag = "1")]
        pub name: String,
    }

    /// A stored board.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Board {
        /// Board id.
        #[prost(string, tag = "1")]
        pub id: String,
        /// Board name.
        #[prost(string, tag = "2")]
        pub name: String,
        /// Organization that owns it.
        #[prost(string, tag = "3")]
        pub org: String,
        /// Id of the key that created it.
        #[prost(string, tag = "4")]
        pub created_by: String,
    }

    #[allow(
        missing_docs,
        unreachable_pub,
        missing_debug_implementations,
        rust_2018_idioms,
        clippy::all
    )]
    mod generated {
        include!(concat!(env!("OUT_DIR"), "/keygate.quickstart.v1.Demo.rs"));
    }
    pub use generated::{demo_client, demo_server};
}

/// The `Demo` service: who am I, and boards per organization.
#[derive(Debug, Clone, Default)]
pub struct DemoService {
    items: Arc<Items>,
}

impl DemoService {
    /// A service over `items` (boards are kept per organization).
    pub fn new(items: Arc<Items>) -> Self {
        DemoService { items }
    }
}

/// The principal [`ApiKeyLayer`] put in the request; `INTERNAL` when the layer is missing.
fn principal<T>(req: &Request<T>) -> Result<Arc<Principal>, Status> {
    req.extensions()
        .get::<Arc<Principal>>()
        .cloned()
        .ok_or_else(|| Status::internal("keygate: no ApiKeyLayer in front of this service"))
}

/// A refusal decided inside a handler (a scope check), as the same status
/// [`GrpcRenderer`] gives the layer's refusals.
pub fn status_of(error: &AuthError) -> Status {
    let mut metadata = MetadataMap::new();
    metadata.insert("keygate-reason", MetadataValue::from_static(error.reason()));
    Status::with_metadata(
        Code::from_i32(GrpcRenderer::code(error)),
        GrpcRenderer::message(error),
        metadata,
    )
}

#[tonic::async_trait]
impl pb::demo_server::Demo for DemoService {
    async fn whoami(
        &self,
        req: Request<pb::WhoamiRequest>,
    ) -> Result<Response<pb::WhoamiReply>, Status> {
        let who = principal(&req)?;
        Ok(Response::new(pb::WhoamiReply {
            id: who.id.as_str().to_owned(),
            name: who.name.as_str().to_owned(),
            org: who.org.as_str().to_owned(),
            team: who.team.as_deref().map(str::to_owned),
            owner: who.owner.as_deref().map(str::to_owned),
            scopes: who.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            environment: who.environment.as_str().to_owned(),
            expires_at: who.expires_at.map(|t| t.to_rfc3339()),
        }))
    }

    async fn create_board(
        &self,
        req: Request<pb::CreateBoardRequest>,
    ) -> Result<Response<pb::Board>, Status> {
        // The scope check of the layer's gate, counted as a refusal in the key's usage.
        keygate::check_scopes(req.extensions(), &ScopeRequirement::of::<BoardsWrite>())
            .map_err(|e| status_of(&e))?;
        let who = principal(&req)?;
        let name = req.into_inner().name;
        let chars = name.chars().count();
        if chars == 0 || chars > MAX_NAME_LEN || name.chars().any(char::is_control) {
            return Err(Status::invalid_argument(format!(
                "name must be 1 to {MAX_NAME_LEN} characters, none of them control characters"
            )));
        }
        let item = self
            .items
            .create(
                Collection::Boards,
                who.org.as_str(),
                &who.id,
                NewItem { name },
            )
            .map_err(|_| {
                Status::failed_precondition(format!(
                    "collection_full: an organization keeps at most {} boards",
                    demo_api::MAX_ITEMS_PER_COLLECTION
                ))
            })?;
        Ok(Response::new(pb::Board {
            id: item.id,
            name: item.name,
            org: item.org,
            created_by: item.created_by,
        }))
    }
}

/// The client's address as tonic's server records it, for keygate's throttling of wrong
/// secrets per (key id, client).
pub fn tonic_peer(extensions: &http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .map(|a| a.ip())
}

/// keygate's layer as this service uses it: gRPC statuses, the peer from tonic.
pub fn auth_layer(verifier: Verifier) -> ApiKeyLayer {
    ApiKeyLayer::new(verifier)
        .renderer(GrpcRenderer::new())
        .peer_addr(tonic_peer)
}

/// Serves [`DemoService`] behind [`auth_layer`] on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    verifier: Verifier,
    items: Arc<Items>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let layers = tower::ServiceBuilder::new()
        .layer(auth_layer(verifier))
        // keygate's layer writes its refusals into the inner service's body type, which must
        // be `From<Bytes>`: axum-core's `Body` is, and wraps tonic's.
        .map_response(|res: http::Response<tonic::body::Body>| res.map(axum_core::body::Body::new));
    tonic::transport::Server::builder()
        .layer(layers)
        .add_service(pb::demo_server::DemoServer::new(DemoService::new(items)))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await
}

/// What the binary prints after creating the demo key (shown this once): the key and how to
/// call the service with it.
pub fn banner(key: &str, addr: std::net::SocketAddr) -> String {
    let scopes = demo_api::DEMO_SCOPES.join(" ");
    let org = demo_api::DEMO_ORG;
    format!(
        "\
Created a demo API key for org \"{org}\" with scopes: {scopes}
It is shown only this once (only its hash is stored):

    {key}

Send it as gRPC metadata `x-api-key: <key>` (or `authorization: Bearer <key>`) to
keygate.quickstart.v1.Demo/Whoami and /CreateBoard at http://{addr}; the service is
described in examples/tonic-quickstart/src/lib.rs (as a .proto in the crate docs).
"
    )
}

/// This crate's README (the "In your tonic service" example), compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

//! The tonic quickstart driven by a tonic client over 127.0.0.1: keygate's refusals arrive as
//! gRPC statuses carrying the reason. Every test is bounded by [`LIMIT`]; nothing asserts on
//! time.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use keygate::{
    AuthError, ErrorRenderer, GrpcRenderer, KeyManager, KeyStore, MemoryStore, NewKey,
    RenderContext, Verifier,
};
use keygate_sqlx::SqliteStore;
use tokio::sync::oneshot;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_quickstart::pb::demo_client::DemoClient;
use tonic_quickstart::pb::{CreateBoardRequest, WhoamiRequest};

/// Upper bound of one test, so a hang fails instead of blocking CI.
const LIMIT: Duration = Duration::from_secs(120);

async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(LIMIT, test)
        .await
        .expect("test did not finish in time");
}

/// A running quickstart on an ephemeral port of 127.0.0.1, over a SQLite store in a
/// temporary directory; stops when dropped.
struct Server {
    addr: SocketAddr,
    store: Arc<SqliteStore>,
    manager: KeyManager,
    stop: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("keys.db").display());
        let store = Arc::new(SqliteStore::connect(&url).await.unwrap());
        let shared: Arc<dyn KeyStore> = store.clone();
        let verifier = Verifier::builder(shared.clone())
            .store_timeout(Duration::from_secs(10))
            .build();
        let manager = KeyManager::new(shared).with_verifier(&verifier);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(tonic_quickstart::serve(
            listener,
            verifier,
            Arc::default(),
            async {
                let _ = stopped.await;
            },
        ));
        Server {
            addr,
            store,
            manager,
            stop: Some(stop),
            _dir: dir,
        }
    }

    /// A new key of org `acme` with `scopes`, in plaintext.
    async fn key(&self, scopes: &[&str]) -> String {
        let new = NewKey::new("grpc test", "acme")
            .owner("tester")
            .scopes(scopes.iter().copied())
            .unwrap();
        let created = self.manager.create(new).await.unwrap();
        created.key.expose_secret().to_owned()
    }

    async fn client(&self) -> DemoClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        DemoClient::new(channel)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn with_api_key<T>(message: T, key: &str) -> Request<T> {
    let mut req = Request::new(message);
    req.metadata_mut()
        .insert("x-api-key", MetadataValue::try_from(key).unwrap());
    req
}

fn with_bearer<T>(message: T, key: &str) -> Request<T> {
    let mut req = Request::new(message);
    req.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {key}")).unwrap(),
    );
    req
}

fn reason(status: &Status) -> &str {
    status
        .metadata()
        .get("keygate-reason")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("<none>")
}

/// The status is `code` with `reason` in `keygate-reason` and in the message.
fn assert_refused(status: &Status, code: Code, reason_: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(reason(status), reason_, "{status:?}");
    assert!(
        status.message().ends_with(&format!("({reason_})"))
            || status.message().contains(&format!("({reason_}):")),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_is_unauthenticated_missing_credentials() {
    bounded(async {
        let server = Server::start().await;
        let mut client = server.client().await;
        let status = client.whoami(WhoamiRequest {}).await.unwrap_err();
        assert_refused(&status, Code::Unauthenticated, "missing_credentials");
        assert_eq!(
            status.message(),
            "Missing authentication header (missing_credentials)"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_are_unauthenticated_with_their_reason() {
    bounded(async {
        let server = Server::start().await;
        let mut client = server.client().await;

        let status = client
            .whoami(with_api_key(WhoamiRequest {}, "not-a-key"))
            .await
            .unwrap_err();
        assert_refused(&status, Code::Unauthenticated, "malformed_key");

        // A well-formed key this service never issued: unknown id.
        let elsewhere = KeyManager::new(Arc::new(MemoryStore::new()))
            .create(
                NewKey::new("elsewhere", "acme")
                    .scopes(["boards:read"])
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = client
            .whoami(with_api_key(
                WhoamiRequest {},
                elsewhere.key.expose_secret(),
            ))
            .await
            .unwrap_err();
        assert_refused(&status, Code::Unauthenticated, "invalid_key");
        assert_eq!(status.message(), "Invalid API key (invalid_key)");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_key_gets_its_principal_by_either_header() {
    bounded(async {
        let server = Server::start().await;
        let key = server.key(&["boards:read", "entities:read"]).await;
        let mut client = server.client().await;
        for req in [
            with_api_key(WhoamiRequest {}, &key),
            with_bearer(WhoamiRequest {}, &key),
        ] {
            let me = client.whoami(req).await.unwrap().into_inner();
            assert!(key.contains(&me.id), "{me:?}");
            assert_eq!(me.name, "grpc test");
            assert_eq!(me.org, "acme");
            assert_eq!(me.owner.as_deref(), Some("tester"));
            assert_eq!(me.team, None);
            assert_eq!(me.scopes, ["boards:read", "entities:read"]);
            assert_eq!(me.expires_at, None);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_without_the_scope_is_permission_denied() {
    bounded(async {
        let server = Server::start().await;
        let reader = server.key(&["boards:read"]).await;
        let writer = server.key(&["boards:write"]).await;
        let mut client = server.client().await;
        let board = || CreateBoardRequest {
            name: "roadmap".into(),
        };

        let status = client
            .create_board(with_api_key(board(), &reader))
            .await
            .unwrap_err();
        assert_refused(&status, Code::PermissionDenied, "insufficient_scope");
        assert!(
            status.message().ends_with("missing boards:write"),
            "{status:?}"
        );

        let created = client
            .create_board(with_api_key(board(), &writer))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(created.name, "roadmap");
        assert_eq!(created.org, "acme");
        assert!(writer.contains(&created.created_by), "{created:?}");

        let status = client
            .create_board(with_api_key(
                CreateBoardRequest { name: "".into() },
                &writer,
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_store_is_unavailable_with_retry_after() {
    bounded(async {
        let server = Server::start().await;
        let key = server.key(&["boards:read"]).await;
        let mut client = server.client().await;
        // The database goes away before this key was ever read by the verifier.
        server.store.pool().close().await;
        let status = client
            .whoami(with_api_key(WhoamiRequest {}, &key))
            .await
            .unwrap_err();
        assert_refused(&status, Code::Unavailable, "store_unavailable");
        assert_eq!(
            status
                .metadata()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("5")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_rate_limit_is_resource_exhausted_with_retry_after() {
    bounded(async {
        let server = Server::start().await;
        let new = NewKey::new("limited", "acme")
            .scopes(["boards:read"])
            .unwrap()
            .rate_limit("1/1h".parse().unwrap());
        let created = server.manager.create(new).await.unwrap();
        let key = created.key.expose_secret();
        let mut client = server.client().await;
        client
            .whoami(with_api_key(WhoamiRequest {}, key))
            .await
            .unwrap();
        let status = client
            .whoami(with_api_key(WhoamiRequest {}, key))
            .await
            .unwrap_err();
        assert_refused(&status, Code::ResourceExhausted, "rate_limited");
        let retry_after: u32 = status
            .metadata()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert!(retry_after >= 1, "{status:?}");
    })
    .await;
}

/// Without a network: what `GrpcRenderer` writes is read back by tonic's own parser of
/// status headers (`Status::from_header_map`) as the same code and message, percent-encoding
/// included.
#[test]
fn tonic_reads_the_rendered_headers_as_the_intended_status() {
    let ctx = RenderContext::new("req-1", chrono::Utc::now());
    let errors = [
        AuthError::MissingCredentials,
        AuthError::InvalidKey,
        AuthError::RevokedKey,
        AuthError::VerifierBusy {
            retry_after_secs: 2,
        },
        AuthError::TooManyAttempts {
            retry_after_secs: 9,
        },
        AuthError::Misconfigured("100% wrong: clé\nmissing"),
    ];
    for e in errors {
        let rendered = GrpcRenderer::new().render(&e, &ctx);
        let status = Status::from_header_map(&rendered.headers).unwrap();
        assert_eq!(
            status.code(),
            Code::from_i32(GrpcRenderer::code(&e)),
            "{e:?}"
        );
        assert_eq!(status.message(), GrpcRenderer::message(&e), "{e:?}");
        assert_eq!(reason(&status), e.reason());
        // The status a handler builds for the same refusal is the same.
        let from_handler = tonic_quickstart::status_of(&e);
        assert_eq!(from_handler.code(), status.code());
        assert_eq!(from_handler.message(), status.message());
        assert_eq!(reason(&from_handler), e.reason());
    }
}

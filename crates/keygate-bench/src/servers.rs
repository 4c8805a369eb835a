//! The servers under test. Each runs in its own child process (`keygate-bench serve KIND`) on
//! one worker thread, bound to 127.0.0.1 on an ephemeral port, and prints one line
//! `KEYGATE_BENCH_READY {"port":…,"token":…,"id":…}` once it accepts connections. It exits
//! when its stdin closes (the harness holds the pipe), so it never outlives the harness.
//!
//! Every server answers `GET /` with the same JSON body; only the authentication differs.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::ValueEnum;
use keygate::{
    Argon2Hasher, HashError, KeyHasher, KeyManager, KeyStore, NewKey, RateLimit, Verifier,
};

/// The JSON every scenario answers with.
pub(crate) const BODY: &str = r#"{"message":"hello"}"#;
/// Marker of the readiness line.
pub(crate) const READY: &str = "KEYGATE_BENCH_READY";
/// The rate limit of the `AxumKeygateRateLimit` key: the most keygate accepts, 1,000,000,000
/// requests per second (and as large a burst), four orders of magnitude above what one core
/// serves, so every request goes through the limiter and none is refused by it.
pub(crate) const NEVER_HIT_LIMIT: &str = "1000000000/1s";

/// Which server to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ServerKind {
    /// axum, no authentication.
    AxumBare,
    /// axum + tower-http `ValidateRequestHeaderLayer`, constant-time compare to one token.
    AxumTowerHttp,
    /// axum + tower-http `ValidateRequestHeaderLayer`, bearer token looked up in a `HashMap`
    /// and its identity put in the request's extensions: the axum twin of `ActixHttpauth`, and
    /// the least a cached verification can do (one keyed hash, SipHash, and one map read).
    AxumHashMap,
    /// axum + tower-http `ValidateRequestHeaderLayer` doing only the steps a cached
    /// verification cannot skip: keygate's extraction, parse and checksum, a keyed BLAKE3
    /// digest, one map read by id, a constant-time digest compare and the principal in the
    /// extensions. No usage counts, expiry, freshness, throttle or telemetry: a floor for
    /// keygate's cached path, not a verifier.
    AxumRequiredSteps,
    /// axum + keygate's `ApiKeyLayer`.
    AxumKeygate,
    /// The same server as `AxumKeygate`, but its key carries a rate limit so high that the
    /// run never reaches it (`NEVER_HIT_LIMIT`): what checking a key's limit costs.
    AxumKeygateRateLimit,
    /// actix-web, no authentication.
    ActixBare,
    /// actix-web + actix-web-httpauth bearer, token looked up in a `HashMap`.
    ActixHttpauth,
    /// actix-web + keygate-actix's `ApiKeyAuth`.
    ActixKeygate,
    /// axum, argon2id (OWASP) verification of the presented key on every request.
    NaiveArgon2,
}

impl ServerKind {
    /// The kind as `keygate-bench serve` takes it (`axum-tower-http`).
    pub(crate) fn cli_name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_else(|| format!("{self:?}"))
    }
}

/// A [`KeyHasher`] that counts `verify` calls (the expensive argon2 checks).
#[derive(Debug, Clone)]
pub(crate) struct CountingHasher {
    inner: Argon2Hasher,
    verifies: Arc<AtomicU64>,
}

impl CountingHasher {
    pub(crate) fn new(inner: Argon2Hasher) -> Self {
        CountingHasher {
            inner,
            verifies: Arc::new(AtomicU64::new(0)),
        }
    }
    pub(crate) fn counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.verifies)
    }
}

impl KeyHasher for CountingHasher {
    fn hash(&self, secret: &[u8]) -> Result<String, HashError> {
        self.inner.hash(secret)
    }
    fn verify(&self, secret: &[u8], stored: &str) -> Result<bool, HashError> {
        self.verifies.fetch_add(1, Ordering::Relaxed);
        self.inner.verify(secret, stored)
    }
    fn needs_rehash(&self, stored: &str) -> bool {
        self.inner.needs_rehash(stored)
    }
}

/// The key store of the keygate scenarios: a fresh SQLite file (keygate-sqlx).
async fn open_store(dir: &Path) -> Result<(Arc<dyn KeyStore>, &'static str)> {
    let path = dir.join(format!("keygate-{}.db", std::process::id()));
    let url = format!("sqlite://{}", path.display());
    let store = keygate_sqlx::connect(&url)
        .await
        .with_context(|| format!("opening {url}"))?;
    Ok((store, "SQLite"))
}

/// A keygate verifier over a fresh store with one new key (OWASP argon2id), and that key.
struct KeygateSetup {
    verifier: Verifier,
    token: String,
    id: String,
    hash_calls: Arc<AtomicU64>,
    store: &'static str,
    /// The key's rate limit as stored (`None`: no limit).
    rate_limit: Option<RateLimit>,
}

async fn keygate_setup(dir: &Path, rate_limit: Option<RateLimit>) -> Result<KeygateSetup> {
    let (store, store_name) = open_store(dir).await?;
    let hasher = CountingHasher::new(Argon2Hasher::new());
    let hash_calls = hasher.counter();
    let verifier = Verifier::builder(Arc::clone(&store)).hasher(hasher).build();
    let manager = KeyManager::new(store).with_verifier(&verifier);
    let mut new = NewKey::new("bench", "bench-org").scopes(["entities:read"])?;
    if let Some(limit) = rate_limit {
        new = new.rate_limit(limit);
    }
    let created = manager
        .create(new)
        .await
        .context("creating the benchmark key")?;
    Ok(KeygateSetup {
        verifier,
        token: created.key.expose_secret().to_owned(),
        id: created.record.id.clone(),
        hash_calls,
        store: store_name,
        rate_limit: created.record.rate_limit,
    })
}

/// A token in keygate's format (same header size in every scenario) for the peers.
fn peer_token() -> Result<String> {
    Ok(keygate::token::generate("mk_live")
        .context("generating a token")?
        .expose_secret()
        .to_owned())
}

fn announce(port: u16, token: &str, id: &str, store: &str, rate_limit: Option<RateLimit>) {
    println!(
        "{READY} {}",
        serde_json::json!({
            "port": port,
            "token": token,
            "id": id,
            "store": store,
            "rate_limit": rate_limit.map(|l| l.to_string()),
        })
    );
}

/// Who a token of the reference servers' in-memory tables stands for.
#[derive(Debug, Clone)]
struct Identity {
    _org: Arc<str>,
}

/// Runs one server until stdin closes.
pub(crate) fn serve(kind: ServerKind, dir: &Path) -> Result<()> {
    crate::children::exit_when_stdin_closes();
    match kind {
        ServerKind::ActixBare | ServerKind::ActixHttpauth | ServerKind::ActixKeygate => {
            actix_web::rt::System::new().block_on(actix::serve(kind, dir))
        }
        _ => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?
            .block_on(axum_servers::serve(kind, dir)),
    }
}

mod axum_servers {
    use super::*;
    use axum::body::Body;
    use axum::extract::State;
    use axum::http::{header, HeaderMap, Request, Response, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::get;
    use axum::Router;
    use subtle::ConstantTimeEq;
    use tower_http::validate_request::ValidateRequestHeaderLayer;

    async fn hello() -> impl IntoResponse {
        ([(header::CONTENT_TYPE, "application/json")], BODY)
    }

    fn unauthorized() -> Response<Body> {
        Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"error":"unauthorized"}"#))
            .unwrap_or_default()
    }

    /// What a reference layer found, put in the request's extensions (as keygate puts its
    /// principal there), or the 401.
    #[allow(clippy::result_large_err)]
    fn admit<T>(req: &mut Request<Body>, who: Option<T>) -> Result<(), Response<Body>>
    where
        T: Clone + Send + Sync + 'static,
    {
        match who {
            Some(who) => {
                req.extensions_mut().insert(who);
                Ok(())
            }
            None => Err(unauthorized()),
        }
    }

    #[derive(Clone)]
    struct Naive {
        hashes: Arc<HashMap<String, String>>,
        hasher: Argon2Hasher,
    }

    /// What a hand-rolled verifier does: look the id up, run argon2id, every request.
    async fn naive(State(s): State<Naive>, headers: HeaderMap) -> Response<Body> {
        let token = match keygate::extract::extract_credential(
            headers.get_all("x-api-key").iter().map(|v| v.as_bytes()),
            headers
                .get_all(header::AUTHORIZATION)
                .iter()
                .map(|v| v.as_bytes()),
        ) {
            Ok(t) => t.to_owned(),
            Err(_) => return unauthorized(),
        };
        let Ok(parsed) = keygate::token::parse(&token) else {
            return unauthorized();
        };
        let Some(stored) = s.hashes.get(parsed.id()).cloned() else {
            return unauthorized();
        };
        let hasher = s.hasher.clone();
        let ok = tokio::task::spawn_blocking(move || hasher.verify(token.as_bytes(), &stored))
            .await
            .is_ok_and(|r| r.unwrap_or(false));
        if ok {
            hello().await.into_response()
        } else {
            unauthorized()
        }
    }

    // tower-http's validator signature returns the whole rejection response as the error.
    #[allow(clippy::result_large_err)]
    pub(super) async fn serve(kind: ServerKind, dir: &Path) -> Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let mut rate_limit = None;
        let (app, token, id, store) = match kind {
            ServerKind::AxumBare => (
                Router::new().route("/", get(hello)),
                peer_token()?,
                String::new(),
                "",
            ),
            ServerKind::AxumTowerHttp => {
                let token = peer_token()?;
                let expected: Arc<[u8]> = format!("Bearer {token}").into_bytes().into();
                let layer = ValidateRequestHeaderLayer::custom(
                    move |req: &mut Request<Body>| -> Result<(), Response<Body>> {
                        let ok = req
                            .headers()
                            .get(header::AUTHORIZATION)
                            .is_some_and(|v| bool::from(v.as_bytes().ct_eq(&expected)));
                        if ok {
                            Ok(())
                        } else {
                            Err(unauthorized())
                        }
                    },
                );
                (
                    Router::new().route("/", get(hello)).layer(layer),
                    token,
                    String::new(),
                    "",
                )
            }
            ServerKind::AxumHashMap => {
                let token = peer_token()?;
                let table: Arc<HashMap<String, Identity>> = Arc::new(HashMap::from([(
                    token.clone(),
                    Identity {
                        _org: "bench-org".into(),
                    },
                )]));
                let layer = ValidateRequestHeaderLayer::custom(
                    move |req: &mut Request<Body>| -> Result<(), Response<Body>> {
                        let who = req
                            .headers()
                            .get(header::AUTHORIZATION)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.strip_prefix("Bearer "))
                            .and_then(|t| table.get(t))
                            .cloned();
                        admit(req, who)
                    },
                );
                (
                    Router::new().route("/", get(hello)).layer(layer),
                    token,
                    String::new(),
                    "",
                )
            }
            ServerKind::AxumRequiredSteps => {
                let token = peer_token()?;
                // A random key for the process, from a second token's OS randomness.
                let digest_key = *blake3::hash(peer_token()?.as_bytes()).as_bytes();
                let digest = move |token: &str| {
                    // The id, the '.', the secret and the checksum: 63 bytes, one BLAKE3 block.
                    let tail = token.rsplit_once('_').map_or(token, |(_, t)| t);
                    blake3::keyed_hash(&digest_key, tail.as_bytes())
                };
                let parsed = keygate::token::parse(&token).map_err(|e| anyhow::anyhow!("{e}"))?;
                // Per id: the key's prefix (the digest leaves it out), the digest, the identity.
                type Entry = (String, blake3::Hash, Arc<Identity>);
                let table: Arc<HashMap<String, Entry>> = Arc::new(HashMap::from([(
                    parsed.id().to_owned(),
                    (
                        parsed.prefix().to_owned(),
                        digest(&token),
                        Arc::new(Identity {
                            _org: "bench-org".into(),
                        }),
                    ),
                )]));
                let layer = ValidateRequestHeaderLayer::custom(
                    move |req: &mut Request<Body>| -> Result<(), Response<Body>> {
                        let who = keygate::extract::credential_from_headers(req.headers())
                            .ok()
                            .and_then(|t| keygate::token::parse(t).ok())
                            .and_then(|parsed| {
                                let (prefix, expected, who) = table.get(parsed.id())?;
                                // blake3::Hash's `==` is constant-time.
                                (parsed.prefix() == prefix && digest(parsed.token()) == *expected)
                                    .then(|| Arc::clone(who))
                            });
                        admit(req, who)
                    },
                );
                (
                    Router::new().route("/", get(hello)).layer(layer),
                    token,
                    String::new(),
                    "",
                )
            }
            ServerKind::AxumKeygate | ServerKind::AxumKeygateRateLimit => {
                let limit = match kind {
                    ServerKind::AxumKeygateRateLimit => Some(
                        NEVER_HIT_LIMIT
                            .parse::<RateLimit>()
                            .context("the benchmark key's rate limit")?,
                    ),
                    _ => None,
                };
                let s = keygate_setup(dir, limit).await?;
                rate_limit = s.rate_limit;
                let calls = Arc::clone(&s.hash_calls);
                let verifier = s.verifier.clone();
                let app = Router::new()
                    .route("/", get(hello))
                    .layer(keygate::ApiKeyLayer::new(s.verifier.clone()))
                    .route(
                        "/stats",
                        get(move || {
                            let calls = Arc::clone(&calls);
                            let verifier = verifier.clone();
                            async move {
                                let (keys, rejections) = verifier.cached_entries();
                                axum::Json(serde_json::json!({
                                    "hash_verify_calls": calls.load(Ordering::Relaxed),
                                    "cached_keys": keys,
                                    "cached_rejections": rejections,
                                }))
                            }
                        }),
                    );
                (app, s.token, s.id, s.store)
            }
            ServerKind::NaiveArgon2 => {
                let hasher = Argon2Hasher::new();
                let token = peer_token()?;
                let parsed_id = keygate::token::parse(&token)
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .id()
                    .to_owned();
                let stored = hasher.hash(token.as_bytes())?;
                let state = Naive {
                    hashes: Arc::new(HashMap::from([(parsed_id.clone(), stored)])),
                    hasher,
                };
                (
                    Router::new().route("/", get(naive)).with_state(state),
                    token,
                    parsed_id,
                    "memory",
                )
            }
            _ => anyhow::bail!("{kind:?} is not an axum server"),
        };
        announce(port, &token, &id, store, rate_limit);
        axum::serve(listener, app).await?;
        Ok(())
    }
}

mod actix {
    use super::*;
    use actix_web::dev::ServiceRequest;
    use actix_web::{web, App, HttpMessage, HttpResponse, HttpServer};
    use actix_web_httpauth::extractors::bearer::BearerAuth;
    use actix_web_httpauth::middleware::HttpAuthentication;

    async fn hello() -> HttpResponse {
        HttpResponse::Ok()
            .content_type("application/json")
            .body(BODY)
    }

    /// Binds one worker on 127.0.0.1:0, announces, serves.
    macro_rules! run {
        ($server:expr, $token:expr, $id:expr, $store:expr) => {{
            let server = $server.workers(1).bind(("127.0.0.1", 0))?;
            let port = server
                .addrs()
                .first()
                .map(|a| a.port())
                .context("actix bound no address")?;
            announce(port, &$token, $id, $store, None);
            server.run().await?;
            Ok(())
        }};
    }

    pub(super) async fn serve(kind: ServerKind, dir: &Path) -> Result<()> {
        match kind {
            ServerKind::ActixBare => run!(
                HttpServer::new(|| App::new().route("/", web::get().to(hello))),
                peer_token()?,
                "",
                ""
            ),
            ServerKind::ActixHttpauth => {
                let token = peer_token()?;
                let table: Arc<HashMap<String, Identity>> = Arc::new(HashMap::from([(
                    token.clone(),
                    Identity {
                        _org: "bench-org".into(),
                    },
                )]));
                let server = HttpServer::new(move || {
                    let table = Arc::clone(&table);
                    let auth =
                        HttpAuthentication::bearer(move |req: ServiceRequest, cred: BearerAuth| {
                            let who = table.get(cred.token()).cloned();
                            async move {
                                match who {
                                    Some(who) => {
                                        req.extensions_mut().insert(who);
                                        Ok(req)
                                    }
                                    None => Err((
                                        actix_web::error::ErrorUnauthorized("invalid token"),
                                        req,
                                    )),
                                }
                            }
                        });
                    App::new().wrap(auth).route("/", web::get().to(hello))
                });
                run!(server, token, "", "")
            }
            ServerKind::ActixKeygate => {
                let s = keygate_setup(dir, None).await?;
                let verifier = s.verifier.clone();
                let server = HttpServer::new(move || {
                    App::new()
                        .wrap(keygate_actix::ApiKeyAuth::new(verifier.clone()))
                        .route("/", web::get().to(hello))
                });
                run!(server, s.token, &s.id, s.store)
            }
            _ => anyhow::bail!("{kind:?} is not an actix server"),
        }
    }
}

//! Self-service key management: the Keys API (JSON) and the "API Keys" page, free of any web
//! framework. `keygate-axum` and `keygate-actix` mount a [`KeysApi`] in one call; both hand
//! each request to [`KeysApi::handle`] and copy the answer back, so the two frameworks answer
//! byte for byte alike.
//!
//! | method | path (default base) | answer |
//! |---|---|---|
//! | GET | /api/v1/keys?status&limit&cursor | 200 `{"data":[Key…],"next_cursor"}` newest first |
//! | POST | /api/v1/keys | 201 Key plus `"key"` (the plaintext, this once; `Cache-Control: no-store`) |
//! | GET | /api/v1/keys/manager | 200 the manager: org, team, owner, grantable scopes |
//! | GET | /api/v1/keys/{id} | 200 Key plus `"audit"` |
//! | PATCH | /api/v1/keys/{id} | 200 Key (name, expires_at, rate_limit) |
//! | POST | /api/v1/keys/{id}/revoke | 200 Key |
//! | POST | /api/v1/keys/{id}/rotate | 201 the new Key plus `"key"` |
//! | DELETE | /api/v1/keys/{id} | 204 |
//! | GET | /api/v1/keys/{id}/usage?days=30 | 200 `{"data":[{"day","requests","refused"}…]}` oldest first |
//! | GET | /api/v1/keys/openapi.json | 200 the OpenAPI 3.1 document of this API (public) |
//! | GET | /keys | the page (and `/keys/app.js`, `/keys/app.css`) |
//!
//! **Who manages.** By default the caller's own key, which must hold `keys:manage`: it manages
//! its organization's keys (only its team's when it has a team) and grants only scopes it holds
//! ([`KeysApi::new`]). An application with its own login sessions supplies the manager through
//! a [`SessionManagers`] hook instead ([`KeysApi::with_sessions`]); then every state-changing
//! request must carry `content-type: application/json` and an `Origin` equal to the request's
//! own host, since browsers send cookies on cross-site requests.
//!
//! Errors use keygate's envelope: 400 `invalid_body` / `invalid_field` (`details.field`), 401
//! as the verifier answers, 403 `insufficient_scope` / `scope_not_grantable`, 404
//! `key_not_found` (also for another organization's or team's key), 409 `key_not_active` /
//! `already_rotated`, 503 `store_unavailable`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::sync::Arc;
//! use keygate::keys_api::{ApiRequest, KeysApi};
//! use keygate::{KeyManager, MemoryStore, NewKey, Verifier};
//!
//! let store = Arc::new(MemoryStore::new());
//! let verifier = Verifier::builder(store.clone()).build();
//! let manager = KeyManager::new(store).with_verifier(&verifier);
//! let admin = manager
//!     .create(NewKey::new("admin", "acme").scopes(["keys:manage", "boards:read"]).unwrap())
//!     .await
//!     .unwrap();
//! let api = KeysApi::new(manager, verifier);
//!
//! let headers = [("x-api-key", admin.key.expose_secret().as_bytes())];
//! let body = br#"{"name":"ci","scopes":["boards:read"]}"#;
//! let answer = api
//!     .handle(&ApiRequest::new("POST", "/api/v1/keys", &headers).body(body))
//!     .await;
//! assert_eq!(answer.status, 201);
//! # }
//! ```

mod openapi;
mod page;
mod wire;

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Value};

use http::header::{
    HeaderMap, HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, LOCATION, RETRY_AFTER,
};

use crate::error::{
    append_header, envelope, request_id, AuthError, ErrorResponse, JsonRenderer, RenderContext,
    X_REQUEST_ID,
};
use crate::extract::{extract_credential, API_KEY_HEADER, REQUEST_ID_HEADER};
use crate::gate::render_rejection;
use crate::manage::{CreatedKey, KeyManager, ManageError, ManagedKeys, Manager};
use crate::record::{KeyRecord, KeyStatus};
use crate::scope::ScopeRequirement;
use crate::store::StoreError;
use crate::token;
use crate::verify::Verifier;

use openapi::{ErrorEnvelope, KeyId};
use wire::{
    AuditView, BadRequest, CreateBody, CreatedView, DetailView, KeyView, ManagerView, PageView,
    RotateBody, SeriesView, UpdateBody,
};
pub use wire::{DEFAULT_GRACE, DEFAULT_LIMIT, MAX_LIMIT, MAX_NAME_CHARS};

/// The scope a key needs to manage its organization's keys through the Keys API.
pub const MANAGE_SCOPE: &str = "keys:manage";
/// Default base path of the JSON API.
pub const DEFAULT_API_PATH: &str = "/api/v1/keys";
/// Default path of the page.
pub const DEFAULT_PAGE_PATH: &str = "/keys";
/// Largest request body the API reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// One HTTP request as the Keys API needs it, free of framework types. Its `Debug` shows
/// header names only: values carry credentials and cookies.
#[derive(Clone, Copy)]
pub struct ApiRequest<'a> {
    /// The method (`GET`, `POST`, …).
    pub method: &'a str,
    /// The path, without the query string.
    pub path: &'a str,
    /// The query string without `?` (empty when there is none).
    pub query: &'a str,
    /// Every header, names in lowercase (repeated names appear repeatedly).
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The body.
    pub body: &'a [u8],
    /// The body was larger than [`MAX_BODY_BYTES`] (or could not be read): answered 400.
    pub oversized: bool,
    /// The client's address, when the server knows it: wrong management keys are throttled
    /// per (key id, address), as on every other route.
    pub peer: Option<IpAddr>,
    /// The request's authority (`host[:port]`) when the server knows it apart from a `Host`
    /// header (HTTP/2 carries it in the URI): the same-origin check of session managers uses
    /// the `Host` header, else this.
    pub authority: Option<&'a str>,
}

impl std::fmt::Debug for ApiRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.len())
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl<'a> ApiRequest<'a> {
    /// A request with no query and no body.
    pub fn new(method: &'a str, path: &'a str, headers: &'a [(&'a str, &'a [u8])]) -> Self {
        ApiRequest {
            method,
            path,
            query: "",
            headers,
            body: &[],
            oversized: false,
            peer: None,
            authority: None,
        }
    }

    /// Sets the request's authority (see [`ApiRequest::authority`]).
    pub fn authority(mut self, authority: Option<&'a str>) -> Self {
        self.authority = authority;
        self
    }

    /// Sets the client's address.
    pub fn peer(mut self, peer: Option<IpAddr>) -> Self {
        self.peer = peer;
        self
    }

    /// Sets the query string.
    pub fn query(mut self, query: &'a str) -> Self {
        self.query = query;
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }

    /// Marks the body as larger than [`MAX_BODY_BYTES`] or unreadable.
    pub fn oversized_body(mut self) -> Self {
        self.oversized = true;
        self
    }

    /// Every value of header `name` (lowercase).
    pub fn header_values(&self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &'a str) -> Option<&'a [u8]> {
        self.header_values(name).next()
    }
}

/// Supplies the manager of a request from the application's own login sessions (see the
/// module docs for the CSRF rule that then applies).
#[async_trait]
pub trait SessionManagers: Send + Sync + 'static {
    /// The manager signed in on this request (e.g. from its session cookie), `None` when
    /// nobody is (401), or a store error (503).
    async fn manager(&self, request: &ApiRequest<'_>) -> Result<Option<Manager>, StoreError>;
}

#[derive(Clone)]
enum Managers {
    /// The caller's key, holding [`MANAGE_SCOPE`].
    Keys(Verifier),
    /// The application's sessions.
    Sessions(Arc<dyn SessionManagers>),
}

/// The Keys API and page; cheap to clone. See the [module docs](self).
#[derive(Clone)]
pub struct KeysApi {
    keys: KeyManager,
    managers: Managers,
    api_path: Arc<str>,
    page_path: Arc<str>,
    page: page::Page,
    openapi: Bytes,
}

impl std::fmt::Debug for KeysApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeysApi")
            .field("api_path", &self.api_path)
            .field("page_path", &self.page_path)
            .finish_non_exhaustive()
    }
}

/// Where a request goes.
enum Route<'a> {
    Collection,
    Manager,
    OpenApi,
    Key(&'a str),
    Action(&'a str, &'a str),
    Page(&'a str),
    Unknown,
}

impl KeysApi {
    /// The API over `keys`, managed by callers whose key (verified by `verifier`) holds
    /// [`MANAGE_SCOPE`]; served at [`DEFAULT_API_PATH`] and [`DEFAULT_PAGE_PATH`].
    pub fn new(keys: KeyManager, verifier: Verifier) -> Self {
        KeysApi {
            keys,
            managers: Managers::Keys(verifier),
            api_path: DEFAULT_API_PATH.into(),
            page_path: DEFAULT_PAGE_PATH.into(),
            page: page::Page::new(DEFAULT_API_PATH, DEFAULT_PAGE_PATH),
            openapi: openapi::document(DEFAULT_API_PATH),
        }
    }

    /// The API over the verifier's own store ([`KeysApi::new`] with a [`KeyManager`] connected
    /// to `verifier`, so revocations bite on its next request).
    pub fn for_verifier(verifier: &Verifier) -> Self {
        let keys = KeyManager::new(std::sync::Arc::clone(verifier.store())).with_verifier(verifier);
        Self::new(keys, verifier.clone())
    }

    /// The manager comes from the application's sessions instead of a management key.
    pub fn with_sessions(mut self, sessions: impl SessionManagers) -> Self {
        self.managers = Managers::Sessions(Arc::new(sessions));
        self
    }

    /// Serves the JSON API under `path` (no trailing `/`, e.g. `/admin/keys`).
    pub fn api_path(mut self, path: &str) -> Self {
        self.api_path = path.trim_end_matches('/').into();
        self.page = page::Page::new(&self.api_path, &self.page_path);
        self.openapi = openapi::document(&self.api_path);
        self
    }

    /// Serves the page at `path` (its script and style sheet below it).
    pub fn page_path(mut self, path: &str) -> Self {
        self.page_path = path.trim_end_matches('/').into();
        self.page = page::Page::new(&self.api_path, &self.page_path);
        self
    }

    /// The JSON API's base path.
    pub fn api_base(&self) -> &str {
        &self.api_path
    }

    /// The page's path.
    pub fn page_base(&self) -> &str {
        &self.page_path
    }

    fn route<'p>(&self, path: &'p str) -> Route<'p> {
        if let Some(rest) = under(path, &self.api_path) {
            let mut parts = rest.split('/');
            return match (parts.next(), parts.next(), parts.next()) {
                (Some(""), None, None) => Route::Collection,
                (Some("manager"), None, None) => Route::Manager,
                (Some("openapi.json"), None, None) => Route::OpenApi,
                (Some(id), None, None) => Route::Key(id),
                (Some(id), Some(action), None) => Route::Action(id, action),
                _ => Route::Unknown,
            };
        }
        match under(path, &self.page_path) {
            Some(rest) => Route::Page(rest),
            None => Route::Unknown,
        }
    }

    /// Answers one request. Never panics and never fails: every refusal is an answer in
    /// keygate's envelope.
    pub async fn handle(&self, req: &ApiRequest<'_>) -> ErrorResponse {
        let rid = request_id(req.header(REQUEST_ID_HEADER));
        let reply = Reply { request_id: &rid };
        let route = self.route(req.path);
        if let Route::Page(asset) = route {
            return match (req.method, self.page.asset(asset)) {
                ("GET" | "HEAD", Some(answer)) => answer,
                (_, Some(_)) => reply.method_not_allowed("GET, HEAD"),
                (_, None) => reply.not_found(),
            };
        }
        if let Route::OpenApi = route {
            // The document is public: it describes the API, it holds nothing of anyone's.
            return match req.method {
                "GET" | "HEAD" => Answer {
                    body: Some(self.openapi.clone()),
                    ..Answer::empty(200)
                }
                .into_response(&rid),
                _ => reply.method_not_allowed("GET, HEAD"),
            };
        }
        let allowed = match &route {
            Route::Collection => "GET, POST",
            Route::Manager => "GET",
            Route::Key(_) => "GET, PATCH, DELETE",
            Route::Action(_, "revoke" | "rotate") => "POST",
            Route::Action(_, "usage") => "GET",
            Route::Action(..) | Route::Unknown | Route::Page(_) | Route::OpenApi => {
                return reply.not_found()
            }
        };
        if !allowed.split(", ").any(|m| m == req.method) {
            return reply.method_not_allowed(allowed);
        }
        if req.oversized || req.body.len() > MAX_BODY_BYTES {
            return reply.bad_request(&BadRequest::Body(format!(
                "the body is larger than {MAX_BODY_BYTES} bytes or could not be read"
            )));
        }
        let keys = match self.manager(req).await {
            Ok(m) => self.keys.for_manager(m),
            Err(e) => return render_rejection(&JsonRenderer::default(), &e, Some(rid.as_bytes())),
        };
        if self.csrf_applies(req) && !same_origin_json(req) {
            return reply.error(
                403,
                "FORBIDDEN",
                "Cross-site request refused",
                json!({ "reason": "csrf" }),
            );
        }
        let answered = match route {
            Route::Collection if req.method == "GET" => list(&keys, req).await,
            Route::Collection => create(&keys, req, &self.api_path).await,
            Route::Manager => Ok(manager(&keys)),
            Route::Key(id) => match (req.method, known_id(id)) {
                (_, None) => Err(Refusal::Manage(ManageError::NotFound(id.to_owned()))),
                ("GET", Some(id)) => show(&keys, id).await,
                ("PATCH", Some(id)) => update(&keys, id, req).await,
                (_, Some(id)) => delete(&keys, id).await,
            },
            Route::Action(id, action) => match (action, known_id(id)) {
                (_, None) => Err(Refusal::Manage(ManageError::NotFound(id.to_owned()))),
                ("revoke", Some(id)) => revoke(&keys, id).await,
                ("usage", Some(id)) => usage(&keys, id, req).await,
                (_, Some(id)) => rotate(&keys, id, req, &self.api_path).await,
            },
            Route::Page(_) | Route::Unknown | Route::OpenApi => return reply.not_found(),
        };
        match answered {
            Ok(a) => a.into_response(&rid),
            Err(Refusal::Bad(b)) => reply.bad_request(&b),
            Err(Refusal::Manage(e)) => reply.manage_error(&e),
        }
    }

    /// The manager of this request: the caller's management key, or the session hook's.
    async fn manager(&self, req: &ApiRequest<'_>) -> Result<Manager, AuthError> {
        match &self.managers {
            Managers::Keys(verifier) => {
                let token = extract_credential(
                    req.header_values(API_KEY_HEADER),
                    req.header_values("authorization"),
                )?;
                let p = verifier.verify_from(token, req.peer).await?;
                verifier.require(&p, &ScopeRequirement::all_of([MANAGE_SCOPE]))?;
                Ok(Manager {
                    org: p.org.to_string(),
                    team: p.team.as_deref().map(str::to_owned),
                    owner: p.owner.as_deref().map(str::to_owned),
                    scopes: p.scopes.clone(),
                    actor: format!("key:{}", p.id),
                })
            }
            Managers::Sessions(s) => match s.manager(req).await {
                Ok(Some(m)) => Ok(m),
                Ok(None) => Err(AuthError::MissingCredentials),
                Err(e) => {
                    tracing::warn!(error = %e, "keygate: session lookup failed");
                    Err(AuthError::StoreUnavailable {
                        retry_after_secs: 5,
                    })
                }
            },
        }
    }

    /// Cookie sessions ride along on cross-site requests; keys do not.
    fn csrf_applies(&self, req: &ApiRequest<'_>) -> bool {
        matches!(self.managers, Managers::Sessions(_)) && !matches!(req.method, "GET" | "HEAD")
    }
}

/// What follows `base` in `path` (without the separating `/`), when `path` is `base` or below it.
fn under<'p>(path: &'p str, base: &str) -> Option<&'p str> {
    let rest = path.strip_prefix(base)?;
    if rest.is_empty() {
        Some(rest)
    } else {
        rest.strip_prefix('/')
    }
}

/// A state-changing request from a session: JSON, from a page of this very host.
fn same_origin_json(req: &ApiRequest<'_>) -> bool {
    let json = req.header("content-type").is_some_and(|ct| {
        let ct = String::from_utf8_lossy(ct).to_ascii_lowercase();
        ct.split(';').next().map(str::trim) == Some("application/json")
    });
    let host = req
        .header("host")
        .or_else(|| req.authority.map(str::as_bytes));
    let same_origin = match (req.header("origin"), host) {
        (Some(origin), Some(host)) => {
            let origin = String::from_utf8_lossy(origin).to_ascii_lowercase();
            let host = String::from_utf8_lossy(host).to_ascii_lowercase();
            origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .is_some_and(|o| o == host)
        }
        _ => false,
    };
    json && same_origin
}

/// Ids are 16 lowercase hex digits: anything else cannot exist (no store read for it).
fn known_id(id: &str) -> Option<&str> {
    token::is_valid_id(id).then_some(id)
}

#[utoipa::path(get, path = "/api/v1/keys/manager", tag = "keys",
    responses(
        (status = 200, description = "The manager this request acts as", body = ManagerView),
        (status = 401, description = "No valid key", body = ErrorEnvelope),
        (status = 403, description = "The key lacks keys:manage", body = ErrorEnvelope),
        (status = 503, description = "Key store unavailable", body = ErrorEnvelope),
    ))]
fn manager(keys: &ManagedKeys) -> Answer {
    let m = keys.manager();
    Answer::json(
        200,
        &ManagerView {
            org: m.org.clone(),
            team: m.team.clone(),
            owner: m.owner.clone(),
            scopes: m.scopes.to_strings(),
        },
    )
}

enum Refusal {
    Bad(BadRequest),
    Manage(ManageError),
}

impl From<BadRequest> for Refusal {
    fn from(b: BadRequest) -> Self {
        Refusal::Bad(b)
    }
}

impl From<ManageError> for Refusal {
    fn from(e: ManageError) -> Self {
        Refusal::Manage(e)
    }
}

/// A successful answer before rendering.
struct Answer {
    status: u16,
    body: Option<Bytes>,
    /// The answer carries a plaintext key.
    secret: bool,
    location: Option<String>,
}

impl Answer {
    fn json(status: u16, body: &impl Serialize) -> Self {
        // Serializing our own views cannot fail (string keys, no maps with other keys).
        let body = serde_json::to_vec(body).unwrap_or_default();
        Answer {
            status,
            body: Some(Bytes::from(body)),
            secret: false,
            location: None,
        }
    }

    fn empty(status: u16) -> Self {
        Answer {
            status,
            body: None,
            secret: false,
            location: None,
        }
    }

    fn into_response(self, request_id: &str) -> ErrorResponse {
        let mut headers = HeaderMap::with_capacity(4);
        if self.body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        headers.insert(
            CACHE_CONTROL,
            HeaderValue::from_static(if self.secret { "no-store" } else { "no-cache" }),
        );
        if let Some(l) = self.location {
            append_header(&mut headers, LOCATION, l);
        }
        append_header(&mut headers, X_REQUEST_ID, request_id.to_owned());
        ErrorResponse {
            status: self.status,
            headers,
            body: self.body.unwrap_or_default(),
        }
    }
}

/// Renders refusals in keygate's envelope.
struct Reply<'r> {
    request_id: &'r str,
}

impl Reply<'_> {
    fn error(&self, status: u16, code: &str, message: &str, details: Value) -> ErrorResponse {
        let ctx = RenderContext {
            request_id: self.request_id,
            now: chrono::Utc::now(),
        };
        let mut headers = HeaderMap::with_capacity(4);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == 503 {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("5"));
        }
        append_header(&mut headers, X_REQUEST_ID, self.request_id.to_owned());
        ErrorResponse {
            status,
            headers,
            body: envelope(code, message, details, &ctx),
        }
    }

    fn not_found(&self) -> ErrorResponse {
        self.error(
            404,
            "NOT_FOUND",
            "No such endpoint",
            json!({ "reason": "not_found" }),
        )
    }

    fn method_not_allowed(&self, allowed: &'static str) -> ErrorResponse {
        let mut r = self.error(
            405,
            "METHOD_NOT_ALLOWED",
            "Method not allowed on this endpoint",
            json!({ "reason": "method_not_allowed", "allowed": allowed }),
        );
        r.headers.insert(ALLOW, HeaderValue::from_static(allowed));
        r
    }

    fn bad_request(&self, b: &BadRequest) -> ErrorResponse {
        match b {
            BadRequest::Body(message) => self.error(
                400,
                "BAD_REQUEST",
                message,
                json!({ "reason": "invalid_body" }),
            ),
            BadRequest::Field(field, message) => self.error(
                400,
                "BAD_REQUEST",
                &format!("{field} {message}"),
                json!({ "reason": "invalid_field", "field": field }),
            ),
        }
    }

    fn manage_error(&self, e: &ManageError) -> ErrorResponse {
        match e {
            ManageError::NotFound(_) => self.error(
                404,
                "NOT_FOUND",
                "No such API key",
                json!({ "reason": "key_not_found" }),
            ),
            ManageError::InvalidField { field, message } => {
                self.bad_request(&BadRequest::Field(field, message.clone()))
            }
            ManageError::Scope(s) => self.bad_request(&BadRequest::Field("scopes", s.to_string())),
            ManageError::Generate(token::GenerateError::Prefix(_)) => self.bad_request(
                &BadRequest::Field("prefix", "is not a valid key prefix".into()),
            ),
            ManageError::NotGrantable(scopes) => self.error(
                403,
                "FORBIDDEN",
                "You cannot grant scopes you do not hold",
                json!({
                    "reason": "scope_not_grantable",
                    "scopes": scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                }),
            ),
            ManageError::NotActive { status, .. } => self.error(
                409,
                "CONFLICT",
                &format!("The key is {status}; only active keys can be rotated"),
                json!({ "reason": "key_not_active", "status": status.as_str() }),
            ),
            ManageError::AlreadyRotated(_) => self.error(
                409,
                "CONFLICT",
                "The key was already rotated",
                json!({ "reason": "already_rotated" }),
            ),
            ManageError::Store(err) => {
                tracing::warn!(error = %err, "keygate: key store failed in the Keys API");
                self.error(
                    503,
                    "SERVICE_UNAVAILABLE",
                    "Key store unavailable, retry later",
                    json!({ "reason": "store_unavailable" }),
                )
            }
            ManageError::Busy => self.error(
                503,
                "SERVICE_UNAVAILABLE",
                "Too busy to hash a new key, retry later",
                json!({ "reason": "verifier_busy" }),
            ),
            ManageError::Hash(_) | ManageError::Generate(_) => {
                tracing::error!(error = %e, "keygate: cannot create a key");
                self.error(
                    500,
                    "INTERNAL_ERROR",
                    "The key could not be created",
                    json!({ "reason": "internal" }),
                )
            }
        }
    }
}

#[utoipa::path(get, path = "/api/v1/keys", tag = "keys",
    params(
        ("status" = Option<KeyStatus>, Query, description = "Only keys with this status"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Keys per page (default 50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of the manager's keys, newest first", body = PageView),
        (status = 400, description = "A bad query parameter (`details.field`)", body = ErrorEnvelope),
        (status = 401, description = "No valid key", body = ErrorEnvelope),
        (status = 403, description = "The key lacks keys:manage", body = ErrorEnvelope),
        (status = 503, description = "Key store unavailable", body = ErrorEnvelope),
    ))]
async fn list(keys: &ManagedKeys, req: &ApiRequest<'_>) -> Result<Answer, Refusal> {
    let q = wire::list_query(req.query)?;
    let (page, next) = keys.list_page(q.status, q.after, q.limit).await?;
    let now = keys.now();
    let usage = keys.usage_totals(&page).await?;
    Ok(Answer::json(
        200,
        &PageView {
            data: page
                .iter()
                .map(|r| KeyView::of(r, now, usage.get(&r.id)))
                .collect(),
            next_cursor: next.as_ref().map(wire::encode_cursor),
        },
    ))
}

/// A new key's answer: the Key object plus its plaintext, never cached.
fn with_plaintext(keys: &ManagedKeys, created: &CreatedKey, api: &str) -> Answer {
    let view = CreatedView {
        // A new key has served nothing yet.
        view: KeyView::of(&created.record, keys.now(), None),
        key: created.key.expose_secret().to_owned(),
    };
    Answer {
        secret: true,
        location: Some(format!("{api}/{}", created.record.id)),
        ..Answer::json(201, &view)
    }
}

#[utoipa::path(post, path = "/api/v1/keys", tag = "keys",
    request_body = CreateBody,
    responses(
        (status = 201, description = "Created; `key` holds the plaintext, shown this once",
            body = CreatedView, headers(("cache-control" = String, description = "no-store"))),
        (status = 400, description = "Not JSON (`invalid_body`) or a bad field (`invalid_field`, `details.field`)", body = ErrorEnvelope),
        (status = 401, description = "No valid key", body = ErrorEnvelope),
        (status = 403, description = "`insufficient_scope` or `scope_not_grantable`", body = ErrorEnvelope),
        (status = 503, description = "Key store unavailable", body = ErrorEnvelope),
    ))]
async fn create(keys: &ManagedKeys, req: &ApiRequest<'_>, api: &str) -> Result<Answer, Refusal> {
    let request = wire::create_request(req.body, keys.now())?;
    let created = keys.create(request).await?;
    Ok(with_plaintext(keys, &created, api))
}

#[utoipa::path(get, path = "/api/v1/keys/{id}", tag = "keys", params(KeyId),
    responses(
        (status = 200, description = "The key and its audit trail", body = DetailView),
        (status = 401, description = "No valid key", body = ErrorEnvelope),
        (status = 403, description = "The key lacks keys:manage", body = ErrorEnvelope),
        (status = 404, description = "`key_not_found` (also another organization's key)", body = ErrorEnvelope),
        (status = 503, description = "Key store unavailable", body = ErrorEnvelope),
    ))]
async fn show(keys: &ManagedKeys, id: &str) -> Result<Answer, Refusal> {
    let record = keys.show(id).await?;
    let trail = keys.audit_trail(id).await?;
    let view = key_view(keys, &record).await?;
    Ok(Answer::json(
        200,
        &DetailView {
            view,
            audit: AuditView::all(&trail),
        },
    ))
}

#[utoipa::path(patch, path = "/api/v1/keys/{id}", tag = "keys", params(KeyId),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "The updated key", body = KeyView),
        (status = 400, description = "Not JSON (`invalid_body`) or a bad field (`invalid_field`)", body = ErrorEnvelope),
        (status = 401, description = "No valid key", body = ErrorEnvelope),
        (status = 403, description = "The key lacks keys:manage", body = ErrorEnvelope),
        (status = 404, description = "`key_not_found`", body = ErrorEnvelope),
        (status = 503, description = "Key store unavailable", body = ErrorEnvelope),
    ))]
async fn update(keys: &ManagedKeys, id: &str, req: &ApiRequest<'_>) -> Result<Answer, Refusal> {
    let change = wire::update_request(req.body, keys.now())?;
    let record = keys.update(id, &change).await?;
    Ok(Answer::json(200, &key_view(keys, &record).await?))
}

#[utoipa::path(post, path = "/api/v1/keys/{id}/revoke", tag = "keys", params(KeyId),
    responses(
        (status = 200, description = "The revoked key (unchanged if it already was)", body = KeyView),
        (status = 401, description = "No valid key", body = ErrorEnvelope),
        (status = 403, description = "The key lacks keys:manage", body = ErrorEnvelope),
        (status = 404, description = "`key_not_found`", body = ErrorEnvelope),
        (status = 503, description = "Key store unavailable", body = ErrorEnvelope),
    ))]
async fn revoke(keys: &ManagedKeys, id: &str) -> Result<Answer, Refusal> {
    let record = keys.revoke(id).await?;
    Ok(Answer::json(200, &key_view(keys, &record).await?))
}

/// One key's view with its usage totals.
async fn key_view(keys: &ManagedKeys, record: &KeyRecord) -> Result<KeyView, ManageError> {
    let usage = keys.usage_totals(std::slice::from_ref(record)).await?;
    Ok(KeyView::of(record, keys.now(), usage.get(&record.id)))
}

#[utoipa::path(get, path = "/api/v1/keys/{id}/usage", tag = "keys", params(KeyId,
        ("days" = Option<u32>, Query, minimum = 1, maximum = 90, description = "Days to cover, ending today (default 30)"),
    ),
    responses(
        (status = 200, description = "Requests and refusals per UTC day, oldest first, one entry per day", body = SeriesView),
        (status = 400, description = "A bad `days` (`invalid_field`)", body = ErrorEnvelope),
        (status = 401, description = "No valid key", body = ErrorEnvelope),
        (status = 403, description = "The key lacks keys:manage", body = ErrorEnvelope),
        (status = 404, description = "`key_not_found`", body = ErrorEnvelope),
        (status = 503, description = "Key store unavailable", body = ErrorEnvelope),
    ))]
async fn usage(keys: &ManagedKeys, id: &str, req: &ApiRequest<'_>) -> Result<Answer, Refusal> {
    let days = wire::usage_days(req.query)?;
    let series = keys.daily_usage(id, days).await?;
    Ok(Answer::json(200, &SeriesView::of(&series)))
}

#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys", params(KeyId),
    responses(
        (status = 204, description = "Deleted (its audit trail stays)"),
        (status = 401, description = "No valid key", body = ErrorEnvelope),
        (status = 403, description = "The key lacks keys:manage", body = ErrorEnvelope),
        (status = 404, description = "`key_not_found`", body = ErrorEnvelope),
        (status = 503, description = "Key store unavailable", body = ErrorEnvelope),
    ))]
async fn delete(keys: &ManagedKeys, id: &str) -> Result<Answer, Refusal> {
    keys.delete(id).await?;
    Ok(Answer::empty(204))
}

#[utoipa::path(post, path = "/api/v1/keys/{id}/rotate", tag = "keys", params(KeyId),
    request_body(content = Option<RotateBody>, description = "Grace period (default 24h)"),
    responses(
        (status = 201, description = "The new key; `key` holds its plaintext, shown this once",
            body = CreatedView, headers(("cache-control" = String, description = "no-store"))),
        (status = 400, description = "Not JSON or a bad `grace`", body = ErrorEnvelope),
        (status = 401, description = "No valid key", body = ErrorEnvelope),
        (status = 403, description = "`insufficient_scope` or `scope_not_grantable`", body = ErrorEnvelope),
        (status = 404, description = "`key_not_found`", body = ErrorEnvelope),
        (status = 409, description = "`key_not_active` or `already_rotated`", body = ErrorEnvelope),
        (status = 503, description = "Key store unavailable", body = ErrorEnvelope),
    ))]
async fn rotate(
    keys: &ManagedKeys,
    id: &str,
    req: &ApiRequest<'_>,
    api: &str,
) -> Result<Answer, Refusal> {
    let grace = wire::rotate_grace(req.body)?;
    let created = keys.rotate(id, grace).await?;
    Ok(with_plaintext(keys, &created, api))
}

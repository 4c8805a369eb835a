//! keygate's demo API on axum, as a router the binary serves and tests drive in-process.
//!
//! | method | path | needs |
//! |---|---|---|
//! | GET | /health | nothing |
//! | GET | /metrics | nothing (keygate's metrics in Prometheus text; protect it in production) |
//! | GET | /api/v1/me | any valid key |
//! | GET, POST | /api/v1/entities | `entities:read`, `entities:write` (typed extractors) |
//! | GET, POST | /api/v1/knowledge/files | `knowledge:read`, `knowledge:write` (route layers) |
//! | GET, POST | /api/v1/boards | `boards:read`, `boards:write` (route layers) |
//! | … | /api/v1/keys, /keys | the Keys API and page (a key holding `keys:manage`) |
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use bytes::Bytes;
use demo_api::{
    method_not_allowed, not_found, Collection, DemoState, EntitiesRead, EntitiesWrite, Health,
    ItemList, Me, NewItem, METRICS_CONTENT_TYPE, METRICS_PATH,
};
use keygate::extract::REQUEST_ID_HEADER;
use keygate_axum::{require_scopes, ApiKeyLayer, Principal, Rendered, Scoped};

/// The demo API (`docs/architecture.md`, "The demo API") over `state`.
pub fn app(state: DemoState) -> Router {
    let api = Router::new()
        .route("/api/v1/me", get(me))
        // Scopes checked by typed extractors in the handlers' signatures…
        .route("/api/v1/entities", get(list_entities).post(create_entities))
        // …or by a guard per method, without touching the handlers.
        .route(
            Collection::KnowledgeFiles.path(),
            guarded(Collection::KnowledgeFiles),
        )
        .route(Collection::Boards.path(), guarded(Collection::Boards))
        // Authenticates every route above (and only those).
        .route_layer(ApiKeyLayer::new(state.verifier.clone()));
    // Installed now, before any traffic: what keygate emits earlier is not recorded.
    let metrics = demo_api::metrics_handle();
    Router::new()
        .route("/health", get(|| async { Json(Health::default()) }))
        // No key needed here, for the demo: a real deployment restricts it to its scraper
        // (network policy, a separate internal listener) rather than expose it publicly.
        .route(
            METRICS_PATH,
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
                    metrics.render(),
                )
            }),
        )
        .merge(api)
        // The Keys API (/api/v1/keys) and the keys page (/keys): they authenticate managers
        // themselves (a key holding keys:manage).
        .merge(keygate_axum::keys_router(state.keys.clone()))
        // Unknown routes and methods answer in the same envelope as everything else.
        .fallback(|h: HeaderMap| async move { Rendered(not_found(request_id(&h))) })
        .method_not_allowed_fallback(|h: HeaderMap| async move {
            Rendered(method_not_allowed(request_id(&h)))
        })
        .with_state(state)
}

fn request_id(headers: &HeaderMap) -> Option<&[u8]> {
    headers.get(REQUEST_ID_HEADER).map(|v| v.as_bytes())
}

async fn me(who: Principal) -> Json<Me> {
    Json(Me::from(&*who))
}

async fn list_entities(who: Scoped<EntitiesRead>, State(s): State<DemoState>) -> Json<ItemList> {
    list(&s, Collection::Entities, &who)
}

async fn create_entities(
    who: Scoped<EntitiesWrite>,
    State(s): State<DemoState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    create(&s, Collection::Entities, &who, &headers, &body)
}

/// GET and POST of a collection, each behind its own scope guard.
fn guarded(c: Collection) -> MethodRouter<DemoState> {
    let read =
        get(move |who: Principal, State(s): State<DemoState>| async move { list(&s, c, &who) })
            .route_layer(require_scopes([c.read_scope()]));
    let write = post(
        move |who: Principal, State(s): State<DemoState>, headers: HeaderMap, body: Bytes| async move {
            create(&s, c, &who, &headers, &body)
        },
    )
    .route_layer(require_scopes([c.write_scope()]));
    read.merge(write)
}

fn list(s: &DemoState, c: Collection, who: &keygate::Principal) -> Json<ItemList> {
    Json(ItemList {
        items: s.items.list(c, &who.org),
    })
}

fn create(
    s: &DemoState,
    c: Collection,
    who: &keygate::Principal,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes());
    // A bad body is a 400 in the same envelope as keygate's own errors.
    let new = match NewItem::from_json(content_type, body) {
        Ok(new) => new,
        Err(e) => return Rendered(e.render(request_id(headers))).into_response(),
    };
    // A full collection is a 409 in the same envelope.
    match s.items.create(c, &who.org, &who.id, new) {
        Ok(item) => (StatusCode::CREATED, Json(item)).into_response(),
        Err(full) => Rendered(full.render(request_id(headers))).into_response(),
    }
}

//! keygate's demo API on actix-web, as a service configuration the binary serves and tests
//! drive in-process. Same routes and contract as `axum-quickstart`:
//!
//! | method | path | needs |
//! |---|---|---|
//! | GET | /health | nothing |
//! | GET | /metrics | nothing (keygate's metrics in Prometheus text; protect it in production) |
//! | GET | /api/v1/me | any valid key |
//! | GET, POST | /api/v1/entities | `entities:read`, `entities:write` (typed extractors) |
//! | GET, POST | /api/v1/knowledge/files | `knowledge:read`, `knowledge:write` (scope guards) |
//! | GET, POST | /api/v1/boards | `boards:read`, `boards:write` (scope guards) |
//! | … | /api/v1/keys, /keys | the Keys API and page (a key holding `keys:manage`) |
//!
//! Unknown routes (404) and methods a route does not serve (405) answer in keygate's error
//! envelope, like every other error of the API — and, as on axum, whatever the credentials:
//! authentication wraps each route, not the `/api/v1` scope, so a request that matches no
//! route is answered before any key is examined (no store read, no hash).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpRequest, HttpResponse, Route};
use demo_api::{
    method_not_allowed, not_found, Collection, DemoState, EntitiesRead, EntitiesWrite, Health,
    ItemList, Me, NewItem, METRICS_CONTENT_TYPE, METRICS_PATH,
};
use keygate::extract::REQUEST_ID_HEADER;
use keygate_actix::{into_actix_response, ApiKeyAuth, Principal, RequireScopes, Scoped};

const API: &str = "/api/v1";

/// Registers the demo API (`docs/architecture.md`, "The demo API") over `state`:
/// `App::new().configure(|c| actix_quickstart::configure(c, state))`.
pub fn configure(cfg: &mut web::ServiceConfig, state: DemoState) {
    let auth = ApiKeyAuth::new(state.verifier.clone());
    // Installed now, before any traffic: what keygate emits earlier is not recorded.
    let metrics = demo_api::metrics_handle();
    // The Keys API (/api/v1/keys) and the keys page (/keys), registered before the /api/v1
    // scope so that scope does not claim their paths; they authenticate managers themselves.
    cfg.configure(keygate_actix::keys_config(state.keys.clone()));
    cfg.app_data(web::Data::new(state))
        // Unknown routes answer in the same envelope as everything else.
        .default_service(web::to(unknown_route))
        .service(
            resource("/health")
                .route(web::get().to(|| async { HttpResponse::Ok().json(Health::default()) })),
        )
        // No key needed here, for the demo: a real deployment restricts it to its scraper
        // (network policy, a separate internal listener) rather than expose it publicly.
        .service(resource(METRICS_PATH).route(web::get().to(move || {
            let body = metrics.render();
            async move {
                HttpResponse::Ok()
                    .content_type(METRICS_CONTENT_TYPE)
                    .body(body)
            }
        })))
        .service(
            // Every route of the scope is authenticated, route by route (`authenticated`):
            // wrapping the scope itself would also authenticate its unknown paths and its
            // resources' 405 answers, so they would be 401 without a key.
            web::scope(API)
                .service(resource("/me").route(authenticated(web::get().to(me), &auth)))
                // Scopes checked by typed extractors in the handlers' signatures…
                .service(
                    resource("/entities")
                        .route(authenticated(web::get().to(list_entities), &auth))
                        .route(authenticated(web::post().to(create_entities), &auth)),
                )
                // …or by a guard per method, without touching the handlers.
                .service(guarded(Collection::KnowledgeFiles, &auth))
                .service(guarded(Collection::Boards, &auth)),
        );
}

/// `route` behind the authentication middleware: only requests routed to it (path and
/// method) are authenticated.
fn authenticated(route: Route, auth: &ApiKeyAuth) -> Route {
    route.wrap(auth.clone())
}

/// A resource whose unsupported methods answer 405 in the envelope.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(unsupported_method))
}

fn request_id(req: &HttpRequest) -> Option<&[u8]> {
    req.headers().get(REQUEST_ID_HEADER).map(|v| v.as_bytes())
}

async fn unknown_route(req: HttpRequest) -> HttpResponse {
    into_actix_response(not_found(request_id(&req)))
}

async fn unsupported_method(req: HttpRequest) -> HttpResponse {
    into_actix_response(method_not_allowed(request_id(&req)))
}

fn relative(c: Collection) -> &'static str {
    c.path().strip_prefix(API).unwrap_or(c.path())
}

/// GET and POST of a collection, each behind its own scope guard (inside authentication:
/// the last `wrap` runs first).
fn guarded(c: Collection, auth: &ApiKeyAuth) -> actix_web::Resource {
    resource(relative(c))
        .route(authenticated(
            web::get()
                .to(move |who: Principal, s: web::Data<DemoState>| async move { list(&s, c, &who) })
                .wrap(RequireScopes::all_of([c.read_scope()])),
            auth,
        ))
        .route(authenticated(
            web::post()
                .to(
                    move |who: Principal,
                          s: web::Data<DemoState>,
                          req: HttpRequest,
                          body: web::Bytes| async move {
                        create(&s, c, &who, &req, &body)
                    },
                )
                .wrap(RequireScopes::all_of([c.write_scope()])),
            auth,
        ))
}

async fn me(who: Principal) -> HttpResponse {
    HttpResponse::Ok().json(Me::from(&*who))
}

async fn list_entities(who: Scoped<EntitiesRead>, s: web::Data<DemoState>) -> HttpResponse {
    list(&s, Collection::Entities, &who)
}

async fn create_entities(
    who: Scoped<EntitiesWrite>,
    s: web::Data<DemoState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    create(&s, Collection::Entities, &who, &req, &body)
}

fn list(s: &DemoState, c: Collection, who: &keygate::Principal) -> HttpResponse {
    HttpResponse::Ok().json(ItemList {
        items: s.items.list(c, &who.org),
    })
}

fn create(
    s: &DemoState,
    c: Collection,
    who: &keygate::Principal,
    req: &HttpRequest,
    body: &[u8],
) -> HttpResponse {
    let content_type = req.headers().get(CONTENT_TYPE).map(|v| v.as_bytes());
    // The body first (400/415), then the organization's room in the collection (409).
    let new = match NewItem::from_json(content_type, body) {
        Ok(new) => new,
        Err(e) => return into_actix_response(e.render(request_id(req))),
    };
    match s.items.create(c, &who.org, &who.id, new) {
        Ok(item) => HttpResponse::Created().json(item),
        Err(full) => into_actix_response(full.render(request_id(req))),
    }
}

//! The conformance table: every case as data — a request, and what must come back.
//!
//! Cases run in the order listed; a few read what an earlier one wrote (they say so). The
//! table is the base cases below followed by the [hostile](crate::hostile) ones.

use serde_json::{json, Value};

use crate::driver::TestRequest;
use crate::fixture::{Keys, RETRY_AFTER_SECS, SPENT_LIMIT};

/// One HTTP case.
#[derive(Debug, Clone)]
pub struct Case {
    /// What the case shows, in a few words.
    pub name: &'static str,
    /// The request to send.
    pub request: TestRequest,
    /// What must come back.
    pub expect: Expect,
}

/// Expected status, envelope fields, headers and body facts.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    /// HTTP status.
    pub status: u16,
    /// `error.code`, for errors.
    pub code: Option<&'static str>,
    /// `error.details.reason`, for errors.
    pub reason: Option<&'static str>,
    /// Header checks.
    pub headers: Vec<HeaderCheck>,
    /// Body checks.
    pub body: Vec<BodyCheck>,
    /// What the key store may see while the request is served.
    pub store: StoreAccess,
}

/// The store work a case may cause, checked through the fixture's
/// [`CountingStore`](crate::store::CountingStore).
///
/// No case of the table may write: verification never writes (last use is write-behind and
/// the fixture's flusher does not fire during a run), and the demo API keeps its items
/// outside the key store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreAccess {
    /// Neither a read nor a write: what a missing or malformed credential, or a route that
    /// needs no key, must cost the store.
    Untouched,
    /// Reads allowed (a cache miss reads the key's record once), no write.
    ReadOnly,
}

impl StoreAccess {
    /// What the error table implies for `reason`: `missing_credentials` and `malformed_key`
    /// are answered before any store work; everything else may read.
    pub fn for_reason(reason: &str) -> Self {
        match reason {
            "missing_credentials" | "malformed_key" => StoreAccess::Untouched,
            _ => StoreAccess::ReadOnly,
        }
    }
}

/// A fact about a response header (names are case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderCheck {
    /// The header appears exactly once, with this value.
    Equals(&'static str, String),
    /// The (first) value contains this text.
    Contains(&'static str, String),
    /// The (first) value is not this one (or the header is absent).
    NotEquals(&'static str, String),
    /// The header is present.
    Present(&'static str),
}

/// A fact about a JSON response body.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyCheck {
    /// The value at this JSON pointer equals this.
    Equals(&'static str, Value),
    /// Something is at this JSON pointer (`null` counts).
    Present(&'static str),
    /// `items` lists only items of `org`, including and excluding the names given.
    Items {
        /// The only organization whose items may appear.
        org: String,
        /// Names that must be listed.
        includes: Vec<String>,
        /// Names that must not be listed.
        excludes: Vec<String>,
    },
}

impl Expect {
    /// A success with this status.
    pub fn ok(status: u16) -> Self {
        Expect {
            status,
            code: None,
            reason: None,
            headers: Vec::new(),
            body: Vec::new(),
            store: StoreAccess::ReadOnly,
        }
    }

    /// An error with this status, `error.code` and `details.reason`; the store access
    /// allowed follows from the reason ([`StoreAccess::for_reason`]).
    pub fn error(status: u16, code: &'static str, reason: &'static str) -> Self {
        Expect {
            code: Some(code),
            reason: Some(reason),
            store: StoreAccess::for_reason(reason),
            ..Expect::ok(status)
        }
    }

    /// 401 `missing_credentials` with the plain challenge (no `error=`: nothing was
    /// presented).
    pub fn missing() -> Self {
        Expect::unauthorized("missing_credentials").header(HeaderCheck::Equals(
            "www-authenticate",
            "Bearer realm=\"api\"".into(),
        ))
    }

    /// 401 `UNAUTHORIZED` with `reason`.
    pub fn unauthorized(reason: &'static str) -> Self {
        Expect::error(401, "UNAUTHORIZED", reason)
    }

    /// 401 for a presented but unacceptable credential: the challenge says `invalid_token`.
    pub fn refused(reason: &'static str) -> Self {
        Expect::unauthorized(reason).header(HeaderCheck::Contains(
            "www-authenticate",
            "error=\"invalid_token\"".into(),
        ))
    }

    /// 403 `insufficient_scope` naming `scope` as required and missing, in the body and in
    /// the `WWW-Authenticate` challenge.
    pub fn forbidden(scope: &str) -> Self {
        Expect::error(403, "FORBIDDEN", "insufficient_scope")
            .header(HeaderCheck::Contains(
                "www-authenticate",
                format!("scope=\"{scope}\""),
            ))
            .body(BodyCheck::Equals("/error/details/missing", json!([scope])))
            .body(BodyCheck::Equals("/error/details/required", json!([scope])))
    }

    /// 429 `rate_limited` for a key whose limit `limit` (`N/period`) is spent and whose next
    /// request is free in `retry_after` seconds: `Retry-After` and the rate-limit fields of
    /// draft-ietf-httpapi-ratelimit-headers-11, no challenge.
    ///
    /// # Panics
    /// If `limit` is not a rate limit (a bug in the table).
    #[allow(clippy::expect_used)]
    pub fn rate_limited(limit: &str, retry_after: u64) -> Self {
        let l: keygate::RateLimit = limit.parse().expect("the table's limits parse");
        Expect::error(429, "TOO_MANY_REQUESTS", "rate_limited")
            .header(HeaderCheck::Equals("retry-after", retry_after.to_string()))
            .header(HeaderCheck::Equals(
                "ratelimit-policy",
                format!("\"key\";q={};w={}", l.requests(), l.period().as_secs()),
            ))
            .header(HeaderCheck::Equals(
                "ratelimit",
                format!("\"key\";r=0;t={retry_after}"),
            ))
            .body(BodyCheck::Equals(
                "/error/details/limit",
                json!(l.to_string()),
            ))
    }

    /// Adds a header check.
    pub fn header(mut self, check: HeaderCheck) -> Self {
        self.headers.push(check);
        self
    }

    /// Adds a body check.
    pub fn body(mut self, check: BodyCheck) -> Self {
        self.body.push(check);
        self
    }

    /// Sets the store access allowed.
    pub fn store(mut self, access: StoreAccess) -> Self {
        self.store = access;
        self
    }
}

pub(crate) fn case(name: &'static str, request: TestRequest, expect: Expect) -> Case {
    Case {
        name,
        request,
        expect,
    }
}

fn items(org: &str, includes: &[&str], excludes: &[&str]) -> BodyCheck {
    BodyCheck::Items {
        org: org.to_owned(),
        includes: includes.iter().map(|s| (*s).to_owned()).collect(),
        excludes: excludes.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// 409 `CONFLICT` `collection_full` naming the cap in `details.limit`.
fn full_collection() -> Expect {
    Expect::error(409, "CONFLICT", "collection_full").body(BodyCheck::Equals(
        "/error/details/limit",
        json!(demo_api::MAX_ITEMS_PER_COLLECTION),
    ))
}

pub(crate) const ME: &str = "/api/v1/me";
const ENTITIES: &str = "/api/v1/entities";
const KNOWLEDGE: &str = "/api/v1/knowledge/files";
const BOARDS: &str = "/api/v1/boards";

/// The whole table over the fixture's keys: the base cases, then
/// [`hostile_cases`](crate::hostile::hostile_cases).
pub fn table(k: &Keys) -> Vec<Case> {
    let mut cases = base_cases(k);
    cases.extend(crate::hostile::hostile_cases(k));
    cases
}

/// The error table (`docs/architecture.md`, "The error table") row by row, where the key is
/// read from, request ids, items and tenant isolation, request bodies, unknown routes and
/// methods.
pub fn base_cases(k: &Keys) -> Vec<Case> {
    let get = TestRequest::get;
    let post = TestRequest::post;
    let bearer = |t: &str| format!("Bearer {t}");
    let me_fields = [
        "/id",
        "/name",
        "/org",
        "/team",
        "/owner",
        "/scopes",
        "/environment",
        "/expires_at",
    ];
    let mut principal = Expect::ok(200)
        .body(BodyCheck::Equals("/id", json!(k.full_id)))
        .body(BodyCheck::Equals("/org", json!("acme")))
        .body(BodyCheck::Equals("/environment", json!("mk_live")));
    for f in me_fields {
        principal = principal.body(BodyCheck::Present(f));
    }
    let acme_me = Expect::ok(200).body(BodyCheck::Equals("/org", json!("acme")));

    vec![
        // --- public route
        case(
            "GET /health needs no key",
            get("/health"),
            Expect::ok(200)
                .body(BodyCheck::Equals("/status", json!("ok")))
                .store(StoreAccess::Untouched),
        ),
        // --- the error table of docs/architecture.md, row by row
        case(
            "no key header: 401 missing_credentials, plain challenge",
            get(ME),
            Expect::unauthorized("missing_credentials")
                .header(HeaderCheck::Equals(
                    "www-authenticate",
                    "Bearer realm=\"api\"".into(),
                ))
                .body(BodyCheck::Equals(
                    "/error/message",
                    json!("Missing authentication header"),
                ))
                .body(BodyCheck::Present("/error/details/expectedFormat")),
        ),
        case(
            "garbage key: 401 malformed_key",
            get(ME).header("x-api-key", "not-a-key"),
            Expect::refused("malformed_key"),
        ),
        case(
            "typo in a key (checksum mismatch): 401 malformed_key",
            get(ME).header("x-api-key", &k.bad_checksum),
            Expect::refused("malformed_key"),
        ),
        case(
            "prefix this service does not accept: 401 malformed_key",
            get(ME).header("x-api-key", &k.wrong_prefix),
            Expect::refused("malformed_key"),
        ),
        case(
            "unknown key id: 401 invalid_key",
            get(ME).header("x-api-key", &k.unknown),
            Expect::refused("invalid_key").body(BodyCheck::Equals(
                "/error/message",
                json!("Invalid API key"),
            )),
        ),
        case(
            "wrong secret for a known id: 401 invalid_key",
            get(ME).header("x-api-key", &k.wrong_secret),
            Expect::refused("invalid_key").body(BodyCheck::Equals(
                "/error/message",
                json!("Invalid API key"),
            )),
        ),
        case(
            "expired key: 401 expired_key",
            get(ME).header("x-api-key", &k.expired),
            Expect::refused("expired_key"),
        ),
        case(
            "revoked key: 401 revoked_key",
            get(ME).header("x-api-key", &k.revoked),
            Expect::refused("revoked_key"),
        ),
        case(
            "key lacking a scope (typed extractor): 403 naming entities:write",
            post(ENTITIES)
                .header("x-api-key", &k.read_only)
                .json(r#"{"name":"never stored"}"#),
            Expect::forbidden("entities:write"),
        ),
        case(
            "key lacking a scope (route layer): 403 naming boards:write",
            post(BOARDS)
                .header("x-api-key", &k.read_only)
                .json(r#"{"name":"never stored"}"#),
            Expect::forbidden("boards:write"),
        ),
        case(
            "key lacking a read scope: 403 naming entities:read",
            get(ENTITIES).header("x-api-key", &k.boards_reader),
            Expect::forbidden("entities:read"),
        ),
        case(
            "key lacking a read scope (route layer): 403 naming knowledge:read",
            get(KNOWLEDGE).header("x-api-key", &k.boards_reader),
            Expect::forbidden("knowledge:read"),
        ),
        case(
            "key store down: 503 store_unavailable with Retry-After, never 401",
            get(ME).header("x-api-key", &k.outage),
            Expect::error(503, "SERVICE_UNAVAILABLE", "store_unavailable").header(
                HeaderCheck::Equals("retry-after", RETRY_AFTER_SECS.to_string()),
            ),
        ),
        // --- the key's own rate limit (per node, GCRA)
        case(
            "key within its rate limit: 200",
            get(ME).header("x-api-key", &k.limited),
            acme_me.clone(),
        ),
        case(
            "key whose rate limit is spent: 429 rate_limited with Retry-After, RateLimit-Policy, RateLimit",
            get(ME).header("x-api-key", &k.rate_limited),
            Expect::rate_limited(SPENT_LIMIT, 86_400),
        ),
        case(
            "spent key on a route it lacks the scope for: 429, the limit is checked before scopes",
            get(ENTITIES).header("authorization", bearer(&k.rate_limited)),
            Expect::rate_limited(SPENT_LIMIT, 86_400),
        ),
        // --- where the key is read from
        case(
            "X-Api-Key: valid key gives the principal with every field",
            get(ME).header("x-api-key", &k.full),
            principal,
        ),
        case(
            "Authorization: Bearer works",
            get(ME).header("authorization", bearer(&k.full)),
            acme_me.clone(),
        ),
        case(
            "lowercase bearer scheme works",
            get(ME).header("authorization", format!("bearer {}", k.full)),
            acme_me.clone(),
        ),
        case(
            "X-Api-Key wins: valid X-Api-Key with garbage Bearer is 200",
            get(ME)
                .header("x-api-key", &k.full)
                .header("authorization", "Bearer garbage"),
            acme_me.clone(),
        ),
        case(
            "X-Api-Key wins: garbage X-Api-Key with valid Bearer is 401",
            get(ME)
                .header("x-api-key", "garbage")
                .header("authorization", bearer(&k.full)),
            Expect::refused("malformed_key"),
        ),
        case(
            "Bearer with no token: 401 malformed_key",
            get(ME).header("authorization", "Bearer"),
            Expect::refused("malformed_key"),
        ),
        case(
            "Basic scheme: 401 malformed_key",
            get(ME).header("authorization", "Basic dXNlcjpwYXNz"),
            Expect::refused("malformed_key"),
        ),
        case(
            "duplicated X-Api-Key (even both valid): 401 malformed_key",
            get(ME)
                .header("x-api-key", &k.full)
                .header("x-api-key", &k.full),
            Expect::refused("malformed_key"),
        ),
        case(
            "10 KB X-Api-Key: 401 malformed_key",
            get(ME).header("x-api-key", "a".repeat(10 * 1024)),
            Expect::refused("malformed_key"),
        ),
        case(
            "non-ASCII bytes in X-Api-Key: 401 malformed_key",
            get(ME).header("x-api-key", b"mk_live_\xc3\xa9\xff.key"),
            Expect::refused("malformed_key"),
        ),
        case(
            "a key in the query string is never read: 401 missing_credentials",
            get(&format!("{ME}?api_key={}&x-api-key={}", k.full, k.full)),
            Expect::unauthorized("missing_credentials"),
        ),
        // --- request ids
        case(
            "x-request-id is echoed in the header and meta.requestId",
            get(ME).header("x-request-id", "conformance-req-1"),
            Expect::unauthorized("missing_credentials")
                .header(HeaderCheck::Equals(
                    "x-request-id",
                    "conformance-req-1".into(),
                ))
                .body(BodyCheck::Equals(
                    "/meta/requestId",
                    json!("conformance-req-1"),
                )),
        ),
        case(
            "an unsafe x-request-id is replaced, not echoed",
            get(ME).header("x-request-id", "not safe; <script>"),
            Expect::unauthorized("missing_credentials").header(HeaderCheck::NotEquals(
                "x-request-id",
                "not safe; <script>".into(),
            )),
        ),
        // --- items and tenant isolation
        case(
            "POST with the write scope: 201 with the stored item",
            post(ENTITIES)
                .header("x-api-key", &k.full)
                .json(r#"{"name":"acme-created-entity"}"#),
            Expect::ok(201)
                .body(BodyCheck::Equals("/name", json!("acme-created-entity")))
                .body(BodyCheck::Equals("/org", json!("acme")))
                .body(BodyCheck::Equals("/collection", json!("entities")))
                .body(BodyCheck::Equals("/created_by", json!(k.full_id)))
                .body(BodyCheck::Present("/id")),
        ),
        case(
            "POST behind a route-layer guard: 201",
            post(KNOWLEDGE)
                .header("authorization", bearer(&k.full))
                .json(r#"{"name":"acme-created-file"}"#),
            Expect::ok(201)
                .body(BodyCheck::Equals("/name", json!("acme-created-file")))
                .body(BodyCheck::Equals("/collection", json!("knowledge_files"))),
        ),
        case(
            "read scope lists (after the POST above): acme sees only acme's entities",
            get(ENTITIES).header("x-api-key", &k.read_only),
            Expect::ok(200).body(items(
                "acme",
                &["acme-seeded-entity", "acme-created-entity"],
                &["globex-seeded-entity"],
            )),
        ),
        case(
            "tenant isolation: globex never sees acme's entities",
            get(ENTITIES).header("x-api-key", &k.other_org),
            Expect::ok(200).body(items(
                "globex",
                &["globex-seeded-entity"],
                &["acme-seeded-entity", "acme-created-entity"],
            )),
        ),
        case(
            "tenant isolation: globex never sees acme's boards",
            get(BOARDS).header("x-api-key", &k.other_org),
            Expect::ok(200).body(items(
                "globex",
                &["globex-seeded-board"],
                &["acme-seeded-board"],
            )),
        ),
        case(
            "tenant isolation: globex sees no knowledge files of acme",
            get(KNOWLEDGE).header("x-api-key", &k.other_org),
            Expect::ok(200).body(BodyCheck::Equals("/items", json!([]))),
        ),
        // --- items are capped per organization and collection (demo_api::MAX_ITEMS_PER_COLLECTION);
        // the fixture fills initech's entities and boards
        case(
            "POST to a full collection (route-layer guard): 409 collection_full with the limit",
            post(BOARDS)
                .header("x-api-key", &k.crowded)
                .json(r#"{"name":"one too many"}"#),
            full_collection(),
        ),
        case(
            "POST to a full collection (typed extractor): 409 collection_full with the limit",
            post(ENTITIES)
                .header("authorization", bearer(&k.crowded))
                .json(r#"{"name":"one too many"}"#),
            full_collection(),
        ),
        case(
            "a full collection does not block the organization's other collections: 201",
            post(KNOWLEDGE)
                .header("x-api-key", &k.crowded)
                .json(r#"{"name":"still room here"}"#),
            Expect::ok(201)
                .body(BodyCheck::Equals("/org", json!(crate::fixture::CROWDED_ORG)))
                .body(BodyCheck::Equals("/collection", json!("knowledge_files"))),
        ),
        case(
            "a full collection still checks the body first: bad JSON is 400",
            post(BOARDS).header("x-api-key", &k.crowded).json("{nope"),
            Expect::error(400, "BAD_REQUEST", "invalid_json"),
        ),
        // --- request bodies
        case(
            "bad JSON: 400 in the same envelope, request id echoed",
            post(BOARDS)
                .header("x-api-key", &k.full)
                .header("x-request-id", "conformance-bad-json")
                .json(r#"{"name": "#),
            Expect::error(400, "BAD_REQUEST", "invalid_json").header(HeaderCheck::Equals(
                "x-request-id",
                "conformance-bad-json".into(),
            )),
        ),
        case(
            "JSON without a name (typed-extractor route): 400 invalid_body",
            post(ENTITIES)
                .header("x-api-key", &k.full)
                .json(r#"{"title":"x"}"#),
            Expect::error(400, "BAD_REQUEST", "invalid_body"),
        ),
        case(
            "body not declared as JSON: 415 in the same envelope",
            post(ENTITIES)
                .header("x-api-key", &k.full)
                .header("content-type", "text/plain")
                .body(r#"{"name":"x"}"#),
            Expect::error(415, "UNSUPPORTED_MEDIA_TYPE", "unsupported_media_type"),
        ),
        case(
            "authentication comes before the body: bad JSON without a key is 401",
            post(BOARDS).json("{nope"),
            Expect::unauthorized("missing_credentials"),
        ),
        // --- unknown routes and methods answer in the envelope too. Routing comes first: an
        // unknown route is 404 and a method a route does not serve is 405 whatever the
        // credentials (none, malformed, wrong, valid), and no credential is examined for them.
        case(
            "unknown route with a valid key: 404 in the envelope, the key is not examined",
            get("/api/v1/nothing-here").header("x-api-key", &k.unrouted),
            Expect::error(404, "NOT_FOUND", "not_found").store(StoreAccess::Untouched),
        ),
        case(
            "unknown route under the API, no key: 404, not 401",
            get("/api/v1/nothing-here"),
            Expect::error(404, "NOT_FOUND", "not_found").store(StoreAccess::Untouched),
        ),
        case(
            "unknown route under the API, garbage key: 404, not 401",
            get("/api/v1/nothing-here").header("x-api-key", "not-a-key"),
            Expect::error(404, "NOT_FOUND", "not_found").store(StoreAccess::Untouched),
        ),
        case(
            "unknown route under the API, wrong secret: 404, the key is not examined",
            get("/api/v1/nothing-here").header("authorization", bearer(&k.unrouted_wrong_secret)),
            Expect::error(404, "NOT_FOUND", "not_found").store(StoreAccess::Untouched),
        ),
        case(
            "unknown path below a collection, no key: 404, not 401",
            get("/api/v1/entities/some-id"),
            Expect::error(404, "NOT_FOUND", "not_found").store(StoreAccess::Untouched),
        ),
        case(
            "unknown route outside the API, no key: 404 in the envelope, no store work",
            get("/nothing-here").header("x-request-id", "conformance-404"),
            Expect::error(404, "NOT_FOUND", "not_found")
                .header(HeaderCheck::Equals(
                    "x-request-id",
                    "conformance-404".into(),
                ))
                .store(StoreAccess::Untouched),
        ),
        case(
            "unsupported method with a valid key: 405 in the envelope",
            TestRequest::new("DELETE", ENTITIES).header("x-api-key", &k.unrouted),
            Expect::error(405, "METHOD_NOT_ALLOWED", "method_not_allowed")
                .store(StoreAccess::Untouched),
        ),
        case(
            "unsupported method on a route-layer resource: 405 in the envelope",
            TestRequest::new("PUT", BOARDS).header("x-api-key", &k.full),
            Expect::error(405, "METHOD_NOT_ALLOWED", "method_not_allowed")
                .store(StoreAccess::Untouched),
        ),
        case(
            "unsupported method on /me: 405 in the envelope",
            post(ME).header("x-api-key", &k.full).json("{}"),
            Expect::error(405, "METHOD_NOT_ALLOWED", "method_not_allowed")
                .store(StoreAccess::Untouched),
        ),
        case(
            "unsupported method, no key: 405, not 401",
            TestRequest::new("DELETE", ENTITIES),
            Expect::error(405, "METHOD_NOT_ALLOWED", "method_not_allowed")
                .store(StoreAccess::Untouched),
        ),
        case(
            "unsupported method on a route-layer resource, no key: 405, not 401",
            TestRequest::new("PUT", BOARDS).json(r#"{"name":"x"}"#),
            Expect::error(405, "METHOD_NOT_ALLOWED", "method_not_allowed")
                .store(StoreAccess::Untouched),
        ),
        case(
            "unsupported method on /me, garbage Bearer: 405, not 401",
            post(ME).header("authorization", "Bearer garbage").json("{}"),
            Expect::error(405, "METHOD_NOT_ALLOWED", "method_not_allowed")
                .store(StoreAccess::Untouched),
        ),
        case(
            "unsupported method, wrong secret: 405, the key is not examined",
            TestRequest::new("PATCH", KNOWLEDGE).header("x-api-key", &k.unrouted_wrong_secret),
            Expect::error(405, "METHOD_NOT_ALLOWED", "method_not_allowed")
                .store(StoreAccess::Untouched),
        ),
        case(
            "unsupported method on the public route: 405 in the envelope, no store work",
            post("/health").json("{}"),
            Expect::error(405, "METHOD_NOT_ALLOWED", "method_not_allowed")
                .store(StoreAccess::Untouched),
        ),
    ]
}

//! The driver side: framework-free requests and responses, the [`AppUnderTest`] trait an
//! adapter implements, and the runner that checks every case.

use std::future::Future;

use serde_json::Value;

use crate::case::{BodyCheck, Case, HeaderCheck, StoreAccess};
use crate::fixture::Fixture;
use crate::store::{CountingStore, StoreActivity};

/// A request, free of any framework's types. Header values are raw bytes so that cases can
/// send what no well-behaved client would (non-ASCII bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path and query, e.g. `/api/v1/me?x=1`.
    pub path: String,
    /// Header names and raw values, in order (a name may repeat).
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl TestRequest {
    /// A request with no headers and no body.
    pub fn new(method: &str, path: &str) -> Self {
        TestRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `GET path`.
    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    /// `POST path`.
    pub fn post(path: &str) -> Self {
        Self::new("POST", path)
    }

    /// Adds a header (repeating a name adds a second header).
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    /// Sets the body and `Content-Type: application/json`.
    pub fn json(self, body: &str) -> Self {
        self.header("content-type", "application/json").body(body)
    }

    /// Sets the body.
    pub fn body(mut self, body: impl AsRef<[u8]>) -> Self {
        self.body = body.as_ref().to_vec();
        self
    }
}

/// A response, free of any framework's types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResponse {
    /// Status code.
    pub status: u16,
    /// Header names (any case) and raw values, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl TestResponse {
    /// Every value of header `name` (case-insensitive), lossily as text.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<String> {
        self.header_values(name).into_iter().next()
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// An application the table can run against: the axum quickstart's router in-process, an
/// actix `App` through `actix_web::test`, or a real server over a socket
/// ([`wire::WireApp`](crate::wire::WireApp)).
///
/// The returned future need not be `Send` (actix's test services are not).
pub trait AppUnderTest {
    /// Sends one request through the whole application (every layer and middleware) and
    /// returns what a client would receive. Panics if the request cannot be delivered at
    /// all (a broken test setup, not a failed case).
    fn send(&self, request: TestRequest) -> impl Future<Output = TestResponse>;
}

/// One case that did not pass, and every reason why.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The case's name.
    pub case: &'static str,
    /// What differed.
    pub problems: Vec<String>,
    /// Status and body received, for the report.
    pub received: String,
}

/// Runs `cases` in order (some cases depend on earlier ones, e.g. listing what a POST
/// created) and returns the failures. `store` is the counting store under the app's
/// verifier: each case's [`StoreAccess`] is checked against the calls it saw while that one
/// request was served.
pub async fn run_cases<A: AppUnderTest>(
    app: &A,
    cases: &[Case],
    store: &CountingStore,
) -> Vec<Failure> {
    let mut failures = Vec::new();
    for case in cases {
        let mark = store.mark();
        let res = app.send(case.request.clone()).await;
        let mut problems = check(case, &res);
        problems.extend(check_store(case.expect.store, &store.since(mark)));
        if !problems.is_empty() {
            failures.push(Failure {
                case: case.name,
                problems,
                received: format!(
                    "{} {}",
                    res.status,
                    String::from_utf8_lossy(&res.body)
                        .chars()
                        .take(400)
                        .collect::<String>()
                ),
            });
        }
    }
    failures
}

/// Runs the whole table of `fixture` against `app` (built over `fixture.state`) and returns
/// the failures.
pub async fn run_table<A: AppUnderTest>(app: &A, fixture: &Fixture) -> Vec<Failure> {
    run_cases(app, &fixture.cases(), &fixture.counting).await
}

/// Runs the whole table of `fixture` against `app` and panics listing every failed case.
pub async fn assert_conformance<A: AppUnderTest>(app: &A, fixture: &Fixture) {
    let cases = fixture.cases();
    let failures = run_cases(app, &cases, &fixture.counting).await;
    if !failures.is_empty() {
        let mut report = format!(
            "{} of {} conformance cases failed:\n",
            failures.len(),
            cases.len()
        );
        for f in &failures {
            report.push_str(&format!("\n- {}\n", f.case));
            for p in &f.problems {
                report.push_str(&format!("    {p}\n"));
            }
            report.push_str(&format!("    received: {}\n", f.received));
        }
        panic!("{report}");
    }
}

/// Checks the store calls one request caused against what its case allows.
pub fn check_store(allowed: StoreAccess, seen: &StoreActivity) -> Vec<String> {
    let mut p = Vec::new();
    if seen.writes() > 0 {
        p.push(format!("the store saw writes: {:?}", seen.calls));
    }
    if allowed == StoreAccess::Untouched && seen.reads() > 0 {
        p.push(format!(
            "the store was read although the request needs no store work: {:?}",
            seen.calls
        ));
    }
    p
}

/// Checks one response against its case: status, `error.code`, `details.reason`, the
/// case's header and body checks, and [`common_checks`].
pub fn check(case: &Case, res: &TestResponse) -> Vec<String> {
    let e = &case.expect;
    let mut problems = Vec::new();
    if res.status != e.status {
        problems.push(format!("status {} instead of {}", res.status, e.status));
    }
    let json = res.json();
    let at = |ptr: &str| json.as_ref().and_then(|v| v.pointer(ptr)).cloned();
    if let Some(code) = e.code {
        if at("/error/code") != Some(Value::from(code)) {
            problems.push(format!(
                "error.code {:?} instead of {code:?}",
                at("/error/code")
            ));
        }
    }
    if let Some(reason) = e.reason {
        if at("/error/details/reason") != Some(Value::from(reason)) {
            problems.push(format!(
                "details.reason {:?} instead of {reason:?}",
                at("/error/details/reason")
            ));
        }
    }
    for h in &e.headers {
        problems.extend(check_header(h, res));
    }
    for b in &e.body {
        problems.extend(check_body(b, json.as_ref()));
    }
    problems.extend(common_checks(res));
    problems
}

fn check_header(h: &HeaderCheck, res: &TestResponse) -> Option<String> {
    match h {
        HeaderCheck::Equals(name, want) => {
            let got = res.header_values(name);
            (got != [want.clone()]).then(|| format!("header {name}: {got:?} instead of [{want:?}]"))
        }
        HeaderCheck::Contains(name, part) => {
            let got = res.header(name);
            (!got.as_deref().is_some_and(|v| v.contains(part.as_str())))
                .then(|| format!("header {name}: {got:?} does not contain {part:?}"))
        }
        HeaderCheck::NotEquals(name, not) => {
            let got = res.header(name);
            (got.as_deref() == Some(not.as_str()))
                .then(|| format!("header {name} must not be {not:?}"))
        }
        HeaderCheck::Present(name) => res
            .header(name)
            .is_none()
            .then(|| format!("header {name} is missing")),
    }
}

fn check_body(b: &BodyCheck, json: Option<&Value>) -> Option<String> {
    let Some(json) = json else {
        return Some("body is not JSON".to_owned());
    };
    match b {
        BodyCheck::Equals(ptr, want) => {
            let got = json.pointer(ptr);
            (got != Some(want)).then(|| format!("body {ptr}: {got:?} instead of {want}"))
        }
        BodyCheck::Present(ptr) => json
            .pointer(ptr)
            .is_none()
            .then(|| format!("body {ptr} is missing")),
        BodyCheck::Items {
            org,
            includes,
            excludes,
        } => {
            let Some(items) = json.pointer("/items").and_then(Value::as_array) else {
                return Some("body has no items array".to_owned());
            };
            let names: Vec<&str> = items
                .iter()
                .filter_map(|i| i.get("name").and_then(Value::as_str))
                .collect();
            let mut p = Vec::new();
            if let Some(stranger) = items
                .iter()
                .find(|i| i.get("org").and_then(Value::as_str) != Some(org.as_str()))
            {
                p.push(format!("an item of another org is listed: {stranger}"));
            }
            for n in includes {
                if !names.contains(&n.as_str()) {
                    p.push(format!("item {n:?} is not listed (got {names:?})"));
                }
            }
            for n in excludes {
                if names.contains(&n.as_str()) {
                    p.push(format!("item {n:?} of another org is listed"));
                }
            }
            (!p.is_empty()).then(|| p.join("; "))
        }
    }
}

/// Rules every response of the demo API follows, whatever the case.
///
/// - Every response is `application/json`.
/// - Every error (status ≥ 400) has the envelope: `error.code`, a non-empty
///   `error.message`, `error.details.reason`, `meta.requestId` equal to the one
///   `x-request-id` header, and an RFC 3339 `meta.timestamp`.
/// - 401 carries a `Bearer` `WWW-Authenticate` challenge; 403 an `insufficient_scope` one;
///   503 a `Retry-After`.
pub fn common_checks(res: &TestResponse) -> Vec<String> {
    let mut p = Vec::new();
    let ct = res.header("content-type").unwrap_or_default();
    if !ct.starts_with("application/json") {
        p.push(format!("content-type {ct:?} is not application/json"));
    }
    if res.status < 400 {
        return p;
    }
    let Some(v) = res.json() else {
        p.push("error body is not JSON".to_owned());
        return p;
    };
    for ptr in ["/error/code", "/error/message", "/error/details/reason"] {
        if v.pointer(ptr)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            p.push(format!("error envelope lacks {ptr}"));
        }
    }
    let ids = res.header_values("x-request-id");
    let meta_id = v.pointer("/meta/requestId").and_then(Value::as_str);
    if ids.len() != 1 || Some(ids[0].as_str()) != meta_id {
        p.push(format!(
            "x-request-id headers {ids:?} do not match meta.requestId {meta_id:?}"
        ));
    }
    let ts = v.pointer("/meta/timestamp").and_then(Value::as_str);
    if ts.is_none_or(|t| chrono::DateTime::parse_from_rfc3339(t).is_err()) {
        p.push(format!("meta.timestamp {ts:?} is not RFC 3339"));
    }
    let challenge = res.header("www-authenticate").unwrap_or_default();
    match res.status {
        401 if !challenge.starts_with("Bearer ") => {
            p.push(format!("401 without a Bearer challenge: {challenge:?}"))
        }
        403 if !challenge.contains("error=\"insufficient_scope\"") => p.push(format!(
            "403 without an insufficient_scope challenge: {challenge:?}"
        )),
        503 if res.header("retry-after").is_none() => p.push("503 without Retry-After".to_owned()),
        _ => {}
    }
    p
}

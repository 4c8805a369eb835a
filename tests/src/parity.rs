//! Parity (issue 5): two adapters answer every case of the table alike.
//!
//! For each case, both apps get the same request, in turn — `a` first on even cases, `b`
//! first on odd ones ([`a_goes_first`]), so that over one shared state neither only meets
//! keys the other has already verified and cached (issue 13, finding 13). To compare cold
//! answers as well, build each app over its own [`Fixture::fresh_state`]: each then meets
//! every key first. Their answers must have the same status, the same headers that matter ([`COMPARED_HEADERS`] and
//! `x-request-id`), and the same body apart from what is unique per response:
//! `meta.requestId` and `meta.timestamp` of an error, and the generated `id` and
//! `created_at` of a stored item. An `x-request-id` must be echoed by both or generated
//! (a UUID) by both.

use serde_json::Value;

use crate::case::Case;
use crate::driver::{AppUnderTest, TestRequest, TestResponse};
use crate::fixture::Fixture;

/// Response headers compared value for value.
pub const COMPARED_HEADERS: [&str; 5] = [
    "www-authenticate",
    "retry-after",
    "ratelimit-policy",
    "ratelimit",
    "content-type",
];

const MASKED: &str = "<differs per response>";

/// Every way `b` answered `request` differently from `a` (empty when alike).
pub fn differences(request: &TestRequest, a: &TestResponse, b: &TestResponse) -> Vec<String> {
    let mut p = Vec::new();
    if a.status != b.status {
        p.push(format!("status {} vs {}", a.status, b.status));
    }
    for name in COMPARED_HEADERS {
        let (va, vb) = (a.header_values(name), b.header_values(name));
        if va != vb {
            p.push(format!("header {name}: {va:?} vs {vb:?}"));
        }
    }
    let sent = request
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-request-id"))
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
    let (ia, ib) = (
        request_ids(a, sent.as_deref()),
        request_ids(b, sent.as_deref()),
    );
    if ia != ib {
        p.push(format!("x-request-id: {ia:?} vs {ib:?}"));
    }
    match (a.json(), b.json()) {
        (Some(ja), Some(jb)) => {
            let (ja, jb) = (comparable(ja), comparable(jb));
            if ja != jb {
                p.push(format!("body {ja} vs {jb}"));
            }
        }
        _ if a.body != b.body => p.push(format!(
            "body {:?} vs {:?}",
            String::from_utf8_lossy(&a.body),
            String::from_utf8_lossy(&b.body)
        )),
        _ => {}
    }
    p
}

/// The response's `x-request-id` values, each as `echoed <id>` when it is the one sent,
/// `generated` when it is a new UUID, or as received.
fn request_ids(res: &TestResponse, sent: Option<&str>) -> Vec<String> {
    res.header_values("x-request-id")
        .into_iter()
        .map(|v| {
            if Some(v.as_str()) == sent {
                format!("echoed {v}")
            } else if is_uuid(&v) {
                "generated".to_owned()
            } else {
                v
            }
        })
        .collect()
}

fn is_uuid(v: &str) -> bool {
    v.len() == 36
        && v.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// The body with what is unique per response masked.
fn comparable(mut v: Value) -> Value {
    if let Some(meta) = v.get_mut("meta").and_then(Value::as_object_mut) {
        for field in ["requestId", "timestamp"] {
            if let Some(x) = meta.get_mut(field) {
                *x = Value::from(MASKED);
            }
        }
    }
    mask_items(&mut v);
    v
}

/// Masks `id` and `created_at` of every stored item (an object with a `collection`).
fn mask_items(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if o.contains_key("collection") {
                for field in ["id", "created_at"] {
                    if let Some(x) = o.get_mut(field) {
                        *x = Value::from(MASKED);
                    }
                }
            }
            o.values_mut().for_each(mask_items);
        }
        Value::Array(items) => items.iter_mut().for_each(mask_items),
        _ => {}
    }
}

/// One case two apps answered differently.
#[derive(Debug, Clone)]
pub struct Mismatch {
    /// The case's name.
    pub case: &'static str,
    /// Whether `a` was sent the case first.
    pub a_first: bool,
    /// What differed.
    pub problems: Vec<String>,
}

/// Whether [`run_parity`] sends the case at `index` (from 0) to `a` before `b`: on even
/// cases; `b` goes first on odd ones.
pub fn a_goes_first(index: usize) -> bool {
    index.is_multiple_of(2)
}

/// Sends every case to both apps, in turn ([`a_goes_first`]), and returns the cases they
/// answered differently. Build both over one state, so that the cases' keys and items are
/// the same for both, or each over its own [`Fixture::fresh_state`] to compare cold answers.
pub async fn run_parity<A: AppUnderTest, B: AppUnderTest>(
    a: &A,
    b: &B,
    cases: &[Case],
) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let a_first = a_goes_first(index);
        let (ra, rb) = if a_first {
            let ra = a.send(case.request.clone()).await;
            (ra, b.send(case.request.clone()).await)
        } else {
            let rb = b.send(case.request.clone()).await;
            (a.send(case.request.clone()).await, rb)
        };
        let problems = differences(&case.request, &ra, &rb);
        if !problems.is_empty() {
            mismatches.push(Mismatch {
                case: case.name,
                a_first,
                problems,
            });
        }
    }
    mismatches
}

/// Runs the whole table of `fixture` through `a` and `b` (both built over `fixture.state`,
/// or each over its own [`Fixture::fresh_state`]) and panics listing every case they
/// answered differently.
pub async fn assert_parity<A: AppUnderTest, B: AppUnderTest>(a: &A, b: &B, fixture: &Fixture) {
    let cases = fixture.cases();
    let mismatches = run_parity(a, b, &cases).await;
    if !mismatches.is_empty() {
        let mut report = format!(
            "{} of {} cases answered differently:\n",
            mismatches.len(),
            cases.len()
        );
        for m in &mismatches {
            let first = if m.a_first { "a" } else { "b" };
            report.push_str(&format!("\n- {} (sent to {first} first)\n", m.case));
            for p in &m.problems {
                report.push_str(&format!("    {p}\n"));
            }
        }
        panic!("{report}");
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    /// An app that records, in a log shared with the other app, when it was sent a request.
    struct Recorder {
        name: &'static str,
        log: Rc<RefCell<Vec<&'static str>>>,
    }

    impl AppUnderTest for Recorder {
        async fn send(&self, _: TestRequest) -> TestResponse {
            self.log.borrow_mut().push(self.name);
            res(200, "x", "{}")
        }
    }

    /// Issue 13, finding 13: parity sent every case to the first app first, so the second
    /// only ever met keys the first had already put in the shared caches.
    #[tokio::test]
    async fn parity_sends_each_adapter_first_in_turn() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let a = Recorder {
            name: "a",
            log: Rc::clone(&log),
        };
        let b = Recorder {
            name: "b",
            log: Rc::clone(&log),
        };
        let cases: Vec<Case> = ["one", "two", "three", "four"]
            .into_iter()
            .map(|name| {
                crate::case::case(name, TestRequest::get("/"), crate::case::Expect::ok(200))
            })
            .collect();
        assert!(run_parity(&a, &b, &cases).await.is_empty());
        assert_eq!(*log.borrow(), ["a", "b", "b", "a", "a", "b", "b", "a"]);
    }

    fn res(status: u16, id: &str, body: &str) -> TestResponse {
        TestResponse {
            status,
            headers: vec![
                ("content-type".into(), b"application/json".to_vec()),
                ("x-request-id".into(), id.as_bytes().to_vec()),
            ],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn request_ids_and_timestamps_may_differ_but_reasons_may_not() {
        let req = TestRequest::get("/");
        let a = res(
            401,
            "6f1c2a8e-1b2c-4d3e-8f9a-0b1c2d3e4f5a",
            r#"{"error":{"details":{"reason":"invalid_key"}},"meta":{"requestId":"6f1c2a8e-1b2c-4d3e-8f9a-0b1c2d3e4f5a","timestamp":"2026-01-01T00:00:00Z"}}"#,
        );
        let b = res(
            401,
            "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            r#"{"error":{"details":{"reason":"invalid_key"}},"meta":{"requestId":"0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d","timestamp":"2026-01-01T00:00:01Z"}}"#,
        );
        assert!(differences(&req, &a, &b).is_empty());
        let c = res(
            401,
            "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            r#"{"error":{"details":{"reason":"malformed_key"}},"meta":{}}"#,
        );
        assert_eq!(differences(&req, &a, &c).len(), 1);
    }

    #[test]
    fn an_echoed_request_id_must_be_echoed_by_both() {
        let req = TestRequest::get("/").header("x-request-id", "req-1");
        let echoed = res(401, "req-1", "{}");
        let replaced = res(401, "6f1c2a8e-1b2c-4d3e-8f9a-0b1c2d3e4f5a", "{}");
        assert!(differences(&req, &echoed, &echoed.clone()).is_empty());
        assert_eq!(differences(&req, &echoed, &replaced).len(), 1);
    }

    #[test]
    fn stored_items_compare_without_their_generated_id_and_time() {
        let req = TestRequest::post("/");
        let a = res(
            201,
            "x",
            r#"{"id":"1","collection":"boards","name":"n","created_at":"t1"}"#,
        );
        let b = res(
            201,
            "x",
            r#"{"id":"2","collection":"boards","name":"n","created_at":"t2"}"#,
        );
        let c = res(
            201,
            "x",
            r#"{"id":"2","collection":"boards","name":"m","created_at":"t2"}"#,
        );
        assert!(differences(&req, &a, &b).is_empty());
        assert_eq!(differences(&req, &a, &c).len(), 1);
    }
}

//! The Keys API table: every endpoint and every error row of the contract, run through a whole
//! quickstart application (axum or actix) against the fixture's store. Steps depend on the
//! ones before (a key is created, then listed, revoked, rotated, deleted), so the table is a
//! script of steps; each step records what differed instead of stopping at the first problem.

use keygate::NewKey;
use serde_json::{json, Value};

use crate::driver::{AppUnderTest, TestRequest, TestResponse};
use crate::fixture::Fixture;

const API: &str = "/api/v1/keys";

/// Collects every problem of a run, by step.
#[derive(Debug, Default)]
pub struct KeysReport {
    /// `step: problem` lines.
    pub problems: Vec<String>,
}

impl KeysReport {
    fn check(&mut self, step: &str, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.problems.push(format!("{step}: {}", what()));
        }
    }

    /// Expects `status` and, when given, `details.reason` (and `details.field`).
    fn expect(
        &mut self,
        step: &str,
        res: &TestResponse,
        status: u16,
        reason: Option<&str>,
        field: Option<&str>,
    ) -> Value {
        let body = res.json().unwrap_or(Value::Null);
        self.check(step, res.status == status, || {
            format!("status {} (wanted {status}): {body}", res.status)
        });
        if let Some(r) = reason {
            self.check(step, body["error"]["details"]["reason"] == r, || {
                format!("reason {} (wanted {r})", body["error"]["details"]["reason"])
            });
            self.check(
                step,
                res.header("content-type").as_deref() == Some("application/json"),
                || "error without content-type: application/json".into(),
            );
        }
        if let Some(f) = field {
            self.check(step, body["error"]["details"]["field"] == f, || {
                format!("field {} (wanted {f})", body["error"]["details"]["field"])
            });
        }
        body
    }
}

fn with_key(req: TestRequest, key: &str) -> TestRequest {
    req.header("x-api-key", key)
}

fn str_of(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap_or_default().to_owned()
}

/// Runs the Keys API table against `app` (built from `fixture.state`) and returns what
/// differed; empty when everything holds.
///
/// # Panics
/// If the fixture cannot create the management keys in memory (a bug in keygate itself).
#[allow(clippy::expect_used, clippy::too_many_lines)]
pub async fn run_keys_table<A: AppUnderTest>(app: &A, fixture: &Fixture) -> KeysReport {
    let mut r = KeysReport::default();
    let admin = fixture
        .manager
        .create(
            NewKey::new("keys admin", "acme")
                .owner("ana")
                .scopes(demo_api::DEMO_SCOPES.iter().copied().chain(["keys:manage"]))
                .expect("demo scopes are valid"),
        )
        .await
        .expect("creating a key in memory works");
    let admin_key = admin.key.expose_secret().to_owned();
    let admin_actor = format!("key:{}", admin.record.id);
    let globex = fixture
        .manager
        .create(
            NewKey::new("globex keys", "globex")
                .scopes(["keys:manage", "boards:read"])
                .expect("valid scopes"),
        )
        .await
        .expect("creating a key in memory works");
    let k = &fixture.keys;
    let send = |req: TestRequest| app.send(req);
    let as_admin = |req: TestRequest| app.send(with_key(req, &admin_key));

    // Who may manage.
    let res = send(TestRequest::get(API)).await;
    r.expect("no key", &res, 401, Some("missing_credentials"), None);
    let res = send(with_key(TestRequest::get(API), &k.full)).await;
    r.expect(
        "key without keys:manage",
        &res,
        403,
        Some("insufficient_scope"),
        None,
    );
    let res = send(with_key(TestRequest::get(API), &k.revoked)).await;
    r.expect(
        "revoked management key",
        &res,
        401,
        Some("revoked_key"),
        None,
    );

    // Create: the plaintext once, no-store, works at once on the demo API.
    let res = as_admin(
        TestRequest::post(API)
            .json(r#"{"name":"ci deploy","scopes":["boards:read","entities:read"],"expires_in":"30d","rate_limit":"100/1m"}"#),
    )
    .await;
    let created = r.expect("create", &res, 201, None, None);
    r.check(
        "create",
        res.header("cache-control").as_deref() == Some("no-store"),
        || format!("cache-control {:?}", res.header("cache-control")),
    );
    let key = str_of(&created, "key");
    let id = str_of(&created, "id");
    for (field, want) in [
        ("org", json!("acme")),
        ("owner", json!("ana")),
        ("status", json!("active")),
        ("scopes", json!(["boards:read", "entities:read"])),
        ("rate_limit", json!("100/1m")),
        ("rotated_to", Value::Null),
    ] {
        r.check("create", created[field] == want, || {
            format!("{field} = {} (wanted {want})", created[field])
        });
    }
    let res = send(with_key(TestRequest::get("/api/v1/boards"), &key)).await;
    r.expect("new key works at once", &res, 200, None, None);

    // Never the plaintext or a hash again.
    let listed = as_admin(TestRequest::get(API)).await;
    let shown = as_admin(TestRequest::get(&format!("{API}/{id}"))).await;
    for (step, res) in [("list", &listed), ("get", &shown)] {
        r.expect(step, res, 200, None, None);
        let text = String::from_utf8_lossy(&res.body);
        r.check(step, !text.contains(&key), || "shows the plaintext".into());
        r.check(step, !text.contains("$argon2"), || "shows a hash".into());
        r.check(
            step,
            res.header("cache-control").as_deref() != Some("no-store"),
            || "a answer without a secret is marked no-store".into(),
        );
    }
    let shown = shown.json().unwrap_or(Value::Null);
    r.check(
        "get audit",
        shown["audit"][0]["action"] == "created",
        || format!("audit {}", shown["audit"]),
    );
    r.check(
        "get audit",
        shown["audit"][0]["actor"] == admin_actor,
        || {
            format!(
                "actor {} (wanted {admin_actor})",
                shown["audit"][0]["actor"]
            )
        },
    );

    // Update.
    let res = as_admin(
        TestRequest::new("PATCH", &format!("{API}/{id}"))
            .json(r#"{"name":"ci deploy (prod)","rate_limit":null}"#),
    )
    .await;
    let patched = r.expect("patch", &res, 200, None, None);
    r.check(
        "patch",
        patched["name"] == "ci deploy (prod)" && patched["rate_limit"].is_null(),
        || format!("{patched}"),
    );

    // Every error row.
    let bad_creates = [
        ("not json", "{", "invalid_body", None),
        (
            "wrong type",
            r#"{"name":1,"scopes":["boards:read"]}"#,
            "invalid_body",
            None,
        ),
        (
            "empty name",
            r#"{"name":"","scopes":["boards:read"]}"#,
            "invalid_field",
            Some("name"),
        ),
        (
            "long name",
            &*format!(
                r#"{{"name":"{}","scopes":["boards:read"]}}"#,
                "n".repeat(101)
            ),
            "invalid_field",
            Some("name"),
        ),
        (
            "no scopes",
            r#"{"name":"x","scopes":[]}"#,
            "invalid_field",
            Some("scopes"),
        ),
        (
            "bad scope",
            r#"{"name":"x","scopes":["not a scope"]}"#,
            "invalid_field",
            Some("scopes"),
        ),
        (
            "past expiry",
            r#"{"name":"x","scopes":["boards:read"],"expires_at":"2001-01-01T00:00:00Z"}"#,
            "invalid_field",
            Some("expires_at"),
        ),
        (
            "bad expires_in",
            r#"{"name":"x","scopes":["boards:read"],"expires_in":"a while"}"#,
            "invalid_field",
            Some("expires_in"),
        ),
        (
            "bad prefix",
            r#"{"name":"x","scopes":["boards:read"],"prefix":"NOPE!"}"#,
            "invalid_field",
            Some("prefix"),
        ),
        (
            "bad rate limit",
            r#"{"name":"x","scopes":["boards:read"],"rate_limit":"0/1m"}"#,
            "invalid_field",
            Some("rate_limit"),
        ),
    ];
    let before = fixture
        .manager
        .list(&keygate::KeyFilter::all())
        .await
        .map(|l| l.len())
        .ok();
    for (step, body, reason, field) in bad_creates {
        let res = as_admin(TestRequest::post(API).json(body)).await;
        r.expect(step, &res, 400, Some(reason), field);
    }
    let res =
        as_admin(TestRequest::post(API).json(r#"{"name":"x","scopes":["keys:admin"]}"#)).await;
    let body = r.expect("escalation", &res, 403, Some("scope_not_grantable"), None);
    r.check(
        "escalation",
        body["error"]["details"]["scopes"] == json!(["keys:admin"]),
        || format!("{body}"),
    );
    let after = fixture
        .manager
        .list(&keygate::KeyFilter::all())
        .await
        .map(|l| l.len())
        .ok();
    r.check("refused creates write nothing", before == after, || {
        format!("{before:?} keys before, {after:?} after")
    });
    for (step, query, field) in [
        ("limit 0", "limit=0", "limit"),
        ("limit 201", "limit=201", "limit"),
        ("bad cursor", "cursor=zz", "cursor"),
    ] {
        let res = as_admin(TestRequest::get(&format!("{API}?{query}"))).await;
        r.expect(step, &res, 400, Some("invalid_field"), Some(field));
    }
    let res =
        as_admin(TestRequest::post(&format!("{API}/{id}/rotate")).json(r#"{"grace":"forever"}"#))
            .await;
    r.expect("bad grace", &res, 400, Some("invalid_field"), Some("grace"));

    // Another org's key is exactly an unknown id.
    let theirs = as_admin(TestRequest::get(&format!("{API}/{}", globex.record.id))).await;
    let unknown = as_admin(TestRequest::get(&format!("{API}/0123456789abcdef"))).await;
    let strip = |res: &TestResponse| {
        let mut v = res.json().unwrap_or(Value::Null);
        v["meta"] = Value::Null;
        (res.status, v)
    };
    r.expect("other org's id", &theirs, 404, Some("key_not_found"), None);
    r.check("other org's id", strip(&theirs) == strip(&unknown), || {
        format!("{:?} vs {:?}", strip(&theirs), strip(&unknown))
    });
    let res = as_admin(TestRequest::post(&format!(
        "{API}/{}/revoke",
        globex.record.id
    )))
    .await;
    r.expect(
        "revoke other org's key",
        &res,
        404,
        Some("key_not_found"),
        None,
    );

    // Pages: every acme key once, newest first, never another org's.
    for i in 0..5 {
        as_admin(TestRequest::post(API).json(&format!(
            r#"{{"name":"page {i}","scopes":["boards:read"]}}"#
        )))
        .await;
    }
    let mut seen: Vec<String> = Vec::new();
    let mut cursor = String::new();
    for _ in 0..50 {
        let res = as_admin(TestRequest::get(&format!("{API}?limit=2{cursor}"))).await;
        let page = r.expect("page", &res, 200, None, None);
        let data = page["data"].as_array().cloned().unwrap_or_default();
        r.check("page", data.len() <= 2, || {
            format!("{} keys in a page of 2", data.len())
        });
        r.check("page", data.iter().all(|d| d["org"] == "acme"), || {
            "another org's key listed".into()
        });
        seen.extend(data.iter().map(|d| str_of(d, "id")));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let acme: Vec<String> = fixture
        .manager
        .list(&keygate::KeyFilter::org("acme"))
        .await
        .map(|l| l.into_iter().map(|k| k.id).collect())
        .unwrap_or_default();
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    r.check("pages", sorted.len() == seen.len(), || {
        "a key repeated across pages".into()
    });
    r.check("pages", seen.len() == acme.len(), || {
        format!("{} keys paged, {} in the org", seen.len(), acme.len())
    });
    let res = as_admin(TestRequest::get(&format!("{API}?status=revoked"))).await;
    let revoked = r.expect("status filter", &res, 200, None, None);
    let statuses: Vec<Value> = revoked["data"].as_array().cloned().unwrap_or_default();
    r.check(
        "status filter",
        !statuses.is_empty() && statuses.iter().all(|d| d["status"] == "revoked"),
        || format!("{revoked}"),
    );

    // Rotate: a new plaintext once; the old key gets rotated_to; a second rotation conflicts.
    let res =
        as_admin(TestRequest::post(&format!("{API}/{id}/rotate")).json(r#"{"grace":"1h"}"#)).await;
    let rotated = r.expect("rotate", &res, 201, None, None);
    r.check(
        "rotate",
        res.header("cache-control").as_deref() == Some("no-store"),
        || "not no-store".into(),
    );
    let new_key = str_of(&rotated, "key");
    r.check("rotate", rotated["rotated_from"] == id.as_str(), || {
        format!("{rotated}")
    });
    let res = send(with_key(TestRequest::get("/api/v1/boards"), &new_key)).await;
    r.expect("rotated key works", &res, 200, None, None);
    let res = as_admin(TestRequest::post(&format!("{API}/{id}/rotate"))).await;
    r.expect("rotate again", &res, 409, Some("already_rotated"), None);

    // Revoke bites on the next request; rotating a revoked key conflicts.
    let new_id = str_of(&rotated, "id");
    let res = as_admin(TestRequest::post(&format!("{API}/{new_id}/revoke"))).await;
    let revoked = r.expect("revoke", &res, 200, None, None);
    r.check("revoke", revoked["status"] == "revoked", || {
        format!("{revoked}")
    });
    let res = send(with_key(TestRequest::get("/api/v1/boards"), &new_key)).await;
    r.expect("revoked key refused", &res, 401, Some("revoked_key"), None);
    let res = as_admin(TestRequest::post(&format!("{API}/{new_id}/revoke"))).await;
    let again = r.expect("revoke again", &res, 200, None, None);
    r.check(
        "revoke again",
        again["revoked_at"] == revoked["revoked_at"],
        || "revoked_at moved".into(),
    );
    let res = as_admin(TestRequest::post(&format!("{API}/{new_id}/rotate"))).await;
    r.expect("rotate revoked", &res, 409, Some("key_not_active"), None);

    // Delete.
    let res = as_admin(TestRequest::new("DELETE", &format!("{API}/{new_id}"))).await;
    r.expect("delete", &res, 204, None, None);
    let res = as_admin(TestRequest::get(&format!("{API}/{new_id}"))).await;
    r.expect("deleted", &res, 404, Some("key_not_found"), None);

    // Usage: the Key object carries totals, and /usage one entry per day, oldest first.
    let res = as_admin(TestRequest::get(&format!("{API}/{id}/usage?days=7"))).await;
    let series = r.expect("usage", &res, 200, None, None);
    let days = series["data"].as_array().cloned().unwrap_or_default();
    r.check("usage", days.len() == 7, || {
        format!("{} days for days=7", days.len())
    });
    r.check(
        "usage",
        days.windows(2)
            .all(|w| w[0]["day"].as_str() < w[1]["day"].as_str()),
        || format!("not oldest first: {series}"),
    );
    let res = as_admin(TestRequest::get(&format!("{API}/{id}/usage"))).await;
    let series = r.expect("usage default", &res, 200, None, None);
    r.check(
        "usage default",
        series["data"].as_array().map(Vec::len) == Some(30),
        || format!("{series}"),
    );
    for q in ["days=0", "days=91", "days=x"] {
        let res = as_admin(TestRequest::get(&format!("{API}/{id}/usage?{q}"))).await;
        r.expect(q, &res, 400, Some("invalid_field"), Some("days"));
    }
    let res = as_admin(TestRequest::get(&format!(
        "{API}/{}/usage",
        globex.record.id
    )))
    .await;
    r.expect("other org's usage", &res, 404, Some("key_not_found"), None);
    let res = as_admin(TestRequest::get(&format!("{API}/{id}"))).await;
    let shown = r.expect("usage totals", &res, 200, None, None);
    r.check(
        "usage totals",
        ["requests_24h", "requests_30d", "refused_24h"]
            .iter()
            .all(|f| shown["usage"][f].is_u64()),
        || format!("usage {}", shown["usage"]),
    );

    // The manager the page asks about, and the page itself.
    let res = as_admin(TestRequest::get(&format!("{API}/manager"))).await;
    let me = r.expect("manager", &res, 200, None, None);
    r.check(
        "manager",
        me["org"] == "acme"
            && me["scopes"]
                .as_array()
                .is_some_and(|s| s.contains(&json!("keys:manage"))),
        || format!("{me}"),
    );
    let res = send(TestRequest::get("/keys")).await;
    r.expect("page", &res, 200, None, None);
    let csp = res.header("content-security-policy").unwrap_or_default();
    r.check(
        "page",
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        || csp.clone(),
    );
    let res = send(TestRequest::get(&format!("{API}/openapi.json"))).await;
    let doc = r.expect("openapi", &res, 200, None, None);
    r.check(
        "openapi",
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1"))
            && doc["paths"][format!("{API}/{{id}}/rotate")]["post"].is_object(),
        || {
            format!(
                "openapi {} with paths {:?}",
                doc["openapi"],
                doc["paths"]
                    .as_object()
                    .map(|p| p.keys().collect::<Vec<_>>())
            )
        },
    );
    let res = as_admin(TestRequest::new("PUT", API)).await;
    r.expect("405", &res, 405, Some("method_not_allowed"), None);
    r
}

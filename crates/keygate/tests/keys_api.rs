//! The Keys API in the core, over the in-memory store: tenant isolation, no escalation,
//! pagination, the plaintext shown once, rotation races, sessions and their CSRF rule.

use std::sync::Arc;

use async_trait::async_trait;
use keygate::keys_api::{ApiRequest, KeysApi, SessionManagers};
use keygate::{
    Clock, ErrorResponse, KeyManager, KeyStatus, Manager, ManualClock, MemoryStore, NewKey,
    ScopeSet, StoreError, Verifier,
};
use serde_json::{json, Value};

struct Fixture {
    api: KeysApi,
    manager: KeyManager,
    store: Arc<MemoryStore>,
    verifier: Verifier,
    clock: ManualClock,
}

fn fixture() -> Fixture {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::starting_now();
    let verifier = Verifier::builder(store.clone())
        .clock(clock.clone())
        .build();
    let manager = KeyManager::new(store.clone()).with_verifier(&verifier);
    Fixture {
        api: KeysApi::new(manager.clone(), verifier.clone()),
        manager,
        store,
        verifier,
        clock,
    }
}

impl Fixture {
    /// How many keys the store holds, of every tenant.
    async fn key_count(&self) -> usize {
        self.manager
            .list(&keygate::KeyFilter::all())
            .await
            .unwrap()
            .len()
    }

    /// `POST /api/v1/keys` of a key named `ci` with `boards:read`, as `admin`.
    async fn create_ci(&self, admin: &str) -> ErrorResponse {
        self.call(
            admin,
            "POST",
            "/api/v1/keys",
            r#"{"name":"ci","scopes":["boards:read"]}"#,
        )
        .await
    }

    /// A management key of `org` (and `team`) holding `keys:manage` plus `scopes`.
    async fn admin(&self, org: &str, team: Option<&str>, scopes: &[&str]) -> String {
        let mut new = NewKey::new("admin", org)
            .owner("ana")
            .scopes(scopes.iter().copied().chain(["keys:manage"]))
            .unwrap();
        if let Some(t) = team {
            new = new.team(t);
        }
        let created = self.manager.create(new).await.unwrap();
        created.key.expose_secret().to_owned()
    }

    async fn call(&self, key: &str, method: &str, path: &str, body: &str) -> ErrorResponse {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let headers = [("x-api-key", key.as_bytes())];
        self.api
            .handle(
                &ApiRequest::new(method, path, &headers)
                    .query(query)
                    .body(body.as_bytes()),
            )
            .await
    }
}

fn body(r: &ErrorResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

fn header<'a>(r: &'a ErrorResponse, name: &str) -> Option<&'a str> {
    r.headers.get(name).map(|v| v.to_str().unwrap())
}

fn reason(r: &ErrorResponse) -> Value {
    body(r)["error"]["details"]["reason"].clone()
}

#[tokio::test]
async fn created_key_is_shown_once_and_works_at_once_until_revoked() {
    let f = fixture();
    let admin = f.admin("acme", None, &["boards:read"]).await;
    let r = f.create_ci(&admin).await;
    assert_eq!(r.status, 201, "{}", body(&r));
    assert_eq!(header(&r, "cache-control"), Some("no-store"));
    let created = body(&r);
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["org"], "acme");
    assert_eq!(created["owner"], "ana");
    assert_eq!(created["status"], "active");
    assert!(f.verifier.verify(&key).await.is_ok());

    for (method, path) in [
        ("GET", "/api/v1/keys".to_owned()),
        ("GET", format!("/api/v1/keys/{id}")),
    ] {
        let r = f.call(&admin, method, &path, "").await;
        assert_eq!(r.status, 200);
        let text = String::from_utf8_lossy(&r.body).into_owned();
        assert!(!text.contains(&key), "{path} shows the plaintext");
        assert!(!text.contains("argon2"), "{path} shows a hash");
        assert_ne!(header(&r, "cache-control"), Some("no-store"));
    }

    let r = f
        .call(&admin, "POST", &format!("/api/v1/keys/{id}/revoke"), "")
        .await;
    assert_eq!(
        (r.status, body(&r)["status"].clone()),
        (200, json!("revoked"))
    );
    assert_eq!(
        f.verifier.verify(&key).await.unwrap_err().reason(),
        "revoked_key"
    );
    let again = f
        .call(&admin, "POST", &format!("/api/v1/keys/{id}/revoke"), "")
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(body(&again)["revoked_at"], body(&r)["revoked_at"]);
}

#[tokio::test]
async fn another_orgs_key_is_answered_exactly_like_an_unknown_id() {
    let f = fixture();
    let acme = f.admin("acme", None, &["boards:read"]).await;
    let globex = f.admin("globex", None, &["boards:read"]).await;
    let r = f
        .call(
            &globex,
            "POST",
            "/api/v1/keys",
            r#"{"name":"theirs","scopes":["boards:read"]}"#,
        )
        .await;
    let theirs = body(&r)["id"].as_str().unwrap().to_owned();
    let unknown = "0123456789abcdef";
    for (method, suffix, payload) in [
        ("GET", "", ""),
        ("PATCH", "", r#"{"name":"mine now"}"#),
        ("POST", "/revoke", ""),
        ("POST", "/rotate", ""),
        ("DELETE", "", ""),
    ] {
        let a = f
            .call(
                &acme,
                method,
                &format!("/api/v1/keys/{theirs}{suffix}"),
                payload,
            )
            .await;
        let b = f
            .call(
                &acme,
                method,
                &format!("/api/v1/keys/{unknown}{suffix}"),
                payload,
            )
            .await;
        assert_eq!((a.status, reason(&a)), (404, json!("key_not_found")));
        let strip = |r: &ErrorResponse| {
            let mut v = body(r);
            v["meta"] = Value::Null;
            v
        };
        assert_eq!(
            (a.status, strip(&a)),
            (b.status, strip(&b)),
            "{method} {suffix}"
        );
    }
    // Nothing happened to it.
    let still = f.manager.show(&theirs).await.unwrap();
    assert_eq!((still.name.as_str(), still.revoked_at), ("theirs", None));
    let listed = body(&f.call(&acme, "GET", "/api/v1/keys", "").await);
    assert!(listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["org"] == "acme"));
}

#[tokio::test]
async fn a_team_manager_sees_only_its_team() {
    let f = fixture();
    let whole_org = f.admin("acme", None, &["boards:read"]).await;
    let red = f.admin("acme", Some("red"), &["boards:read"]).await;
    let r = f
        .call(
            &whole_org,
            "POST",
            "/api/v1/keys",
            r#"{"name":"blue","scopes":["boards:read"],"team":"blue"}"#,
        )
        .await;
    assert_eq!(body(&r)["team"], "blue");
    let blue_id = body(&r)["id"].as_str().unwrap().to_owned();
    let r = f
        .call(
            &red,
            "POST",
            "/api/v1/keys",
            r#"{"name":"red","scopes":["boards:read"],"team":"blue"}"#,
        )
        .await;
    assert_eq!(
        body(&r)["team"],
        "red",
        "a team manager's keys stay in its team"
    );
    assert_eq!(
        f.call(&red, "GET", &format!("/api/v1/keys/{blue_id}"), "")
            .await
            .status,
        404
    );
    let listed = body(&f.call(&red, "GET", "/api/v1/keys", "").await);
    assert!(listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["team"] == "red"));
}

#[tokio::test]
async fn granting_a_scope_the_manager_lacks_is_refused_and_writes_nothing() {
    let f = fixture();
    let admin = f.admin("acme", None, &["boards:read"]).await;
    let before = f
        .manager
        .list(&keygate::KeyFilter::all())
        .await
        .unwrap()
        .len();
    let r = f
        .call(
            &admin,
            "POST",
            "/api/v1/keys",
            r#"{"name":"x","scopes":["boards:read","boards:write"]}"#,
        )
        .await;
    assert_eq!((r.status, reason(&r)), (403, json!("scope_not_grantable")));
    assert_eq!(
        body(&r)["error"]["details"]["scopes"],
        json!(["boards:write"])
    );
    assert_eq!(f.key_count().await, before);
}

#[tokio::test]
async fn rotating_a_key_with_grants_the_manager_lacks_is_refused() {
    let f = fixture();
    let admin = f.admin("acme", None, &["boards:read"]).await;
    let strong = f
        .manager
        .create(NewKey::new("ops", "acme").scopes(["boards:write"]).unwrap())
        .await
        .unwrap();
    let r = f
        .call(
            &admin,
            "POST",
            &format!("/api/v1/keys/{}/rotate", strong.record.id),
            "",
        )
        .await;
    assert_eq!((r.status, reason(&r)), (403, json!("scope_not_grantable")));
    assert!(f
        .manager
        .show(&strong.record.id)
        .await
        .unwrap()
        .rotated_to
        .is_none());
}

#[tokio::test]
async fn a_key_without_keys_manage_cannot_manage() {
    let f = fixture();
    let plain = f
        .manager
        .create(
            NewKey::new("plain", "acme")
                .scopes(["boards:read"])
                .unwrap(),
        )
        .await
        .unwrap();
    let r = f
        .call(plain.key.expose_secret(), "GET", "/api/v1/keys", "")
        .await;
    assert_eq!((r.status, reason(&r)), (403, json!("insufficient_scope")));
    let r = f.call("", "GET", "/api/v1/keys", "").await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn pages_cover_every_key_once_newest_first_and_filter_by_status() {
    let f = fixture();
    let admin = f.admin("acme", None, &["boards:read"]).await;
    let mut made = Vec::new();
    for i in 0..12 {
        let r = f
            .call(
                &admin,
                "POST",
                "/api/v1/keys",
                &format!(r#"{{"name":"k{i}","scopes":["boards:read"]}}"#),
            )
            .await;
        made.push(body(&r)["id"].as_str().unwrap().to_owned());
    }
    f.call(
        &admin,
        "POST",
        &format!("/api/v1/keys/{}/revoke", made[3]),
        "",
    )
    .await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/keys?limit=5&cursor={c}"),
            None => "/api/v1/keys?limit=5".to_owned(),
        };
        let page = body(&f.call(&admin, "GET", &path, "").await);
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 5);
        seen.extend(data.iter().map(|k| k["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    // 12 made + the admin key itself, each exactly once.
    assert_eq!(seen.len(), 13);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 13);
    let revoked = body(
        &f.call(&admin, "GET", "/api/v1/keys?status=revoked", "")
            .await,
    );
    let ids: Vec<&str> = revoked["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [made[3].as_str()]);
    let r = f
        .call(&admin, "GET", "/api/v1/keys?cursor=nonsense", "")
        .await;
    assert_eq!(body(&r)["error"]["details"]["field"], "cursor");
}

#[tokio::test]
async fn bad_bodies_name_the_field_and_write_nothing() {
    let f = fixture();
    let admin = f.admin("acme", None, &["boards:read"]).await;
    let before = f
        .manager
        .list(&keygate::KeyFilter::all())
        .await
        .unwrap()
        .len();
    for (payload, expect) in [
        ("not json", json!({"reason": "invalid_body"})),
        (
            r#"{"name":"","scopes":["boards:read"]}"#,
            json!({"reason": "invalid_field", "field": "name"}),
        ),
        (
            r#"{"name":"x","scopes":[]}"#,
            json!({"reason": "invalid_field", "field": "scopes"}),
        ),
        (
            r#"{"name":"x","scopes":["boards:read"],"expires_in":"later"}"#,
            json!({"reason": "invalid_field", "field": "expires_in"}),
        ),
        (
            r#"{"name":"x","scopes":["boards:read"],"rate_limit":"lots"}"#,
            json!({"reason": "invalid_field", "field": "rate_limit"}),
        ),
    ] {
        let r = f.call(&admin, "POST", "/api/v1/keys", payload).await;
        assert_eq!(r.status, 400, "{payload}");
        assert_eq!(body(&r)["error"]["code"], "BAD_REQUEST");
        assert_eq!(body(&r)["error"]["details"], expect, "{payload}");
    }
    assert_eq!(f.key_count().await, before);
}

#[tokio::test]
async fn rotation_gives_a_new_plaintext_once_and_a_second_rotation_conflicts() {
    let f = fixture();
    let admin = f.admin("acme", None, &["boards:read"]).await;
    let r = f.create_ci(&admin).await;
    let old = body(&r);
    let old_id = old["id"].as_str().unwrap();
    let r = f
        .call(
            &admin,
            "POST",
            &format!("/api/v1/keys/{old_id}/rotate"),
            r#"{"grace":"1h"}"#,
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(header(&r, "cache-control"), Some("no-store"));
    let new = body(&r);
    assert_eq!(new["rotated_from"], old["id"]);
    assert_ne!(new["key"], old["key"]);
    assert!(f
        .verifier
        .verify(new["key"].as_str().unwrap())
        .await
        .is_ok());
    let shown = body(
        &f.call(&admin, "GET", &format!("/api/v1/keys/{old_id}"), "")
            .await,
    );
    assert_eq!(shown["rotated_to"], new["id"]);
    assert!(shown["expires_at"].is_string());
    let actions: Vec<&str> = shown["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["created", "rotated"]);
    let admin_id = &admin["mk_live_".len().."mk_live_".len() + 16];
    assert!(shown["audit"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor"] == format!("key:{admin_id}")));
    let again = f
        .call(&admin, "POST", &format!("/api/v1/keys/{old_id}/rotate"), "")
        .await;
    assert_eq!(
        (again.status, reason(&again)),
        (409, json!("already_rotated"))
    );
}

#[tokio::test]
async fn rotating_a_revoked_key_conflicts_and_leaves_no_successor() {
    let f = fixture();
    let admin = f.admin("acme", None, &["boards:read"]).await;
    let r = f.create_ci(&admin).await;
    let id = body(&r)["id"].as_str().unwrap().to_owned();
    f.call(&admin, "POST", &format!("/api/v1/keys/{id}/revoke"), "")
        .await;
    let r = f
        .call(&admin, "POST", &format!("/api/v1/keys/{id}/rotate"), "")
        .await;
    assert_eq!((r.status, reason(&r)), (409, json!("key_not_active")));
    let all = f.manager.list(&keygate::KeyFilter::all()).await.unwrap();
    assert!(all
        .iter()
        .all(|k| k.rotated_from.as_deref() != Some(id.as_str())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_racing_a_revoke_never_leaves_a_live_successor_of_an_earlier_revoke() {
    let f = fixture();
    for _ in 0..20 {
        let k = f
            .manager
            .create(
                NewKey::new("raced", "acme")
                    .scopes(["boards:read"])
                    .unwrap(),
            )
            .await
            .unwrap();
        let id = k.record.id.clone();
        let (rotated, revoked) = tokio::join!(
            f.manager.rotate(&id, std::time::Duration::from_secs(3600)),
            f.manager.revoke(&id)
        );
        let revoked = revoked.unwrap();
        match rotated {
            // The rotation committed first: the revoke came after it.
            Ok(successor) => {
                assert!(successor.record.created_at <= revoked.revoked_at.unwrap());
                let old = f.manager.show(&id).await.unwrap();
                assert_eq!(
                    old.rotated_to.as_deref(),
                    Some(successor.record.id.as_str())
                );
            }
            Err(keygate::ManageError::NotActive { status, .. }) => {
                assert_eq!(status, KeyStatus::Revoked);
                let all = f.store_records().await;
                assert!(all
                    .iter()
                    .all(|r| r.rotated_from.as_deref() != Some(id.as_str())));
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
}

impl Fixture {
    async fn store_records(&self) -> Vec<keygate::KeyRecord> {
        use keygate::KeyStore;
        self.store.list(&keygate::KeyFilter::all()).await.unwrap()
    }
}

struct Session(Manager);

#[async_trait]
impl SessionManagers for Session {
    async fn manager(&self, req: &ApiRequest<'_>) -> Result<Option<Manager>, StoreError> {
        Ok((req.header("cookie") == Some(b"session=ok")).then(|| self.0.clone()))
    }
}

#[tokio::test]
async fn session_managers_need_json_from_the_same_origin_to_change_anything() {
    let f = fixture();
    let api = f.api.clone().with_sessions(Session(Manager {
        org: "acme".into(),
        team: None,
        owner: Some("ana".into()),
        scopes: ScopeSet::parse(["boards:read"]).unwrap(),
        actor: "user:ana".into(),
    }));
    let create = br#"{"name":"web","scopes":["boards:read"]}"#;
    let call = |headers: Vec<(&'static str, &'static [u8])>| {
        let api = api.clone();
        async move {
            api.handle(&ApiRequest::new("POST", "/api/v1/keys", &headers).body(create))
                .await
        }
    };
    let cookie: (&str, &[u8]) = ("cookie", b"session=ok");
    let json_ct: (&str, &[u8]) = ("content-type", b"application/json");
    let host: (&str, &[u8]) = ("host", b"app.example:8080");
    let same: (&str, &[u8]) = ("origin", b"https://app.example:8080");
    let evil: (&str, &[u8]) = ("origin", b"https://evil.example");
    let form: (&str, &[u8]) = ("content-type", b"text/plain");

    assert_eq!(
        call(vec![json_ct, host, same]).await.status,
        401,
        "no session"
    );
    for refused in [
        vec![cookie, json_ct, host, evil],
        vec![cookie, json_ct, host],
        vec![cookie, form, host, same],
    ] {
        let r = call(refused).await;
        assert_eq!((r.status, reason(&r)), (403, json!("csrf")));
    }
    assert_eq!(f.key_count().await, 0);
    // HTTP/2: no Host header, the authority comes from the URI.
    let h2 = api
        .handle(
            &ApiRequest::new("POST", "/api/v1/keys", &[cookie, json_ct, same])
                .authority(Some("app.example:8080"))
                .body(create),
        )
        .await;
    assert_eq!(h2.status, 201, "{}", body(&h2));
    let ok = call(vec![cookie, json_ct, host, same]).await;
    assert_eq!(ok.status, 201, "{}", body(&ok));
    let id = body(&ok)["id"].as_str().unwrap().to_owned();
    let trail = f.manager.audit_trail(&id).await.unwrap();
    assert_eq!(trail[0].actor.as_deref(), Some("user:ana"));
}

#[tokio::test]
async fn the_page_is_served_with_a_csp_and_unknown_paths_are_404() {
    let f = fixture();
    let r = f.call("", "GET", "/keys", "").await;
    assert_eq!(r.status, 200);
    let csp = header(&r, "content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    let html = String::from_utf8_lossy(&r.body);
    assert!(html.contains("data-api-base=\"/api/v1/keys\""));
    assert_eq!(f.call("", "GET", "/keys/app.js", "").await.status, 200);
    assert_eq!(f.call("", "GET", "/keys/nope.js", "").await.status, 404);
    let r = f.call("", "PUT", "/api/v1/keys", "").await;
    assert_eq!((r.status, header(&r, "allow")), (405, Some("GET, POST")));
}

#[tokio::test]
async fn usage_shows_what_the_key_served_per_day_and_in_the_key_object() {
    let f = fixture();
    let admin = f.admin("acme", None, &["boards:read"]).await;
    let r = f.create_ci(&admin).await;
    let created = body(&r);
    assert_eq!(
        created["usage"],
        json!({"requests_24h": 0, "requests_30d": 0, "refused_24h": 0})
    );
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        f.verifier.verify(&key).await.unwrap();
    }
    let _ = f
        .verifier
        .authorize(&key, &keygate::ScopeRequirement::all_of(["boards:write"]))
        .await;
    f.verifier.flush_last_used().await.unwrap();

    let shown = body(
        &f.call(&admin, "GET", &format!("/api/v1/keys/{id}"), "")
            .await,
    );
    assert_eq!(
        shown["usage"],
        json!({"requests_24h": 3, "requests_30d": 3, "refused_24h": 1})
    );
    let listed = body(&f.call(&admin, "GET", "/api/v1/keys", "").await);
    let row = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["usage"]["requests_24h"], 3);
    let series = body(
        &f.call(&admin, "GET", &format!("/api/v1/keys/{id}/usage"), "")
            .await,
    );
    let days = series["data"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    let today = f.clock.now().format("%Y-%m-%d").to_string();
    assert_eq!(days[29], json!({"day": today, "requests": 3, "refused": 1}));
}

#[tokio::test]
async fn patch_never_brings_back_an_expired_or_rotated_key_nor_loosens_one_the_manager_could_not_grant(
) {
    let f = fixture();
    let admin = f.admin("acme", None, &["boards:read"]).await;
    let clock_now = f.clock.now();
    // A key with a scope the manager does not hold (made by an admin), still active.
    let strong = f
        .manager
        .create(NewKey::new("ops", "acme").scopes(["boards:write"]).unwrap())
        .await
        .unwrap();
    let r = f
        .call(
            &admin,
            "PATCH",
            &format!("/api/v1/keys/{}", strong.record.id),
            r#"{"expires_at":null}"#,
        )
        .await;
    assert_eq!((r.status, reason(&r)), (403, json!("scope_not_grantable")));
    // A rename needs no grant.
    let r = f
        .call(
            &admin,
            "PATCH",
            &format!("/api/v1/keys/{}", strong.record.id),
            r#"{"name":"ops (old)"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", body(&r));

    // An expired key stays expired.
    let short = f
        .manager
        .create(
            NewKey::new("short", "acme")
                .scopes(["boards:read"])
                .unwrap()
                .expires_at(clock_now + chrono::Duration::minutes(5)),
        )
        .await
        .unwrap();
    f.clock.advance(std::time::Duration::from_secs(600));
    let r = f
        .call(
            &admin,
            "PATCH",
            &format!("/api/v1/keys/{}", short.record.id),
            r#"{"expires_at":null}"#,
        )
        .await;
    assert_eq!((r.status, reason(&r)), (409, json!("key_not_active")));
    assert!(f.verifier.verify(short.key.expose_secret()).await.is_err());

    // A rotated-out key keeps its end.
    let r = f.create_ci(&admin).await;
    let id = body(&r)["id"].as_str().unwrap().to_owned();
    f.call(
        &admin,
        "POST",
        &format!("/api/v1/keys/{id}/rotate"),
        r#"{"grace":"1h"}"#,
    )
    .await;
    let r = f
        .call(
            &admin,
            "PATCH",
            &format!("/api/v1/keys/{id}"),
            r#"{"expires_at":null}"#,
        )
        .await;
    assert_eq!((r.status, reason(&r)), (409, json!("already_rotated")));
    assert!(f.manager.show(&id).await.unwrap().expires_at.is_some());
}

#[tokio::test]
async fn debug_output_never_shows_a_plaintext_or_a_header_value() {
    let f = fixture();
    let admin = f.admin("acme", None, &["boards:read"]).await;
    let r = f.create_ci(&admin).await;
    let key = body(&r)["key"].as_str().unwrap().to_owned();
    assert!(!format!("{r:?}").contains(&key));
    let headers = [
        ("x-api-key", admin.as_bytes()),
        ("cookie", &b"session=s3cret"[..]),
    ];
    let req = ApiRequest::new("GET", "/api/v1/keys", &headers);
    let shown = format!("{req:?}");
    assert!(
        !shown.contains(&admin) && !shown.contains("s3cret"),
        "{shown}"
    );
    assert!(shown.contains("x-api-key"));
}

#[tokio::test]
async fn usage_totals_of_a_tenant_leave_out_other_tenants_keys() {
    let f = fixture();
    let theirs = f
        .manager
        .create(
            NewKey::new("theirs", "globex")
                .scopes(["boards:read"])
                .unwrap(),
        )
        .await
        .unwrap();
    f.verifier.verify(theirs.key.expose_secret()).await.unwrap();
    f.verifier.flush_last_used().await.unwrap();
    let acme = f.manager.for_manager(Manager {
        org: "acme".into(),
        team: None,
        owner: None,
        scopes: ScopeSet::parse(["boards:read"]).unwrap(),
        actor: "user:ana".into(),
    });
    let totals = acme
        .usage_totals(std::slice::from_ref(&theirs.record))
        .await
        .unwrap();
    assert!(totals.is_empty());
    // Any number of days is answered without a panic, within the 90 kept.
    let days = f
        .manager
        .daily_usage(&theirs.record.id, u32::MAX)
        .await
        .unwrap();
    assert_eq!(days.len(), 90);
}

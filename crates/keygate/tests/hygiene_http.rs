//! Secret hygiene through the HTTP layer: what the tower `ApiKeyLayer` answers (401, 403 and
//! 503 bodies and headers), what a panicking handler behind it can print, and what the store
//! holds after a full run never contain any part of a presented secret.
//!
//! "Any part" is checked as every 8-character window of the token's secret (everything after
//! the `.`), so a truncated or partly echoed key is caught too.

mod support;

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use keygate::{
    ApiKeyLayer, JsonRenderer, KeyFilter, KeyStore, NewKey, Principal, RequireScopesLayer,
};
use support::{forge_secret, Rig};
use tower::{service_fn, ServiceBuilder, ServiceExt};

const WINDOW: usize = 8;

/// Header names and values of one request.
type Headers = Vec<(&'static str, String)>;

/// The first part of `token`'s secret found in `haystack`, if any.
fn leaked_part<'t>(haystack: &str, token: &'t str) -> Option<&'t str> {
    let secret = &token[token.find('.').map_or(0, |d| d + 1)..];
    (0..=secret.len().saturating_sub(WINDOW))
        .map(|i| &secret[i..(i + WINDOW).min(secret.len())])
        .find(|part| haystack.contains(part))
}

fn assert_no_secret(haystack: &str, tokens: &[String], what: &str) {
    for t in tokens {
        if let Some(part) = leaked_part(haystack, t) {
            panic!("{what} contains {part:?}, a part of a presented secret:\n{haystack}");
        }
    }
}

/// Status, every header and the body of a response, as one string.
fn everything(res: &Response<Bytes>) -> String {
    let mut s = format!("{}\n", res.status());
    for (name, value) in res.headers() {
        s += &format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes()));
    }
    s + &String::from_utf8_lossy(res.body())
}

async fn ok(_req: Request<()>) -> Result<Response<Bytes>, Infallible> {
    Ok(Response::new(Bytes::from_static(b"ok")))
}

fn request(headers: &[(&str, String)]) -> Request<()> {
    let mut b = Request::builder()
        .uri("/")
        .header("x-request-id", "hygiene-1");
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    b.body(()).unwrap()
}

/// A copy of `token` with one secret character changed: the checksum refuses it.
fn typo(token: &str) -> String {
    let mut b = token.as_bytes().to_vec();
    let i = token.find('.').unwrap() + 5;
    b[i] = if b[i] == b'x' { b'y' } else { b'x' };
    String::from_utf8(b).unwrap()
}

#[tokio::test]
async fn error_bodies_and_headers_of_401_403_and_503_contain_no_part_of_the_secret() {
    let rig = Rig::new();
    let (valid, _) = rig.key().await;
    let (revoked, revoked_id) = rig.key().await;
    rig.verifier.verify(&revoked).await.unwrap();
    rig.manager.revoke(&revoked_id).await.unwrap();
    let expires = rig.clock_now() + chrono::Duration::minutes(1);
    let (expired, _) = rig
        .key_with(
            NewKey::new("short", "acme")
                .scopes(["entities:read"])
                .unwrap()
                .expires_at(expires),
        )
        .await;
    rig.verifier.verify(&expired).await.unwrap();
    rig.clock.advance(Duration::from_secs(120));
    let (uncached, _) = rig.key().await;
    let forged = forge_secret(&valid, 7);

    let layer = || ApiKeyLayer::new(rig.verifier.clone()).renderer(JsonRenderer::new("hygiene"));
    let plain = ServiceBuilder::new().layer(layer()).service(service_fn(ok));
    let guarded = ServiceBuilder::new()
        .layer(layer())
        .layer(RequireScopesLayer::all_of(["boards:write"]))
        .service(service_fn(ok));

    let mut tokens = vec![
        valid.clone(),
        revoked.clone(),
        expired.clone(),
        uncached.clone(),
        forged.clone(),
    ];
    let cases: Vec<(u16, &str, Headers)> = vec![
        (401, "invalid_key", vec![("x-api-key", forged.clone())]),
        (
            401,
            "invalid_key",
            vec![("authorization", format!("Bearer {forged}"))],
        ),
        (401, "malformed_key", vec![("x-api-key", typo(&valid))]),
        (
            401,
            "malformed_key",
            vec![("x-api-key", valid[..valid.len() - 3].to_owned())],
        ),
        (
            401,
            "malformed_key",
            vec![("authorization", format!("Basic {valid}"))],
        ),
        (
            401,
            "malformed_key",
            vec![("x-api-key", valid.clone()), ("x-api-key", valid.clone())],
        ),
        (
            401,
            "malformed_key",
            vec![("x-api-key", format!("{valid}{valid}"))],
        ),
        (401, "revoked_key", vec![("x-api-key", revoked.clone())]),
        (
            401,
            "expired_key",
            vec![("authorization", format!("bearer {expired}"))],
        ),
    ];
    tokens.push(typo(&valid));

    let mut seen = Vec::new();
    for (status, reason, headers) in &cases {
        let res = plain.clone().oneshot(request(headers)).await.unwrap();
        seen.push((res.status().as_u16(), everything(&res)));
        assert_eq!(res.status().as_u16(), *status, "{reason}");
        assert!(everything(&res).contains(reason), "{reason}");
    }
    let res = guarded
        .clone()
        .oneshot(request(&[("x-api-key", valid.clone())]))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    seen.push((403, everything(&res)));

    rig.store.failing.store(true, Ordering::SeqCst);
    let res = plain
        .clone()
        .oneshot(request(&[("x-api-key", uncached.clone())]))
        .await
        .unwrap();
    rig.store.failing.store(false, Ordering::SeqCst);
    assert_eq!(res.status().as_u16(), 503);
    seen.push((503, everything(&res)));

    for (status, text) in &seen {
        assert_no_secret(text, &tokens, &format!("a {status} response"));
    }
}

#[tokio::test]
async fn a_handler_that_panics_with_the_request_prints_no_key() {
    let rig = Rig::new();
    let (token, _) = rig.key().await;
    let svc = ServiceBuilder::new()
        .layer(ApiKeyLayer::new(rig.verifier.clone()))
        .service(service_fn(|req: Request<()>| async move {
            let who = req.extensions().get::<Arc<Principal>>().cloned();
            if who.is_some() {
                panic!("handler failed on {req:?}; principal {who:?}");
            }
            Ok::<_, Infallible>(Response::new(Bytes::new()))
        }));

    for header in [
        ("x-api-key", token.clone()),
        ("authorization", format!("Bearer {token}")),
    ] {
        let name = header.0;
        let outcome = tokio::spawn(svc.clone().oneshot(request(&[header]))).await;
        let payload = match outcome {
            Err(e) if e.is_panic() => e.into_panic(),
            other => panic!("the handler should have panicked: {other:?}"),
        };
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(message.contains("handler failed"), "{message}");
        assert!(
            message.contains(name) && message.contains("Sensitive"),
            "the credential header is shown as Sensitive: {message}"
        );
        assert_no_secret(&message, std::slice::from_ref(&token), "the panic message");
    }
}

#[tokio::test]
async fn stored_records_and_audit_after_an_http_run_hold_no_secret() {
    let rig = Rig::new();
    let svc = ServiceBuilder::new()
        .layer(ApiKeyLayer::new(rig.verifier.clone()))
        .service(service_fn(ok));
    let (token, id) = rig.key().await;
    let mut tokens = vec![token.clone()];

    for t in [token.clone(), forge_secret(&token, 1), typo(&token)] {
        tokens.push(t.clone());
        svc.clone()
            .oneshot(request(&[("x-api-key", t)]))
            .await
            .unwrap();
    }
    let rotated = rig
        .manager
        .rotate(&id, Duration::from_secs(60))
        .await
        .unwrap();
    let new_token = rotated.key.expose_secret().to_owned();
    tokens.push(new_token.clone());
    let res = svc
        .clone()
        .oneshot(request(&[("authorization", format!("Bearer {new_token}"))]))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    rig.manager.revoke(&rotated.record.id).await.unwrap();
    rig.verifier.shutdown().await.unwrap();

    let records = rig.store.inner.list(&KeyFilter::all()).await.unwrap();
    assert_eq!(records.len(), 2);
    let mut stored = String::new();
    for r in &records {
        assert!(
            r.hash.starts_with("$argon2id$"),
            "only a PHC hash is stored"
        );
        assert!(r.last_used_at.is_some(), "the run reached the store");
        stored += &serde_json::to_string(r).unwrap();
        stored += &format!("{r:?}");
        for e in rig.store.inner.audit_trail(&r.id).await.unwrap() {
            stored += &serde_json::to_string(&e).unwrap();
        }
    }
    assert_no_secret(&stored, &tokens, "the stored rows");
}

trait ClockNow {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc>;
}

impl ClockNow for Rig {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use keygate::Clock;
        self.clock.now()
    }
}

//! Issue 13, finding 1: the actix middleware leaked credentials into `Debug`. actix-web's
//! `ServiceRequest` `Debug` prints every header in full, its `HttpRequest` `Debug` every
//! header but `Authorization`: a handler or middleware that logs (or panics with) the request
//! printed the caller's key. `ApiKeyAuth` now marks `X-Api-Key` and `Authorization`
//! sensitive on the request itself, so their values print as `Sensitive`, whether the
//! request is admitted or refused.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use actix_web::dev::Service;
use actix_web::{test, web, App, HttpRequest, HttpResponse};
use keygate::{Argon2Hasher, Argon2Params, KeyManager, MemoryStore, NewKey, Verifier};
use keygate_actix::ApiKeyAuth;

async fn setup() -> (Verifier, String) {
    let store = Arc::new(MemoryStore::new());
    let hasher = Argon2Hasher::with_params(Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    })
    .unwrap();
    let verifier = Verifier::builder(store.clone()).hasher(hasher).build();
    let manager = KeyManager::new(store).with_verifier(&verifier);
    let created = manager
        .create(NewKey::new("k", "acme").scopes(["entities:read"]).unwrap())
        .await
        .unwrap();
    (verifier, created.key.expose_secret().to_owned())
}

/// The same id with another secret (and a valid checksum): refused as `invalid_key` after
/// the argon2 check, i.e. a credential that looks exactly like a real one.
fn forged(token: &str) -> String {
    let dot = token.find('.').unwrap();
    let secret = "Q".repeat(keygate::token::SECRET_LEN);
    keygate::token::with_checksum(&format!("{}.{secret}", &token[..dot]))
}

/// The secret part of a token (after the dot): what must never be printed.
fn secret_of(token: &str) -> &str {
    &token[token.find('.').unwrap() + 1..]
}

/// Both ways a credential is sent.
fn with_credential(req: test::TestRequest, header: &str, token: &str) -> test::TestRequest {
    match header {
        "x-api-key" => req.insert_header(("x-api-key", token.to_owned())),
        _ => req.insert_header(("authorization", format!("Bearer {token}"))),
    }
}

/// Records in `leaks` when `printed` shows the secret of `token`.
fn check_hidden(leaks: &mut Vec<String>, what: &str, printed: &str, token: &str) {
    // The headers were printed at all (the check below is not vacuous).
    assert!(
        printed.contains("headers"),
        "{what} printed no headers:\n{printed}"
    );
    if printed.contains(secret_of(token)) {
        leaks.push(format!("{what} prints the key:\n{printed}"));
    }
}

fn assert_no_leaks(leaks: &[String]) {
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}

/// A handler that answers with the `Debug` of its request.
async fn debug_request(req: HttpRequest) -> HttpResponse {
    HttpResponse::Ok().body(format!("{req:?}"))
}

/// A handler that panics with its request, and answers with the panic's message.
async fn panic_with_request(req: HttpRequest) -> HttpResponse {
    let payload = catch_unwind(AssertUnwindSafe(|| -> () {
        panic!("handler failed on {req:?}");
    }))
    .unwrap_err();
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    HttpResponse::Ok().body(message)
}

#[actix_web::test]
async fn actix_debug_of_an_admitted_request_never_shows_the_key() {
    let (verifier, key) = setup().await;
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let inner = Arc::clone(&seen);
    let app = test::init_service(
        App::new()
            // Registered first, so it runs inside ApiKeyAuth: a logging middleware of the
            // application that formats the admitted ServiceRequest.
            .wrap_fn(move |req, srv| {
                inner.lock().unwrap().push(format!("{req:?}"));
                srv.call(req)
            })
            .wrap(ApiKeyAuth::new(verifier))
            .route("/debug", web::get().to(debug_request))
            .route("/panic", web::get().to(panic_with_request)),
    )
    .await;
    let mut leaks = Vec::new();
    for header in ["x-api-key", "authorization"] {
        for path in ["/debug", "/panic"] {
            let req = with_credential(test::TestRequest::get().uri(path), header, &key);
            let res = test::call_service(&app, req.to_request()).await;
            assert_eq!(res.status(), 200, "{header} {path}");
            let body = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
            check_hidden(&mut leaks, &format!("{path} with {header}"), &body, &key);
            let logged = seen.lock().unwrap().pop().unwrap();
            check_hidden(
                &mut leaks,
                &format!("ServiceRequest of {path} with {header}"),
                &logged,
                &key,
            );
        }
    }
    assert_no_leaks(&leaks);
}

#[actix_web::test]
async fn actix_debug_of_a_refused_request_never_shows_the_key() {
    let (verifier, key) = setup().await;
    let forged = forged(&key);
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let outer = Arc::clone(&seen);
    let app = test::init_service(
        App::new()
            .wrap(ApiKeyAuth::new(verifier))
            // Registered last, so it wraps ApiKeyAuth: a logging middleware that formats the
            // request of every response, refusals included.
            .wrap_fn(move |req, srv| {
                let fut = srv.call(req);
                let outer = Arc::clone(&outer);
                async move {
                    let res = fut.await?;
                    outer.lock().unwrap().push(format!("{:?}", res.request()));
                    Ok(res)
                }
            })
            .route("/debug", web::get().to(debug_request)),
    )
    .await;
    let mut leaks = Vec::new();
    for header in ["x-api-key", "authorization"] {
        let req = with_credential(test::TestRequest::get().uri("/debug"), header, &forged);
        let res = test::call_service(&app, req.to_request()).await;
        assert_eq!(res.status(), 401, "{header}");
        let logged = seen.lock().unwrap().pop().unwrap();
        let what = format!("refused request with {header}");
        check_hidden(&mut leaks, &what, &logged, &forged);
    }
    // Two X-Api-Key headers (malformed, refused before any store work): both hidden.
    let req = test::TestRequest::get()
        .uri("/debug")
        .append_header(("x-api-key", forged.clone()))
        .append_header(("x-api-key", key.clone()));
    let res = test::call_service(&app, req.to_request()).await;
    assert_eq!(res.status(), 401);
    let logged = seen.lock().unwrap().pop().unwrap();
    check_hidden(&mut leaks, "repeated X-Api-Key, first", &logged, &forged);
    check_hidden(&mut leaks, "repeated X-Api-Key, second", &logged, &key);
    // An admitted one, seen from outside on its way back.
    let req = with_credential(test::TestRequest::get().uri("/debug"), "x-api-key", &key);
    let res = test::call_service(&app, req.to_request()).await;
    assert_eq!(res.status(), 200);
    let logged = seen.lock().unwrap().pop().unwrap();
    check_hidden(
        &mut leaks,
        "admitted request seen from outside",
        &logged,
        &key,
    );
    assert_no_leaks(&leaks);
}

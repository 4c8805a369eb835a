//! Secret hygiene end to end: a key lifecycle driven through real HTTP on 127.0.0.1 (the soak's
//! axum server with keygate's `ApiKeyLayer`) over a SQLite file. Afterwards neither the
//! database files (main, WAL, shared memory) nor the logs of the whole run hold any part of a
//! presented secret. (keygate-sqlx's own tests scan the file after store calls; this one covers
//! the path through the HTTP layer, the verifier's write-behind and the audit trail.)

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keygate::{Argon2Hasher, Argon2Params, KeyManager, NewKey, Verifier};
use keygate_soak::client::{Connection, Credential};
use keygate_soak::oracle::Answer;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Every 8-byte window of the secret part of `token` (after the `.`).
fn secret_parts(token: &str) -> Vec<Vec<u8>> {
    let secret = &token.as_bytes()[token.find('.').unwrap() + 1..];
    secret.windows(8).map(<[u8]>::to_vec).collect()
}

fn find_leak(haystack: &[u8], tokens: &[String]) -> Option<String> {
    tokens
        .iter()
        .flat_map(|t| secret_parts(t))
        .find_map(|part| {
            haystack
                .windows(part.len())
                .any(|w| w == part.as_slice())
                .then(|| String::from_utf8_lossy(&part).into_owned())
        })
}

fn forge(token: &str) -> String {
    let dot = token.find('.').unwrap();
    keygate::token::with_checksum(&format!("{}.{}", &token[..dot], "Z".repeat(40)))
}

#[tokio::test]
async fn a_lifecycle_through_http_leaves_no_secret_in_the_database_files_or_logs() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hygiene.db");
    let store = keygate_sqlx::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let cheap = Argon2Hasher::with_params(Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    })
    .unwrap();
    let verifier = Verifier::builder(store.clone()).hasher(cheap).build();
    let manager = KeyManager::new(store.clone()).with_verifier(&verifier);
    let server = keygate_soak::server::start(verifier.clone()).await.unwrap();
    let mut http = Connection::open(server.addr).await.unwrap();

    let created = manager
        .create(
            NewKey::new("hygiene", "acme")
                .scopes(["soak:read"])
                .unwrap(),
        )
        .await
        .unwrap();
    let token = created.key.expose_secret().to_owned();
    let id = created.record.id.clone();
    let mut tokens = vec![token.clone(), forge(&token)];

    let mut answers = Vec::new();
    for c in [
        Credential::ApiKey(token.clone()),
        Credential::Bearer(token.clone()),
        Credential::ApiKey(forge(&token)),
        Credential::ApiKey(token[..token.len() - 1].to_owned()),
    ] {
        answers.push(http.ask(&c).await.unwrap());
    }
    let rotated = manager.rotate(&id, Duration::from_secs(60)).await.unwrap();
    let new_token = rotated.key.expose_secret().to_owned();
    tokens.push(new_token.clone());
    answers.push(
        http.ask(&Credential::Bearer(new_token.clone()))
            .await
            .unwrap(),
    );
    manager.revoke(&rotated.record.id).await.unwrap();
    answers.push(http.ask(&Credential::ApiKey(new_token)).await.unwrap());
    assert_eq!(
        verifier.shutdown().await.unwrap(),
        2,
        "both keys' last use written"
    );

    let reasons: Vec<String> = answers.iter().map(Answer::outcome).collect();
    assert_eq!(
        reasons,
        [
            "ok",
            "ok",
            "invalid_key",
            "malformed_key",
            "ok",
            "revoked_key"
        ]
    );
    let stored = manager.show(&id).await.unwrap();
    assert!(stored.hash.starts_with("$argon2id$") && stored.last_used_at.is_some());

    server.stop().await.unwrap();
    drop((manager, verifier, store));

    let mut files = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p = entry.unwrap().path();
        // SQLite removes its -wal/-shm files when the last connection closes, which the pool
        // may still be doing: a file gone between listing and reading holds nothing.
        let bytes = match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("reading {}: {e}", p.display()),
        };
        files += 1;
        if let Some(part) = find_leak(&bytes, &tokens) {
            panic!("{} holds {part:?}, a part of a secret", p.display());
        }
    }
    assert!(files >= 1, "the database file exists");
    let logs = capture.0.lock().unwrap().clone();
    assert!(
        String::from_utf8_lossy(&logs).contains(&id),
        "ids are logged"
    );
    if let Some(part) = find_leak(&logs, &tokens) {
        panic!("the logs hold {part:?}, a part of a secret");
    }
}

//! A key created by the `keygate` process is accepted by a verifier in this process on the same
//! SQLite file, and a revoke made by the CLI is honoured within the verifier's revocation
//! window (a manual clock moves time; nothing sleeps).

use std::sync::Arc;
use std::time::Duration;

use assert_cmd::Command;
use keygate::{AuthError, ManualClock, ScopeRequirement, Verifier};

fn keygate(url: &str) -> Command {
    let mut cmd = Command::cargo_bin("keygate").unwrap();
    cmd.env_remove("KEYGATE_DATABASE_URL")
        .args(["--database-url", url]);
    cmd
}

fn create(url: &str) -> (String, String) {
    let out = keygate(url)
        .args([
            "create",
            "--name",
            "svc",
            "--org",
            "acme",
            "--scope",
            "entities:read",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["id"].as_str().unwrap().into(),
        v["key"].as_str().unwrap().into(),
    )
}

async fn verifier_on(url: &str, clock: &ManualClock) -> Verifier {
    let store = keygate_sqlx::connect(url).await.unwrap();
    Verifier::builder(Arc::clone(&store))
        .clock(clock.clone())
        .revocation_window(Duration::from_secs(30))
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_created_by_the_cli_is_accepted_by_a_verifier_in_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let (id, key) = create(&url);
    let verifier = verifier_on(&url, &ManualClock::starting_now()).await;
    let who = verifier
        .authorize(&key, &ScopeRequirement::all_of(["entities:read"]))
        .await
        .unwrap();
    assert_eq!((who.id.as_str(), who.org.as_str()), (id.as_str(), "acme"));
    let denied = verifier
        .authorize(&key, &ScopeRequirement::all_of(["entities:write"]))
        .await;
    assert!(matches!(denied, Err(AuthError::InsufficientScope { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_revoke_is_honoured_within_the_revocation_window() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let (id, key) = create(&url);
    let clock = ManualClock::starting_now();
    let verifier = verifier_on(&url, &clock).await;
    verifier.verify(&key).await.unwrap();

    let out = keygate(&url).args(["revoke", &id]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // SQLite pushes nothing: within the window the cached record may still be trusted…
    clock.advance(Duration::from_secs(29));
    assert!(verifier.verify(&key).await.is_ok());
    // …and once the window has passed the revoke bites.
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        verifier.verify(&key).await.unwrap_err(),
        AuthError::RevokedKey
    );
}

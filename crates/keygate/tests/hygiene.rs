//! Secrets never appear in logs or `Debug` output, across a full lifecycle.

mod support;

use std::time::Duration;

use keygate::{NewKey, ScopeRequirement};
use support::{forge_secret, Capture, Rig};

/// The secret part of a token: everything after the `.`.
fn secret_of(token: &str) -> &str {
    &token[token.find('.').unwrap() + 1..]
}

#[tokio::test]
async fn a_full_lifecycle_logs_and_debugs_no_secret() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let rig = Rig::with(|b| b.failure_throttle(2, Duration::from_secs(60)));
    let mut debug = String::new();
    let mut secrets = Vec::new();

    let created = rig
        .manager
        .create(
            NewKey::new("hygiene", "acme")
                .scopes(["entities:read"])
                .unwrap(),
        )
        .await
        .unwrap();
    let token = created.key.expose_secret().to_owned();
    secrets.push(token.clone());
    debug += &format!("{created:?} {} {:?}", created.key, created.record);

    let p = rig.verifier.verify(&token).await.unwrap();
    debug += &format!("{p:?}");
    for seed in 0..4 {
        let e = rig
            .verifier
            .verify(&forge_secret(&token, seed))
            .await
            .unwrap_err();
        debug += &format!("{e:?} {e}");
    }
    let e = rig
        .verifier
        .authorize(&token, &ScopeRequirement::all_of(["boards:write"]))
        .await
        .unwrap_err();
    debug += &format!("{e:?}");

    let rotated = rig
        .manager
        .rotate(&created.record.id, Duration::from_secs(60))
        .await
        .unwrap();
    secrets.push(rotated.key.expose_secret().to_owned());
    debug += &format!("{rotated:?}");
    rig.verifier
        .verify(rotated.key.expose_secret())
        .await
        .unwrap();
    rig.manager.revoke(&rotated.record.id).await.unwrap();
    let e = rig
        .verifier
        .verify(rotated.key.expose_secret())
        .await
        .unwrap_err();
    debug += &format!("{e:?}");
    rig.manager.delete(&created.record.id).await.unwrap();
    rig.verifier.shutdown().await.unwrap();
    debug += &format!("{:?} {:?}", rig.verifier, rig.manager);
    for r in rig.store.inner_records().await {
        debug += &format!("{r:?}");
    }

    let logs = capture.text();
    assert!(
        logs.contains("key lifecycle event"),
        "the audit sink logged: {logs}"
    );
    assert!(logs.contains(&created.record.id), "ids are logged");
    for s in &secrets {
        assert!(!logs.contains(secret_of(s)), "secret in logs");
        assert!(!debug.contains(secret_of(s)), "secret in Debug output");
    }
}

trait InnerRecords {
    async fn inner_records(&self) -> Vec<keygate::KeyRecord>;
}

impl InnerRecords for support::TestStore {
    async fn inner_records(&self) -> Vec<keygate::KeyRecord> {
        use keygate::KeyStore;
        self.inner.list(&keygate::KeyFilter::all()).await.unwrap()
    }
}

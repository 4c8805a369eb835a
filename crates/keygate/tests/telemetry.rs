//! Operators can see outcomes, cache hit rates and attacks: metrics through the `metrics`
//! facade and one tracing span per verification (key id, outcome, cache), never the secret.

mod support;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;
use support::{forge_secret, Capture, Rig};

fn counter(
    snapshot: &[(metrics_util::CompositeKey, DebugValue)],
    name: &str,
    labels: &[(&str, &str)],
) -> u64 {
    snapshot
        .iter()
        .filter(|(k, _)| k.kind() == MetricKind::Counter && k.key().name() == name)
        .filter(|(k, _)| {
            labels.iter().all(|(l, v)| {
                k.key()
                    .labels()
                    .any(|kl| kl.key() == *l && kl.value() == *v)
            })
        })
        .map(|(_, v)| match v {
            DebugValue::Counter(c) => *c,
            _ => 0,
        })
        .sum()
}

// One test per binary: it installs the process-global metrics recorder.
#[tokio::test]
async fn verifications_emit_outcome_and_cache_metrics_and_a_span_per_verification() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(capture.clone())
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let rig = Rig::new();
    let (token, id) = rig.key().await;
    for _ in 0..5 {
        rig.verifier.verify(&token).await.unwrap();
    }
    rig.verifier
        .verify(&forge_secret(&token, 1))
        .await
        .unwrap_err();
    rig.verifier.verify("garbage").await.unwrap_err();

    let snap: Vec<_> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(k, _, _, v)| (k, v))
        .collect();
    assert_eq!(
        counter(&snap, "keygate_verifications_total", &[("outcome", "ok")]),
        5
    );
    assert_eq!(
        counter(
            &snap,
            "keygate_verifications_total",
            &[("outcome", "invalid_key")]
        ),
        1
    );
    assert_eq!(
        counter(
            &snap,
            "keygate_verifications_total",
            &[("outcome", "malformed_key")]
        ),
        1
    );
    assert_eq!(
        counter(
            &snap,
            "keygate_cache_total",
            &[("cache", "record"), ("result", "miss")]
        ),
        1
    );
    assert_eq!(
        counter(
            &snap,
            "keygate_cache_total",
            &[("cache", "record"), ("result", "hit")]
        ),
        5
    );
    assert_eq!(
        counter(
            &snap,
            "keygate_cache_total",
            &[("cache", "verdict"), ("result", "hit")]
        ),
        4
    );
    assert!(snap
        .iter()
        .any(|(k, _)| k.key().name() == "keygate_hash_seconds"));
    assert!(snap
        .iter()
        .any(|(k, _)| k.key().name() == "keygate_store_seconds"));

    let logs = capture.text();
    let spans: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("keygate.verify"))
        .collect();
    assert_eq!(spans.len(), 7, "one span per verification:\n{logs}");
    assert!(spans.iter().any(|l| l.contains(&format!("key_id=\"{id}\"")) || l.contains(&format!("key_id={id}"))), "{logs}");
    assert!(
        spans
            .iter()
            .any(|l| l.contains("outcome=\"invalid_key\"") || l.contains("outcome=invalid_key")),
        "{logs}"
    );
    assert!(
        spans
            .iter()
            .any(|l| l.contains("cache=\"hit\"") || l.contains("cache=hit")),
        "{logs}"
    );
    let secret = &token[token.find('.').unwrap() + 1..];
    assert!(!logs.contains(secret));
}

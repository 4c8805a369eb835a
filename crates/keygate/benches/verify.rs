//! Per-call costs of the verification path: parse, header extraction, cached verification
//! (without and with a per-key rate limit that is not hit),
//! rejections that must stay cheap (garbage, a cached forged secret, fresh forged secrets for a
//! throttled id), and a cold (argon2id, OWASP parameters) verification.
//!
//! `cargo bench -p keygate --bench verify`

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use keygate::{extract::extract_credential, token, KeyManager, MemoryStore, NewKey, Verifier};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let store = Arc::new(MemoryStore::new());
    let verifier = rt.block_on(async { Verifier::builder(store.clone()).build() });
    let manager = KeyManager::new(store.clone()).with_verifier(&verifier);
    let created = rt
        .block_on(
            manager.create(
                NewKey::new("bench", "acme")
                    .scopes(["entities:read"])
                    .unwrap(),
            ),
        )
        .unwrap();
    let token = created.key.expose_secret().to_owned();
    rt.block_on(verifier.verify(&token)).unwrap();

    c.bench_function("parse", |b| {
        b.iter(|| token::parse(std::hint::black_box(&token)).is_ok())
    });

    let bearer = format!("Bearer {token}");
    c.bench_function("extract_bearer", |b| {
        b.iter(|| extract_credential([], [std::hint::black_box(bearer.as_bytes())]).is_ok())
    });

    c.bench_function("verify_cached", |b| {
        b.to_async(&rt)
            .iter(|| async { verifier.verify(std::hint::black_box(&token)).await.is_ok() })
    });

    // The same cached verification for a key with a rate limit that is never hit (10^9 per
    // second): the difference is what enforcing a limit adds (one clock read, one CAS).
    let limited = rt
        .block_on(
            manager.create(
                NewKey::new("bench-limited", "acme")
                    .scopes(["entities:read"])
                    .unwrap()
                    .rate_limit("1000000000/1s".parse().unwrap()),
            ),
        )
        .unwrap();
    let limited = limited.key.expose_secret().to_owned();
    rt.block_on(verifier.verify(&limited)).unwrap();
    c.bench_function("verify_cached_rate_limit_not_hit", |b| {
        b.to_async(&rt).iter(|| async {
            verifier
                .verify(std::hint::black_box(&limited))
                .await
                .is_ok()
        })
    });
    // The synchronous fast path the layers take first, without the async harness.
    c.bench_function("verify_cached_sync", |b| {
        b.iter(|| {
            verifier
                .verify_cached(std::hint::black_box(&token))
                .is_some_and(|r| r.is_ok())
        })
    });
    c.bench_function("verify_cached_sync_rate_limit_not_hit", |b| {
        b.iter(|| {
            verifier
                .verify_cached(std::hint::black_box(&limited))
                .is_some_and(|r| r.is_ok())
        })
    });

    // The whole tower layer around a trivial service (principal into extensions, credential
    // headers marked sensitive), beside the same service without it: the difference is what
    // keygate adds to a request that carries a cached key.
    let request = || {
        http::Request::builder()
            .uri("/")
            .header("authorization", format!("Bearer {token}"))
            .header("user-agent", "criterion")
            .header("accept", "*/*")
            .body(())
            .unwrap()
    };
    let ok = tower::service_fn(|_req: http::Request<()>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(bytes::Bytes::new()))
    });
    let guarded = tower::ServiceBuilder::new()
        .layer(keygate::ApiKeyLayer::new(verifier.clone()))
        .service(ok);
    c.bench_function("layer_none_baseline", |b| {
        b.to_async(&rt).iter_batched(
            request,
            |req| {
                let svc = ok;
                async move { tower::ServiceExt::oneshot(svc, req).await.is_ok() }
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function("layer_cached", |b| {
        b.to_async(&rt).iter_batched(
            request,
            |req| {
                let svc = guarded.clone();
                async move {
                    let res = tower::ServiceExt::oneshot(svc, req).await.unwrap();
                    res.status().is_success()
                }
            },
            BatchSize::SmallInput,
        )
    });

    let mut typo = token.clone().into_bytes();
    let i = typo.len() - 10;
    typo[i] = if typo[i] == b'x' { b'y' } else { b'x' };
    let typo = String::from_utf8(typo).unwrap();
    c.bench_function("reject_bad_checksum", |b| {
        b.to_async(&rt)
            .iter(|| async { verifier.verify(std::hint::black_box(&typo)).await.is_err() })
    });

    let garbage = "x".repeat(200);
    c.bench_function("reject_garbage", |b| {
        b.to_async(&rt).iter(|| async {
            verifier
                .verify(std::hint::black_box(&garbage))
                .await
                .is_err()
        })
    });

    let forged = {
        let dot = token.find('.').unwrap();
        token::with_checksum(&format!(
            "{}.{}",
            &token[..dot],
            "Z".repeat(token::SECRET_LEN)
        ))
    };
    rt.block_on(verifier.verify(&forged)).unwrap_err();
    c.bench_function("reject_cached_forged_secret", |b| {
        b.to_async(&rt).iter(|| async {
            verifier
                .verify(std::hint::black_box(&forged))
                .await
                .is_err()
        })
    });

    // The forged-secret flood, per call: a different wrong secret for a known id every time.
    // After `max_failures` argon2 checks the id is throttled and each forgery is refused
    // without hashing (the warm-up absorbs the first checks; the window outlasts the run).
    let throttled = rt.block_on(async {
        Verifier::builder(store.clone())
            .failure_throttle(10, std::time::Duration::from_secs(3600))
            .build()
    });
    rt.block_on(throttled.verify(&token)).unwrap();
    let dot = token.find('.').unwrap();
    let forgeries: Vec<String> = (0..100_000u32)
        .map(|i| {
            let secret = format!("{i:0>width$}", width = token::SECRET_LEN);
            token::with_checksum(&format!("{}.{secret}", &token[..dot]))
        })
        .collect();
    let mut next = 0usize;
    c.bench_function("reject_throttled_forged_secret", |b| {
        b.to_async(&rt).iter(|| {
            next = (next + 1) % forgeries.len();
            let forged = &forgeries[next];
            let throttled = &throttled;
            async move {
                throttled
                    .verify(std::hint::black_box(forged))
                    .await
                    .is_err()
            }
        })
    });

    let mut cold = c.benchmark_group("cold");
    cold.sample_size(10);
    cold.bench_function("verify_cold_argon2id_owasp", |b| {
        b.to_async(&rt).iter_batched(
            || Verifier::builder(store.clone()).build(),
            |fresh| {
                let token = token.clone();
                async move { fresh.verify(&token).await.is_ok() }
            },
            BatchSize::PerIteration,
        )
    });
    cold.finish();
}

criterion_group!(verify, benches);
criterion_main!(verify);

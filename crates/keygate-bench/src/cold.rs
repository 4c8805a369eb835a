//! Cold start: N connections opened first, then N first requests with one new key sent at the
//! same moment. The server's hasher counts the argon2 checks they cost.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

use crate::http;

/// What the burst measured.
#[derive(Debug, Clone)]
pub(crate) struct Burst {
    pub(crate) ok: usize,
    pub(crate) other: usize,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    pub(crate) max: Duration,
}

/// Opens `n` connections, then sends every request at once; latency is from the release of
/// the barrier to the end of each response.
pub(crate) fn burst(addr: SocketAddr, token: &str, n: usize) -> Result<Burst> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut streams = Vec::with_capacity(n);
        for _ in 0..n {
            let s = TcpStream::connect(addr)
                .await
                .context("opening cold-start connections")?;
            s.set_nodelay(true)?;
            streams.push(s);
        }
        let req: Arc<[u8]> = http::request("/", Some(&format!("Bearer {token}")))
            .into_bytes()
            .into();
        let barrier = Arc::new(Barrier::new(n + 1));
        let mut tasks = Vec::with_capacity(n);
        for s in streams {
            let barrier = Arc::clone(&barrier);
            let req = Arc::clone(&req);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let t0 = Instant::now();
                let r =
                    tokio::time::timeout(Duration::from_secs(60), http::exchange(s, &req)).await;
                let status = match r {
                    Ok(Ok((status, _))) => status,
                    _ => 0,
                };
                (status, t0.elapsed())
            }));
        }
        barrier.wait().await;
        let mut lat = Vec::with_capacity(n);
        let (mut ok, mut other) = (0, 0);
        for t in tasks {
            let (status, d) = t.await?;
            if status == 200 {
                ok += 1;
            } else {
                other += 1;
            }
            lat.push(d);
        }
        lat.sort();
        let pick = |q: f64| lat[((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len()) - 1];
        Ok(Burst {
            ok,
            other,
            p50: pick(0.50),
            p99: pick(0.99),
            max: lat[lat.len() - 1],
        })
    })
}

//! The clients: keep-alive HTTP/1.1 connections sending a mix of credentials, each answer
//! judged by the oracle.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::oracle::{Answer, Exchange, Policy, Presented, Tally};
use crate::pool::{self, Pool, PooledKey};
use crate::rng::Rng;
use crate::server::WHOAMI;

/// How a credential is sent.
#[derive(Debug, Clone)]
pub enum Credential {
    /// `X-Api-Key: <token>`.
    ApiKey(String),
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// No credential header.
    Nothing,
}

/// One keep-alive connection to the server.
#[derive(Debug)]
pub struct Connection {
    sender: SendRequest<Empty<Bytes>>,
}

impl Connection {
    /// Connects to `addr`.
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Connection { sender })
    }

    /// Sends one request to the protected route and reads the answer.
    pub async fn ask(&mut self, credential: &Credential) -> anyhow::Result<Answer> {
        self.sender.ready().await?;
        let mut req = Request::get(WHOAMI).header(http::header::HOST, "127.0.0.1");
        match credential {
            Credential::ApiKey(t) => req = req.header("x-api-key", t.as_str()),
            Credential::Bearer(t) => req = req.header("authorization", format!("Bearer {t}")),
            Credential::Nothing => {}
        }
        let res = self.sender.send_request(req.body(Empty::new())?).await?;
        let status = res.status().as_u16();
        let body = res.into_body().collect().await?.to_bytes();
        if status == 200 {
            return Ok(Answer::Accepted {
                principal_id: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        let reason = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["details"]["reason"].as_str().map(str::to_owned))
            .unwrap_or_default();
        Ok(Answer::Refused { status, reason })
    }
}

/// Wall-clock milliseconds, the clock the verifier reads.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What a client chose to present.
enum Pick {
    Genuine(Arc<PooledKey>),
    Forged(String),
    UnknownId,
    Malformed,
    Missing,
}

fn choose(pool: &Pool, rng: &mut Rng) -> (Pick, Option<String>) {
    let roll = rng.below(100);
    let key = pool.pick(rng);
    match (roll, key) {
        (0..60, Some(k)) => {
            let t = k.token.clone();
            (Pick::Genuine(k), Some(t))
        }
        (60..80, Some(k)) => {
            // Mostly the key's two fixed forgeries (rejected-verdict cache hits), sometimes a
            // fresh one (argon2 until the id is throttled).
            let t = if rng.chance(70) {
                k.forged[rng.below(2)].clone()
            } else {
                pool::forge(&k.token, rng)
            };
            (Pick::Forged(k.id()), Some(t))
        }
        (80..88, _) => (Pick::UnknownId, Some(pool::unknown_id(rng))),
        (88..96, k) => (
            Pick::Malformed,
            Some(pool::malformed(k.as_deref().map(|k| k.token.as_str()), rng)),
        ),
        _ => (Pick::Missing, None),
    }
}

/// Settings shared by every client.
#[derive(Debug, Clone, Copy)]
pub struct ClientSettings {
    /// The server.
    pub addr: SocketAddr,
    /// When to stop.
    pub deadline: Instant,
    /// Pause between two requests of this client (`None`: as fast as answers come).
    pub pace: Option<Duration>,
    /// The oracle's tolerances.
    pub policy: Policy,
    /// Shared count of answered requests, for progress lines.
    pub answered: &'static AtomicU64,
}

/// Runs one client until the deadline; returns its counts.
pub async fn run(pool: Arc<Pool>, settings: ClientSettings) -> Tally {
    let mut rng = Rng::from_os();
    let mut tally = Tally::default();
    let mut conn: Option<Connection> = None;
    let mut tick = settings.pace.map(|p| {
        let mut t = tokio::time::interval(p);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    while Instant::now() < settings.deadline {
        if let Some(t) = tick.as_mut() {
            t.tick().await;
        }
        let (pick, token) = choose(&pool, &mut rng);
        let credential = match token {
            None => Credential::Nothing,
            Some(t) if rng.chance(50) => Credential::ApiKey(t),
            Some(t) => Credential::Bearer(t),
        };
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Connection::open(settings.addr).await {
                Ok(c) => conn.insert(c),
                Err(_) => {
                    tally.transport_errors += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let sent_ms = now_ms();
        let answer = match c.ask(&credential).await {
            Ok(a) => a,
            Err(_) => {
                tally.transport_errors += 1;
                conn = None;
                continue;
            }
        };
        let received_ms = now_ms();
        settings.answered.fetch_add(1, Ordering::Relaxed);
        let presented = match pick {
            Pick::Genuine(k) => Presented::Genuine(k.facts()),
            Pick::Forged(id) => Presented::Forged { id },
            Pick::UnknownId => Presented::UnknownId,
            Pick::Malformed => Presented::Malformed,
            Pick::Missing => Presented::Missing,
        };
        tally.record(
            &Exchange {
                presented,
                sent_ms,
                received_ms,
                answer,
            },
            &settings.policy,
        );
    }
    tally
}

//! Issue 13, finding 7: the PostgreSQL notification listener must not go blind. Its connection
//! is cut from the server side, and then frozen (a half-open connection, as after a failover:
//! open, silent, nothing closes it) through a TCP proxy on 127.0.0.1 that this test runs; in
//! both cases a revocation made afterwards, or while it was blind, must reach a verifier whose
//! cache never expires by itself (a manual clock), within a bounded wait. Each test uses a
//! schema of its own on `KEYGATE_TEST_POSTGRES_URL` and is SKIPPED, visibly, when that is unset.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keygate::{AuthError, KeyManager, ManualClock, NewKey, Verifier};
use keygate_sqlx::StoreOptions;
use sqlx::postgres::PgConnectOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use support::{t, verifier, Pg};

/// Short heartbeat settings, so a silent connection is noticed quickly.
fn quick_heartbeat() -> StoreOptions {
    StoreOptions {
        listener_heartbeat: Duration::from_millis(200),
        listener_heartbeat_timeout: Duration::from_millis(500),
        ..StoreOptions::default()
    }
}

/// The longest any test here waits for something to happen.
const PATIENCE: Duration = Duration::from_secs(20);

/// The backends of this test that are listening for invalidations: (pid, client port).
async fn listeners(pg: &Pg) -> Vec<(i32, Option<i32>)> {
    sqlx::query_as(
        "SELECT pid, client_port FROM pg_stat_activity \
         WHERE application_name = $1 AND query LIKE 'LISTEN%'",
    )
    .bind(&pg.schema)
    .fetch_all(&pg.admin)
    .await
    .unwrap()
}

/// Waits (bounded) until exactly one backend of this test listens, other than `not`.
async fn one_listener_other_than(pg: &Pg, not: Option<i32>) -> (i32, Option<i32>) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let found: Vec<_> = listeners(pg)
            .await
            .into_iter()
            .filter(|(pid, _)| Some(*pid) != not)
            .collect();
        if let [one] = found[..] {
            return one;
        }
        assert!(
            Instant::now() < deadline,
            "no single new listener within {PATIENCE:?}: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `verifier` (bounded by [`PATIENCE`]) until `token` is refused as revoked.
async fn until_revoked(verifier: &Verifier, token: &str, what: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match verifier.verify(token).await {
            Err(AuthError::RevokedKey) => return,
            Err(e) => panic!("{what}: unexpected {e:?}"),
            Ok(_) => {}
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the revoked key is still served from the cache after {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One key, created through `manager` and cached in `verifier`: its id and token.
async fn cached_key(manager: &KeyManager, verifier: &Verifier) -> (String, String) {
    let created = manager
        .create(NewKey::new("k", "acme").scopes(["entities:read"]).unwrap())
        .await
        .unwrap();
    let token = created.key.expose_secret().to_owned();
    verifier.verify(&token).await.unwrap();
    (created.record.id, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_cut_by_the_server_reconnects_and_a_later_revoke_reaches_the_verifier() {
    let Some(pg) = Pg::fixture(
        "pg_listener::a_listener_cut_by_the_server_reconnects_and_a_later_revoke_reaches_the_verifier",
    )
    .await
    else {
        return;
    };
    // B listens; A is where the operator acts.
    let b = Arc::new(pg.store(quick_heartbeat()).await);
    let a = Arc::new(pg.store(quick_heartbeat()).await);
    let clock = ManualClock::new(t(0)); // B's cache never expires by itself
    let verifier_b = verifier(b, &clock);
    let (old, _) = one_listener_other_than(&pg, None).await;
    let manager = KeyManager::new(a).with_hasher(support::cheap_argon2());
    let (id, token) = cached_key(&manager, &verifier_b).await;

    let cut: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(old)
        .fetch_one(&pg.admin)
        .await
        .unwrap();
    assert!(cut);
    manager.revoke(&id).await.unwrap();
    until_revoked(&verifier_b, &token, "after the server cut the listener").await;
    one_listener_other_than(&pg, Some(old)).await;
    pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_listener_is_noticed_by_its_heartbeat_and_the_cache_dropped() {
    let Some(pg) = Pg::fixture(
        "pg_listener::a_half_open_listener_is_noticed_by_its_heartbeat_and_the_cache_dropped",
    )
    .await
    else {
        return;
    };
    let proxy = Proxy::start(&pg.url).await;
    // B (the verifier's node) reaches the database through the proxy; A directly.
    let b = Arc::new(
        keygate_sqlx::PostgresStore::connect_with(&proxy.url(&pg.url), quick_heartbeat())
            .await
            .unwrap(),
    );
    let a = Arc::new(pg.store(quick_heartbeat()).await);
    let clock = ManualClock::new(t(0)); // B's cache never expires by itself
    let verifier_b = verifier(b, &clock);
    let (old, port) = one_listener_other_than(&pg, None).await;
    let port = u16::try_from(port.expect("a TCP client")).unwrap();
    let manager = KeyManager::new(a).with_hasher(support::cheap_argon2());
    let (id, token) = cached_key(&manager, &verifier_b).await;

    // The listener's connection goes silent: open at both ends, nothing passes.
    proxy.freeze(port);
    manager.revoke(&id).await.unwrap(); // its notification never reaches B
    until_revoked(&verifier_b, &token, "after the listener went blind").await;
    // It did reconnect (through the proxy, on a connection of its own).
    let (new, _) = one_listener_other_than(&pg, Some(old)).await;
    assert_ne!(new, old);

    let _ = sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(old)
        .execute(&pg.admin)
        .await;
    drop(proxy);
    pg.cleanup().await;
}

/// A TCP proxy on 127.0.0.1 to the database of a URL, whose connections can be frozen one by
/// one: a frozen connection stays open at both ends and forwards nothing more either way.
/// Everything it runs stops when it is dropped.
struct Proxy {
    addr: SocketAddr,
    /// Freeze switch of each connection, by the port of its upstream end (the `client_port`
    /// the database sees).
    switches: Arc<Mutex<HashMap<u16, watch::Sender<bool>>>>,
    tasks: JoinSet<()>,
}

impl Proxy {
    async fn start(url: &str) -> Proxy {
        let target = PgConnectOptions::from_str(url).unwrap();
        let upstream = format!("{}:{}", target.get_host(), target.get_port());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let switches: Arc<Mutex<HashMap<u16, watch::Sender<bool>>>> = Arc::default();
        let mut tasks = JoinSet::new();
        let registry = switches.clone();
        tasks.spawn(async move {
            let mut pumps = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let port = server.local_addr().unwrap().port();
                let (switch, frozen) = watch::channel(false);
                registry.lock().unwrap().insert(port, switch);
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                pumps.spawn(pump(client_read, server_write, frozen.clone()));
                pumps.spawn(pump(server_read, client_write, frozen));
            }
        });
        Proxy {
            addr,
            switches,
            tasks,
        }
    }

    /// `url` with its host and port replaced by the proxy's.
    fn url(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (userinfo, rest) = rest.rsplit_once('@').unwrap();
        let path = &rest[rest.find('/').unwrap_or(rest.len())..];
        format!("{scheme}://{userinfo}@{}{path}", self.addr)
    }

    /// Stops forwarding on the connection whose upstream end has local port `port`.
    fn freeze(&self, port: u16) {
        let switches = self.switches.lock().unwrap();
        let switch = switches
            .get(&port)
            .unwrap_or_else(|| panic!("no proxied connection from port {port}"));
        switch.send_replace(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// Copies `from` to `to`, and an end's closing, until either end closes. Once frozen it
/// passes nothing more, not even a close (what was read is held), and keeps both ends open.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: watch::Receiver<bool>,
) {
    let mut buf = vec![0; 16 * 1024];
    loop {
        let read = from.read(&mut buf).await;
        if *frozen.borrow() {
            // Frozen for good: hold the connection open and silent until the proxy stops.
            std::future::pending::<()>().await;
        }
        let n = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

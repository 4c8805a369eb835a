//! PostgreSQL connection faults, through a TCP proxy on 127.0.0.1 that these tests run.
//!
//! Issue 13, finding 7: the notification listener must not go blind. Its connection is cut
//! from the server side, and then frozen (a half-open connection, as after a failover: open,
//! silent, nothing closes it); in both cases a revocation made afterwards, or while it was
//! blind, must reach a verifier whose cache never expires by itself (a manual clock), within a
//! bounded wait. And a write cancelled while its `BEGIN` awaits the server must leave no
//! transaction open. Each test uses a schema of its own on `KEYGATE_TEST_POSTGRES_URL` and is
//! SKIPPED, visibly, when that is unset.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keygate::{AuditAction, AuthError, KeyManager, KeyStore, ManualClock, NewKey, Verifier};
use keygate_sqlx::{PostgresStore, StoreOptions};
use sqlx::postgres::PgConnectOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use support::{record, t, verifier, Pg};

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

/// Review of the sqlx 0.9 port (a hole sqlx 0.8.6 had too): a lifecycle write cancelled while
/// its `BEGIN` waits for the server's answer (a deadline, a dropped request) must not leave
/// its pooled connection inside a transaction nobody owns ("idle in transaction": other
/// callers' statements would run inside it). The proxy holds the server's answer to `BEGIN`
/// back while the write is dropped, then lets it through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_cancelled_while_its_begin_awaits_the_server_leaves_no_transaction_open() {
    use std::future::Future;
    use std::task::{Context, Waker};

    const TEST: &str =
        "pg_listener::a_write_cancelled_while_its_begin_awaits_the_server_leaves_no_transaction_open";
    let Some(pg) = Pg::fixture(TEST).await else {
        return;
    };
    let proxy = Proxy::start(&pg.url).await;
    let options = StoreOptions {
        notifications: false,
        timeout: Duration::from_secs(5),
        ..StoreOptions::default()
    };
    // In clear text, so the proxy sees the `BEGIN`.
    let url = proxy.url(&pg.url);
    let sep = if url.contains('?') { '&' } else { '?' };
    let store = PostgresStore::connect_with(&format!("{url}{sep}sslmode=disable"), options)
        .await
        .unwrap();
    store.insert(&record("k1", "acme", 0), &[]).await.unwrap();

    proxy.hold_on_begin();
    {
        let audit = support::audit("k1", AuditAction::Revoked);
        let mut revoke = std::pin::pin!(store.revoke("k1", t(1), &audit));
        let mut cx = Context::from_waker(Waker::noop());
        let deadline = Instant::now() + PATIENCE;
        while !proxy.holding() {
            let polled = revoke.as_mut().poll(&mut cx);
            assert!(
                polled.is_pending(),
                "the revoke finished though the server's answers were held back: {polled:?}"
            );
            assert!(Instant::now() < deadline, "the revoke never sent its BEGIN");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Dropped here: cancelled while the answer to its BEGIN is on its way.
    }
    proxy.release();

    // Every connection of the store is out of any transaction, soon.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = $1 AND state LIKE 'idle in transaction%'",
        )
        .bind(&pg.schema)
        .fetch_one(&pg.admin)
        .await
        .unwrap();
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} connection(s) of the store left idle in transaction"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The cancelled revoke did nothing, and a revoke made now commits for everyone.
    assert!(store.get("k1").await.unwrap().unwrap().revoked_at.is_none());
    let audit = support::audit("k1", AuditAction::Revoked);
    assert!(store.revoke("k1", t(2), &audit).await.unwrap());
    let revoked: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT revoked_at FROM {}.keygate_keys WHERE id = 'k1'",
            pg.schema
        )))
        .fetch_one(&pg.admin)
        .await
        .unwrap();
    assert!(revoked.is_some());
    drop(store);
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
    hold: Arc<Hold>,
    tasks: JoinSet<()>,
}

/// Holding back the server's answers once a client sent `BEGIN` (see [`Proxy::hold_on_begin`]).
struct Hold {
    armed: AtomicBool,
    /// `true` while the server's answers are held back.
    holding: watch::Sender<bool>,
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
        let hold = Arc::new(Hold {
            armed: AtomicBool::new(false),
            holding: watch::Sender::new(false),
        });
        let holds = hold.clone();
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
                pumps.spawn(pump(
                    client_read,
                    server_write,
                    frozen.clone(),
                    Direction::ToServer(holds.clone()),
                ));
                pumps.spawn(pump(
                    server_read,
                    client_write,
                    frozen,
                    Direction::ToClient(holds.clone()),
                ));
            }
        });
        Proxy {
            addr,
            switches,
            hold,
            tasks,
        }
    }

    /// From now on, the first `BEGIN` a client sends makes the proxy hold back every answer
    /// of the server (on all connections) until [`Proxy::release`].
    fn hold_on_begin(&self) {
        self.hold.armed.store(true, Ordering::SeqCst);
    }

    /// Whether a `BEGIN` went to the server and its answer is held back.
    fn holding(&self) -> bool {
        *self.hold.holding.borrow()
    }

    /// Forwards the held answers, and holds nothing more.
    fn release(&self) {
        self.hold.armed.store(false, Ordering::SeqCst);
        self.hold.holding.send_replace(false);
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

/// Which way a pump copies, with the proxy's [`Hold`].
enum Direction {
    ToServer(Arc<Hold>),
    ToClient(Arc<Hold>),
}

/// Copies `from` to `to`, and an end's closing, until either end closes. Once frozen it
/// passes nothing more, not even a close (what was read is held), and keeps both ends open.
/// Toward the server it arms the hold when a client sends `BEGIN`; toward the client it waits
/// while the hold is on.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: watch::Receiver<bool>,
    direction: Direction,
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
        match &direction {
            Direction::ToServer(hold) => {
                if hold.armed.load(Ordering::SeqCst) && buf[..n].windows(5).any(|w| w == b"BEGIN") {
                    hold.holding.send_replace(true);
                }
            }
            Direction::ToClient(hold) => {
                let mut holding = hold.holding.subscribe();
                while *holding.borrow_and_update() {
                    if holding.changed().await.is_err() {
                        break;
                    }
                }
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

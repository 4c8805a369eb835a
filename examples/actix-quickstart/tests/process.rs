//! Issue 13, finding 13: the actix quickstart binary itself, as users run it — the real
//! process on a temp SQLite file and an ephemeral 127.0.0.1 port (`--addr 127.0.0.1:0`; it
//! prints the port it got), its printed demo key, an authenticated and an unauthenticated
//! request, and a graceful stop. Real processes, so real time: every wait is a bounded poll,
//! nothing asserts how long anything took, and the process is killed on drop whatever
//! happens.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use keygate_conformance::wire;
use keygate_conformance::{TestRequest, TestResponse};
use serde_json::Value;

/// Longest wait for the process to say it listens (a cold start opens and migrates SQLite
/// and hashes two demo keys with the production argon2 parameters).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for the server to answer once it said it listens.
const SERVE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for one response.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A running actix quickstart; killed on drop if still running.
struct Server {
    child: Child,
    addr: String,
    lines: Receiver<String>,
    /// What it printed up to and including its "listening on" line.
    startup: Vec<String>,
}

impl Server {
    /// Starts the binary in `dir` on `sqlite://<dir>/keygate.db`, on an ephemeral port of
    /// 127.0.0.1, and waits (bounded) until it says where it listens and answers there.
    fn start(dir: &Path) -> Server {
        let url = format!("sqlite://{}", dir.join("keygate.db").display());
        let mut child = Command::new(env!("CARGO_BIN_EXE_actix-quickstart"))
            .args(["--addr", "127.0.0.1:0", "--database-url", &url])
            .env_remove("KEYGATE_DATABASE_URL")
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the actix quickstart binary starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut server = Server {
            child,
            addr: String::new(),
            lines,
            startup: Vec::new(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while server.addr.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = server.lines.recv_timeout(left) else {
                panic!(
                    "the actix quickstart did not say where it listens within {START_TIMEOUT:?} (exit: {:?}); it printed:\n{}",
                    server.child.try_wait(),
                    server.startup.join("\n")
                );
            };
            if let Some(addr) = listening_addr(&line) {
                server.addr = addr;
            }
            server.startup.push(line);
        }
        server.wait_until_serving();
        server
    }

    /// Polls `GET /health` until it answers 200, for at most [`SERVE_TIMEOUT`].
    fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + SERVE_TIMEOUT;
        loop {
            match wire::send(&self.addr, &TestRequest::get("/health"), REQUEST_TIMEOUT) {
                Ok(res) if res.status == 200 => return,
                last => {
                    assert!(
                        Instant::now() < deadline,
                        "{} did not serve GET /health within {SERVE_TIMEOUT:?} (exit: {:?}); last: {last:?}",
                        self.addr,
                        self.child.try_wait()
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    /// The demo key printed on first start (a line holding only the key).
    fn printed_key(&self) -> Option<String> {
        self.startup
            .iter()
            .map(|l| l.trim())
            .find(|l| l.starts_with("mk_") && !l.contains(' '))
            .map(str::to_owned)
    }

    fn send(&self, req: TestRequest) -> TestResponse {
        wire::send(&self.addr, &req, REQUEST_TIMEOUT).expect("the actix quickstart answers")
    }

    /// SIGTERM, then a bounded wait for the exit; returns the status and the rest of stdout.
    fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "no exit within {STOP_TIMEOUT:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        // The reader thread ends with the process's stdout: collect what it still holds,
        // for a bounded time.
        let mut rest = Vec::new();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            rest.push(line);
        }
        (status, rest)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The address of the binary's "… listening on http://ADDR — …" line.
fn listening_addr(line: &str) -> Option<String> {
    let rest = line.split("listening on http://").nth(1)?;
    let addr = rest.split_whitespace().next()?;
    Some(addr.to_owned())
}

fn json(res: &TestResponse) -> Value {
    res.json()
        .unwrap_or_else(|| panic!("not JSON: {}", String::from_utf8_lossy(&res.body)))
}

#[test]
fn the_actix_quickstart_binary_serves_its_printed_key_and_refuses_requests_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    assert!(
        dir.path().join("keygate.db").exists(),
        "the SQLite file was not created"
    );
    assert!(
        server.addr.starts_with("127.0.0.1:") && !server.addr.ends_with(":0"),
        "listening on {}",
        server.addr
    );
    let key = server
        .printed_key()
        .unwrap_or_else(|| panic!("no demo key printed:\n{}", server.startup.join("\n")));

    // Authenticated: the principal of the printed key, and a write and a read with it.
    let me = server.send(TestRequest::get("/api/v1/me").header("x-api-key", &key));
    assert_eq!(me.status, 200, "{}", String::from_utf8_lossy(&me.body));
    let me = json(&me);
    assert_eq!(me["org"], "demo");
    for s in demo_api::DEMO_SCOPES {
        assert!(
            me["scopes"]
                .as_array()
                .is_some_and(|a| a.contains(&Value::from(s))),
            "{s} missing: {me}"
        );
    }
    let created = server.send(
        TestRequest::post("/api/v1/boards")
            .header("authorization", format!("Bearer {key}"))
            .json(r#"{"name":"from the process test"}"#),
    );
    assert_eq!(created.status, 201);
    assert_eq!(json(&created)["org"], "demo");
    let listed = server.send(TestRequest::get("/api/v1/boards").header("x-api-key", &key));
    assert_eq!(listed.status, 200);
    assert_eq!(json(&listed)["items"][0]["name"], "from the process test");

    // Unauthenticated: 401 in the envelope, with the challenge; an unknown route is 404
    // without a key (routing before authentication).
    let refused = server.send(TestRequest::get("/api/v1/me").header("x-request-id", "proc-1"));
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.header("www-authenticate").as_deref(),
        Some("Bearer realm=\"api\"")
    );
    assert_eq!(refused.header("x-request-id").as_deref(), Some("proc-1"));
    let refused = json(&refused);
    assert_eq!(refused["error"]["details"]["reason"], "missing_credentials");
    assert_eq!(refused["meta"]["requestId"], "proc-1");
    let wrong = server.send(TestRequest::get("/api/v1/me").header("x-api-key", "not-a-key"));
    assert_eq!(wrong.status, 401);
    assert_eq!(json(&wrong)["error"]["details"]["reason"], "malformed_key");
    let unknown = server.send(TestRequest::get("/api/v1/nothing-here"));
    assert_eq!(unknown.status, 404);
    assert_eq!(json(&unknown)["error"]["details"]["reason"], "not_found");

    // A graceful stop writes the key's last use behind.
    let (status, rest) = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        rest.iter()
            .any(|l| l.contains("flushed last-used times of 1 key(s)")),
        "after SIGTERM it printed: {rest:#?}"
    );
}

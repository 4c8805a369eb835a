//! The exit codes the CLI documents (`src/main.rs`: every failure exits non-zero with one line
//! on stderr; `2` for a usage error, `1` otherwise), each checked with the real binary:
//!
//! | exit | when |
//! |---|---|
//! | 0 | success (also `--help` and `--version`) |
//! | 2 | usage: a missing, unknown or invalid argument, a store URL no store handles; checked before the store is opened |
//! | 1 | anything else: an unknown key id, a key store that cannot be opened |
//!
//! A failure prints exactly one `error: …` line on stderr and nothing on stdout. Every run is
//! bounded (killed after 60 s) and talks only to 127.0.0.1.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const UNKNOWN_ID: &str = "0123456789abcdef";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `keygate args…` in `dir`, with no store URL in the environment, bounded.
fn keygate(dir: &Path, args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keygate"))
        .args(args)
        .current_dir(dir)
        .env_remove("KEYGATE_DATABASE_URL")
        .env("USER", "exit-code-tester")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the keygate binary starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("keygate {args:?} did not exit within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Run {
        code: status.code().expect("exited, not killed by a signal"),
        stdout,
        stderr,
    }
}

/// `--database-url sqlite://<dir>/keys.db` followed by `args`.
fn on_db<'a>(url: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["--database-url", url];
    all.extend_from_slice(args);
    all
}

/// A failure: exit `code`, nothing on stdout, exactly one `error: …` line on stderr (returned).
fn failed(run: &Run, code: i32, what: &str) -> String {
    assert_eq!(
        run.code, code,
        "{what}: exit code (stderr: {:?})",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{what}: stdout {:?}", run.stdout);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: stderr {:?}", run.stderr);
    assert!(
        lines[0].starts_with("error: ") && lines[0].len() > "error: ".len() + 10,
        "{what}: {:?}",
        lines[0]
    );
    lines[0].to_owned()
}

fn created_id(dir: &Path, url: &str) -> String {
    let run = keygate(
        dir,
        &on_db(
            url,
            &[
                "create",
                "--name",
                "svc",
                "--org",
                "acme",
                "--scope",
                "entities:read",
                "--json",
            ],
        ),
    );
    assert_eq!(run.code, 0, "create: {}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

#[test]
fn success_exits_0_with_nothing_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keys.db").display());
    let id = created_id(dir.path(), &url);
    for args in [
        vec!["list", "--json"],
        vec!["show", &id],
        vec!["update", &id, "--name", "renamed"],
        vec!["usage", &id, "--days", "7"],
        vec!["rotate", &id, "--grace", "1h", "--json"],
        vec!["revoke", &id],
    ] {
        let run = keygate(dir.path(), &on_db(&url, &args));
        assert_eq!(run.code, 0, "keygate {args:?}: {}", run.stderr);
        assert!(run.stderr.is_empty(), "keygate {args:?}: {:?}", run.stderr);
        assert!(!run.stdout.is_empty(), "keygate {args:?} printed nothing");
    }
    for flag in ["--help", "--version"] {
        let run = keygate(dir.path(), &[flag]);
        assert_eq!(run.code, 0, "{flag}: {}", run.stderr);
        assert!(run.stderr.is_empty() && !run.stdout.is_empty(), "{flag}");
    }
}

#[test]
fn a_usage_error_exits_2_with_one_line_before_any_store_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keys.db");
    let url = format!("sqlite://{}", db.display());
    let create = |extra: &[&'static str]| {
        let mut args = vec![
            "create",
            "--name",
            "svc",
            "--org",
            "acme",
            "--scope",
            "entities:read",
        ];
        args.extend_from_slice(extra);
        args
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![], "requires a subcommand"),
        (vec!["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        (
            vec!["create", "--org", "acme", "--scope", "entities:read"],
            "--name",
        ),
        (vec!["show", UNKNOWN_ID, "--bogus"], "'--bogus'"),
        (vec!["list", "--status", "sleeping"], "'sleeping'"),
        (vec!["usage", UNKNOWN_ID, "--days", "0"], "--days"),
        (vec!["update", UNKNOWN_ID], "nothing to update"),
        (
            vec![
                "create",
                "--name",
                "svc",
                "--org",
                "acme",
                "--scope",
                "Not A Scope",
            ],
            "invalid scope",
        ),
        (create(&["--expires-in", "1x"]), "--expires-in"),
        (create(&["--rate-limit", "0/1m"]), "--rate-limit"),
        (vec!["rotate", UNKNOWN_ID, "--grace", "forever"], "--grace"),
    ];
    // `keygate` alone: a one-line usage error naming what is missing, not the help text.
    let line = failed(&keygate(dir.path(), &[]), 2, "keygate");
    assert!(
        line.contains("requires a subcommand") && line.contains("create"),
        "{line:?}"
    );
    assert!(line.contains("keygate --help"), "{line:?}");
    for (args, says) in cases {
        let run = keygate(dir.path(), &on_db(&url, &args));
        let line = failed(&run, 2, &format!("keygate {args:?}"));
        assert!(line.contains(says), "keygate {args:?}: {line:?}");
        assert!(
            !db.exists(),
            "keygate {args:?} opened (created) the store before refusing its input"
        );
    }
}

#[test]
fn an_unknown_id_exits_1_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keys.db").display());
    let id = created_id(dir.path(), &url);
    for args in [
        vec!["show", UNKNOWN_ID],
        vec!["update", UNKNOWN_ID, "--name", "x"],
        vec!["revoke", UNKNOWN_ID],
        vec!["delete", UNKNOWN_ID],
        vec!["rotate", UNKNOWN_ID],
        vec!["usage", UNKNOWN_ID],
    ] {
        let run = keygate(dir.path(), &on_db(&url, &args));
        let line = failed(&run, 1, &format!("keygate {args:?}"));
        assert_eq!(line, format!("error: no key with id {UNKNOWN_ID}"));
    }
    // The key that exists was not touched.
    let run = keygate(dir.path(), &on_db(&url, &["list", "--json"]));
    assert_eq!(run.code, 0);
    let listed: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["status"], "active");
}

#[test]
fn an_unavailable_store_exits_1_with_one_line_and_no_password() {
    let dir = tempfile::tempdir().unwrap();
    // A port that was just free on 127.0.0.1: nothing listens there.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let postgres = format!("postgres://keygate:hunter2@127.0.0.1:{closed}/keygate");
    let unopenable = "sqlite:///proc/keygate-exit-codes/keys.db".to_owned();
    let a_directory = format!("sqlite://{}", dir.path().display());
    for url in [&postgres, &unopenable, &a_directory] {
        for args in [vec!["list"], vec!["show", UNKNOWN_ID]] {
            let run = keygate(dir.path(), &on_db(url, &args));
            let what = format!("keygate --database-url {url} {args:?}");
            let line = failed(&run, 1, &what);
            assert!(
                line.contains("cannot open the key store"),
                "{what}: {line:?}"
            );
            assert!(!line.contains("hunter2"), "{what}: the password is shown");
        }
    }
}

#[test]
fn a_store_url_of_an_unsupported_scheme_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for url in ["mysql://keygate:hunter2@127.0.0.1/keys", "keys.db"] {
        for args in [vec!["list"], vec!["show", UNKNOWN_ID]] {
            let run = keygate(dir.path(), &on_db(url, &args));
            let what = format!("keygate --database-url {url} {args:?}");
            let line = failed(&run, 2, &what);
            assert!(
                line.contains("unsupported database URL scheme") && line.contains("sqlite://PATH"),
                "{what}: {line:?}"
            );
            assert!(!line.contains("hunter2"), "{what}: the password is shown");
        }
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "a refused store URL wrote nothing"
    );
}

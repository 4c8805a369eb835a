//! The `keygate` binary driven as a process: every subcommand, the `--json` shapes, the
//! database URL chain, and every error path (non-zero exit, one line on stderr, nothing written).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use chrono::{DateTime, Duration, DurationRound, NaiveDate, Utc};
use serde_json::Value;
use unicode_width::UnicodeWidthStr;

struct Db {
    _dir: tempfile::TempDir,
    path: PathBuf,
    url: String,
}

fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let url = format!("sqlite://{}", path.display());
    Db {
        _dir: dir,
        path,
        url,
    }
}

/// `keygate --database-url <db> …` as user `ops-tester`, with no URL in the environment.
fn keygate(db: &Db) -> Command {
    let mut cmd = Command::cargo_bin("keygate").unwrap();
    cmd.env_remove("KEYGATE_DATABASE_URL")
        .env("USER", "ops-tester")
        .arg("--database-url")
        .arg(&db.url);
    cmd
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(cmd: &mut Command) -> Value {
    serde_json::from_str(&run_ok(cmd)).unwrap()
}

fn create(db: &Db, name: &str, org: &str) -> Value {
    json(keygate(db).args([
        "create",
        "--name",
        name,
        "--org",
        org,
        "--scope",
        "entities:read",
        "--json",
    ]))
}

/// Runs a command that must fail: non-zero exit, exactly one `error: …` line, no stdout.
fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "succeeded unexpectedly");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr: {stderr:?}");
    assert!(lines[0].starts_with("error: "), "{stderr:?}");
    assert!(
        out.stdout.is_empty(),
        "stdout: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    lines[0].to_owned()
}

/// Rows in the key and audit tables (to prove a failed command wrote nothing).
fn rows(path: &Path) -> (i64, i64) {
    let url = format!("sqlite://{}", path.display());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            let keys = sqlx::query_scalar("SELECT count(*) FROM keygate_keys")
                .fetch_one(&pool)
                .await
                .unwrap();
            let audit = sqlx::query_scalar("SELECT count(*) FROM keygate_audit")
                .fetch_one(&pool)
                .await
                .unwrap();
            (keys, audit)
        })
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

fn close_to(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    (a - b).num_seconds().abs() < 120
}

#[test]
fn create_prints_the_key_once_with_a_store_it_now_line() {
    let db = db();
    let out = run_ok(keygate(&db).args([
        "create",
        "--name",
        "billing",
        "--org",
        "acme",
        "--scope",
        "entities:read",
    ]));
    let token = out
        .split_whitespace()
        .find(|w| w.starts_with("mk_live_"))
        .expect("the key is printed");
    assert_eq!(out.matches(token).count(), 1, "{out}");
    assert!(out.contains("Store this key now"), "{out}");
    assert!(db.path.exists());
}

#[test]
fn create_json_has_the_contract_fields() {
    let db = db();
    let v = json(keygate(&db).args([
        "create",
        "--name",
        "billing",
        "--org",
        "acme",
        "--team",
        "payments",
        "--owner",
        "ana",
        "--scope",
        "entities:read",
        "entities:write",
        "--scope",
        "boards:read",
        "--expires-in",
        "90d",
        "--prefix",
        "mk_test",
        "--json",
    ]));
    let id = v["id"].as_str().unwrap();
    let key = v["key"].as_str().unwrap();
    assert!(key.starts_with(&format!("mk_test_{id}.")), "{key}");
    assert_eq!(v["name"], "billing");
    assert_eq!(v["org"], "acme");
    assert_eq!(v["team"], "payments");
    assert_eq!(v["owner"], "ana");
    assert_eq!(
        v["scopes"],
        serde_json::json!(["boards:read", "entities:read", "entities:write"])
    );
    assert!(close_to(
        time(&v["expires_at"]),
        Utc::now() + Duration::days(90)
    ));
}

#[test]
fn create_without_expiry_gives_null_and_with_expires_at_that_time() {
    let db = db();
    assert_eq!(create(&db, "forever", "acme")["expires_at"], Value::Null);
    let v = json(keygate(&db).args([
        "create",
        "--name",
        "dated",
        "--org",
        "acme",
        "--scope",
        "entities:read",
        "--expires-at",
        "2030-01-01T00:00:00+02:00",
        "--json",
    ]));
    assert_eq!(v["expires_at"], "2029-12-31T22:00:00Z");
}

#[test]
fn list_json_gives_status_scopes_and_times_filtered_by_org() {
    let db = db();
    let a = create(&db, "a", "acme");
    let b = create(&db, "b", "acme");
    create(&db, "c", "globex");
    run_ok(keygate(&db).args(["revoke", a["id"].as_str().unwrap()]));

    let all = json(keygate(&db).args(["list", "--json"]));
    assert_eq!(all.as_array().unwrap().len(), 3);
    let acme = json(keygate(&db).args(["list", "--org", "acme", "--json"]));
    let acme = acme.as_array().unwrap();
    assert_eq!(acme.len(), 2);
    for item in acme {
        for field in [
            "id",
            "name",
            "org",
            "status",
            "scopes",
            "created_at",
            "expires_at",
            "last_used_at",
        ] {
            assert!(item.get(field).is_some(), "{field} missing in {item}");
        }
        assert_eq!(item["org"], "acme");
        assert!(close_to(time(&item["created_at"]), Utc::now()));
        assert_eq!(item["last_used_at"], Value::Null);
        assert_eq!(item["scopes"], serde_json::json!(["entities:read"]));
    }
    let status = |id: &Value| {
        acme.iter()
            .find(|i| i["id"] == *id)
            .map(|i| i["status"].clone())
            .unwrap()
    };
    assert_eq!(status(&a["id"]), "revoked");
    assert_eq!(status(&b["id"]), "active");
}

#[test]
fn list_prints_a_table_with_name_id_status_scopes_and_times() {
    let db = db();
    assert!(run_ok(keygate(&db).arg("list")).contains("No keys"));
    let v = create(&db, "billing-sync", "acme");
    let out = run_ok(keygate(&db).arg("list"));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let header: Vec<&str> = lines[0]
        .split("  ")
        .filter(|c| !c.is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "ID",
            "STATUS",
            "SCOPES",
            "CREATED",
            "EXPIRES",
            "LAST USED",
            "REQ 24H"
        ]
    );
    let row = lines[1];
    for cell in [
        "billing-sync",
        v["id"].as_str().unwrap(),
        "active",
        "entities:read",
        "never",
    ] {
        assert!(row.contains(cell), "{cell} not in {row}");
    }
    assert!(row.ends_with(" 0"), "no requests in the last 24 h: {row}");
    // Columns line up: the id starts where its header starts.
    assert_eq!(lines[0].find("ID"), row.find(v["id"].as_str().unwrap()));
}

/// Where `needle` starts in `line`, in terminal columns (CJK and most emoji take two).
fn display_column(line: &str, needle: &str) -> usize {
    let at = line
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not in {line}"));
    UnicodeWidthStr::width(&line[..at])
}

#[test]
fn list_aligns_names_of_wide_characters_by_their_display_width() {
    let db = db();
    let ids: Vec<String> = ["請求書-同期", "🔑 deploy", "billing-sync"]
        .iter()
        .map(|name| create(&db, name, "acme")["id"].as_str().unwrap().to_owned())
        .collect();
    let out = run_ok(keygate(&db).arg("list"));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    let id_column = display_column(lines[0], "ID");
    let status_column = display_column(lines[0], "STATUS");
    for id in &ids {
        let row = lines.iter().find(|l| l.contains(id.as_str())).expect(&out);
        assert_eq!(display_column(row, id), id_column, "{out}");
        assert_eq!(display_column(row, "active"), status_column, "{out}");
    }
}

#[test]
fn list_fits_the_columns_it_is_given_and_a_pipe_gets_one_line_per_key() {
    let db = db();
    let long = "a key with a long name that needs wrapping to fit";
    let v = json(keygate(&db).args([
        "create",
        "--name",
        long,
        "--org",
        "acme",
        "--scope",
        "entities:read",
        "entities:write",
        "knowledge:read",
        "knowledge:write",
        "--json",
    ]));
    let id = v["id"].as_str().unwrap();
    // Piped, with no COLUMNS: one line per key, whatever its length.
    let piped = run_ok(keygate(&db).env_remove("COLUMNS").arg("list"));
    assert_eq!(piped.lines().count(), 2, "{piped}");
    assert!(piped.contains(long), "{piped}");
    let out = run_ok(keygate(&db).env("COLUMNS", "100").arg("list"));
    for line in out.lines() {
        assert!(
            UnicodeWidthStr::width(line) <= 100,
            "wider than 100 columns: {line:?}\n{out}"
        );
    }
    assert!(out.lines().count() > 2, "nothing wrapped: {out}");
    // The id is never cut, and the wrapped name and scopes are all there.
    assert!(out.contains(id), "{out}");
    let words: Vec<&str> = out.split_whitespace().collect();
    for word in long.split(' ') {
        assert!(words.contains(&word), "{word} lost: {out}");
    }
    for scope in [
        "entities:read",
        "entities:write",
        "knowledge:read",
        "knowledge:write",
    ] {
        assert!(
            words.contains(&scope) || words.contains(&format!("{scope},").as_str()),
            "{scope} cut: {out}"
        );
    }
}

#[test]
fn completions_print_a_script_for_each_shell_and_open_no_store() {
    let db = db();
    for (shell, marker) in [
        ("bash", "complete -F _keygate"),
        ("zsh", "#compdef keygate"),
        ("fish", "complete -c keygate"),
    ] {
        let script = run_ok(keygate(&db).args(["completions", shell]));
        assert!(script.contains(marker), "{shell}: {script}");
        for sub in ["create", "rotate", "expires-in"] {
            assert!(script.contains(sub), "{shell} misses {sub}");
        }
    }
    let msg = fails(keygate(&db).args(["completions", "tcsh"]));
    assert!(msg.contains("'tcsh'") && msg.contains("bash"), "{msg}");
    assert!(!db.path.exists(), "completions opened the store");
}

#[test]
fn show_gives_the_key_and_its_audit_trail_with_the_os_user() {
    let db = db();
    let v = create(&db, "billing", "acme");
    let id = v["id"].as_str().unwrap();
    run_ok(keygate(&db).args(["revoke", id]));
    let shown = json(keygate(&db).args(["show", id, "--json"]));
    assert_eq!(shown["id"], v["id"]);
    assert_eq!(shown["status"], "revoked");
    let trail = shown["audit"].as_array().unwrap();
    let actions: Vec<&str> = trail
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["created", "revoked"]);
    assert!(trail.iter().all(|e| e["actor"] == "ops-tester"));
    let text = run_ok(keygate(&db).args(["show", id]));
    assert!(text.contains("status:       revoked"), "{text}");
    assert!(!text.contains("$argon2"), "the hash is never printed");
}

#[test]
fn revoke_keeps_the_key_listed_as_revoked() {
    let db = db();
    let id = create(&db, "k", "acme")["id"].as_str().unwrap().to_owned();
    let out = run_ok(keygate(&db).args(["revoke", &id]));
    assert!(out.contains(&id), "{out}");
    let listed = json(keygate(&db).args(["list", "--json"]));
    assert_eq!(listed[0]["status"], "revoked");
}

#[test]
fn delete_removes_the_key_and_keeps_its_audit_trail() {
    let db = db();
    let id = create(&db, "k", "acme")["id"].as_str().unwrap().to_owned();
    run_ok(keygate(&db).args(["delete", &id]));
    assert_eq!(
        json(keygate(&db).args(["list", "--json"])),
        serde_json::json!([])
    );
    assert_eq!(rows(&db.path), (0, 2), "created + deleted events remain");
    let msg = fails(keygate(&db).args(["show", &id]));
    assert_eq!(msg, format!("error: no key with id {id}"));
}

#[test]
fn rotate_gives_a_new_key_with_the_same_grants_and_a_grace_period() {
    let db = db();
    let old = json(keygate(&db).args([
        "create",
        "--name",
        "ci",
        "--org",
        "acme",
        "--owner",
        "ana",
        "--scope",
        "entities:read",
        "--prefix",
        "qapi",
        "--json",
    ]));
    let old_id = old["id"].as_str().unwrap();
    let new = json(keygate(&db).args(["rotate", old_id, "--json"]));
    assert_ne!(new["id"], old["id"]);
    assert_ne!(new["key"], old["key"]);
    assert!(new["key"].as_str().unwrap().starts_with("qapi_"));
    for field in ["name", "org", "team", "owner", "scopes", "expires_at"] {
        assert_eq!(new[field], old[field], "{field}");
    }
    assert_eq!(new["rotated_from"], old["id"]);
    // Default grace: 24 h.
    assert!(close_to(
        time(&new["old_expires_at"]),
        Utc::now() + Duration::hours(24)
    ));

    let short = json(keygate(&db).args([
        "rotate",
        new["id"].as_str().unwrap(),
        "--grace",
        "30m",
        "--json",
    ]));
    assert!(close_to(
        time(&short["old_expires_at"]),
        Utc::now() + Duration::minutes(30)
    ));
    let text =
        run_ok(keygate(&db).args(["rotate", short["id"].as_str().unwrap(), "--grace", "1h"]));
    assert!(text.contains("Store this key now"), "{text}");
}

#[test]
fn the_database_url_comes_from_the_flag_then_the_environment_then_the_default() {
    let cwd = tempfile::tempdir().unwrap();
    let bin = || {
        let mut c = Command::cargo_bin("keygate").unwrap();
        c.current_dir(cwd.path()).env_remove("KEYGATE_DATABASE_URL");
        c
    };
    let args = [
        "create",
        "--name",
        "k",
        "--org",
        "acme",
        "--scope",
        "entities:read",
        "--json",
    ];
    run_ok(bin().args(args));
    assert!(
        cwd.path().join("keygate.db").exists(),
        "default sqlite://keygate.db"
    );

    let env_db = cwd.path().join("env.db");
    run_ok(
        bin()
            .env(
                "KEYGATE_DATABASE_URL",
                format!("sqlite://{}", env_db.display()),
            )
            .args(args),
    );
    assert!(env_db.exists());

    let flag_db = cwd.path().join("flag.db");
    run_ok(
        bin()
            .env(
                "KEYGATE_DATABASE_URL",
                format!("sqlite://{}", env_db.display()),
            )
            .args(["--database-url", &format!("sqlite://{}", flag_db.display())])
            .args(args),
    );
    assert_eq!(rows(&flag_db).0, 1);
    assert_eq!(rows(&env_db).0, 1);
}

#[test]
fn an_unknown_id_fails_with_one_line_for_every_subcommand_and_writes_nothing() {
    let db = db();
    create(&db, "k", "acme");
    let before = rows(&db.path);
    for sub in ["show", "revoke", "delete", "rotate"] {
        let msg = fails(keygate(&db).args([sub, "nosuchkey0000000"]));
        assert_eq!(msg, "error: no key with id nosuchkey0000000", "{sub}");
    }
    assert_eq!(rows(&db.path), before);
}

#[test]
fn a_bad_scope_fails_before_the_store_is_opened() {
    let db = db();
    let msg = fails(keygate(&db).args([
        "create",
        "--name",
        "k",
        "--org",
        "acme",
        "--scope",
        "Entities Read",
    ]));
    assert!(msg.contains("invalid scope"), "{msg}");
    assert!(
        !db.path.exists(),
        "nothing may be written, not even an empty database"
    );
}

#[test]
fn a_bad_duration_fails_before_the_store_is_opened() {
    let db = db();
    for args in [
        &[
            "create",
            "--name",
            "k",
            "--org",
            "acme",
            "--scope",
            "a:b",
            "--expires-in",
            "ten days",
        ][..],
        &[
            "create",
            "--name",
            "k",
            "--org",
            "acme",
            "--scope",
            "a:b",
            "--expires-in",
            "90",
        ],
        &["rotate", "someid", "--grace", "1 fortnight"],
        &["rotate", "someid", "--grace", "101y"],
        &[
            "create",
            "--name",
            "k",
            "--org",
            "acme",
            "--scope",
            "a:b",
            "--expires-in",
            "0s",
        ],
    ] {
        let msg = fails(keygate(&db).args(args));
        assert!(msg.contains("invalid duration"), "{msg}");
    }
    assert!(!db.path.exists());
}

#[test]
fn a_bad_or_past_expiry_time_fails_before_the_store_is_opened() {
    let db = db();
    let base = [
        "create",
        "--name",
        "k",
        "--org",
        "acme",
        "--scope",
        "a:b",
        "--expires-at",
    ];
    let msg = fails(keygate(&db).args(base).arg("tomorrow"));
    assert!(msg.contains("RFC 3339"), "{msg}");
    let msg = fails(keygate(&db).args(base).arg("2001-01-01T00:00:00Z"));
    assert!(msg.contains("future"), "{msg}");
    let msg = fails(
        keygate(&db)
            .args(base)
            .arg("2030-01-01T00:00:00Z")
            .args(["--expires-in", "1d"]),
    );
    assert!(msg.contains("cannot be used with"), "{msg}");
    assert!(!db.path.exists());
}

#[test]
fn a_bad_prefix_or_empty_name_fails_and_writes_nothing() {
    let db = db();
    create(&db, "k", "acme");
    let before = rows(&db.path);
    let msg = fails(keygate(&db).args([
        "create", "--name", "k", "--org", "acme", "--scope", "a:b", "--prefix", "Live!",
    ]));
    assert!(msg.contains("invalid prefix"), "{msg}");
    let msg =
        fails(keygate(&db).args(["create", "--name", " ", "--org", "acme", "--scope", "a:b"]));
    assert!(
        msg.contains("name") && msg.contains("must not be empty"),
        "{msg}"
    );
    assert_eq!(rows(&db.path), before);
}

#[test]
fn an_unreachable_database_fails_with_one_line() {
    for url in [
        "postgres://keygate:hunter2@127.0.0.1:1/x",
        "sqlite:///proc/keygate-nope/keys.db",
    ] {
        let mut cmd = Command::cargo_bin("keygate").unwrap();
        let msg = fails(cmd.args(["--database-url", url, "list"]));
        assert!(msg.starts_with("error: cannot open the key store"), "{msg}");
        assert!(
            !msg.contains("hunter2"),
            "passwords stay out of messages: {msg}"
        );
    }
}

#[test]
fn a_missing_required_flag_fails_with_one_line() {
    let db = db();
    let msg = fails(keygate(&db).args(["create", "--org", "acme"]));
    assert!(msg.contains("--name"), "{msg}");
    assert!(!db.path.exists());
}

fn show(db: &Db, id: &str) -> Value {
    json(keygate(db).args(["show", id, "--json"]))
}

/// `show --json` without the audit trail, to compare what an update left alone.
fn fields(db: &Db, id: &str) -> serde_json::Map<String, Value> {
    let mut v = show(db, id).as_object().unwrap().clone();
    v.remove("audit");
    v
}

fn limited(db: &Db, name: &str, limit: &str) -> Value {
    json(keygate(db).args([
        "create",
        "--name",
        name,
        "--org",
        "acme",
        "--scope",
        "entities:read",
        "--rate-limit",
        limit,
        "--json",
    ]))
}

/// Asserts that `after` equals `before` except for the named fields.
fn only_changed(
    before: &serde_json::Map<String, Value>,
    after: &serde_json::Map<String, Value>,
    changed: &[&str],
) {
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (k, v) in before {
        if changed.contains(&k.as_str()) {
            assert_ne!(&after[k], v, "{k} did not change");
        } else {
            assert_eq!(&after[k], v, "{k} changed");
        }
    }
}

#[test]
fn create_with_a_rate_limit_shows_it_in_json_list_and_text() {
    let db = db();
    let v = limited(&db, "metered", "1000/60s");
    assert_eq!(v["rate_limit"], "1000/1m", "canonical form");
    assert_eq!(v["rotated_to"], Value::Null);
    let id = v["id"].as_str().unwrap();
    let shown = show(&db, id);
    assert_eq!(shown["rate_limit"], "1000/1m");
    assert_eq!(shown["rotated_to"], Value::Null);
    assert_eq!(
        json(keygate(&db).args(["list", "--json"]))[0]["rate_limit"],
        "1000/1m"
    );
    let text = run_ok(keygate(&db).args(["show", id]));
    assert!(text.contains("rate limit:   1000/1m"), "{text}");
    let table = run_ok(keygate(&db).arg("list"));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].ends_with("RATE LIMIT"), "{table}");
    assert_eq!(lines[0].find("RATE LIMIT"), lines[1].find("1000/1m"));
}

#[test]
fn create_without_a_rate_limit_gives_null() {
    let db = db();
    let v = create(&db, "free", "acme");
    assert_eq!(v["rate_limit"], Value::Null);
    assert_eq!(
        show(&db, v["id"].as_str().unwrap())["rate_limit"],
        Value::Null
    );
}

#[test]
fn a_bad_rate_limit_on_create_fails_and_creates_nothing() {
    let db = db();
    let base = [
        "create",
        "--name",
        "k",
        "--org",
        "acme",
        "--scope",
        "a:b",
        "--rate-limit",
    ];
    for bad in ["0/1m", "1000", "lots/1m", "10/0s", "10/2d"] {
        let msg = fails(keygate(&db).args(base).arg(bad));
        assert!(msg.contains("invalid rate limit"), "{msg}");
    }
    assert!(!db.path.exists(), "nothing may be written");
    create(&db, "k", "acme");
    let before = rows(&db.path);
    fails(keygate(&db).args(base).arg("1/1w"));
    assert_eq!(rows(&db.path), before);
}

#[test]
fn rotate_json_carries_the_rate_limit_and_the_old_key_points_to_its_successor() {
    let db = db();
    let old = limited(&db, "ci", "10/1s");
    let old_id = old["id"].as_str().unwrap();
    let new = json(keygate(&db).args(["rotate", old_id, "--json"]));
    assert_eq!(new["rate_limit"], "10/1s");
    assert_eq!(new["rotated_to"], Value::Null);
    assert_eq!(show(&db, old_id)["rotated_to"], new["id"]);
    let text = run_ok(keygate(&db).args(["show", old_id]));
    assert!(
        text.contains(&format!("rotated to:   {}", new["id"].as_str().unwrap())),
        "{text}"
    );
}

#[test]
fn update_name_changes_only_the_name() {
    let db = db();
    let id = limited(&db, "old-name", "5/1m")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = fields(&db, &id);
    let out = run_ok(keygate(&db).args(["update", &id, "--name", "new-name"]));
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains(&id) && out.contains("new-name"), "{out}");
    let after = fields(&db, &id);
    only_changed(&before, &after, &["name"]);
    assert_eq!(after["name"], "new-name");
    let trail = show(&db, &id)["audit"].clone();
    assert_eq!(trail.as_array().unwrap().len(), 2, "{trail}");
}

#[test]
fn update_rate_limit_sets_and_replaces_only_the_rate_limit() {
    let db = db();
    let id = create(&db, "k", "acme")["id"].as_str().unwrap().to_owned();
    let before = fields(&db, &id);
    run_ok(keygate(&db).args(["update", &id, "--rate-limit", "100/1h"]));
    let after = fields(&db, &id);
    only_changed(&before, &after, &["rate_limit"]);
    assert_eq!(after["rate_limit"], "100/1h");
    run_ok(keygate(&db).args(["update", &id, "--rate-limit", "7/1s"]));
    let again = fields(&db, &id);
    only_changed(&after, &again, &["rate_limit"]);
    assert_eq!(again["rate_limit"], "7/1s");
}

#[test]
fn update_no_rate_limit_clears_only_the_rate_limit() {
    let db = db();
    let id = limited(&db, "k", "1000/1m")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = fields(&db, &id);
    run_ok(keygate(&db).args(["update", &id, "--no-rate-limit"]));
    let after = fields(&db, &id);
    only_changed(&before, &after, &["rate_limit"]);
    assert_eq!(after["rate_limit"], Value::Null);
}

#[test]
fn update_expires_in_sets_only_the_expiry() {
    let db = db();
    let id = create(&db, "k", "acme")["id"].as_str().unwrap().to_owned();
    let before = fields(&db, &id);
    run_ok(keygate(&db).args(["update", &id, "--expires-in", "7d"]));
    let after = fields(&db, &id);
    only_changed(&before, &after, &["expires_at"]);
    assert!(close_to(
        time(&after["expires_at"]),
        Utc::now() + Duration::days(7)
    ));
    assert_eq!(after["status"], "active");
}

/// `m` is minutes (`M` would be months), and a duration may have several parts.
#[test]
fn expires_in_reads_m_as_minutes_and_takes_compound_durations() {
    let db = db();
    let v = json(keygate(&db).args([
        "create",
        "--name",
        "k",
        "--org",
        "acme",
        "--scope",
        "a:b",
        "--expires-in",
        "30m",
        "--json",
    ]));
    assert!(close_to(
        time(&v["expires_at"]),
        Utc::now() + Duration::minutes(30)
    ));
    let id = v["id"].as_str().unwrap();
    run_ok(keygate(&db).args(["update", id, "--expires-in", "1h 30m"]));
    assert!(close_to(
        time(&fields(&db, id)["expires_at"]),
        Utc::now() + Duration::minutes(90)
    ));
}

#[test]
fn update_expires_at_sets_that_time() {
    let db = db();
    let id = create(&db, "k", "acme")["id"].as_str().unwrap().to_owned();
    let before = fields(&db, &id);
    run_ok(keygate(&db).args(["update", &id, "--expires-at", "2031-06-01T12:00:00+02:00"]));
    let after = fields(&db, &id);
    only_changed(&before, &after, &["expires_at"]);
    assert_eq!(after["expires_at"], "2031-06-01T10:00:00Z");
}

#[test]
fn update_no_expiry_clears_only_the_expiry() {
    let db = db();
    let id = json(keygate(&db).args([
        "create",
        "--name",
        "k",
        "--org",
        "acme",
        "--scope",
        "entities:read",
        "--expires-in",
        "1d",
        "--json",
    ]))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = fields(&db, &id);
    run_ok(keygate(&db).args(["update", &id, "--no-expiry"]));
    let after = fields(&db, &id);
    only_changed(&before, &after, &["expires_at"]);
    assert_eq!(after["expires_at"], Value::Null);
}

#[test]
fn update_several_changes_at_once_with_json_prints_the_key_like_show() {
    let db = db();
    let id = create(&db, "k", "acme")["id"].as_str().unwrap().to_owned();
    let before = fields(&db, &id);
    let printed = json(keygate(&db).args([
        "update",
        &id,
        "--name",
        "renamed",
        "--expires-in",
        "30d",
        "--rate-limit",
        "50/1m",
        "--json",
    ]));
    assert_eq!(printed, show(&db, &id));
    let after = fields(&db, &id);
    only_changed(&before, &after, &["name", "expires_at", "rate_limit"]);
    assert_eq!(after["name"], "renamed");
    assert_eq!(after["rate_limit"], "50/1m");
}

#[test]
fn update_with_conflicting_flags_or_no_change_fails_and_changes_nothing() {
    let db = db();
    let id = limited(&db, "k", "1000/1m")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = fields(&db, &id);
    let counts = rows(&db.path);
    for args in [
        &["--expires-in", "1d", "--no-expiry"][..],
        &["--expires-at", "2031-01-01T00:00:00Z", "--expires-in", "1d"],
        &["--expires-at", "2031-01-01T00:00:00Z", "--no-expiry"],
        &["--rate-limit", "10/1s", "--no-rate-limit"],
        &["--name", "x", "--rate-limit", "5/1m", "--no-rate-limit"],
    ] {
        let msg = fails(keygate(&db).arg("update").arg(&id).args(args));
        assert!(msg.contains("cannot be used with"), "{args:?}: {msg}");
    }
    for args in [&[][..], &["--json"]] {
        let msg = fails(keygate(&db).arg("update").arg(&id).args(args));
        assert!(msg.contains("nothing to update"), "{msg}");
    }
    for (args, expect) in [
        (&["--rate-limit", "many"][..], "invalid rate limit"),
        (&["--expires-in", "soon"], "invalid duration"),
        (&["--expires-at", "2001-01-01T00:00:00Z"], "future"),
        (&["--name", " "], "must not be empty"),
    ] {
        let msg = fails(keygate(&db).arg("update").arg(&id).args(args));
        assert!(msg.contains(expect), "{args:?}: {msg}");
    }
    assert_eq!(fields(&db, &id), before);
    assert_eq!(rows(&db.path), counts);
}

#[test]
fn update_of_an_unknown_id_fails_with_one_line_and_writes_nothing() {
    let db = db();
    create(&db, "k", "acme");
    let before = rows(&db.path);
    let msg = fails(keygate(&db).args(["update", "nosuchkey0000000", "--name", "x"]));
    assert_eq!(msg, "error: no key with id nosuchkey0000000");
    assert_eq!(rows(&db.path), before);
}

#[test]
fn list_status_revoked_lists_only_revoked_keys() {
    let db = db();
    let a = create(&db, "a", "acme");
    let b = create(&db, "b", "acme");
    let c = create(&db, "c", "globex");
    run_ok(keygate(&db).args(["revoke", a["id"].as_str().unwrap()]));
    run_ok(keygate(&db).args(["revoke", c["id"].as_str().unwrap()]));

    let ids = |args: &[&str]| -> Vec<Value> {
        let mut ids: Vec<Value> = json(keygate(&db).arg("list").args(args).arg("--json"))
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].clone())
            .collect();
        ids.sort_by_key(ToString::to_string);
        ids
    };
    let mut revoked = vec![a["id"].clone(), c["id"].clone()];
    revoked.sort_by_key(ToString::to_string);
    assert_eq!(ids(&["--status", "revoked"]), revoked);
    assert_eq!(ids(&["--status", "active"]), [b["id"].clone()]);
    assert_eq!(ids(&["--status", "expired"]), Vec::<Value>::new());
    assert_eq!(
        ids(&["--status", "revoked", "--org", "acme"]),
        [a["id"].clone()]
    );

    let table = run_ok(keygate(&db).args(["list", "--status", "revoked"]));
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(!table.contains(b["id"].as_str().unwrap()), "{table}");
    assert!(run_ok(keygate(&db).args(["list", "--status", "expired"])).contains("No keys"));
}

#[test]
fn list_status_rejects_an_unknown_status_with_one_line() {
    let db = db();
    let msg = fails(keygate(&db).args(["list", "--status", "dead"]));
    assert!(msg.contains("--status"), "{msg}");
    assert!(!db.path.exists());
}

// ---- usage ----

/// A runtime for the few store calls a test makes itself.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Adds hourly counts to the store, as the verifier's write-behind does.
fn add_usage(db: &Db, counts: &[(&str, DateTime<Utc>, u64, u64)]) {
    let counts: Vec<keygate::UsageCount> = counts
        .iter()
        .map(|&(id, hour, requests, refused)| keygate::UsageCount {
            key_id: id.to_owned(),
            hour,
            requests,
            refused,
        })
        .collect();
    block_on(async {
        let store = keygate_sqlx::connect(&db.url).await.unwrap();
        store.add_usage(&counts).await.unwrap();
    });
}

/// The start of the current UTC hour.
fn this_hour() -> DateTime<Utc> {
    Utc::now().duration_trunc(Duration::hours(1)).unwrap()
}

/// Rows in the usage table.
fn usage_rows(path: &Path) -> i64 {
    let url = format!("sqlite://{}", path.display());
    block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query_scalar("SELECT count(*) FROM keygate_usage")
            .fetch_one(&pool)
            .await
            .unwrap()
    })
}

fn usage(db: &Db, id: &str, extra: &[&str]) -> Value {
    json(keygate(db).args(["usage", id, "--json"]).args(extra))
}

/// The `days` of `usage --json` as (day, requests, refused), checking each object's shape.
fn days(v: &Value) -> Vec<(NaiveDate, u64, u64)> {
    v["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let o = d.as_object().unwrap();
            let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["day", "refused", "requests"], "{d}");
            (
                NaiveDate::parse_from_str(d["day"].as_str().unwrap(), "%Y-%m-%d").unwrap(),
                d["requests"].as_u64().unwrap(),
                d["refused"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// `n` consecutive days, oldest first, ending on `last`.
fn consecutive(days: &[(NaiveDate, u64, u64)], n: usize, last: NaiveDate) {
    assert_eq!(days.len(), n, "{days:?}");
    assert_eq!(days.last().unwrap().0, last, "{days:?}");
    for w in days.windows(2) {
        assert_eq!(w[0].0.succ_opt().unwrap(), w[1].0, "{days:?}");
    }
}

#[test]
fn usage_of_a_fresh_key_gives_30_zero_days_oldest_first_ending_today() {
    let db = db();
    let k = create(&db, "k", "acme");
    let id = k["id"].as_str().unwrap();
    let before = Utc::now().date_naive();
    let v = usage(&db, id, &[]);
    let after = Utc::now().date_naive();
    assert_eq!(v["id"], id);
    let d = days(&v);
    let today = d.last().unwrap().0;
    assert!(today == before || today == after, "{today} is not today");
    consecutive(&d, 30, today);
    assert!(d.iter().all(|&(_, r, f)| r == 0 && f == 0), "{d:?}");
}

#[test]
fn usage_days_7_gives_7_days() {
    let db = db();
    let k = create(&db, "k", "acme");
    let id = k["id"].as_str().unwrap();
    let d = days(&usage(&db, id, &["--days", "7"]));
    let today = d.last().unwrap().0;
    assert!((Utc::now().date_naive() - today).num_days() <= 1);
    consecutive(&d, 7, today);
    assert_eq!(days(&usage(&db, id, &["--days", "1"])).len(), 1);
    assert_eq!(days(&usage(&db, id, &["--days", "90"])).len(), 90);
}

#[test]
fn usage_days_out_of_range_or_not_a_number_fails_with_one_line_and_writes_nothing() {
    let db = db();
    let k = create(&db, "k", "acme");
    let id = k["id"].as_str().unwrap();
    let before = (rows(&db.path), usage_rows(&db.path));
    for days in ["0", "91", "-1", "abc", "7.5", ""] {
        let msg = fails(keygate(&db).args(["usage", id, "--days", days]));
        assert!(msg.contains("--days"), "{days:?}: {msg}");
        assert!(msg.contains("1 to 90"), "{days:?}: {msg}");
    }
    assert_eq!((rows(&db.path), usage_rows(&db.path)), before);

    // Refused before the store is opened: no database appears.
    let fresh = self::db();
    fails(keygate(&fresh).args(["usage", "somekey", "--days", "0"]));
    assert!(!fresh.path.exists());
}

#[test]
fn usage_of_an_unknown_or_deleted_id_fails_with_one_line_and_writes_nothing() {
    let db = db();
    let k = create(&db, "k", "acme");
    let id = k["id"].as_str().unwrap();
    add_usage(&db, &[(id, this_hour(), 3, 1)]);
    let before = (rows(&db.path), usage_rows(&db.path));
    let msg = fails(keygate(&db).args(["usage", "nosuchkey0000000"]));
    assert_eq!(msg, "error: no key with id nosuchkey0000000");
    let msg = fails(keygate(&db).args(["usage", "nosuchkey0000000", "--json"]));
    assert_eq!(msg, "error: no key with id nosuchkey0000000");
    assert_eq!((rows(&db.path), usage_rows(&db.path)), before);

    // A deleted key's counts outlive it in the store, but `usage` does not show them.
    run_ok(keygate(&db).args(["delete", id]));
    let msg = fails(keygate(&db).args(["usage", id, "--json"]));
    assert_eq!(msg, format!("error: no key with id {id}"));
}

#[test]
fn counts_written_to_the_store_show_in_usage_json_and_in_list_requests_24h() {
    let db = db();
    let a = create(&db, "a", "acme");
    let b = create(&db, "b", "acme");
    let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let hour = this_hour();
    let two_days_ago = hour - Duration::days(2);
    let forty_days_ago = hour - Duration::days(40);
    add_usage(
        &db,
        &[
            (a_id, hour, 5, 2),
            (a_id, two_days_ago, 3, 1),
            (a_id, forty_days_ago, 100, 10),
        ],
    );
    // Added, not overwritten.
    add_usage(&db, &[(a_id, hour, 2, 0)]);

    let d = days(&usage(&db, a_id, &[]));
    assert_eq!(d.len(), 30);
    let on = |day: NaiveDate| d.iter().find(|e| e.0 == day).map(|e| (e.1, e.2));
    assert_eq!(on(hour.date_naive()), Some((7, 2)), "{d:?}");
    assert_eq!(on(two_days_ago.date_naive()), Some((3, 1)), "{d:?}");
    let total: u64 = d.iter().map(|e| e.1).sum();
    assert_eq!(total, 10, "the 40-day-old hour is outside 30 days: {d:?}");
    let d90 = days(&usage(&db, a_id, &["--days", "90"]));
    assert_eq!(d90.iter().map(|e| e.1).sum::<u64>(), 110);
    assert_eq!(d90.iter().map(|e| e.2).sum::<u64>(), 13);
    assert!(days(&usage(&db, b_id, &[]))
        .iter()
        .all(|&(_, r, f)| r == 0 && f == 0));

    let list = json(keygate(&db).args(["list", "--json"]));
    let req = |id: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .map(|i| i["requests_24h"].clone())
            .unwrap()
    };
    assert_eq!(req(a_id), 7, "only the last 24 hours count");
    assert_eq!(req(b_id), 0, "a key without counts has 0");
    // Every existing field is still there.
    for item in list.as_array().unwrap() {
        let mut keys: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let mut want = vec![
            "id",
            "name",
            "org",
            "team",
            "owner",
            "status",
            "scopes",
            "prefix",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "rotated_from",
            "rotated_to",
            "rate_limit",
            "metadata",
            "requests_24h",
        ];
        want.sort_unstable();
        assert_eq!(keys, want);
    }
    // Filters still apply, and the counts follow the listed keys.
    run_ok(keygate(&db).args(["revoke", a_id]));
    let revoked = json(keygate(&db).args(["list", "--status", "revoked", "--json"]));
    assert_eq!(revoked.as_array().unwrap().len(), 1);
    assert_eq!(revoked[0]["requests_24h"], 7);

    // The table's REQ 24H column.
    let table = run_ok(keygate(&db).arg("list"));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].contains("REQ 24H"), "{table}");
    let row = |id: &str| *lines.iter().find(|l| l.contains(id)).unwrap();
    assert!(row(a_id).ends_with(" 7"), "{table}");
    assert!(row(b_id).ends_with(" 0"), "{table}");
}

#[test]
fn usage_prints_a_day_table_with_a_total_line() {
    let db = db();
    let k = create(&db, "k", "acme");
    let id = k["id"].as_str().unwrap();
    let hour = this_hour();
    add_usage(
        &db,
        &[(id, hour, 12, 3), (id, hour - Duration::days(1), 4, 0)],
    );
    let out = run_ok(keygate(&db).args(["usage", id, "--days", "7"]));
    let lines: Vec<&str> = out.lines().collect();
    let header = lines.iter().position(|l| l.starts_with("DAY")).expect(&out);
    let cols: Vec<&str> = lines[header].split_whitespace().collect();
    assert_eq!(cols, ["DAY", "REQUESTS", "REFUSED"], "{out}");
    let body = &lines[header + 1..];
    assert_eq!(body.len(), 8, "7 days and a total line: {out}");
    for l in &body[..7] {
        let c: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(c.len(), 3, "{l}");
        NaiveDate::parse_from_str(c[0], "%Y-%m-%d").expect(l);
    }
    let today = hour.date_naive().format("%Y-%m-%d").to_string();
    let today_row: Vec<&str> = body
        .iter()
        .find(|l| l.starts_with(&today))
        .expect(&out)
        .split_whitespace()
        .collect();
    assert_eq!(today_row[1..], ["12", "3"], "{out}");
    let total: Vec<&str> = body[7].split_whitespace().collect();
    assert_eq!(total, ["TOTAL", "16", "3"], "{out}");
}

/// `keygate --database-url <url> …` with no URL in the environment.
#[cfg(feature = "postgres")]
fn keygate_at(url: &str) -> Command {
    let mut cmd = Command::cargo_bin("keygate").unwrap();
    cmd.env_remove("KEYGATE_DATABASE_URL")
        .env("USER", "ops-tester")
        .arg("--database-url")
        .arg(url);
    cmd
}

#[cfg(feature = "postgres")]
#[test]
fn a_postgres_url_with_sslmode_require_works_and_an_untrusted_verify_full_fails_with_one_line() {
    const PG_ENV: &str = "KEYGATE_TEST_POSTGRES_URL";
    let Ok(base) = std::env::var(PG_ENV) else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED cli::a_postgres_url_with_sslmode_require_works_and_an_untrusted_verify_full_fails_with_one_line: set {PG_ENV} to run"
        );
        return;
    };
    // A schema of its own, made and dropped through a store that does not migrate.
    let schema = format!("kg_cli_{}", std::process::id());
    let admin = block_on(keygate_sqlx::PostgresStore::connect_with(
        &base,
        keygate_sqlx::StoreOptions {
            migrate: false,
            notifications: false,
            ..keygate_sqlx::StoreOptions::default()
        },
    ))
    .unwrap();
    let sql = |q: String| {
        block_on(sqlx::raw_sql(sqlx::AssertSqlSafe(q)).execute(admin.pool())).unwrap();
    };
    sql(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
    sql(format!("CREATE SCHEMA {schema}"));
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");

    let created = json(keygate_at(&format!("{url}&sslmode=require")).args([
        "create",
        "--name",
        "over-tls",
        "--org",
        "acme",
        "--scope",
        "entities:read",
        "--json",
    ]));
    let id = created["id"].as_str().unwrap();
    let shown = json(keygate_at(&format!("{url}&sslmode=require")).args(["show", id, "--json"]));
    assert_eq!(shown["name"], "over-tls");

    // The test server's certificate is issued by no root the CLI trusts.
    let msg = fails(keygate_at(&format!("{url}&sslmode=verify-full")).arg("list"));
    assert!(msg.starts_with("error: cannot open the key store"), "{msg}");
    assert!(msg.contains("TLS") && msg.contains("certificate"), "{msg}");
    assert!(
        !msg.contains(":keygate@"),
        "passwords stay out of messages: {msg}"
    );

    sql(format!("DROP SCHEMA {schema} CASCADE"));
}

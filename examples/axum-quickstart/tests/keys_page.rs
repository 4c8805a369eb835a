//! The "API Keys" page in a real browser: Debian's Chromium, headless, driven over WebDriver
//! (chromedriver) with fantoccini, against the axum quickstart's app served in-process on
//! 127.0.0.1 over a `memory:` store.
//!
//! One story, step by step as a person uses the page: sign in with the management key, create
//! a key and copy it (shown once, and it works on the demo API), find it Active, revoke it
//! (Revoked, and refused over HTTP), rotate another (a new plaintext, once), delete one (its
//! row goes), and a key named like an HTML tag shows as text and opens no dialog.
//!
//! Without Chromium or chromedriver the test passes after printing one `SKIPPED: …` line on
//! stderr, unless `KEYGATE_TEST_BROWSER=1` (CI) says the browser must be there.
//! `KEYGATE_CHROMIUM` and `KEYGATE_CHROMEDRIVER` name other binaries than the Debian ones.
//! Screenshots go to `target/keys-page/` (under `CARGO_TARGET_DIR` when set). Every wait is a
//! bounded poll of the page or of chromedriver, never a fixed sleep.

use std::fs::File;
use std::future::Future;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use demo_api::{bootstrap_demo_keys, build_verifier, open_store, DemoState};
use fantoccini::elements::Element;
use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use keygate::KeyManager;
use keygate_conformance::wire;
use keygate_conformance::{TestRequest, TestResponse};
use serde_json::{json, Value};

const SKIP_LINE: &str = "SKIPPED: keys page browser test (chromium/chromedriver not installed)";
/// Longest wait for the page to show something.
const UI_WAIT: Duration = Duration::from_secs(10);
/// Longest wait for chromedriver to answer and for Chromium to open a session.
const START_WAIT: Duration = Duration::from_secs(30);
/// The whole story in the browser, from the first page load to the last check.
const STORY_WAIT: Duration = Duration::from_secs(180);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(50);
/// One HTTP request from the test itself (to the demo API or to chromedriver).
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The browser story; see the module docs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_page_manages_keys_in_a_real_chromium() {
    let Some(bins) = browser_binaries() else {
        return;
    };
    let started = Instant::now();
    let shots = screenshot_dir();
    let demo = serve_demo().await;
    let profile = tempfile::tempdir().expect("a temp dir for Chromium's profile");
    let mut driver = Driver::start(
        &bins.chromedriver,
        profile.path(),
        &shots.join("chromedriver.log"),
    )
    .await;

    let mut builder = ClientBuilder::new(HttpConnector::new());
    builder.capabilities(capabilities(&bins.chromium, profile.path()));
    let client = tokio::time::timeout(START_WAIT, builder.connect(&driver.url))
        .await
        .unwrap_or_else(|_| panic!("no WebDriver session within {START_WAIT:?}"))
        .unwrap_or_else(|e| panic!("chromedriver could not start Chromium: {e}"));
    driver.session = client.session_id().await.ok().flatten();

    let browser = Browser {
        c: client.clone(),
        base: format!("http://{}", demo.addr),
        shots: shots.clone(),
        driver_addr: driver.addr.clone(),
        session: driver.session.clone().unwrap_or_default(),
    };
    // The story runs in a task of its own so that, whatever happens in it (a failed
    // assertion, a timeout), the browser is closed before the failure is reported.
    let mut story = tokio::spawn(async move { story(&browser, &demo).await });
    let outcome = tokio::time::timeout(STORY_WAIT, &mut story).await;
    story.abort();
    if let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(10), client.close()).await {
        driver.session = None;
    }
    drop(driver);
    match outcome {
        Err(_) => panic!("the browser story did not finish within {STORY_WAIT:?}"),
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("the browser story was cancelled: {e}"),
        Ok(Ok(())) => {}
    }
    eprintln!(
        "keys page browser test: passed in {:.1?}; screenshots in {}",
        started.elapsed(),
        shots.display()
    );
}

async fn story(b: &Browser, demo: &Demo) {
    sign_in_lists_the_keys(b, demo).await;
    let ci = creating_a_key_shows_a_working_plaintext_once(b, demo).await;
    the_copy_button_copies_the_key(b, &ci).await;
    dismissing_removes_the_plaintext_from_the_page(b, &ci).await;
    the_new_key_is_listed_active(b, &ci).await;
    revoking_shows_revoked_and_the_key_is_refused(b, demo, &ci).await;
    rotating_shows_the_replacement_once(b, demo).await;
    deleting_removes_the_row(b, demo).await;
    the_list_comes_back_after_a_reload(b, demo).await;
    usage_shows_a_sparkline_for_a_used_key_and_marks_an_unused_one(b, demo).await;
    a_name_that_looks_like_html_is_shown_as_text(b).await;
    b.no_error_banner("at the end").await;
}

// ------------------------------------------------------------------------------ the steps

/// The page asks for the management key, then lists the org's keys (the demo key and the
/// management key) with no error, though `/usage` is not there yet.
async fn sign_in_lists_the_keys(b: &Browser, demo: &Demo) {
    b.c.goto(&format!("{}/keys", b.base))
        .await
        .expect("the page loads");
    let input = b.visible("manager-key-input").await;
    b.shot("01-sign-in").await;
    input
        .send_keys(&demo.management_key)
        .await
        .expect("typing the management key");
    b.click("manager-key-submit").await;
    b.until_js(
        "the list with the demo key and the management key",
        "return document.querySelectorAll('[data-testid=\"key-row\"]').length === 2",
        vec![],
    )
    .await;
    let who = b
        .js(
            "return document.getElementById('session-who').textContent;",
            vec![],
        )
        .await;
    let who = who.as_str().unwrap_or_default();
    assert!(
        who.contains("demo"),
        "signed in as {who:?}, expected org demo"
    );
    b.usage_settled().await;
    b.no_error_banner("after sign-in").await;
    b.shot("02-signed-in").await;
}

/// Create with a name, two scopes and an expiry: the plaintext is shown once, has the
/// `mk_live_` prefix and works at once on the demo API, within its scopes only.
async fn creating_a_key_shows_a_working_plaintext_once(b: &Browser, demo: &Demo) -> Created {
    let ci = b
        .create_key("CI deploy", &["boards:read", "entities:read"], "30d")
        .await;
    assert!(
        ci.plaintext.starts_with("mk_live_"),
        "the new key is {:?}",
        ci.plaintext
    );
    let shown_for = b.visible_text("new-key").await;
    assert!(
        shown_for.contains("CI deploy") && shown_for.contains("boards:read"),
        "the plaintext panel says {shown_for:?}"
    );
    b.shot("03-new-key-shown-once").await;

    for path in ["/api/v1/boards", "/api/v1/entities"] {
        let r = get(&demo.addr, path, &ci.plaintext).await;
        assert_eq!(r.status, 200, "GET {path} with the new key: {}", body(&r));
    }
    let r = get(&demo.addr, "/api/v1/knowledge/files", &ci.plaintext).await;
    assert_eq!(r.status, 403, "a scope not granted: {}", body(&r));

    // About 30 days from now, and shown as a date rather than "Never".
    let days = b
        .js(
            "const row = document.querySelector('tr[data-key-id=\"' + arguments[0] + '\"]');
             const t = row.querySelector('td[data-label=\"Expires\"] time');
             return t ? (Date.parse(t.getAttribute('datetime')) - Date.now()) / 86400000 : null;",
            vec![json!(ci.id)],
        )
        .await;
    let days = days.as_f64().expect("the Expires cell holds a <time>");
    assert!((29.0..=30.01).contains(&days), "expires in {days} days");
    ci
}

/// Copy puts the plaintext on the clipboard and says "Copied".
async fn the_copy_button_copies_the_key(b: &Browser, ci: &Created) {
    b.click("new-key-copy").await;
    b.until_js(
        "the Copy button to say Copied",
        "return document.querySelector('[data-testid=\"new-key-copy\"]').textContent === 'Copied'",
        vec![],
    )
    .await;
    let clipboard = b.clipboard_text().await;
    assert_eq!(
        clipboard.as_deref(),
        Ok(ci.plaintext.as_str()),
        "the clipboard after Copy"
    );
}

/// "I have saved it" hides the panel and leaves the plaintext nowhere in the page or its
/// storage.
async fn dismissing_removes_the_plaintext_from_the_page(b: &Browser, key: &Created) {
    b.dismiss_plaintext(key).await;
}

/// The new key's row shows it as Active.
async fn the_new_key_is_listed_active(b: &Browser, ci: &Created) {
    assert_eq!(b.status_of(&ci.id).await, "Active");
    b.no_error_banner("after creating a key").await;
}

/// Revoke asks first (saying the key stays listed for audit), then the row says Revoked and
/// the key is refused on the next request.
async fn revoking_shows_revoked_and_the_key_is_refused(b: &Browser, demo: &Demo, ci: &Created) {
    b.row_button(&ci.id, "key-revoke").await;
    let question = b.confirm_text().await;
    assert!(
        question.contains("audit"),
        "the revoke confirmation says {question:?}"
    );
    b.click("confirm-ok").await;
    b.until_status(&ci.id, "Revoked").await;
    let r = get(&demo.addr, "/api/v1/boards", &ci.plaintext).await;
    assert_eq!(r.status, 401, "the revoked key: {}", body(&r));
    assert_eq!(
        r.json().map(|v| v["error"]["details"]["reason"].clone()),
        Some(json!("revoked_key")),
        "the revoked key: {}",
        body(&r)
    );
}

/// Rotate asks for a grace, then shows the replacement's plaintext once; the replacement
/// works, the old key keeps working for the grace and is marked rotated.
async fn rotating_shows_the_replacement_once(b: &Browser, demo: &Demo) {
    let worker = b
        .create_key("billing-worker", &["knowledge:read", "knowledge:write"], "")
        .await;
    b.dismiss_plaintext(&worker).await;

    b.row_button(&worker.id, "key-rotate").await;
    b.visible("rotate-grace")
        .await
        .select_by_value("1h")
        .await
        .expect("choosing a grace of 1 hour");
    b.click("confirm-ok").await;
    let plaintext = b.shown_plaintext().await;
    assert!(
        plaintext.starts_with("mk_live_") && plaintext != worker.plaintext,
        "the replacement is {plaintext:?}"
    );
    let shown_for = b.visible_text("new-key").await;
    assert!(
        shown_for.contains("Replacement for"),
        "the plaintext panel says {shown_for:?}"
    );
    let new_id = b
        .until_js(
            "the replacement's row",
            "const ids = Array.from(document.querySelectorAll('[data-testid=\"key-row\"]'))
               .filter(r => r.querySelector('[data-testid=\"key-name\"]').textContent === arguments[0]
                            && r.dataset.keyId !== arguments[1])
               .map(r => r.dataset.keyId);
             return ids.length === 1 ? ids[0] : null;",
            vec![json!(worker.name), json!(worker.id)],
        )
        .await;
    let replacement = Created {
        id: new_id.as_str().unwrap_or_default().to_owned(),
        name: worker.name.clone(),
        plaintext,
    };
    b.shot("04-rotated-replacement-shown-once").await;

    let r = get(
        &demo.addr,
        "/api/v1/knowledge/files",
        &replacement.plaintext,
    )
    .await;
    assert_eq!(r.status, 200, "the replacement key: {}", body(&r));
    let r = get(&demo.addr, "/api/v1/knowledge/files", &worker.plaintext).await;
    assert_eq!(r.status, 200, "the old key within its grace: {}", body(&r));

    b.dismiss_plaintext(&replacement).await;
    assert_eq!(b.status_of(&replacement.id).await, "Active");
    // The old row says it was rotated and offers no second rotation.
    b.until_js(
        "the old key's row to say Rotated",
        "const row = document.querySelector('tr[data-key-id=\"' + arguments[0] + '\"]');
         return row.querySelector('.cell-status').textContent.includes('Rotated')
           && !row.querySelector('[data-testid=\"key-rotate\"]');",
        vec![json!(worker.id)],
    )
    .await;
}

/// Delete asks first (saying the key is removed), then its row is gone and the key refused.
async fn deleting_removes_the_row(b: &Browser, demo: &Demo) {
    let temp = b
        .create_key("staging smoke test", &["boards:read"], "7d")
        .await;
    b.dismiss_plaintext(&temp).await;
    b.row_button(&temp.id, "key-delete").await;
    let question = b.confirm_text().await;
    assert!(
        question.contains("removed"),
        "the delete confirmation says {question:?}"
    );
    b.click("confirm-ok").await;
    b.until_js(
        "the deleted key's row to go",
        "return !document.querySelector('tr[data-key-id=\"' + arguments[0] + '\"]');",
        vec![json!(temp.id)],
    )
    .await;
    let r = get(&demo.addr, "/api/v1/boards", &temp.plaintext).await;
    assert_eq!(r.status, 401, "the deleted key: {}", body(&r));
}

/// A reload keeps the session (the management key is in sessionStorage) and lists the same
/// keys: the two demo keys, the revoked one, the rotated one and its replacement. Once the
/// server has written its last-used times, used keys show when and lose the "Never used" mark.
async fn the_list_comes_back_after_a_reload(b: &Browser, demo: &Demo) {
    let r = get(&demo.addr, "/api/v1/me", &demo.demo_key).await;
    assert_eq!(r.status, 200, "the demo key: {}", body(&r));
    // What the server does on its own every minute, and on shutdown.
    demo.verifier
        .flush_last_used()
        .await
        .expect("writing the last-used times");
    b.c.refresh().await.expect("reloading the page");
    b.until_js(
        "the list after a reload, without asking for the key again",
        "return document.getElementById('signin-view').hidden
           && document.querySelectorAll('[data-testid=\"key-row\"]').length === 5",
        vec![],
    )
    .await;
    b.usage_settled().await;
    b.no_error_banner("after a reload").await;
    let statuses = b
        .js(
            "return Array.from(document.querySelectorAll('[data-testid=\"key-status\"]'))
               .map(s => s.textContent);",
            vec![],
        )
        .await;
    let statuses: Vec<&str> = statuses
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        statuses.iter().filter(|s| **s == "Revoked").count(),
        1,
        "statuses {statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == "Active").count(),
        4,
        "statuses {statuses:?}"
    );
    for name in ["quickstart demo key", "CI deploy"] {
        b.until_js(
            &format!("{name:?} to show when it was last used"),
            "const row = Array.from(document.querySelectorAll('[data-testid=\"key-row\"]'))
               .find(r => r.querySelector('[data-testid=\"key-name\"]').textContent === arguments[0]);
             return !!row && !!row.querySelector('.cell-used time')
               && !row.querySelector('[data-testid=\"key-unused\"]');",
            vec![json!(name)],
        )
        .await;
    }
    b.shot("05-key-list").await;
}

/// The demo key served requests (counted, then written by the flush above): its row has a
/// 30-point sparkline. A key that served none carries the "unused" mark.
async fn usage_shows_a_sparkline_for_a_used_key_and_marks_an_unused_one(b: &Browser, demo: &Demo) {
    let made = send(
        &demo.addr,
        TestRequest::post("/api/v1/keys")
            .header("x-api-key", &demo.management_key)
            .json(r#"{"name":"never used","scopes":["boards:read"]}"#),
    )
    .await;
    assert_eq!(made.status, 201, "{}", body(&made));
    b.c.refresh().await.expect("reloading the page");
    b.until_js(
        "the list with the new key",
        "return document.querySelectorAll('[data-testid=\"key-row\"]').length === 6;",
        vec![],
    )
    .await;
    b.usage_settled().await;
    let listed = get(&demo.addr, "/api/v1/keys", &demo.management_key).await;
    let listed: Value = serde_json::from_slice(&listed.body).expect("the list is JSON");
    let keys = listed["data"].as_array().cloned().unwrap_or_default();
    let used = keys
        .iter()
        .find(|k| k["name"] == "quickstart demo key")
        .expect("the demo key is listed");
    assert!(
        used["usage"]["requests_24h"].as_u64().unwrap_or(0) >= 1,
        "the demo key's requests were counted: {used}"
    );
    let unused = keys
        .iter()
        .find(|k| k["usage"]["requests_30d"] == 0 && k["last_used_at"].is_null())
        .expect("a key that served no request");
    let points = b
        .until_js(
            "the demo key's sparkline",
            "const row = document.querySelector('[data-testid=\"key-row\"][data-key-id=\"' + arguments[0] + '\"]');
             const svg = row && row.querySelector('[data-testid=\"key-sparkline\"]');
             return svg ? svg.querySelectorAll('.spark-point').length : null;",
            vec![json!(used["id"])],
        )
        .await;
    assert_eq!(points, json!(30), "a 30-day sparkline has 30 points");
    b.until_js(
        "the unused mark on a key that served nothing",
        "const row = document.querySelector('[data-testid=\"key-row\"][data-key-id=\"' + arguments[0] + '\"]');
         return !!row && !!row.querySelector('[data-testid=\"key-unused\"]');",
        vec![json!(unused["id"])],
    )
    .await;
    b.shot("05-key-list").await;
}

/// A key named `<img src=x onerror=alert(1)>` shows exactly that text, in the list and in its
/// detail view; no `img` element appears and no dialog opens.
async fn a_name_that_looks_like_html_is_shown_as_text(b: &Browser) {
    const NAME: &str = "<img src=x onerror=alert(1)>";
    // create_key finds the row by comparing its name's textContent with NAME.
    let hostile = b.create_key(NAME, &["boards:read"], "").await;
    let shown_for = b.visible_text("new-key").await;
    assert!(
        shown_for.contains(NAME),
        "the plaintext panel says {shown_for:?}"
    );
    b.dismiss_plaintext(&hostile).await;

    let name_css = format!(
        r#"tr[data-key-id="{}"] [data-testid="key-name"]"#,
        hostile.id
    );
    let name =
        b.c.find(Locator::Css(&name_css))
            .await
            .expect("the row's name");
    assert_eq!(name.text().await.expect("the name's text"), NAME);
    b.no_img_and_no_dialog("in the list").await;
    b.shot("06-html-name-as-text").await;

    // The detail view puts the name in its heading and in the document title.
    name.click().await.expect("opening the key");
    b.until_js(
        "the detail view's heading",
        "const h = document.getElementById('detail-title');
         return !document.getElementById('detail-view').hidden && h.textContent === arguments[0]
           && !!document.querySelector('[data-testid=\"detail-status\"]');",
        vec![json!(NAME)],
    )
    .await;
    let title = b.c.title().await.expect("the document title");
    assert!(title.starts_with(NAME), "the document title is {title:?}");
    b.no_img_and_no_dialog("in the detail view").await;
    b.shot("07-detail-view").await;
    b.click("detail-back").await;
    b.visible("create-open").await;
}

// ------------------------------------------------------------------------------ the browser

/// A key created through the page.
#[derive(Debug)]
struct Created {
    id: String,
    name: String,
    plaintext: String,
}

/// The browser on the keys page, with the bounded waits every step uses.
struct Browser {
    c: Client,
    /// `http://127.0.0.1:PORT` of the demo app.
    base: String,
    shots: PathBuf,
    /// chromedriver's `127.0.0.1:PORT` and the session, for the Chrome-only commands.
    driver_addr: String,
    session: String,
}

fn by_testid(id: &str) -> String {
    format!(r#"[data-testid="{id}"]"#)
}

impl Browser {
    /// Polls `probe` until it gives a value, for at most [`UI_WAIT`].
    async fn until<T, F, Fut>(&self, what: &str, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>, CmdError>>,
    {
        let deadline = Instant::now() + UI_WAIT;
        loop {
            let last = match probe().await {
                Ok(Some(value)) => return value,
                Ok(None) => None,
                Err(e) => Some(e),
            };
            if Instant::now() >= deadline {
                let alert = self.c.get_alert_text().await.ok();
                panic!(
                    "waited {UI_WAIT:?} for {what}; last error: {last:?}; open dialog: {alert:?}"
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its value.
    async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.c
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls `script` until it returns something other than `null` or `false`.
    async fn until_js(&self, what: &str, script: &str, args: Vec<Value>) -> Value {
        self.until(what, || {
            let args = args.clone();
            async move {
                let v = self.c.execute(script, args).await?;
                Ok((!matches!(v, Value::Null | Value::Bool(false))).then_some(v))
            }
        })
        .await
    }

    /// The element with `data-testid`, once it is displayed.
    async fn visible(&self, testid: &str) -> Element {
        let css = by_testid(testid);
        self.until(&format!("[data-testid={testid}] to be displayed"), || {
            let css = css.clone();
            async move {
                let found = match self.c.find(Locator::Css(&css)).await {
                    Ok(el) => el,
                    Err(e) if e.is_no_such_element() => return Ok(None),
                    Err(e) => return Err(e),
                };
                Ok(found.is_displayed().await?.then_some(found))
            }
        })
        .await
    }

    async fn visible_text(&self, testid: &str) -> String {
        self.visible(testid)
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("the text of [data-testid={testid}]: {e}"))
    }

    async fn click(&self, testid: &str) {
        self.visible(testid)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking [data-testid={testid}]: {e}"));
    }

    /// Clicks the button `testid` in the row of key `id`.
    async fn row_button(&self, id: &str, testid: &str) {
        let css = format!(r#"tr[data-key-id="{id}"] {}"#, by_testid(testid));
        self.c
            .wait()
            .at_most(UI_WAIT)
            .for_element(Locator::Css(&css))
            .await
            .unwrap_or_else(|e| panic!("no {testid} button in the row of {id}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {testid} in the row of {id}: {e}"));
    }

    /// The confirmation dialog's question, once it is open.
    async fn confirm_text(&self) -> String {
        self.visible("confirm-ok").await;
        self.js(
            "return document.getElementById('confirm-text').textContent;",
            vec![],
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    async fn status_of(&self, id: &str) -> String {
        let css = format!(r#"tr[data-key-id="{id}"] {}"#, by_testid("key-status"));
        self.c
            .wait()
            .at_most(UI_WAIT)
            .for_element(Locator::Css(&css))
            .await
            .unwrap_or_else(|e| panic!("no status in the row of {id}: {e}"))
            .text()
            .await
            .expect("the status badge's text")
    }

    async fn until_status(&self, id: &str, status: &str) {
        self.until_js(
            &format!("the row of {id} to say {status}"),
            "const s = document.querySelector('tr[data-key-id=\"' + arguments[0] + '\"] [data-testid=\"key-status\"]');
             return !!s && s.textContent === arguments[1];",
            vec![json!(id), json!(status)],
        )
        .await;
    }

    /// Fills and submits the create form; returns the key the page then shows.
    async fn create_key(&self, name: &str, scopes: &[&str], expiry: &str) -> Created {
        self.click("create-open").await;
        self.visible("create-name")
            .await
            .send_keys(name)
            .await
            .expect("typing the name");
        for scope in scopes {
            self.click(&format!("scope-{scope}")).await;
        }
        if !expiry.is_empty() {
            self.visible("create-expiry")
                .await
                .select_by_value(expiry)
                .await
                .unwrap_or_else(|e| panic!("choosing expiry {expiry}: {e}"));
        }
        self.click("create-submit").await;
        let plaintext = self.shown_plaintext().await;
        let id = self
            .until_js(
                &format!("one row named {name:?}"),
                "const ids = Array.from(document.querySelectorAll('[data-testid=\"key-row\"]'))
                   .filter(r => r.querySelector('[data-testid=\"key-name\"]').textContent === arguments[0])
                   .map(r => r.dataset.keyId);
                 return ids.length === 1 ? ids[0] : null;",
                vec![json!(name)],
            )
            .await;
        Created {
            id: id.as_str().unwrap_or_default().to_owned(),
            name: name.to_owned(),
            plaintext,
        }
    }

    /// The plaintext in the once-shown panel, when the panel is up.
    async fn shown_plaintext(&self) -> String {
        self.until_js(
            "the new key's plaintext",
            "const panel = document.querySelector('[data-testid=\"new-key\"]');
             const value = document.querySelector('[data-testid=\"new-key-value\"]').textContent;
             return !panel.hidden && value ? value : null;",
            vec![],
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Hides the once-shown panel and checks the plaintext is nowhere in the DOM or storage.
    async fn dismiss_plaintext(&self, key: &Created) {
        self.click("new-key-dismiss").await;
        self.until_js(
            "the plaintext panel to close",
            "return document.querySelector('[data-testid=\"new-key\"]').hidden;",
            vec![],
        )
        .await;
        let source = self.c.source().await.expect("the page's DOM");
        assert!(
            !source.contains(&key.plaintext),
            "the plaintext of {:?} is still in the DOM",
            key.name
        );
        let stored = self
            .js(
                "return JSON.stringify(sessionStorage) + JSON.stringify(localStorage);",
                vec![],
            )
            .await;
        assert!(
            !stored.as_str().unwrap_or_default().contains(&key.plaintext),
            "the plaintext of {:?} is in the browser's storage",
            key.name
        );
    }

    /// Every usage cell has settled (a sparkline, or "No data" while `/usage` is missing).
    async fn usage_settled(&self) {
        self.until_js(
            "the usage cells to settle",
            "return document.querySelectorAll('[data-testid=\"key-row\"]').length > 0
               && document.querySelectorAll('#keys-body .spark-loading').length === 0;",
            vec![],
        )
        .await;
    }

    async fn no_error_banner(&self, when: &str) {
        let alert = self
            .js(
                "return document.getElementById('alert').textContent;",
                vec![],
            )
            .await;
        assert_eq!(
            alert.as_str(),
            Some(""),
            "the page shows an error banner {when}"
        );
    }

    /// No `img` element anywhere (the page has none of its own) and no dialog open.
    async fn no_img_and_no_dialog(&self, where_: &str) {
        let images = self
            .c
            .find_all(Locator::Css("img"))
            .await
            .expect("looking for img elements");
        assert!(
            images.is_empty(),
            "{} img element(s) {where_}",
            images.len()
        );
        match self.c.get_alert_text().await {
            Err(e) if e.is_no_such_alert() => {}
            Err(e) => panic!("asking for an open dialog {where_}: {e}"),
            Ok(text) => panic!("a dialog opened {where_}: {text:?}"),
        }
    }

    /// What the clipboard holds, read by the page with the permission granted over CDP.
    async fn clipboard_text(&self) -> Result<String, String> {
        let path = format!("/session/{}/goog/cdp/execute", self.session);
        let grant = json!({
            "cmd": "Browser.grantPermissions",
            "params": {
                "origin": self.base,
                "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"],
            }
        });
        let addr = self.driver_addr.clone();
        let granted =
            tokio::task::spawn_blocking(move || driver_call(&addr, "POST", &path, Some(grant)))
                .await
                .expect("the CDP request's thread");
        match granted {
            Ok((200, _)) => {}
            Ok((status, v)) => return Err(format!("granting clipboard access: {status} {v}")),
            Err(e) => return Err(format!("granting clipboard access: {e}")),
        }
        let v = self
            .c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 navigator.clipboard.readText().then(
                   t => done({ text: t }),
                   e => done({ error: String(e) }));",
                vec![],
            )
            .await
            .map_err(|e| e.to_string())?;
        match (v["text"].as_str(), v["error"].as_str()) {
            (Some(text), _) => Ok(text.to_owned()),
            (_, Some(e)) => Err(e.to_owned()),
            _ => Err(format!("unexpected answer {v}")),
        }
    }

    /// Saves a screenshot of the window as `NAME.png` in the screenshot folder.
    async fn shot(&self, name: &str) {
        let png = self.c.screenshot().await.expect("a screenshot");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}

// ------------------------------------------------------------------------------ setup

struct Binaries {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

/// Chromium and chromedriver, or `None` after the SKIPPED line when either is missing (a
/// failure instead under `KEYGATE_TEST_BROWSER=1`).
fn browser_binaries() -> Option<Binaries> {
    let from_env = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(default))
    };
    let chromium = from_env("KEYGATE_CHROMIUM", "/usr/bin/chromium");
    let chromedriver = from_env("KEYGATE_CHROMEDRIVER", "/usr/bin/chromedriver");
    if chromium.is_file() && chromedriver.is_file() {
        return Some(Binaries {
            chromium,
            chromedriver,
        });
    }
    if std::env::var("KEYGATE_TEST_BROWSER").as_deref() == Ok("1") {
        panic!(
            "KEYGATE_TEST_BROWSER=1 but {} or {} is missing (apt-get install chromium chromium-driver)",
            chromium.display(),
            chromedriver.display()
        );
    }
    // Straight to stderr, past libtest's capture: the line shows without --nocapture.
    let _ = writeln!(std::io::stderr(), "{SKIP_LINE}");
    None
}

/// `target/keys-page/` of this workspace (or of `CARGO_TARGET_DIR`), created.
fn screenshot_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    let dir = target.join("keys-page");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir.canonicalize().unwrap_or(dir)
}

fn capabilities(chromium: &Path, profile: &Path) -> serde_json::Map<String, Value> {
    let caps = json!({
        "browserName": "chrome",
        // A dialog stays open instead of being dismissed by the next command, so the check
        // for one sees it.
        "unhandledPromptBehavior": "ignore",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    match caps {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object"),
    }
}

/// The axum quickstart's app on 127.0.0.1 over a `memory:` store with the demo keys.
struct Demo {
    addr: String,
    management_key: String,
    demo_key: String,
    verifier: keygate::Verifier,
}

async fn serve_demo() -> Demo {
    let store = open_store("memory:").await.expect("a memory store");
    let verifier = build_verifier(store.clone(), Duration::from_secs(30));
    let manager = KeyManager::new(store).with_verifier(&verifier);
    let keys = bootstrap_demo_keys(&manager)
        .await
        .expect("creating the demo keys")
        .expect("an empty store gets the demo keys");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port on 127.0.0.1");
    let addr = listener
        .local_addr()
        .expect("the bound address")
        .to_string();
    let app = axum_quickstart::app(DemoState::new(verifier.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Demo {
        addr,
        management_key: keys.management.key.expose_secret().to_owned(),
        demo_key: keys.demo.key.expose_secret().to_owned(),
        verifier,
    }
}

/// chromedriver on a free 127.0.0.1 port. Dropping it ends the browser session (Chromium
/// quits) and kills chromedriver, also when the test fails; a Chromium left behind anyway (a
/// killed chromedriver does not take its browser along) is found by its profile and killed.
struct Driver {
    child: Child,
    /// The `--user-data-dir` of the Chromium this test starts.
    profile: PathBuf,
    /// `127.0.0.1:PORT`
    addr: String,
    /// `http://127.0.0.1:PORT`
    url: String,
    session: Option<String>,
}

impl Driver {
    async fn start(bin: &Path, profile: &Path, log: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log_file = File::create(log).expect("chromedriver's log file");
        let child = Command::new(bin)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("the log file again"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let addr = format!("127.0.0.1:{port}");
        let mut driver = Driver {
            child,
            profile: profile.to_owned(),
            url: format!("http://{addr}"),
            addr,
            session: None,
        };
        let deadline = Instant::now() + START_WAIT;
        loop {
            if let Some(status) = driver.child.try_wait().expect("chromedriver's state") {
                panic!("chromedriver exited ({status}); see {}", log.display());
            }
            let ready = tokio::task::spawn_blocking({
                let addr = driver.addr.clone();
                move || driver_call(&addr, "GET", "/status", None)
            })
            .await
            .expect("the status request");
            if let Ok((200, v)) = ready {
                if v["value"]["ready"] == true {
                    return driver;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready within {START_WAIT:?}; see {}",
                log.display()
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let _ = driver_call(&self.addr, "DELETE", &format!("/session/{session}"), None);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in chromium_pids(&self.profile) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Processes whose command line names `--user-data-dir=PROFILE` (from /proc; none elsewhere).
fn chromium_pids(profile: &Path) -> Vec<String> {
    let flag = format!("--user-data-dir={}", profile.display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.split(|b| *b == 0).any(|arg| arg == flag.as_bytes()))
        })
        .collect()
}

// ------------------------------------------------------------------------------ HTTP

async fn send(addr: &str, req: TestRequest) -> TestResponse {
    let addr = addr.to_owned();
    let what = format!("{} {}", req.method, req.path);
    tokio::task::spawn_blocking(move || wire::send(&addr, &req, HTTP_TIMEOUT))
        .await
        .expect("the request's thread")
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// `GET path` on the demo API with `key` in `X-Api-Key`.
async fn get(addr: &str, path: &str, key: &str) -> TestResponse {
    send(addr, TestRequest::get(path).header("x-api-key", key)).await
}

/// One request to chromedriver, which keeps connections open: the answer is read by its
/// `Content-Length`. Blocking; bounded by [`HTTP_TIMEOUT`].
fn driver_call(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> std::io::Result<(u16, Value)> {
    use std::io::{BufRead, BufReader, Error, Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::other(format!("bad status line {line:?}")))?;
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().map_err(Error::other)?;
            }
        }
    }
    let mut answer = vec![0; length];
    reader.read_exact(&mut answer)?;
    Ok((
        status,
        serde_json::from_slice(&answer).unwrap_or(Value::Null),
    ))
}

fn body(r: &TestResponse) -> String {
    format!("{} {}", r.status, String::from_utf8_lossy(&r.body))
}

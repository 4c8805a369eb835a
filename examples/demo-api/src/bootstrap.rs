//! The demo key: created on an empty store, printed once with ready `curl` lines.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use keygate::keys_api::{DEFAULT_PAGE_PATH, MANAGE_SCOPE};
use keygate::{CreatedKey, KeyFilter, KeyManager, ManageError, NewKey};

/// Organization of the demo key.
pub const DEMO_ORG: &str = "demo";
/// Name of the demo key.
pub const DEMO_KEY_NAME: &str = "quickstart demo key";
/// Every scope the demo API knows; the demo key gets all of them.
pub const DEMO_SCOPES: [&str; 6] = [
    "entities:read",
    "entities:write",
    "knowledge:read",
    "knowledge:write",
    "boards:read",
    "boards:write",
];

/// Name of the management key.
pub const MANAGEMENT_KEY_NAME: &str = "quickstart management key";

/// The keys a quickstart creates on an empty store, each shown once.
#[derive(Debug)]
pub struct DemoKeys {
    /// Every demo scope: for the demo API.
    pub demo: CreatedKey,
    /// `keys:manage` plus every demo scope: for the Keys API and page.
    pub management: CreatedKey,
}

/// Creates the demo key and the management key when the store holds no key at all; `None`
/// when it already has keys (the plaintext of an existing key cannot be shown again).
pub async fn bootstrap_demo_keys(manager: &KeyManager) -> Result<Option<DemoKeys>, ManageError> {
    if !manager.list(&KeyFilter::all()).await?.is_empty() {
        return Ok(None);
    }
    let created_by = serde_json::json!({ "created_by": "quickstart" });
    let demo = NewKey::new(DEMO_KEY_NAME, DEMO_ORG)
        .owner("demo-user")
        .scopes(DEMO_SCOPES)?
        .metadata(created_by.clone());
    let management = NewKey::new(MANAGEMENT_KEY_NAME, DEMO_ORG)
        .owner("demo-user")
        .scopes(DEMO_SCOPES.iter().copied().chain([MANAGE_SCOPE]))?
        .metadata(created_by);
    Ok(Some(DemoKeys {
        demo: manager.create(demo).await?,
        management: manager.create(management).await?,
    }))
}

/// The address to put in `curl` lines: a wildcard listen address is reached via loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

/// What a quickstart prints after creating the demo keys: the demo key (shown this once) and
/// `curl` lines that work as printed against `addr`, then the management key and the URL of
/// the keys page, and how to make more keys in the same store (`database_url`). Every line
/// that is a command starts with `curl` after its indentation.
pub fn banner(key: &str, management_key: &str, addr: SocketAddr, database_url: &str) -> String {
    let base = format!("http://{}", reachable(addr));
    let scopes = DEMO_SCOPES.join(" ");
    let store = if database_url == crate::DEFAULT_DATABASE_URL {
        String::new()
    } else {
        // The password stays out of the terminal and its scrollback: put it back to run it.
        format!(
            " --database-url '{}'",
            keygate_sqlx::redact_url(database_url)
        )
    };
    format!(
        "\
Created a demo API key for org \"{DEMO_ORG}\" with scopes: {scopes}
It is shown only this once (only its hash is stored):

    {key}

Try it:

    # no key needed
    curl -s {base}/health
    # who am I?
    curl -s -H \"X-Api-Key: {key}\" {base}/api/v1/me
    # create an entity, then list your org's entities (Authorization: Bearer works too)
    curl -s -H \"X-Api-Key: {key}\" -H \"Content-Type: application/json\" -d '{{\"name\":\"first entity\"}}' {base}/api/v1/entities
    curl -s -H \"Authorization: Bearer {key}\" {base}/api/v1/entities
    # no key: 401 with a JSON error
    curl -s {base}/api/v1/boards

Manage keys in the browser: open {base}{DEFAULT_PAGE_PATH} and paste this management key
(scope keys:manage plus every demo scope; also shown only this once):

    {management_key}

More keys (scopes, expiry, revocation) with the admin CLI against the same store:
    cargo run -p keygate-cli -- create --name my-key --org {DEMO_ORG} --scope boards:read{store}
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_curl_lines_use_the_real_address_and_the_key() {
        let b = banner(
            "mk_live_0123456789abcdef.SECRET",
            "mk_live_fedcba9876543210.MANAGE",
            "0.0.0.0:8080".parse().unwrap(),
            "sqlite://other.db",
        );
        let curls: Vec<&str> = b
            .lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with("curl "))
            .collect();
        assert_eq!(curls.len(), 5);
        assert!(curls.iter().all(|l| l.contains("http://127.0.0.1:8080/")));
        assert!(curls[1].contains("X-Api-Key: mk_live_0123456789abcdef.SECRET"));
        assert!(b.contains("--database-url 'sqlite://other.db'"));
        assert!(b.contains("http://127.0.0.1:8080/keys"));
        let demo_at = b.find("0123456789abcdef").unwrap();
        assert!(b.find("mk_live_fedcba9876543210.MANAGE").unwrap() > demo_at);
    }

    #[test]
    fn the_banner_never_prints_the_database_password() {
        let b = banner(
            "mk_live_0123456789abcdef.SECRET",
            "mk_live_fedcba9876543210.MANAGE",
            "127.0.0.1:8080".parse().unwrap(),
            "postgres://keygate:s3cret@db:5432/keygate",
        );
        assert!(!b.contains("s3cret"), "{b}");
        assert!(b.contains("--database-url 'postgres://keygate:***@db:5432/keygate'"));
    }
}

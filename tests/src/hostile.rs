//! Hostile input (issue 7): what an attacker, a broken client or a confused proxy sends.
//!
//! Every case states its status, `error.code`, `details.reason` and the challenge; the runner
//! also checks through the fixture's [`CountingStore`](crate::store::CountingStore) that the
//! store saw no write, and no read at all where the credential is missing or malformed
//! ([`StoreAccess::for_reason`](crate::case::StoreAccess::for_reason)).
//!
//! Only bytes the `http` crates let a request carry can go through an adapter: visible ASCII,
//! space, tab and obs-text (0x80–0xFF). NUL, other control characters and DEL are refused by
//! `HeaderValue::from_bytes` (and by hyper's parser on the wire), so they are covered at the
//! core level and over a raw socket instead (`tests/hostile_bytes.rs`).

use keygate::token::{with_checksum, CHECKSUM_LEN, SECRET_LEN};
use serde_json::json;

use crate::case::{case, BodyCheck, Case, Expect, HeaderCheck, ME};
use crate::driver::TestRequest;
use crate::fixture::Keys;

/// `<prefix>_<id>.<secret>` with a correct checksum: passes the typo check, so only the
/// later steps (prefix, id shape, store, hash) can refuse it.
fn forge(prefix: &str, id: &str, secret: &str) -> String {
    with_checksum(&format!("{prefix}_{id}.{secret}"))
}

/// A valid key used where a key is refused: 401 `malformed_key` with the `invalid_token`
/// challenge (and, through the reason, no store work).
fn malformed() -> Expect {
    Expect::refused("malformed_key")
}

/// The valid key's principal: 200 for org `acme`.
fn accepted(id: &str) -> Expect {
    Expect::ok(200)
        .body(BodyCheck::Equals("/org", json!("acme")))
        .body(BodyCheck::Equals("/id", json!(id)))
}

/// Every hostile case, over the fixture's keys (at least 60; see `tests/table.rs`).
pub fn hostile_cases(k: &Keys) -> Vec<Case> {
    let me = || TestRequest::get(ME);
    let key = |v: &[u8]| me().header("x-api-key", v);
    let auth = |v: &[u8]| me().header("authorization", v);
    let full = k.full.as_str();
    let id = k.full_id.as_str();
    // `mk_live_<id>` and `<secret><checksum>` of the valid key.
    let (head, tail) = full.split_once('.').unwrap_or((full, ""));
    let secret = tail.get(..SECRET_LEN).unwrap_or(tail);
    let other_secret = {
        // The valid secret with its first character changed: one character off.
        let first = if secret.starts_with('A') { "B" } else { "A" };
        format!("{first}{}", secret.get(1..).unwrap_or(""))
    };
    let ok = || accepted(id);

    vec![
        // --- repeated headers and header precedence
        case(
            "X-Api-Key twice, valid then garbage: 401 malformed_key",
            me().header("x-api-key", full)
                .header("x-api-key", "garbage"),
            malformed(),
        ),
        case(
            "X-Api-Key twice, garbage then valid: 401 malformed_key",
            me().header("x-api-key", "garbage")
                .header("x-api-key", full),
            malformed(),
        ),
        case(
            "X-Api-Key three times, all valid: 401 malformed_key",
            me().header("x-api-key", full)
                .header("x-api-key", full)
                .header("x-api-key", full),
            malformed(),
        ),
        case(
            "X-Api-Key and X-API-KEY are one header name, so twice: 401 malformed_key",
            me().header("x-api-key", full).header("X-API-KEY", full),
            malformed(),
        ),
        case(
            "Authorization twice, both valid Bearer: 401 malformed_key",
            me().header("authorization", format!("Bearer {full}"))
                .header("authorization", format!("Bearer {full}")),
            malformed(),
        ),
        case(
            "Authorization twice, valid Bearer then Basic: 401 malformed_key",
            me().header("authorization", format!("Bearer {full}"))
                .header("authorization", "Basic dXNlcjpwYXNz"),
            malformed(),
        ),
        case(
            "valid X-Api-Key wins even over two Authorization headers: 200",
            me().header("x-api-key", full)
                .header("authorization", "Bearer garbage")
                .header("authorization", "Basic dXNlcjpwYXNz"),
            ok(),
        ),
        case(
            "empty X-Api-Key still wins over a valid Bearer: 401 malformed_key",
            me().header("x-api-key", "")
                .header("authorization", format!("Bearer {full}")),
            malformed(),
        ),
        case(
            "X-API-KEY (header names are case-insensitive) with a valid key: 200",
            me().header("X-API-KEY", full),
            ok(),
        ),
        case(
            "valid key in an Api-Key header (not ours): 401 missing_credentials",
            me().header("api-key", full),
            Expect::missing(),
        ),
        case(
            "valid key in X-Auth-Token (not ours): 401 missing_credentials",
            me().header("x-auth-token", full),
            Expect::missing(),
        ),
        case(
            "valid Bearer in Proxy-Authorization (not ours): 401 missing_credentials",
            me().header("proxy-authorization", format!("Bearer {full}")),
            Expect::missing(),
        ),
        case(
            "valid key in a cookie is never read: 401 missing_credentials",
            me().header("cookie", format!("x-api-key={full}; api_key={full}")),
            Expect::missing(),
        ),
        case(
            "valid key as access_token in the query string is never read: 401 missing_credentials",
            TestRequest::get(&format!("{ME}?access_token={full}")),
            Expect::missing(),
        ),
        // --- lengths
        case(
            "X-Api-Key of exactly 128 bytes that is not a key: 401 malformed_key",
            key(&[b'a'; 128]),
            malformed(),
        ),
        case(
            "X-Api-Key of 129 bytes: 401 malformed_key",
            key(&[b'a'; 129]),
            malformed(),
        ),
        case(
            "valid key padded to 129 bytes: 401 malformed_key",
            key(format!("{full}{}", "A".repeat(129 - full.len())).as_bytes()),
            malformed(),
        ),
        case(
            "64 KB X-Api-Key: 401 malformed_key",
            key(&vec![b'k'; 64 * 1024]),
            malformed(),
        ),
        case(
            "10 KB Bearer token: 401 malformed_key",
            auth(format!("Bearer {}", "b".repeat(10 * 1024)).as_bytes()),
            malformed(),
        ),
        case(
            "64 KB Authorization header: 401 malformed_key",
            auth(format!("Bearer {}", "c".repeat(64 * 1024)).as_bytes()),
            malformed(),
        ),
        case(
            "valid key followed by 10 KB of padding: 401 malformed_key",
            key(format!("{full}{}", "=".repeat(10 * 1024)).as_bytes()),
            malformed(),
        ),
        // --- whitespace and control characters the http crates accept (tab, obs-text)
        case(
            "tab inside the key: 401 malformed_key",
            key(format!("{head}\t.{tail}").as_bytes()),
            malformed(),
        ),
        case(
            "space inside the key: 401 malformed_key",
            key(format!("{head} .{tail}").as_bytes()),
            malformed(),
        ),
        case(
            "leading and trailing spaces around a valid key are trimmed: 200",
            key(format!("   {full}   ").as_bytes()),
            ok(),
        ),
        case(
            "leading and trailing tabs around a valid key are trimmed: 200",
            key(format!("\t{full}\t").as_bytes()),
            ok(),
        ),
        case(
            "X-Api-Key of spaces only: 401 malformed_key",
            key(b"     "),
            malformed(),
        ),
        case(
            "obs-text byte 0x80 inside the key: 401 malformed_key",
            key(&[head.as_bytes(), b"\x80.", tail.as_bytes()].concat()),
            malformed(),
        ),
        case(
            "obs-text byte 0xFF at the end of a valid key: 401 malformed_key",
            key(&[full.as_bytes(), b"\xff"].concat()),
            malformed(),
        ),
        // --- homoglyphs and case
        case(
            "Cyrillic м for m in the prefix: 401 malformed_key",
            key(full.replacen('m', "\u{43c}", 1).as_bytes()),
            malformed(),
        ),
        case(
            "fullwidth ｍｋ＿ｌｉｖｅ prefix: 401 malformed_key",
            key(
                format!("\u{ff4d}\u{ff4b}\u{ff3f}\u{ff4c}\u{ff49}\u{ff56}\u{ff45}_{id}.{tail}")
                    .as_bytes(),
            ),
            malformed(),
        ),
        case(
            "Cyrillic а inside the id: 401 malformed_key",
            key(format!("mk_live_\u{430}{}.{tail}", &id[1..]).as_bytes()),
            malformed(),
        ),
        case(
            "zero-width space after the prefix: 401 malformed_key",
            key(full.replacen("mk_live_", "mk_live_\u{200b}", 1).as_bytes()),
            malformed(),
        ),
        case(
            "ASCII look-alike prefix mk_1ive with a correct checksum: 401 malformed_key",
            key(forge("mk_1ive", id, secret).as_bytes()),
            malformed(),
        ),
        case(
            "ASCII look-alike prefix rnk_live with a correct checksum: 401 malformed_key",
            key(forge("rnk_live", id, secret).as_bytes()),
            malformed(),
        ),
        case(
            "uppercase prefix MK_LIVE: 401 malformed_key",
            key(full.replacen("mk_live", "MK_LIVE", 1).as_bytes()),
            malformed(),
        ),
        case(
            "whole key uppercased: 401 malformed_key",
            key(full.to_ascii_uppercase().as_bytes()),
            malformed(),
        ),
        case(
            "whole key lowercased: 401 malformed_key",
            key(full.to_ascii_lowercase().as_bytes()),
            malformed(),
        ),
        case(
            "uppercase hex id with a correct checksum: 401 malformed_key",
            key(forge("mk_live", &id.to_ascii_uppercase(), secret).as_bytes()),
            malformed(),
        ),
        // --- truncated keys
        case(
            "valid key without its checksum: 401 malformed_key",
            key(&full.as_bytes()[..full.len() - CHECKSUM_LEN]),
            malformed(),
        ),
        case(
            "valid key missing its last character: 401 malformed_key",
            key(&full.as_bytes()[..full.len() - 1]),
            malformed(),
        ),
        case(
            "valid key cut right after the dot (no secret): 401 malformed_key",
            key(format!("{head}.").as_bytes()),
            malformed(),
        ),
        case(
            "valid key cut before the dot (prefix and id only): 401 malformed_key",
            key(head.as_bytes()),
            malformed(),
        ),
        case(
            "prefix only: 401 malformed_key",
            key(b"mk_live_"),
            malformed(),
        ),
        case(
            "id one digit short, with a correct checksum: 401 malformed_key",
            key(forge("mk_live", &id[1..], secret).as_bytes()),
            malformed(),
        ),
        case(
            "secret one character short, with a correct checksum: 401 malformed_key",
            key(forge("mk_live", id, &secret[1..]).as_bytes()),
            malformed(),
        ),
        case(
            "no id between prefix and dot, with a correct checksum: 401 malformed_key",
            key(with_checksum(&format!("mk_live_.{secret}")).as_bytes()),
            malformed(),
        ),
        // --- over-long and doubled keys
        case(
            "valid key with one extra character: 401 malformed_key",
            key(format!("{full}0").as_bytes()),
            malformed(),
        ),
        case(
            "valid key twice, back to back: 401 malformed_key",
            key(format!("{full}{full}").as_bytes()),
            malformed(),
        ),
        case(
            "valid key twice, comma-joined as a proxy would merge headers: 401 malformed_key",
            key(format!("{full},{full}").as_bytes()),
            malformed(),
        ),
        case(
            "valid key twice, space-separated: 401 malformed_key",
            key(format!("{full} {full}").as_bytes()),
            malformed(),
        ),
        case(
            "secret twice as long, with a correct checksum: 401 malformed_key",
            key(forge("mk_live", id, &format!("{secret}{secret}")).as_bytes()),
            malformed(),
        ),
        // --- injection-looking values
        case(
            "SQL-looking id mk_live_' OR 1=1--: 401 malformed_key",
            key(b"mk_live_' OR 1=1--.xxx"),
            malformed(),
        ),
        case(
            "SQL-looking id mk_live_1;DROP TABLE keys: 401 malformed_key",
            key(b"mk_live_1;DROP TABLE api_keys;--.x"),
            malformed(),
        ),
        case(
            "SQL-looking id without spaces, with a correct checksum: 401 malformed_key",
            key(forge("mk_live", "1'OR'1'='1'--", secret).as_bytes()),
            malformed(),
        ),
        case(
            "SQL wildcard id mk_live_%: 401 malformed_key",
            key(forge("mk_live", "%", secret).as_bytes()),
            malformed(),
        ),
        case(
            "path traversal as a key: 401 malformed_key",
            key(b"../../../../etc/passwd"),
            malformed(),
        ),
        case(
            "path traversal inside the id: 401 malformed_key",
            key(forge("mk_live", "..%2f..%2fetc", secret).as_bytes()),
            malformed(),
        ),
        case(
            "JSON injection in the key: 401 malformed_key, the envelope stays intact",
            key(format!(r#"mk_live_"}},"reason":"ok","x":".{tail}"#).as_bytes()),
            malformed().body(BodyCheck::Equals("/error/code", json!("UNAUTHORIZED"))),
        ),
        case(
            "a JSON object as the key: 401 malformed_key",
            key(format!(r#"{{"key":"{full}"}}"#).as_bytes()),
            malformed(),
        ),
        case(
            "literal \\u escapes in the key: 401 malformed_key",
            key(full
                .replacen("mk_live_", r"mk\u005flive\u005f", 1)
                .as_bytes()),
            malformed(),
        ),
        case(
            "percent-encoded key: 401 malformed_key",
            key(full.replace('_', "%5F").as_bytes()),
            malformed(),
        ),
        case(
            "JSON injection in x-request-id is not echoed",
            me().header("x-request-id", r#"a","injected":"1"#),
            Expect::missing().header(HeaderCheck::NotEquals(
                "x-request-id",
                r#"a","injected":"1"#.into(),
            )),
        ),
        case(
            "10 KB x-request-id is not echoed",
            me().header("x-request-id", "r".repeat(10 * 1024)),
            Expect::missing().header(HeaderCheck::NotEquals(
                "x-request-id",
                "r".repeat(10 * 1024),
            )),
        ),
        // --- well-formed forgeries: the store is read, the answer reveals nothing
        case(
            "valid id with a one-character-off secret, checksum recomputed: 401 invalid_key",
            key(forge("mk_live", id, &other_secret).as_bytes()),
            Expect::refused("invalid_key"),
        ),
        case(
            "the live key's id and secret under the mk_test prefix: 401 invalid_key",
            key(forge("mk_test", id, secret).as_bytes()),
            Expect::refused("invalid_key"),
        ),
        case(
            "wrong secret for a revoked key: 401 invalid_key, not revoked_key",
            key(forge("mk_live", &k.revoked_id, &"R".repeat(SECRET_LEN)).as_bytes()),
            Expect::refused("invalid_key"),
        ),
        case(
            "wrong secret for an expired key: 401 invalid_key, not expired_key",
            key(forge("mk_live", &k.expired_id, &"E".repeat(SECRET_LEN)).as_bytes()),
            Expect::refused("invalid_key"),
        ),
        case(
            "unknown id under the other accepted prefix mk_test: 401 invalid_key",
            key(forge("mk_test", "0000000000000000", secret).as_bytes()),
            Expect::refused("invalid_key"),
        ),
        case(
            "forged secret for an id whose store read fails: 503, never 401",
            key(forge("mk_live", &k.outage_id, &"O".repeat(SECRET_LEN)).as_bytes()),
            Expect::error(503, "SERVICE_UNAVAILABLE", "store_unavailable")
                .header(HeaderCheck::Present("retry-after")),
        ),
        // --- another environment's prefix: refused before the store
        case(
            "the live key's id under the qapi prefix: 401 malformed_key",
            key(forge("qapi", id, secret).as_bytes()),
            malformed(),
        ),
        case(
            "the live key's id under the qmq prefix: 401 malformed_key",
            key(forge("qmq", id, secret).as_bytes()),
            malformed(),
        ),
        case(
            "a prefix that extends an accepted one (mk_live_x): 401 malformed_key",
            key(forge("mk_live_x", id, secret).as_bytes()),
            malformed(),
        ),
        case(
            "the qapi key as a Bearer token: 401 malformed_key",
            auth(format!("Bearer {}", k.wrong_prefix).as_bytes()),
            malformed(),
        ),
        // --- Authorization schemes and spacing
        case(
            "BEARER in capitals: 200",
            auth(format!("BEARER {full}").as_bytes()),
            ok(),
        ),
        case(
            "bEaReR in mixed case: 200",
            auth(format!("bEaReR {full}").as_bytes()),
            ok(),
        ),
        case(
            "Bearer with three spaces before the key: 200",
            auth(format!("Bearer   {full}").as_bytes()),
            ok(),
        ),
        case(
            "Bearer with spaces around the whole value: 200",
            auth(format!("  Bearer {full}  ").as_bytes()),
            ok(),
        ),
        case(
            "Bearer separated by a tab (not a space): 401 malformed_key",
            auth(format!("Bearer\t{full}").as_bytes()),
            malformed(),
        ),
        case(
            "Bearer glued to the key: 401 malformed_key",
            auth(format!("Bearer{full}").as_bytes()),
            malformed(),
        ),
        case(
            "Bearer with a colon: 401 malformed_key",
            auth(format!("Bearer: {full}").as_bytes()),
            malformed(),
        ),
        case(
            "Bearer with two tokens: 401 malformed_key",
            auth(format!("Bearer {full} {full}").as_bytes()),
            malformed(),
        ),
        case(
            "Bearer Bearer key: 401 malformed_key",
            auth(format!("Bearer Bearer {full}").as_bytes()),
            malformed(),
        ),
        case(
            "Bearer with a quoted key: 401 malformed_key",
            auth(format!("Bearer \"{full}\"").as_bytes()),
            malformed(),
        ),
        case(
            "Bearer with a lowercased key: 401 malformed_key",
            auth(format!("Bearer {}", full.to_ascii_lowercase()).as_bytes()),
            malformed(),
        ),
        case(
            "Bearer with spaces only after it: 401 malformed_key",
            auth(b"Bearer      "),
            malformed(),
        ),
        case(
            "Token scheme with a valid key: 401 malformed_key",
            auth(format!("Token {full}").as_bytes()),
            malformed(),
        ),
        case(
            "ApiKey scheme with a valid key: 401 malformed_key",
            auth(format!("ApiKey {full}").as_bytes()),
            malformed(),
        ),
        case(
            "Basic scheme carrying the key as the user: 401 malformed_key",
            auth(format!("Basic {full}:").as_bytes()),
            malformed(),
        ),
        case(
            "Digest scheme: 401 malformed_key",
            auth(br#"Digest username="admin", realm="api", nonce="x", response="y""#),
            malformed(),
        ),
        case(
            "the bare key in Authorization without a scheme: 401 malformed_key",
            auth(full.as_bytes()),
            malformed(),
        ),
        case(
            "empty Authorization: 401 malformed_key",
            auth(b""),
            malformed(),
        ),
        case(
            "X-Api-Key carrying a Bearer value: 401 malformed_key",
            key(format!("Bearer {full}").as_bytes()),
            malformed(),
        ),
    ]
}

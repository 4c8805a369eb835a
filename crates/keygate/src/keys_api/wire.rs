//! The Keys API's JSON: the Key object, request bodies, query strings and the page cursor.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::audit::AuditEvent;
use crate::duration::parse_duration;
use crate::manage::{DailyUsage, KeyRequest, DEFAULT_PREFIX};
use crate::rate_limit::RateLimit;
use crate::record::{KeyRecord, KeyStatus};
use crate::scope::ScopeSet;
use crate::store::{KeyUpdate, PagePosition, UsageTotals};

/// Longest key name accepted by the Keys API, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Default and largest page size of `GET /api/v1/keys`.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size of `GET /api/v1/keys`.
pub const MAX_LIMIT: u32 = 200;
/// Grace period of a rotation when the body names none.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);

/// A request the API refuses before touching the store: 400 with `details.reason` and,
/// for `invalid_field`, `details.field`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BadRequest {
    /// Not JSON, or wrong types.
    Body(String),
    /// One field is not acceptable.
    Field(&'static str, String),
}

fn field(name: &'static str, message: impl Into<String>) -> BadRequest {
    BadRequest::Field(name, message.into())
}

/// RFC 3339, UTC, whole seconds: `2026-11-30T10:00:00Z`.
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn opt_string(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}

/// An API key as the Keys API shows it: never its hash, never its plaintext.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Key)]
pub(crate) struct KeyView {
    /// The public id (16 lowercase hex digits), also inside the key itself.
    #[schema(pattern = "^[0-9a-f]{16}$")]
    id: String,
    /// Human name.
    name: String,
    /// Organization.
    org: String,
    /// Team, if any.
    team: Option<String>,
    /// The user the key acts for.
    owner: Option<String>,
    /// Token prefix, naming the environment (`mk_live`).
    prefix: String,
    /// Granted scopes, sorted.
    scopes: Vec<String>,
    /// Status now.
    status: KeyStatus,
    /// Creation time (RFC 3339, UTC).
    #[schema(format = DateTime)]
    created_at: String,
    /// Expiry (RFC 3339, UTC), or null.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// Last use (RFC 3339, UTC; written behind, so it may lag a minute), or null.
    #[schema(format = DateTime)]
    last_used_at: Option<String>,
    /// Revocation time, or null.
    #[schema(format = DateTime)]
    revoked_at: Option<String>,
    /// The key this one replaced by rotation.
    rotated_from: Option<String>,
    /// The key that replaced this one by rotation.
    rotated_to: Option<String>,
    /// The key's own rate limit (`1000/1m`), or null.
    #[schema(example = "1000/1m")]
    rate_limit: Option<String>,
    /// Request counts (written behind: up to a minute late).
    usage: UsageView,
}

/// Requests of one key.
#[derive(Debug, Default, Serialize, ToSchema)]
#[schema(as = Usage)]
pub(crate) struct UsageView {
    /// Accepted requests in the last 24 hours.
    requests_24h: u64,
    /// Accepted requests in the last 30 days.
    requests_30d: u64,
    /// Refused requests in the last 24 hours.
    refused_24h: u64,
}

impl UsageView {
    /// The totals of one key (zero when it has none).
    pub(crate) fn of(totals: Option<&UsageTotals>) -> Self {
        totals.map_or_else(UsageView::default, |t| UsageView {
            requests_24h: t.requests_24h,
            requests_30d: t.requests_30d,
            refused_24h: t.refused_24h,
        })
    }
}

/// Requests of one key on one UTC day.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = UsageDay)]
pub(crate) struct DayView {
    /// The day (UTC), `2026-11-30`.
    #[schema(format = Date)]
    day: String,
    /// Accepted requests.
    requests: u64,
    /// Refused requests (wrong secret, expired, revoked, missing scope, rate limited).
    refused: u64,
}

/// Daily requests of one key, oldest first, one entry per day.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = UsageSeries)]
pub(crate) struct SeriesView {
    /// One entry per day, oldest first, ending today (UTC).
    data: Vec<DayView>,
}

impl SeriesView {
    pub(crate) fn of(days: &[DailyUsage]) -> Self {
        SeriesView {
            data: days
                .iter()
                .map(|d| DayView {
                    day: d.day.format("%Y-%m-%d").to_string(),
                    requests: d.requests,
                    refused: d.refused,
                })
                .collect(),
        }
    }
}

impl KeyView {
    /// The view of `r` at `now` with its usage totals.
    pub(crate) fn of(r: &KeyRecord, now: DateTime<Utc>, usage: Option<&UsageTotals>) -> Self {
        KeyView {
            id: r.id.clone(),
            name: r.name.clone(),
            org: r.org.clone(),
            team: r.team.clone(),
            owner: r.owner.clone(),
            prefix: r.prefix.clone(),
            // ScopeSet keeps its scopes sorted.
            scopes: r.scopes.to_strings(),
            status: r.status_at(now),
            created_at: time(r.created_at),
            expires_at: r.expires_at.map(time),
            last_used_at: r.last_used_at.map(time),
            revoked_at: r.revoked_at.map(time),
            rotated_from: opt_string(r.rotated_from.as_deref()),
            rotated_to: opt_string(r.rotated_to.as_deref()),
            rate_limit: r.rate_limit.map(|l| l.to_string()),
            usage: UsageView::of(usage),
        }
    }
}

/// A key just created or rotated, with its plaintext: the only time it is ever shown.
#[derive(Serialize, ToSchema)]
#[schema(as = CreatedKey)]
pub(crate) struct CreatedView {
    #[serde(flatten)]
    pub(crate) view: KeyView,
    /// The plaintext key. Store it now: it cannot be shown again.
    pub(crate) key: String,
}

impl std::fmt::Debug for CreatedView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedView")
            .field("view", &self.view)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// One key with its audit trail.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = KeyWithAudit)]
pub(crate) struct DetailView {
    #[serde(flatten)]
    pub(crate) view: KeyView,
    /// Lifecycle events, oldest first.
    pub(crate) audit: Vec<AuditView>,
}

/// One lifecycle event.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditEntry)]
pub(crate) struct AuditView {
    /// `created`, `revoked`, `deleted`, `rotated`, `expiry_changed`, `updated`, `rehashed`.
    action: String,
    /// When (RFC 3339, UTC).
    #[schema(format = DateTime)]
    at: String,
    /// Who: `key:<id>` for a management key, or the application's user.
    actor: Option<String>,
}

impl AuditView {
    pub(crate) fn all(events: &[AuditEvent]) -> Vec<AuditView> {
        events
            .iter()
            .map(|e| AuditView {
                action: e.action.as_str().to_owned(),
                at: time(e.at),
                actor: e.actor.clone(),
            })
            .collect()
    }
}

/// A page of keys, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = KeyPage)]
pub(crate) struct PageView {
    /// The keys of this page.
    pub(crate) data: Vec<KeyView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub(crate) next_cursor: Option<String>,
}

/// What to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewKey)]
pub(crate) struct CreateBody {
    /// Human name, 1–100 characters.
    #[schema(min_length = 1, max_length = 100)]
    #[serde(default)]
    name: Option<String>,
    /// Scopes to grant (at least one), each held by the manager.
    #[schema(min_items = 1)]
    #[serde(default)]
    scopes: Option<Vec<String>>,
    /// Expiry (RFC 3339, in the future); not with `expires_in`.
    #[serde(default)]
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// Lifetime like `90d`, `24h`; not with `expires_at`.
    #[serde(default)]
    #[schema(example = "90d")]
    expires_in: Option<String>,
    /// Team (honoured when the manager has none).
    #[serde(default)]
    team: Option<String>,
    /// Token prefix (`mk_live` by default).
    #[serde(default)]
    #[schema(example = "mk_test")]
    prefix: Option<String>,
    /// The key's own rate limit, `N/period`.
    #[serde(default)]
    #[schema(example = "1000/1m")]
    rate_limit: Option<String>,
}

/// What to change; absent fields stay, `null` clears.
#[derive(Debug, ToSchema)]
#[schema(as = KeyChanges)]
#[allow(dead_code)] // Read field by field from JSON (absent vs null); this describes it.
pub(crate) struct UpdateBody {
    /// New name, 1–100 characters.
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    /// New expiry (RFC 3339, in the future), or null for none.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// New rate limit (`N/period`), or null for none.
    rate_limit: Option<String>,
}

fn json_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, BadRequest> {
    serde_json::from_slice(body).map_err(|e| {
        BadRequest::Body(match e.classify() {
            serde_json::error::Category::Data => format!("unexpected body: {e}"),
            _ => "the body is not valid JSON".to_owned(),
        })
    })
}

fn name(value: &str) -> Result<String, BadRequest> {
    let n = value.trim();
    if n.is_empty() {
        return Err(field("name", "must not be empty"));
    }
    if n.chars().count() > MAX_NAME_CHARS {
        return Err(field(
            "name",
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if n.chars().any(char::is_control) {
        return Err(field("name", "must not contain control characters"));
    }
    Ok(n.to_owned())
}

fn rfc3339(name: &'static str, value: &str) -> Result<DateTime<Utc>, BadRequest> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| field(name, "must be an RFC 3339 time like 2027-01-31T00:00:00Z"))
}

fn rate_limit(value: &str) -> Result<RateLimit, BadRequest> {
    value
        .parse()
        .map_err(|e: crate::rate_limit::RateLimitError| field("rate_limit", e.to_string()))
}

fn future(
    name: &'static str,
    t: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, BadRequest> {
    if t <= now {
        return Err(field(name, "must be in the future"));
    }
    Ok(t)
}

/// Parses and validates a create body.
pub(crate) fn create_request(body: &[u8], now: DateTime<Utc>) -> Result<KeyRequest, BadRequest> {
    let b: CreateBody = json_body(body)?;
    let name = name(
        b.name
            .as_deref()
            .ok_or_else(|| field("name", "is required"))?,
    )?;
    let scopes = b.scopes.unwrap_or_default();
    if scopes.is_empty() {
        return Err(field("scopes", "must name at least one scope"));
    }
    let scopes = ScopeSet::parse(&scopes).map_err(|e| field("scopes", e.to_string()))?;
    let expires_at = match (b.expires_at, b.expires_in) {
        (Some(_), Some(_)) => {
            return Err(field(
                "expires_in",
                "give expires_at or expires_in, not both",
            ))
        }
        (Some(at), None) => Some(future("expires_at", rfc3339("expires_at", &at)?, now)?),
        (None, Some(d)) => {
            let d = parse_duration(&d).map_err(|e| field("expires_in", e.to_string()))?;
            if d.is_zero() {
                return Err(field("expires_in", "must be longer than zero"));
            }
            let d =
                chrono::Duration::from_std(d).map_err(|_| field("expires_in", "is too long"))?;
            Some(
                now.checked_add_signed(d)
                    .ok_or_else(|| field("expires_in", "is too long"))?,
            )
        }
        (None, None) => None,
    };
    if let Some(p) = &b.prefix {
        if !crate::token::is_valid_prefix(p) {
            return Err(field(
                "prefix",
                format!("use lowercase letters, digits and _, starting with a letter, at most {} characters (e.g. {DEFAULT_PREFIX})", crate::token::MAX_PREFIX_LEN),
            ));
        }
    }
    let team = match b.team {
        Some(t) if t.trim().is_empty() || t.chars().count() > 200 => {
            return Err(field("team", "must be 1 to 200 characters"))
        }
        t => t,
    };
    Ok(KeyRequest {
        name,
        scopes,
        expires_at,
        team,
        prefix: b.prefix,
        rate_limit: b.rate_limit.as_deref().map(rate_limit).transpose()?,
    })
}

/// Parses and validates a PATCH body: absent fields stay, `null` clears.
pub(crate) fn update_request(body: &[u8], now: DateTime<Utc>) -> Result<KeyUpdate, BadRequest> {
    let Value::Object(map) = json_body::<Value>(body)? else {
        return Err(BadRequest::Body("the body must be a JSON object".into()));
    };
    let mut update = KeyUpdate::default();
    for (k, v) in map {
        match (k.as_str(), v) {
            ("name", Value::String(s)) => update.name = Some(name(&s)?),
            ("expires_at", Value::Null) => update.expires_at = Some(None),
            ("expires_at", Value::String(s)) => {
                let t = future("expires_at", rfc3339("expires_at", &s)?, now)?;
                update.expires_at = Some(Some(t));
            }
            ("rate_limit", Value::Null) => update.rate_limit = Some(None),
            ("rate_limit", Value::String(s)) => update.rate_limit = Some(Some(rate_limit(&s)?)),
            ("name" | "expires_at" | "rate_limit", _) => {
                return Err(BadRequest::Body(format!("{k} has the wrong type")))
            }
            _ => return Err(BadRequest::Body(format!("unknown field {k:?}"))),
        }
    }
    Ok(update)
}

/// How long the old key keeps working.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Rotation)]
pub(crate) struct RotateBody {
    /// Grace period of the old key (`0s`, `1h`, `24h` by default, `7d`).
    #[serde(default)]
    #[schema(example = "24h")]
    grace: Option<String>,
}

/// The grace period of a rotation (an empty body means [`DEFAULT_GRACE`]).
pub(crate) fn rotate_grace(body: &[u8]) -> Result<Duration, BadRequest> {
    let b: RotateBody = if body.iter().all(u8::is_ascii_whitespace) {
        RotateBody::default()
    } else {
        json_body(body)?
    };
    b.grace.map_or(Ok(DEFAULT_GRACE), |g| {
        parse_duration(&g).map_err(|e| field("grace", e.to_string()))
    })
}

/// The query of `GET /api/v1/keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListQuery {
    pub(crate) status: Option<KeyStatus>,
    pub(crate) limit: u32,
    pub(crate) after: Option<PagePosition>,
}

/// Splits a query string into decoded pairs (`+` is a space, `%XX` a byte).
fn pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (percent_decode(k), percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match b
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(v) => {
                    out.push(v);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn bounded(name: &'static str, v: &str, lo: u32, hi: u32) -> Result<u32, BadRequest> {
    v.parse::<u32>()
        .ok()
        .filter(|n| (lo..=hi).contains(n))
        .ok_or_else(|| field(name, format!("must be a whole number from {lo} to {hi}")))
}

/// Parses the list query.
pub(crate) fn list_query(query: &str) -> Result<ListQuery, BadRequest> {
    let mut q = ListQuery {
        status: None,
        limit: DEFAULT_LIMIT,
        after: None,
    };
    for (k, v) in pairs(query) {
        match k.as_str() {
            "status" => {
                q.status = Some(
                    KeyStatus::parse(&v)
                        .ok_or_else(|| field("status", "must be active, expired or revoked"))?,
                )
            }
            "limit" => q.limit = bounded("limit", &v, 1, MAX_LIMIT)?,
            "cursor" => {
                q.after = Some(
                    decode_cursor(&v)
                        .ok_or_else(|| field("cursor", "is not a cursor this API gave out"))?,
                )
            }
            _ => {}
        }
    }
    Ok(q)
}

/// Days of usage asked for (`days`, 1–90, default 30).
pub(crate) fn usage_days(query: &str) -> Result<u32, BadRequest> {
    let mut days = 30;
    for (k, v) in pairs(query) {
        if k == "days" {
            days = bounded("days", &v, 1, 90)?;
        }
    }
    Ok(days)
}

/// An opaque cursor: the hex of `<created_at micros>.<id>`.
pub(crate) fn encode_cursor(p: &PagePosition) -> String {
    let raw = format!("{}.{}", p.created_at.timestamp_micros(), p.id);
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(s: &str) -> Option<PagePosition> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    let raw = String::from_utf8(bytes?).ok()?;
    let (micros, id) = raw.split_once('.')?;
    if !crate::token::is_valid_id(id) {
        return None;
    }
    Some(PagePosition {
        created_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id: id.to_owned(),
    })
}

/// The manager a request acts as.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = KeyManager)]
pub(crate) struct ManagerView {
    /// Organization whose keys it manages.
    pub(crate) org: String,
    /// Team whose keys it manages, or null for the whole organization.
    pub(crate) team: Option<String>,
    /// Owner of the keys it creates.
    pub(crate) owner: Option<String>,
    /// The scopes it may grant.
    pub(crate) scopes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-30T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn cursor_round_trips_and_refuses_forgeries() {
        let p = PagePosition {
            created_at: now(),
            id: "0123456789abcdef".into(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&p)), Some(p));
        for bad in ["", "zz", "abc", "00", &"ab".repeat(80)] {
            assert_eq!(decode_cursor(bad), None, "{bad:?}");
        }
        let no_id: String = "5.x".bytes().map(|b| format!("{b:02x}")).collect();
        assert_eq!(decode_cursor(&no_id), None);
    }

    #[test]
    fn list_query_names_the_bad_field() {
        assert_eq!(
            list_query("status=revoked&limit=10").unwrap(),
            ListQuery {
                status: Some(KeyStatus::Revoked),
                limit: 10,
                after: None
            }
        );
        for (q, f) in [
            ("limit=0", "limit"),
            ("limit=201", "limit"),
            ("limit=x", "limit"),
            ("status=gone", "status"),
            ("cursor=%zz", "cursor"),
        ] {
            assert!(
                matches!(list_query(q), Err(BadRequest::Field(got, _)) if got == f),
                "{q}"
            );
        }
    }

    #[test]
    fn create_body_is_validated_field_by_field() {
        let ok = create_request(
            br#"{"name":" ci ","scopes":["b:read","a:read"],"expires_in":"30d","rate_limit":"10/1s"}"#,
            now(),
        )
        .unwrap();
        assert_eq!(ok.name, "ci");
        assert_eq!(ok.scopes.to_strings(), ["a:read", "b:read"]);
        assert_eq!(ok.expires_at, Some(now() + chrono::Duration::days(30)));
        for (body, f) in [
            (&br#"{"name":"","scopes":["a:read"]}"#[..], "name"),
            (br#"{"name":"x","scopes":[]}"#, "scopes"),
            (br#"{"name":"x","scopes":["bad scope"]}"#, "scopes"),
            (
                br#"{"name":"x","scopes":["a:read"],"expires_at":"2020-01-01T00:00:00Z"}"#,
                "expires_at",
            ),
            (
                br#"{"name":"x","scopes":["a:read"],"expires_at":"tomorrow"}"#,
                "expires_at",
            ),
            (
                br#"{"name":"x","scopes":["a:read"],"expires_in":"soon"}"#,
                "expires_in",
            ),
            (
                br#"{"name":"x","scopes":["a:read"],"prefix":"Bad-Prefix"}"#,
                "prefix",
            ),
            (
                br#"{"name":"x","scopes":["a:read"],"rate_limit":"fast"}"#,
                "rate_limit",
            ),
        ] {
            assert!(
                matches!(create_request(body, now()), Err(BadRequest::Field(got, _)) if got == f),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        for body in [&b"not json"[..], br#"{"name":5,"scopes":["a:read"]}"#] {
            assert!(matches!(
                create_request(body, now()),
                Err(BadRequest::Body(_))
            ));
        }
        assert!(matches!(
            create_request(br#"{"scopes":["a:read"]}"#, now()),
            Err(BadRequest::Field("name", _))
        ));
        assert!(matches!(
            create_request(br#"{"name":"x"}"#, now()),
            Err(BadRequest::Field("scopes", _))
        ));
    }

    #[test]
    fn patch_tells_absent_from_null() {
        let u = update_request(br#"{"expires_at":null}"#, now()).unwrap();
        assert_eq!(u.expires_at, Some(None));
        assert_eq!(u.name, None);
        assert_eq!(u.rate_limit, None);
        let u = update_request(br#"{"name":"n","rate_limit":"5/1m"}"#, now()).unwrap();
        assert_eq!(u.name.as_deref(), Some("n"));
        assert_eq!(u.rate_limit, Some(Some("5/1m".parse().unwrap())));
        assert!(matches!(
            update_request(br#"{"name":7}"#, now()),
            Err(BadRequest::Body(_))
        ));
        assert!(matches!(
            update_request(br#"[]"#, now()),
            Err(BadRequest::Body(_))
        ));
    }

    #[test]
    fn rotate_grace_defaults_and_validates() {
        assert_eq!(rotate_grace(b"").unwrap(), DEFAULT_GRACE);
        assert_eq!(rotate_grace(b"{}").unwrap(), DEFAULT_GRACE);
        assert_eq!(rotate_grace(br#"{"grace":"0s"}"#).unwrap(), Duration::ZERO);
        assert!(matches!(
            rotate_grace(br#"{"grace":"long"}"#),
            Err(BadRequest::Field("grace", _))
        ));
    }

    #[test]
    fn percent_decoding_is_total() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%+f"), "% f");
    }
}

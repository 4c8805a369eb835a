//! What the CLI prints: JSON objects with fixed field names, and tidy text for people.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use keygate::DailyUsage;
use keygate::{AuditEvent, CreatedKey, KeyRecord, KeyStatus, KeyUpdate, RateLimit};
use serde_json::{json, Value};

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn opt_rfc3339(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(rfc3339(t)))
}

fn opt_rate_limit(l: Option<RateLimit>) -> Value {
    l.map_or(Value::Null, |l| Value::String(l.to_string()))
}

fn rate_limit_text(l: Option<RateLimit>) -> String {
    l.map_or_else(|| "none".to_owned(), |l| l.to_string())
}

fn short(t: Option<DateTime<Utc>>, none: &str) -> String {
    t.map_or_else(
        || none.to_owned(),
        |t| t.format("%Y-%m-%d %H:%M").to_string(),
    )
}

/// A key as `list` and `show` print it in JSON.
pub(crate) fn record_json(r: &KeyRecord, status: KeyStatus) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "org": r.org,
        "team": r.team,
        "owner": r.owner,
        "status": status.as_str(),
        "scopes": r.scopes.to_strings(),
        "prefix": r.prefix,
        "created_at": rfc3339(r.created_at),
        "expires_at": opt_rfc3339(r.expires_at),
        "revoked_at": opt_rfc3339(r.revoked_at),
        "last_used_at": opt_rfc3339(r.last_used_at),
        "rotated_from": r.rotated_from,
        "rotated_to": r.rotated_to,
        "rate_limit": opt_rate_limit(r.rate_limit),
        "metadata": r.metadata,
    })
}

/// A new key as `create` and `rotate` print it in JSON: the only time `key` is shown.
pub(crate) fn created_json(c: &CreatedKey) -> Value {
    let r = &c.record;
    json!({
        "id": r.id,
        "key": c.key.expose_secret(),
        "name": r.name,
        "org": r.org,
        "team": r.team,
        "owner": r.owner,
        "scopes": r.scopes.to_strings(),
        "prefix": r.prefix,
        "created_at": rfc3339(r.created_at),
        "expires_at": opt_rfc3339(r.expires_at),
        "rotated_from": r.rotated_from,
        "rotated_to": r.rotated_to,
        "rate_limit": opt_rate_limit(r.rate_limit),
    })
}

/// The text after a key was created (or rotated in): details, the key, the warning.
pub(crate) fn created_text(c: &CreatedKey) -> String {
    let r = &c.record;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Created key {:?} (id {}) for org {}",
        r.name, r.id, r.org
    );
    if let Some(team) = &r.team {
        let _ = writeln!(s, "  team:    {team}");
    }
    if let Some(owner) = &r.owner {
        let _ = writeln!(s, "  owner:   {owner}");
    }
    let _ = writeln!(s, "  scopes:  {}", r.scopes.to_strings().join(" "));
    let _ = writeln!(s, "  expires: {}", short(r.expires_at, "never"));
    if let Some(limit) = r.rate_limit {
        let _ = writeln!(s, "  rate:    {limit}");
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "    {}", c.key.expose_secret());
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Store this key now: it is shown only once and cannot be recovered."
    );
    s
}

/// The `list` table: name, id, status, scopes, created, expires, last used, requests in the
/// last 24 hours, and a rate limit column when any listed key has one.
pub(crate) fn table(rows: &[(KeyRecord, KeyStatus, u64)]) -> String {
    if rows.is_empty() {
        return "No keys.\n".to_owned();
    }
    let with_limits = rows.iter().any(|(r, _, _)| r.rate_limit.is_some());
    let mut header = vec![
        "NAME",
        "ID",
        "STATUS",
        "SCOPES",
        "CREATED",
        "EXPIRES",
        "LAST USED",
        "REQ 24H",
    ];
    let mut right = vec![false, false, false, false, false, false, false, true];
    if with_limits {
        header.push("RATE LIMIT");
        right.push(false);
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|(r, status, requests_24h)| {
            let mut row = vec![
                r.name.clone(),
                r.id.clone(),
                status.as_str().to_owned(),
                r.scopes.to_strings().join(","),
                short(Some(r.created_at), "-"),
                short(r.expires_at, "never"),
                short(r.last_used_at, "never"),
                requests_24h.to_string(),
            ];
            if with_limits {
                row.push(
                    r.rate_limit
                        .map_or_else(|| "-".to_owned(), |l| l.to_string()),
                );
            }
            row
        })
        .collect();
    grid(&header, &right, &cells)
}

/// `usage` as text: one row per day (oldest first) with its requests and refusals, then the
/// totals.
pub(crate) fn usage_text(id: &str, days: &[DailyUsage]) -> String {
    let (requests, refused) = days.iter().fold((0u64, 0u64), |(a, r), d| {
        (a.saturating_add(d.requests), r.saturating_add(d.refused))
    });
    let mut cells: Vec<Vec<String>> = days
        .iter()
        .map(|d| vec![day(d), d.requests.to_string(), d.refused.to_string()])
        .collect();
    cells.push(vec![
        "TOTAL".to_owned(),
        requests.to_string(),
        refused.to_string(),
    ]);
    let n = days.len();
    format!(
        "Usage of key {id}, last {n} day{} (UTC):\n{}",
        if n == 1 { "" } else { "s" },
        grid(
            &["DAY", "REQUESTS", "REFUSED"],
            &[false, true, true],
            &cells
        )
    )
}

/// `usage --json`: the key id and the same day objects as the Keys API's
/// `GET /api/v1/keys/{id}/usage`.
pub(crate) fn usage_json(id: &str, days: &[DailyUsage]) -> Value {
    json!({
        "id": id,
        "days": days
            .iter()
            .map(|d| json!({ "day": day(d), "requests": d.requests, "refused": d.refused }))
            .collect::<Vec<_>>(),
    })
}

fn day(d: &DailyUsage) -> String {
    d.day.format("%Y-%m-%d").to_string()
}

/// Columns separated by two spaces, each as wide as its widest cell, left-aligned unless
/// `right` says otherwise; no trailing blanks.
fn grid(header: &[&str], right: &[bool], cells: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |row: &[&str]| {
        let mut l = String::new();
        for (i, (cell, w)) in row.iter().zip(widths.iter().copied()).enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            if right.get(i).copied().unwrap_or(false) {
                let _ = write!(l, "{cell:>w$}");
            } else {
                let _ = write!(l, "{cell:<w$}");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header);
    for row in cells {
        line(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
    out
}

/// `show` as text: every field, then the audit trail.
pub(crate) fn record_text(r: &KeyRecord, status: KeyStatus, trail: &[AuditEvent]) -> String {
    let mut s = String::new();
    let none = "-".to_owned();
    let _ = writeln!(s, "id:           {}", r.id);
    let _ = writeln!(s, "name:         {}", r.name);
    let _ = writeln!(s, "org:          {}", r.org);
    let _ = writeln!(s, "team:         {}", r.team.as_ref().unwrap_or(&none));
    let _ = writeln!(s, "owner:        {}", r.owner.as_ref().unwrap_or(&none));
    let _ = writeln!(s, "status:       {status}");
    let _ = writeln!(s, "scopes:       {}", r.scopes.to_strings().join(" "));
    let _ = writeln!(s, "prefix:       {}", r.prefix);
    let _ = writeln!(s, "created:      {}", rfc3339(r.created_at));
    let _ = writeln!(s, "expires:      {}", short(r.expires_at, "never"));
    let _ = writeln!(s, "revoked:      {}", short(r.revoked_at, "-"));
    let _ = writeln!(s, "last used:    {}", short(r.last_used_at, "never"));
    let _ = writeln!(s, "rate limit:   {}", rate_limit_text(r.rate_limit));
    if let Some(from) = &r.rotated_from {
        let _ = writeln!(s, "rotated from: {from}");
    }
    if let Some(to) = &r.rotated_to {
        let _ = writeln!(s, "rotated to:   {to}");
    }
    if !r.metadata.is_null() {
        let _ = writeln!(s, "metadata:     {}", r.metadata);
    }
    if !trail.is_empty() {
        let _ = writeln!(s, "audit:");
        for e in trail {
            let _ = writeln!(
                s,
                "  {}  {:<14}  {}{}",
                rfc3339(e.at),
                e.action.as_str(),
                e.actor.as_deref().unwrap_or("-"),
                if e.detail.is_null() {
                    String::new()
                } else {
                    format!("  {}", e.detail)
                }
            );
        }
    }
    s
}

/// The line after `update`: the key and what it now has, for each thing that changed.
pub(crate) fn updated_text(r: &KeyRecord, update: &KeyUpdate) -> String {
    let mut changes = Vec::new();
    if update.name.is_some() {
        changes.push(format!("name {:?}", r.name));
    }
    if update.expires_at.is_some() {
        changes.push(format!("expires {}", short(r.expires_at, "never")));
    }
    if update.rate_limit.is_some() {
        changes.push(format!("rate limit {}", rate_limit_text(r.rate_limit)));
    }
    format!("Updated key {}: {}.\n", r.id, changes.join(", "))
}

/// An audit event in JSON.
pub(crate) fn audit_json(e: &AuditEvent) -> Value {
    json!({
        "action": e.action.as_str(),
        "at": rfc3339(e.at),
        "actor": e.actor,
        "detail": e.detail,
    })
}

//! What the CLI prints: JSON objects with fixed field names, and tidy text for people.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use comfy_table::{CellAlignment, ColumnConstraint, ContentArrangement, Table, Width};
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
/// last 24 hours, and a rate limit column when any listed key has one. With a `width`, long
/// cells wrap so every line fits in it where the columns that never wrap (id, status, counts)
/// allow.
pub(crate) fn table(rows: &[(KeyRecord, KeyStatus, u64)], width: Option<u16>) -> String {
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
    use Col::{Fixed, Number, Wraps};
    // A date wraps after its day (`2026-11-30` over `15:49`); names and scopes keep 8 columns.
    let mut kinds = vec![
        Wraps(8),
        Fixed,
        Fixed,
        Wraps(8),
        Wraps(10),
        Wraps(10),
        Wraps(10),
        Number,
    ];
    if with_limits {
        header.push("RATE LIMIT");
        kinds.push(Fixed);
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|(r, status, requests_24h)| {
            let mut row = vec![
                r.name.clone(),
                r.id.clone(),
                status.as_str().to_owned(),
                // `, ` so a narrow table wraps between scopes, not inside one.
                r.scopes.to_strings().join(", "),
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
    grid(&header, &kinds, &cells, width)
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
            &[Col::Fixed, Col::Number, Col::Number],
            &cells,
            None
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

/// How a column of [`grid`] lays out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    /// Left-aligned, wrapped when the table is too wide, but never narrower than this.
    Wraps(u16),
    /// Left-aligned, never wrapped (ids, statuses: things people copy or scan).
    Fixed,
    /// Right-aligned, never wrapped.
    Number,
}

/// Columns separated by two spaces, each as wide as its widest cell in display columns (CJK
/// and emoji take two), no borders, no trailing blanks. With a `width`, [`Col::Wraps`] cells
/// wrap so the table fits in it, as far as the other columns and the least widths allow.
fn grid(header: &[&str], kinds: &[Col], cells: &[Vec<String>], width: Option<u16>) -> String {
    let mut t = Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    t.set_header(header.to_vec());
    for row in cells {
        t.add_row(row.clone());
    }
    let last = header.len().saturating_sub(1);
    for (i, col) in t.column_iter_mut().enumerate() {
        col.set_padding((0, if i == last { 0 } else { 2 }));
        match kinds.get(i).copied().unwrap_or(Col::Fixed) {
            Col::Wraps(least) => {
                if width.is_some() {
                    col.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(least)));
                }
            }
            Col::Fixed => {
                col.set_constraint(ColumnConstraint::ContentWidth);
            }
            Col::Number => {
                col.set_cell_alignment(CellAlignment::Right);
                col.set_constraint(ColumnConstraint::ContentWidth);
            }
        }
    }
    if let Some(w) = width {
        t.set_content_arrangement(ContentArrangement::Dynamic);
        t.set_width(w);
    }
    let mut out = t.trim_fmt();
    out.push('\n');
    out
}

/// The width `list` fits its table in: `COLUMNS` when set to a number, else the terminal's
/// when stdout is one; `None` (no wrapping) when output goes to a pipe or a file.
pub(crate) fn terminal_width() -> Option<u16> {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|n| *n > 0)
    {
        return Some(n);
    }
    terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| w.0)
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

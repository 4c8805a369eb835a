//! What each subcommand does. Input is validated completely before the store is opened.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::CommandFactory;
use keygate::{
    KeyFilter, KeyManager, KeyRecord, KeyStatus, KeyStore, KeyUpdate, ManageError, NewKey,
    RateLimit, ScopeSet, StoreError,
};
use serde_json::Value;

use crate::args::{Cli, Command, CreateArgs, ListArgs, RotateArgs, UpdateArgs, UsageArgs};
use crate::render;

/// Why a command failed; printed as one line.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The command line is wrong (exit 2).
    Usage(String),
    /// The operation failed (exit 1).
    Failed(String),
}

impl From<ManageError> for Failure {
    fn from(e: ManageError) -> Self {
        match e {
            ManageError::InvalidField { .. } | ManageError::Scope(_) => {
                Failure::Usage(e.to_string())
            }
            other => Failure::Failed(other.to_string()),
        }
    }
}

/// Runs the command and returns what goes to stdout.
pub(crate) async fn run(cli: Cli) -> Result<String, Failure> {
    let url = cli.database_url;
    match cli.command {
        Command::Completions(a) => {
            let mut script = Vec::new();
            clap_complete::generate(a.shell, &mut Cli::command(), "keygate", &mut script);
            String::from_utf8(script)
                .map_err(|_| Failure::Failed("the completion script is not UTF-8".to_owned()))
        }
        Command::Create(a) => {
            let new = new_key(&a)?;
            let manager = manager(&url).await?;
            let created = manager.create(new).await?;
            Ok(if a.json {
                json_line(&render::created_json(&created))
            } else {
                render::created_text(&created)
            })
        }
        Command::List(ListArgs { org, status, json }) => {
            let manager = manager(&url).await?;
            let filter = KeyFilter {
                org,
                ..KeyFilter::all()
            };
            let wanted = status.map(KeyStatus::from);
            let now = manager.now();
            let rows: Vec<_> = manager
                .list(&filter)
                .await?
                .into_iter()
                .map(|r| {
                    let status = r.status_at(now);
                    (r, status)
                })
                .filter(|(_, s)| wanted.is_none_or(|w| w == *s))
                .collect();
            // One query for the request counts of every listed key.
            let ids: Vec<String> = rows.iter().map(|(r, _)| r.id.clone()).collect();
            let totals = manager.usage_totals(&ids).await?;
            let rows: Vec<_> = rows
                .into_iter()
                .map(|(r, s)| {
                    let requests_24h = totals.get(&r.id).map_or(0, |t| t.requests_24h);
                    (r, s, requests_24h)
                })
                .collect();
            Ok(if json {
                let items: Vec<Value> = rows
                    .iter()
                    .map(|(r, s, requests_24h)| {
                        let mut v = render::record_json(r, *s);
                        if let Value::Object(m) = &mut v {
                            m.insert("requests_24h".into(), Value::from(*requests_24h));
                        }
                        v
                    })
                    .collect();
                json_line(&Value::Array(items))
            } else {
                render::table(&rows, render::terminal_width())
            })
        }
        Command::Show(a) => {
            let manager = manager(&url).await?;
            let record = manager.show(&a.id).await?;
            if a.json {
                shown_json(&manager, &record).await
            } else {
                let status = manager.status(&record);
                let trail = manager.audit_trail(&a.id).await?;
                Ok(render::record_text(&record, status, &trail))
            }
        }
        Command::Update(a) => {
            let update = key_update(&a)?;
            let manager = manager(&url).await?;
            let record = manager.update(&a.id, &update).await?;
            if a.json {
                shown_json(&manager, &record).await
            } else {
                Ok(render::updated_text(&record, &update))
            }
        }
        Command::Revoke(a) => {
            let manager = manager(&url).await?;
            let r = manager.revoke(&a.id).await?;
            Ok(format!("Revoked key {} ({:?}).\n", r.id, r.name))
        }
        Command::Delete(a) => {
            let manager = manager(&url).await?;
            let r = manager.show(&a.id).await?;
            manager.delete(&a.id).await?;
            Ok(format!(
                "Deleted key {} ({:?}); its audit trail is kept.\n",
                r.id, r.name
            ))
        }
        Command::Usage(UsageArgs { id, days, json }) => {
            let manager = manager(&url).await?;
            // Only keys that exist: a deleted key's counts are not shown.
            manager.show(&id).await?;
            let series = manager.daily_usage(&id, days).await?;
            Ok(if json {
                json_line(&render::usage_json(&id, &series))
            } else {
                render::usage_text(&id, &series)
            })
        }
        Command::Rotate(RotateArgs { id, grace, json }) => {
            let manager = manager(&url).await?;
            let created = manager.rotate(&id, grace).await?;
            let old = manager.show(&id).await?;
            let old_until = old.expires_at.map_or_else(
                || "-".to_owned(),
                |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            );
            Ok(if json {
                let mut v = render::created_json(&created);
                if let Value::Object(m) = &mut v {
                    m.insert(
                        "old_expires_at".into(),
                        old.expires_at.map_or(Value::Null, |t| {
                            Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        }),
                    );
                }
                json_line(&v)
            } else {
                format!(
                    "Rotated key {id}: the old key keeps working until {old_until}.\n{}",
                    render::created_text(&created)
                )
            })
        }
    }
}

/// A key as `show --json` prints it: its JSON object plus its audit trail.
async fn shown_json(manager: &KeyManager, record: &KeyRecord) -> Result<String, Failure> {
    let trail = manager.audit_trail(&record.id).await?;
    let mut v = render::record_json(record, manager.status(record));
    if let Value::Object(m) = &mut v {
        m.insert(
            "audit".into(),
            trail.iter().map(render::audit_json).collect(),
        );
    }
    Ok(json_line(&v))
}

fn json_line(v: &Value) -> String {
    let mut s = v.to_string();
    s.push('\n');
    s
}

/// Checks everything `create` was given; nothing is opened or written yet.
fn new_key(a: &CreateArgs) -> Result<NewKey, Failure> {
    let scopes = ScopeSet::parse(&a.scopes).map_err(|e| Failure::Usage(e.to_string()))?;
    let mut new = NewKey::new(a.name.clone(), a.org.clone());
    new.scopes = scopes;
    if let Some(team) = &a.team {
        new = new.team(team.clone());
    }
    if let Some(owner) = &a.owner {
        new = new.owner(owner.clone());
    }
    if let Some(prefix) = &a.prefix {
        if !keygate::token::is_valid_prefix(prefix) {
            return Err(Failure::Usage(format!(
                "invalid prefix {prefix:?}: use lowercase letters, digits and `_`, starting with a letter (e.g. mk_live, mk_test)"
            )));
        }
        new = new.prefix(prefix.clone());
    }
    if let Some(at) = expiry(a.expires_in, a.expires_at.as_deref())? {
        new = new.expires_at(at);
    }
    if let Some(limit) = &a.rate_limit {
        new = new.rate_limit(rate_limit(limit)?);
    }
    Ok(new)
}

/// Checks everything `update` was given; nothing is opened or written yet.
fn key_update(a: &UpdateArgs) -> Result<KeyUpdate, Failure> {
    let expires_at = if a.no_expiry {
        Some(None)
    } else {
        expiry(a.expires_in, a.expires_at.as_deref())?.map(Some)
    };
    let rate_limit = if a.no_rate_limit {
        Some(None)
    } else {
        a.rate_limit
            .as_deref()
            .map(rate_limit)
            .transpose()?
            .map(Some)
    };
    let update = KeyUpdate {
        name: a.name.clone(),
        expires_at,
        rate_limit,
    };
    if update.is_empty() {
        return Err(Failure::Usage(
            "nothing to update: give --name, --expires-at, --expires-in, --no-expiry, --rate-limit or --no-rate-limit".to_owned(),
        ));
    }
    Ok(update)
}

/// The expiry named by `--expires-in` or `--expires-at` (clap keeps them apart), which must be
/// in the future; `None` when neither is given.
fn expiry(
    expires_in: Option<Duration>,
    expires_at: Option<&str>,
) -> Result<Option<DateTime<Utc>>, Failure> {
    let now = Utc::now();
    let at = match (expires_in, expires_at) {
        (Some(d), _) => {
            let d = chrono::Duration::from_std(d)
                .map_err(|_| Failure::Usage("--expires-in is too long".into()))?;
            now.checked_add_signed(d)
                .ok_or_else(|| Failure::Usage("--expires-in is too long".into()))?
        }
        (None, Some(t)) => DateTime::parse_from_rfc3339(t)
            .map_err(|e| {
                Failure::Usage(format!(
                    "--expires-at {t:?} is not an RFC 3339 time ({e}); write e.g. 2027-01-01T00:00:00Z"
                ))
            })?
            .with_timezone(&Utc),
        (None, None) => return Ok(None),
    };
    if at <= now {
        return Err(Failure::Usage(
            "the expiry must be in the future".to_owned(),
        ));
    }
    Ok(Some(at))
}

fn rate_limit(s: &str) -> Result<RateLimit, Failure> {
    s.parse::<RateLimit>()
        .map_err(|e| Failure::Usage(format!("--rate-limit: {e}")))
}

/// Opens the store and builds a manager acting as the OS user. A URL no store handles is a
/// usage error (nothing is opened); a store that cannot be opened is not.
async fn manager(url: &str) -> Result<KeyManager, Failure> {
    let store: Arc<dyn KeyStore> = keygate_sqlx::connect(url).await.map_err(|e| {
        if let StoreError::Backend(b) = &e {
            if let Some(u) = b.downcast_ref::<keygate_sqlx::UnsupportedUrl>() {
                return Failure::Usage(format!(
                    "{u} (the store URL from --database-url or KEYGATE_DATABASE_URL)"
                ));
            }
        }
        Failure::Failed(format!(
            "cannot open the key store at {}: {e}",
            keygate_sqlx::redact_url(url)
        ))
    })?;
    let mut manager = KeyManager::new(store);
    if let Some(user) = ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
    {
        manager = manager.with_actor(user);
    }
    Ok(manager)
}

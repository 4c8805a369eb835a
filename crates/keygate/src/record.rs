//! What a store keeps about a key: [`KeyRecord`], and its [`KeyStatus`].

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::rate_limit::RateLimit;
use crate::scope::ScopeSet;

/// Everything stored about one API key. The plaintext is never part of it: only `hash`, an
/// argon2id PHC string (or whatever the configured [`KeyHasher`](crate::KeyHasher) produces).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Public identifier, the `<id>` part of the token; used for look-ups, logs and audit.
    pub id: String,
    /// The token prefix, naming the environment (`mk_live`, `mk_test`, …).
    pub prefix: String,
    /// Human name of the key.
    pub name: String,
    /// Organization the key belongs to.
    pub org: String,
    /// Optional team inside the organization.
    pub team: Option<String>,
    /// The user the key acts for.
    pub owner: Option<String>,
    /// Granted scopes.
    pub scopes: ScopeSet,
    /// Application metadata (a JSON value; `null` when unset).
    pub metadata: serde_json::Value,
    /// Hash of the full token (PHC string). Never serialized: a record written as JSON (an
    /// API answer, a log line) carries no hash. Deserializing reads it when present.
    #[serde(skip_serializing, default)]
    pub hash: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When the key stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the key was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Last time the key was used (written behind, so it may lag by a flush interval).
    pub last_used_at: Option<DateTime<Utc>>,
    /// The key this one replaced by rotation.
    pub rotated_from: Option<String>,
    /// The key that replaced this one by rotation.
    pub rotated_to: Option<String>,
    /// The key's own rate limit, if it has one.
    pub rate_limit: Option<RateLimit>,
}

impl KeyRecord {
    /// The key's status at `now`: revoked wins over expired.
    pub fn status_at(&self, now: DateTime<Utc>) -> KeyStatus {
        if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if self.expires_at.is_some_and(|e| e <= now) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }
}

impl fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRecord")
            .field("id", &self.id)
            .field("prefix", &self.prefix)
            .field("name", &self.name)
            .field("org", &self.org)
            .field("team", &self.team)
            .field("owner", &self.owner)
            .field("scopes", &self.scopes)
            .field("metadata", &self.metadata)
            .field("hash", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .field("last_used_at", &self.last_used_at)
            .field("rotated_from", &self.rotated_from)
            .field("rotated_to", &self.rotated_to)
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

/// Whether a key works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "keys-api", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// The key works.
    Active,
    /// Its expiry has passed.
    Expired,
    /// It was revoked.
    Revoked,
}

impl KeyStatus {
    /// `active`, `expired` or `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Expired => "expired",
            KeyStatus::Revoked => "revoked",
        }
    }

    /// Parses [`KeyStatus::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => KeyStatus::Active,
            "expired" => KeyStatus::Expired,
            "revoked" => KeyStatus::Revoked,
            _ => return None,
        })
    }
}

impl fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

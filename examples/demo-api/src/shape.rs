//! JSON shapes of the demo API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::body::BodyError;
use crate::items::Item;

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Always `"ok"`.
    pub status: String,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            status: "ok".to_owned(),
        }
    }
}

/// `GET /api/v1/me`: the principal of the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Me {
    /// Key id.
    pub id: String,
    /// Key name.
    pub name: String,
    /// Organization.
    pub org: String,
    /// Team, if any.
    pub team: Option<String>,
    /// The user the key acts for, if any.
    pub owner: Option<String>,
    /// Effective scopes, sorted.
    pub scopes: Vec<String>,
    /// The key's prefix (`mk_live`, `mk_test`, …).
    pub environment: String,
    /// Expiry, RFC 3339, or null.
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<&keygate::Principal> for Me {
    fn from(p: &keygate::Principal) -> Self {
        Me {
            id: p.id.to_string(),
            name: p.name.to_string(),
            org: p.org.to_string(),
            team: p.team.as_deref().map(str::to_owned),
            owner: p.owner.as_deref().map(str::to_owned),
            scopes: p.scopes.to_strings(),
            environment: p.environment.to_string(),
            expires_at: p.expires_at,
        }
    }
}

/// `GET /api/v1/<collection>`: the caller's organization's items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemList {
    /// Oldest first.
    pub items: Vec<Item>,
}

/// Body of `POST /api/v1/<collection>`: `{"name": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewItem {
    /// 1 to [`MAX_NAME_LEN`](crate::MAX_NAME_LEN) characters, no control characters.
    pub name: String,
}

impl NewItem {
    /// Reads and validates a request body given its `Content-Type`.
    pub fn from_json(content_type: Option<&[u8]>, body: &[u8]) -> Result<NewItem, BodyError> {
        crate::body::parse_new_item(content_type, body)
    }
}

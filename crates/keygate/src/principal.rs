//! [`Principal`]: who a verified request acts for.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::AuthError;
use crate::scope::{ScopeRequirement, ScopeSet};

/// The verified identity handed to handlers (in request extensions as `Arc<Principal>`).
///
/// A key acts for its `owner` inside its `org`: `scopes` are the key's grants, narrowed by the
/// application's [`ScopeNarrower`](crate::ScopeNarrower) when one is configured.
#[derive(Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Principal {
    /// The key id (public).
    pub id: String,
    /// The key's name.
    pub name: String,
    /// Organization.
    pub org: String,
    /// Team inside the organization.
    pub team: Option<String>,
    /// The user the key acts for.
    pub owner: Option<String>,
    /// Effective scopes.
    pub scopes: ScopeSet,
    /// The key's prefix, naming its environment (`mk_live`, `mk_test`, …).
    pub environment: String,
    /// When the key expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Application metadata stored with the key.
    pub metadata: serde_json::Value,
}

impl Principal {
    /// Whether the principal holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// Checks a requirement, giving the 403 error when it is not met.
    pub fn require(&self, requirement: &ScopeRequirement) -> Result<(), AuthError> {
        requirement.check(&self.scopes)
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("org", &self.org)
            .field("team", &self.team)
            .field("owner", &self.owner)
            .field("scopes", &self.scopes)
            .field("environment", &self.environment)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

//! [`Principal`]: who a verified request acts for.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

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
    /// Organization (shared by every cached key of the organization).
    pub org: Label,
    /// Team inside the organization.
    pub team: Option<String>,
    /// The user the key acts for.
    pub owner: Option<String>,
    /// Effective scopes.
    pub scopes: ScopeSet,
    /// The key's prefix, naming its environment (`mk_live`, `mk_test`, …).
    pub environment: Label,
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

/// An immutable, cheaply shared string: a [`Principal`]'s organization and environment. The
/// verifier hands every cached key of one organization the same allocation. It reads like a
/// `&str` (`Deref`, `as_str`, comparisons with `str` and `String`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label(Arc<str>);

impl Label {
    /// A label holding `s`.
    pub fn new(s: &str) -> Self {
        Label(Arc::from(s))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps an already shared string.
    pub(crate) fn from_shared(s: Arc<str>) -> Self {
        Label(s)
    }
}

impl Deref for Label {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Label {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Label {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for Label {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl From<&str> for Label {
    fn from(s: &str) -> Self {
        Label::new(s)
    }
}

impl From<String> for Label {
    fn from(s: String) -> Self {
        Label(Arc::from(s))
    }
}

impl From<Label> for String {
    fn from(l: Label) -> Self {
        l.0.as_ref().to_owned()
    }
}

impl PartialEq<str> for Label {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Label {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<Label> for str {
    fn eq(&self, other: &Label) -> bool {
        self == &*other.0
    }
}

impl PartialEq<Label> for &str {
    fn eq(&self, other: &Label) -> bool {
        *self == &*other.0
    }
}

impl<'de> serde::Deserialize<'de> for Label {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Label::from(String::deserialize(d)?))
    }
}

impl PartialEq<String> for Label {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

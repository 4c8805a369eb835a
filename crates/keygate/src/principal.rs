//! [`Principal`]: who a verified request acts for.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use compact_str::CompactString;
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
    /// The key id (public): [`ID_LEN`](crate::token::ID_LEN) hex digits, held inline.
    pub id: Text,
    /// The key's name (inline when at most 24 bytes).
    pub name: Text,
    /// Organization (shared by every cached key of the organization).
    pub org: Label,
    /// Team inside the organization (inline when at most 24 bytes).
    pub team: Option<Text>,
    /// The user the key acts for (inline when at most 24 bytes).
    pub owner: Option<Text>,
    /// Effective scopes.
    pub scopes: ScopeSet,
    /// The key's prefix, naming its environment (`mk_live`, `mk_test`, …).
    pub environment: Label,
    /// When the key expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Application metadata stored with the key (JSON; null takes no allocation).
    pub metadata: Metadata,
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

/// An immutable string stored inline when it is at most 24 bytes (the size of a `String` on
/// 64-bit targets), on the heap otherwise: a [`Principal`]'s id, name, team and owner. A key id
/// ([`ID_LEN`](crate::token::ID_LEN) hex digits) takes no allocation of its own. It reads like a
/// `&str` (`Deref`, `as_str`, comparisons with `str` and `String`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(CompactString);

impl Text {
    /// A text holding `s`.
    pub fn new(s: &str) -> Self {
        Text(CompactString::new(s))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Text::from(String::deserialize(d)?))
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text::new(s)
    }
}

impl From<String> for Text {
    /// Inlines `s` when it fits; otherwise keeps its buffer, shrunk to its length (a text never
    /// grows).
    fn from(mut s: String) -> Self {
        if s.len() > std::mem::size_of::<String>() {
            s.shrink_to_fit();
        }
        Text(CompactString::from(s))
    }
}

impl From<Text> for String {
    fn from(t: Text) -> Self {
        t.0.into_string()
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Text> for str {
    fn eq(&self, other: &Text) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Text> for String {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

/// A [`Principal`]'s application metadata: a JSON value, boxed so that a principal holds one
/// pointer for it rather than a whole [`serde_json::Value`], and nothing on the heap for a key
/// without metadata (JSON null). It reads like a `serde_json::Value` (`Deref`, indexing,
/// `as_value`) and serializes as that value.
#[derive(Clone, Default)]
pub struct Metadata(Option<Box<serde_json::Value>>);

/// What an empty [`Metadata`] dereferences to.
static NULL: serde_json::Value = serde_json::Value::Null;

impl Metadata {
    /// The value (JSON null when there is none).
    pub fn as_value(&self) -> &serde_json::Value {
        self.0.as_deref().unwrap_or(&NULL)
    }

    /// The value, unboxed (JSON null when there is none).
    pub fn into_value(self) -> serde_json::Value {
        self.0.map_or(serde_json::Value::Null, |v| *v)
    }
}

impl From<serde_json::Value> for Metadata {
    fn from(v: serde_json::Value) -> Self {
        if v.is_null() {
            Metadata(None)
        } else {
            Metadata(Some(Box::new(v)))
        }
    }
}

impl From<Metadata> for serde_json::Value {
    fn from(m: Metadata) -> Self {
        m.into_value()
    }
}

impl Deref for Metadata {
    type Target = serde_json::Value;
    fn deref(&self) -> &serde_json::Value {
        self.as_value()
    }
}

impl PartialEq for Metadata {
    fn eq(&self, other: &Self) -> bool {
        self.as_value() == other.as_value()
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_value(), f)
    }
}

impl Serialize for Metadata {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_value().serialize(s)
    }
}

impl PartialEq<serde_json::Value> for Metadata {
    fn eq(&self, other: &serde_json::Value) -> bool {
        self.as_value() == other
    }
}

impl PartialEq<Metadata> for serde_json::Value {
    fn eq(&self, other: &Metadata) -> bool {
        self == other.as_value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(metadata: serde_json::Value) -> Principal {
        Principal {
            id: "0123456789abcdef".into(),
            name: "a name longer than twenty-four bytes".into(),
            org: "acme".into(),
            team: Some("core".into()),
            owner: None,
            scopes: ScopeSet::parse(["entities:read"]).unwrap(),
            environment: "mk_live".into(),
            expires_at: None,
            metadata: metadata.into(),
        }
    }

    #[test]
    fn text_round_trips_inline_and_heap_lengths() {
        for len in [0, 1, 16, 23, 24, 25, 64, 300] {
            let s = "é".repeat(len / 2) + &"x".repeat(len % 2);
            assert_eq!(s.len(), len);
            for t in [Text::new(&s), Text::from(s.as_str()), Text::from(s.clone())] {
                assert_eq!(t.as_str(), s);
                assert_eq!(&*t, s.as_str());
                assert_eq!(t.len(), len);
                // Inline up to the size of a `String`: 24 bytes on 64-bit targets.
                let inline_max = std::mem::size_of::<String>();
                assert_eq!(t.0.is_heap_allocated(), len > inline_max, "{len} bytes");
                assert_eq!(String::from(t.clone()), s);
                assert_eq!(t.to_string(), s);
                assert_eq!(format!("{t:?}"), format!("{s:?}"));
            }
        }
    }

    #[test]
    fn a_long_text_from_a_string_keeps_no_spare_capacity() {
        let mut s = String::with_capacity(100);
        s.push_str(&"x".repeat(30));
        let t = Text::from(s);
        assert_eq!(t.0.capacity(), 30);
        assert_eq!(t, "x".repeat(30));
    }

    #[test]
    fn text_compares_like_a_str() {
        let t = Text::new("core");
        assert_eq!(t, *"core");
        assert_eq!(*"core", t);
        assert_eq!(t, "core");
        assert_eq!("core", t);
        let owned = String::from("core");
        assert_eq!(t, owned);
        assert_eq!(owned, t);
        assert_ne!(t, "cor");
        assert_ne!(t, Text::new("Core"));
        assert!(Text::new("a") < Text::new("b"));
        let set: std::collections::HashSet<Text> = [t.clone()].into();
        assert!(set.contains("core"));
        assert_eq!(serde_json::to_value(&t).unwrap(), serde_json::json!("core"));
        let back: Text = serde_json::from_str("\"core\"").unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn metadata_reads_like_its_value() {
        let empty = Metadata::from(serde_json::Value::Null);
        assert!(empty.0.is_none());
        assert!(empty.is_null());
        assert_eq!(*empty, serde_json::Value::Null);
        assert_eq!(empty, Metadata::default());
        assert_eq!(serde_json::to_string(&empty).unwrap(), "null");
        assert_eq!(format!("{empty:?}"), "Null");

        let gold = serde_json::json!({"tier": "gold", "n": [1, 2]});
        let m = Metadata::from(gold.clone());
        assert_eq!(m["tier"], "gold");
        assert_eq!(m.as_value(), &gold);
        assert_eq!(m, gold);
        assert_eq!(gold, m);
        assert_eq!(format!("{m:?}"), format!("{gold:?}"));
        assert_eq!(serde_json::to_value(&m).unwrap(), gold);
        assert_eq!(m.clone().into_value(), gold);
        assert_ne!(m, empty);
    }

    #[test]
    fn a_principal_serializes_as_before() {
        let p = principal(serde_json::json!({"tier": "gold"}));
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::json!({
                "id": "0123456789abcdef",
                "name": "a name longer than twenty-four bytes",
                "org": "acme",
                "team": "core",
                "owner": null,
                "scopes": ["entities:read"],
                "environment": "mk_live",
                "expires_at": null,
                "metadata": {"tier": "gold"},
            })
        );
        assert_eq!(
            serde_json::to_value(principal(serde_json::Value::Null)).unwrap()["metadata"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn a_principal_debugs_as_before() {
        let p = principal(serde_json::json!({"secret": "not shown"}));
        assert_eq!(
            format!("{p:?}"),
            "Principal { id: \"0123456789abcdef\", name: \"a name longer than twenty-four \
             bytes\", org: \"acme\", team: Some(\"core\"), owner: None, scopes: \
             {\"entities:read\"}, environment: \"mk_live\", expires_at: None, .. }"
        );
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_principal_fits_one_192_byte_allocation() {
        // The verifier keeps each cached key's principal in an `Arc`: with the `Arc`'s two
        // counts (16 bytes), a principal of at most 168 bytes asks glibc's malloc for at most
        // 184, which with its 8-byte chunk header rounds up to one 192-byte chunk. At 176 bytes
        // the chunk would be 208, and it was 224 when `Principal` was 192 bytes.
        let size = std::mem::size_of::<Principal>();
        assert!(size <= 168, "Principal is {size} bytes");
        assert!(std::mem::size_of::<Arc<Principal>>() == 8);
    }
}

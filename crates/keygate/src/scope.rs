//! Scopes: what a key may do, and what a route requires.
//!
//! A scope is a short ASCII string such as `entities:read`, `knowledge:write` or
//! `content.register`: lowercase letters, digits, `_` and `-`, in segments separated by `:` or
//! `.`. A [`ScopeRequirement`] says what a route needs: all of a set, or any of a set.
//!
//! A scope can also be declared once as a type with [`scope!`](crate::scope!), so adapters can
//! offer a typed extractor (`Scoped<EntitiesRead>`) whose scope is checked at compile time.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest accepted scope string, in bytes.
pub const MAX_SCOPE_LEN: usize = 64;

/// Why a string is not a valid scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ScopeError {
    shown: String,
    reason: &'static str,
}

/// The reason of a [`ScopeError`] for a requirement that names no scope.
const EMPTY_REQUIREMENT: &str = "a scope requirement must name at least one scope";

impl ScopeError {
    fn describe(&self) -> String {
        if self.reason == EMPTY_REQUIREMENT {
            // `all_of([])` would accept every key and `any_of([])` none, or the reverse:
            // neither is what anyone means.
            return format!("{EMPTY_REQUIREMENT}; an empty one would decide nothing");
        }
        format!(
            "invalid scope {:?}: {}; scopes look like `entities:read` (lowercase letters, digits, `_`, `-`, segments joined by `:` or `.`)",
            self.shown, self.reason
        )
    }
}

/// Checks a scope string; usable in `const` context (this is what makes [`scope!`](crate::scope!)
/// a compile-time check).
pub const fn validate_scope(s: &str) -> Result<(), &'static str> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err("it is empty");
    }
    if b.len() > MAX_SCOPE_LEN {
        return Err("it is longer than 64 bytes");
    }
    let mut i = 0;
    let mut prev_sep = true;
    while i < b.len() {
        let c = b[i];
        let is_sep = c == b':' || c == b'.';
        let is_word = c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-';
        if is_sep {
            if prev_sep {
                return Err("a segment is empty");
            }
        } else if !is_word {
            return Err("it contains a character other than a-z, 0-9, `_`, `-`, `:` or `.`");
        }
        prev_sep = is_sep;
        i += 1;
    }
    if prev_sep {
        return Err("it ends with a separator");
    }
    Ok(())
}

/// One validated scope string, cheap to clone.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(Arc<str>);

impl Scope {
    /// Parses and validates a scope.
    pub fn new(s: &str) -> Result<Self, ScopeError> {
        match validate_scope(s) {
            Ok(()) => Ok(Scope(Arc::from(s))),
            Err(reason) => Err(ScopeError {
                shown: s.chars().take(MAX_SCOPE_LEN + 8).collect(),
                reason,
            }),
        }
    }

    /// A scope over an already validated, shared string.
    pub(crate) fn from_shared(s: Arc<str>) -> Self {
        Scope(s)
    }

    /// The scope as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Scope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::new(s)
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Scope {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Scope::new(&s).map_err(serde::de::Error::custom)
    }
}

/// A set of scopes, kept sorted and without duplicates (also when deserialized). Cheap to
/// clone: the scopes are shared, and the verifier gives every cached key with the same
/// grants the same set.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ScopeSet(Arc<[Scope]>);

impl Default for ScopeSet {
    fn default() -> Self {
        ScopeSet::new()
    }
}

impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

impl<'de> Deserialize<'de> for ScopeSet {
    /// A list of scopes, in any order, duplicates allowed: sorted and deduplicated here, so
    /// that [`ScopeSet::contains`] (a binary search) holds for any input.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Scope>::deserialize(d)?.into_iter().collect())
    }
}

impl ScopeSet {
    /// An empty set.
    pub fn new() -> Self {
        ScopeSet(Arc::from([]))
    }

    /// Parses every string as a scope; fails on the first invalid one.
    pub fn parse<I, S>(items: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        items
            .into_iter()
            .map(|s| Scope::new(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(ScopeSet::from_iter)
    }

    /// Whether the set holds `scope`.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.binary_search_by(|s| s.as_str().cmp(scope)).is_ok()
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> std::slice::Iter<'_, Scope> {
        self.0.iter()
    }

    /// Number of scopes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes present in both sets (used to narrow a key to what its owner may still do).
    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(
            self.0
                .iter()
                .filter(|s| other.contains(s.as_str()))
                .cloned()
                .collect(),
        )
    }

    /// Whether another clone of this set exists (the interner forgets sets no key holds).
    pub(crate) fn is_shared(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }

    /// The same set, its scopes' strings replaced by `intern`'s (shared) ones.
    pub(crate) fn map_scopes(&self, mut intern: impl FnMut(&Scope) -> Scope) -> ScopeSet {
        ScopeSet(self.0.iter().map(&mut intern).collect())
    }

    /// The scopes as strings.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|s| s.as_str().to_owned()).collect()
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<T: IntoIterator<Item = Scope>>(iter: T) -> Self {
        let mut v: Vec<Scope> = iter.into_iter().collect();
        v.sort();
        v.dedup();
        ScopeSet(v.into())
    }
}

impl<'a> IntoIterator for &'a ScopeSet {
    type Item = &'a Scope;
    type IntoIter = std::slice::Iter<'a, Scope>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.iter()).finish()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(s.as_str())?;
        }
        Ok(())
    }
}

/// Whether a requirement needs every scope of its set or at least one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Every listed scope is needed.
    AllOf,
    /// One of the listed scopes is enough.
    AnyOf,
}

/// What a route requires of a key's scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRequirement {
    kind: Requirement,
    scopes: Arc<[Scope]>,
}

impl ScopeRequirement {
    /// Requires every scope given.
    ///
    /// # Panics
    /// Panics when a scope string is invalid or none is given: requirements are written by the programmer at
    /// start-up, never built from request input. Use [`ScopeRequirement::try_all_of`] otherwise.
    #[allow(clippy::panic)]
    pub fn all_of<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::try_new(Requirement::AllOf, scopes).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Requires at least one of the scopes given.
    ///
    /// # Panics
    /// Panics when a scope string is invalid or none is given (see [`ScopeRequirement::all_of`]).
    #[allow(clippy::panic)]
    pub fn any_of<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::try_new(Requirement::AnyOf, scopes).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Fallible form of [`ScopeRequirement::all_of`].
    pub fn try_all_of<I, S>(scopes: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::try_new(Requirement::AllOf, scopes)
    }

    /// Fallible form of [`ScopeRequirement::any_of`].
    pub fn try_any_of<I, S>(scopes: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::try_new(Requirement::AnyOf, scopes)
    }

    fn try_new<I, S>(kind: Requirement, scopes: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let v = scopes
            .into_iter()
            .map(|s| Scope::new(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        if v.is_empty() {
            return Err(ScopeError {
                shown: String::new(),
                reason: EMPTY_REQUIREMENT,
            });
        }
        Ok(ScopeRequirement {
            kind,
            scopes: v.into(),
        })
    }

    /// The requirement for one typed scope.
    pub fn of<S: ScopeName>() -> Self {
        Self::all_of([S::SCOPE])
    }

    /// All of or any of.
    pub fn kind(&self) -> Requirement {
        self.kind
    }

    /// The scopes named by the requirement.
    pub fn scopes(&self) -> &[Scope] {
        &self.scopes
    }

    /// Whether `granted` satisfies the requirement.
    pub fn is_satisfied_by(&self, granted: &ScopeSet) -> bool {
        match self.kind {
            Requirement::AllOf => self.scopes.iter().all(|s| granted.contains(s.as_str())),
            Requirement::AnyOf => self.scopes.iter().any(|s| granted.contains(s.as_str())),
        }
    }
}

/// A scope declared once as a type, so that using it is checked by the compiler.
///
/// Declare with [`scope!`](crate::scope!); adapters offer `Scoped<S: ScopeName>` extractors.
pub trait ScopeName: Send + Sync + 'static {
    /// The scope string, validated at compile time by [`scope!`](crate::scope!).
    const SCOPE: &'static str;
}

/// Declares scope types: `keygate::scope!(pub EntitiesRead = "entities:read");`.
///
/// An invalid scope string is a compile error:
///
/// ```compile_fail
/// keygate::scope!(pub Bad = "Not A Scope");
/// ```
///
/// ```
/// keygate::scope! {
///     /// Read entities.
///     pub EntitiesRead = "entities:read";
///     /// Write entities.
///     pub EntitiesWrite = "entities:write";
/// }
/// use keygate::ScopeName;
/// assert_eq!(EntitiesRead::SCOPE, "entities:read");
/// ```
#[macro_export]
macro_rules! scope {
    ($($(#[$meta:meta])* $vis:vis $name:ident = $scope:literal);+ $(;)?) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
            $vis struct $name;
            impl $crate::ScopeName for $name {
                const SCOPE: &'static str = {
                    if let Err(_) = $crate::validate_scope($scope) {
                        panic!(concat!("invalid scope literal: ", $scope));
                    }
                    $scope
                };
            }
            const _: &str = <$name as $crate::ScopeName>::SCOPE;
        )+
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_shapes() {
        for s in [
            "entities:read",
            "knowledge:write",
            "content.register",
            "a",
            "x-y_z:1",
        ] {
            assert!(Scope::new(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn rejects_bad_shapes_with_a_reason() {
        for s in [
            "",
            "Entities:read",
            "a::b",
            ":a",
            "a:",
            "a b",
            "é",
            "a\0",
            &"a".repeat(65),
        ] {
            let e = Scope::new(s).unwrap_err();
            assert!(e.to_string().contains("invalid scope"), "{s}");
        }
    }

    #[test]
    fn any_of_is_satisfied_by_one() {
        let granted = ScopeSet::parse(["boards:read"]).unwrap();
        assert!(ScopeRequirement::any_of(["boards:read", "boards:write"]).is_satisfied_by(&granted));
        assert!(!ScopeRequirement::any_of(["x:y"]).is_satisfied_by(&granted));
    }

    #[test]
    fn a_deserialized_set_is_sorted_and_deduplicated_so_contains_holds() {
        let set: ScopeSet = serde_json::from_str(r#"["b:w","a:r","b:w","c:x"]"#).unwrap();
        assert_eq!(set.to_strings(), vec!["a:r", "b:w", "c:x"]);
        assert!(set.contains("a:r") && set.contains("c:x"));
        assert_eq!(
            serde_json::to_string(&set).unwrap(),
            r#"["a:r","b:w","c:x"]"#
        );
    }

    #[test]
    fn set_is_sorted_and_deduplicated() {
        let set = ScopeSet::parse(["b", "a", "b"]).unwrap();
        assert_eq!(set.to_strings(), vec!["a", "b"]);
        assert!(set.contains("a") && !set.contains("c"));
    }
}

//! Per-route scope guards that read naturally in a router:
//! `.route("/boards", post(create).route_layer(require_scopes(["boards:write"])))`.
//!
//! Each returns the core's [`RequireScopesLayer`]: a 403 `insufficient_scope` naming the
//! required and missing scopes, rendered with the renderer of the [`ApiKeyLayer`](crate::ApiKeyLayer)
//! in front of it.

use keygate::{RequireScopesLayer, ScopeName};

/// Requires every scope listed.
///
/// # Panics
/// When a scope literal is invalid (e.g. `"Entities Read"`): guards are written by the
/// programmer at start-up, never built from request input.
pub fn require_scopes<I, S>(scopes: I) -> RequireScopesLayer
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    RequireScopesLayer::all_of(scopes)
}

/// Requires at least one of the scopes listed.
///
/// # Panics
/// When a scope literal is invalid (see [`require_scopes`]).
pub fn require_any_scope<I, S>(scopes: I) -> RequireScopesLayer
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    RequireScopesLayer::any_of(scopes)
}

/// Requires one scope declared as a type with [`keygate::scope!`] (checked at compile time).
pub fn require_scope<T: ScopeName>() -> RequireScopesLayer {
    RequireScopesLayer::of::<T>()
}

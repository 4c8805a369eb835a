#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
// With no store feature only `connect` (which then refuses every URL) is left.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    allow(dead_code, unused_imports, unused_variables)
)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod body;
mod column;
mod common;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod dialect;
mod error;
mod options;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
mod timestamp;

use std::sync::Arc;

use keygate::{KeyStore, StoreError};

pub use error::UnsupportedUrl;
pub use options::StoreOptions;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresStore, NOTIFY_CHANNEL};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// `url` with its password, if any, replaced by `***`: fit for logs, banners and error
/// messages (`postgres://keygate:***@db:5432/keygate`).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{path}")
            } else {
                url.to_owned()
            }
        }
        None => url.to_owned(),
    }
}

/// Connects to the store named by `url` with default [`StoreOptions`]: `sqlite://PATH`
/// (`sqlite::memory:` for a throw-away database) or `postgres://…` / `postgresql://…`.
pub async fn connect(url: &str) -> Result<Arc<dyn KeyStore>, StoreError> {
    connect_with(url, StoreOptions::default()).await
}

/// Connects to the store named by `url` (see [`connect`]) with `options`.
///
/// An unknown scheme, or one whose feature is not compiled in, is a [`StoreError::Backend`]
/// holding an [`UnsupportedUrl`] that says which URLs work.
pub async fn connect_with(
    url: &str,
    options: StoreOptions,
) -> Result<Arc<dyn KeyStore>, StoreError> {
    let scheme = url.split_once(':').map_or("", |(s, _)| s);
    match scheme.to_ascii_lowercase().as_str() {
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Arc::new(SqliteStore::connect_with(url, options).await?)),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Arc::new(PostgresStore::connect_with(url, options).await?)),
        _ => Err(StoreError::Backend(Box::new(UnsupportedUrl::new(scheme)))),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url as redact;

    #[test]
    fn passwords_never_reach_error_messages() {
        assert_eq!(
            redact("postgres://keygate:s3cret@db:5432/keygate"),
            "postgres://keygate:***@db:5432/keygate"
        );
        assert_eq!(redact("sqlite://keys.db"), "sqlite://keys.db");
        assert_eq!(redact("postgres://u@h/d"), "postgres://u@h/d");
    }
}

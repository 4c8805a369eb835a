//! How sqlx errors become [`StoreError`]s.

use std::time::Duration;

use keygate::StoreError;

/// A database URL whose scheme no compiled-in store handles.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported database URL scheme {scheme:?}: {hint}")]
pub struct UnsupportedUrl {
    scheme: String,
    hint: &'static str,
}

impl UnsupportedUrl {
    pub(crate) fn new(scheme: &str) -> Self {
        let scheme: String = scheme.chars().take(20).collect();
        let hint = match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => {
                "PostgreSQL support is not compiled in (enable the `postgres` feature of keygate-sqlx)"
            }
            "sqlite" => {
                "SQLite support is not compiled in (enable the `sqlite` feature of keygate-sqlx)"
            }
            _ => "use sqlite://PATH or postgres://USER:PASSWORD@HOST/DATABASE",
        };
        UnsupportedUrl { scheme, hint }
    }

    /// The scheme that was given.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }
}

/// SQLite result codes (primary, low byte) that mean the database cannot be used right now.
const SQLITE_UNAVAILABLE: &[i32] = &[
    5,  // SQLITE_BUSY
    6,  // SQLITE_LOCKED
    8,  // SQLITE_READONLY
    10, // SQLITE_IOERR
    13, // SQLITE_FULL
    14, // SQLITE_CANTOPEN
];

/// Whether a database error code says "cannot serve now" rather than "this query is wrong".
fn is_unavailable_code(code: &str) -> bool {
    // PostgreSQL SQLSTATEs are always five characters (and may be all digits, like 08006);
    // SQLite result codes, extended ones included, have at most four digits.
    if code.len() < 5 {
        return code
            .parse::<i32>()
            .is_ok_and(|n| SQLITE_UNAVAILABLE.contains(&(n & 0xff)));
    }
    // PostgreSQL SQLSTATE classes: 08 connection exception, 53 insufficient resources,
    // 57 operator intervention (admin shutdown, cannot connect now), 58 system error.
    ["08", "53", "57", "58"].iter().any(|c| code.starts_with(c))
}

/// Maps a sqlx error to the store error the verifier understands (503 for outages).
pub(crate) fn store_error(e: sqlx::Error, timeout: Duration) -> StoreError {
    match e {
        sqlx::Error::PoolTimedOut => StoreError::Timeout(timeout),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Database(ref d) if d.code().is_some_and(|c| is_unavailable_code(&c)) => {
            StoreError::Unavailable(d.message().to_owned())
        }
        other => StoreError::Backend(Box::new(other)),
    }
}

/// Whether the error is a unique-constraint violation (duplicate id).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// Runs `fut` within `timeout`, mapping a sqlx error or the deadline to a [`StoreError`].
pub(crate) async fn bounded<T, F>(timeout: Duration, fut: F) -> Result<T, StoreError>
where
    F: std::future::Future<Output = Result<T, StoreError>>,
{
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or(Err(StoreError::Timeout(timeout)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_class_codes_are_unavailable() {
        assert!(is_unavailable_code("08006"));
        assert!(is_unavailable_code("57P01"));
        assert!(is_unavailable_code("53300")); // too many connections
        assert!(!is_unavailable_code("42P01")); // undefined table: a bug, not an outage
        assert!(is_unavailable_code("14"));
        assert!(is_unavailable_code("261")); // SQLITE_BUSY_RECOVERY
        assert!(!is_unavailable_code("23505"));
        assert!(!is_unavailable_code("1"));
    }

    #[test]
    fn unknown_scheme_names_the_urls_that_work() {
        let e = UnsupportedUrl::new("mysql");
        assert!(e.to_string().contains("sqlite://PATH"), "{e}");
        assert_eq!(e.scheme(), "mysql");
    }
}

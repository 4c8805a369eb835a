//! Command-line arguments of the quickstarts (the contract in `docs/architecture.md`, "The
//! demo API").

use std::net::SocketAddr;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};

/// Store URL when neither `--database-url` nor `KEYGATE_DATABASE_URL` is given.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://keygate.db";
/// Listen address when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";
/// Revocation window when `--revocation-ttl` is not given.
pub const DEFAULT_REVOCATION_TTL: &str = "30s";

/// Arguments shared by every quickstart.
#[derive(Debug, Clone, Parser)]
#[command(
    about = "keygate demo API: API-key authentication with scopes, JSON errors and tenant isolation",
    after_help = "On an empty store a demo key is created and printed once, with ready curl lines.\nMore keys: cargo run -p keygate-cli -- create --name NAME --org demo --scope entities:read"
)]
pub struct Args {
    /// Key store URL: sqlite://PATH (created if missing) or postgres://…
    #[arg(long, env = "KEYGATE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,

    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,

    /// How long a key's cached status is trusted: the longest a revoke made by another
    /// process (e.g. the keygate CLI) takes to bite. Like 30s, 5s, 500ms, or 0s (read the
    /// store on every request).
    #[arg(long, default_value = DEFAULT_REVOCATION_TTL, value_parser = parse_ttl)]
    pub revocation_ttl: Duration,
}

/// The longest duration the quickstarts take: 100 years (of 365.25 days, `humantime`'s `100y`).
const MAX_DURATION: Duration = Duration::from_secs(100 * 31_557_600);

/// `--revocation-ttl`: a human duration as `humantime` reads it (`30s`, `500ms`, `1m`; `m` is
/// minutes, `M` months), at most [`MAX_DURATION`]; zero is allowed.
fn parse_ttl(s: &str) -> Result<Duration, String> {
    let shown: String = s.trim().chars().take(40).collect();
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        format!("invalid duration {shown:?} ({e}): use a number and a unit, like 30s, 5s or 500ms")
    })?;
    if d > MAX_DURATION {
        return Err(format!(
            "invalid duration {shown:?}: at most 100 years (100y)"
        ));
    }
    Ok(d)
}

impl Args {
    /// Parses the process arguments, showing `bin_name` in help and errors; exits with a
    /// clear message on bad input.
    pub fn parse_for(bin_name: &'static str) -> Self {
        Self::try_parse_for(bin_name, std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// Parses `args` (the first one is the program name).
    pub fn try_parse_for<I, T>(bin_name: &'static str, args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Args::command().name(bin_name).try_get_matches_from(args)?;
        Args::from_arg_matches(&matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_quickstart_contract() {
        // KEYGATE_DATABASE_URL may be set in the environment running the tests.
        let a = Args::try_parse_for("q", ["q", "--database-url", "sqlite://x.db"]).unwrap();
        assert_eq!(a.addr, DEFAULT_ADDR.parse().unwrap());
        assert_eq!(a.revocation_ttl, Duration::from_secs(30));
        assert_eq!(a.database_url, "sqlite://x.db");
    }

    #[test]
    fn revocation_ttl_takes_human_durations_and_refuses_nonsense() {
        let a = Args::try_parse_for("q", ["q", "--revocation-ttl", "500ms"]).unwrap();
        assert_eq!(a.revocation_ttl, Duration::from_millis(500));
        let a = Args::try_parse_for("q", ["q", "--revocation-ttl", "1m"]).unwrap();
        assert_eq!(a.revocation_ttl, Duration::from_secs(60), "m is minutes");
        let a = Args::try_parse_for("q", ["q", "--revocation-ttl", "0s"]).unwrap();
        assert_eq!(a.revocation_ttl, Duration::ZERO);
        for bad in ["soon", "30", "101y", "1x"] {
            let e = Args::try_parse_for("q", ["q", "--revocation-ttl", bad]).unwrap_err();
            assert!(e.to_string().contains("invalid duration"), "{bad}: {e}");
        }
    }
}

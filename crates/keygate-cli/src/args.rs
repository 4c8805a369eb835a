//! The command line, as clap sees it.

use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use keygate::KeyStatus;

/// Where keys live when nothing else is said.
pub(crate) const DEFAULT_DATABASE_URL: &str = "sqlite://keygate.db";

/// Manage keygate API keys: create, list, show, update, revoke, delete and rotate, and see their
/// usage.
#[derive(Debug, Parser)]
#[command(
    name = "keygate",
    version,
    about,
    long_about = None,
    // `keygate` alone is a usage error naming the missing subcommand, not the help text.
    subcommand_required = true,
    arg_required_else_help = false
)]
pub(crate) struct Cli {
    /// Key store URL: sqlite://PATH (created if missing) or postgres://USER:PASSWORD@HOST/DB.
    #[arg(
        long,
        global = true,
        env = "KEYGATE_DATABASE_URL",
        default_value = DEFAULT_DATABASE_URL,
        hide_env_values = true
    )]
    pub(crate) database_url: String,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a key; its plaintext is printed once.
    Create(CreateArgs),
    /// List keys with their status, last use and requests in the last 24 hours.
    List(ListArgs),
    /// Show one key and its audit trail.
    Show(IdArgs),
    /// Rename a key, or change its expiry or its rate limit.
    Update(UpdateArgs),
    /// Revoke a key: it stops working and stays listed for audit.
    Revoke(IdOnly),
    /// Delete a key (its audit trail is kept).
    Delete(IdOnly),
    /// Replace a key by a new one with the same grants; the old one works for a grace period.
    Rotate(RotateArgs),
    /// Requests and refusals of one key per UTC day, oldest first, ending today.
    Usage(UsageArgs),
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell.
    #[command(
        after_help = "Example: keygate completions bash > ~/.local/share/bash-completion/completions/keygate"
    )]
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// Human name of the key.
    #[arg(long)]
    pub(crate) name: String,
    /// Organization the key belongs to.
    #[arg(long)]
    pub(crate) org: String,
    /// Team inside the organization.
    #[arg(long)]
    pub(crate) team: Option<String>,
    /// User the key acts for.
    #[arg(long)]
    pub(crate) owner: Option<String>,
    /// Granted scope, e.g. entities:read (repeat the flag, or give several).
    #[arg(long = "scope", required = true, num_args = 1..)]
    pub(crate) scopes: Vec<String>,
    /// Expire after this long: 90d, 24h, 30m (m is minutes, M months), 1y, …
    #[arg(long, conflicts_with = "expires_at", value_name = "DURATION", value_parser = lifetime)]
    pub(crate) expires_in: Option<Duration>,
    /// Expire at this RFC 3339 time, e.g. 2027-01-01T00:00:00Z.
    #[arg(long)]
    pub(crate) expires_at: Option<String>,
    /// Token prefix naming the environment (default mk_live).
    #[arg(long)]
    pub(crate) prefix: Option<String>,
    /// The key's own rate limit, requests/period: 1000/1m, 10/1s, …
    #[arg(long, value_name = "N/PERIOD")]
    pub(crate) rate_limit: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only keys of this organization.
    #[arg(long)]
    pub(crate) org: Option<String>,
    /// Only keys with this status.
    #[arg(long, value_enum)]
    pub(crate) status: Option<StatusArg>,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// A key status, as `list --status` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StatusArg {
    /// Keys that work.
    Active,
    /// Keys whose expiry has passed.
    Expired,
    /// Revoked keys.
    Revoked,
}

impl From<StatusArg> for KeyStatus {
    fn from(s: StatusArg) -> Self {
        match s {
            StatusArg::Active => KeyStatus::Active,
            StatusArg::Expired => KeyStatus::Expired,
            StatusArg::Revoked => KeyStatus::Revoked,
        }
    }
}

/// `update`: every change is optional, but at least one must be given (checked before the
/// store is opened). The expiry flags exclude each other, and so do the rate-limit flags.
#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("expiry").args(["expires_at", "expires_in", "no_expiry"]).multiple(false)),
    group(ArgGroup::new("limit").args(["rate_limit", "no_rate_limit"]).multiple(false))
)]
pub(crate) struct UpdateArgs {
    /// The key id.
    pub(crate) id: String,
    /// New human name of the key.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Expire at this RFC 3339 time, e.g. 2027-01-01T00:00:00Z.
    #[arg(long)]
    pub(crate) expires_at: Option<String>,
    /// Expire this long from now: 90d, 24h, 30m (m is minutes, M months), 1y, …
    #[arg(long, value_name = "DURATION", value_parser = lifetime)]
    pub(crate) expires_in: Option<Duration>,
    /// Remove the expiry: the key works until it is revoked.
    #[arg(long)]
    pub(crate) no_expiry: bool,
    /// New rate limit, requests/period: 1000/1m, 10/1s, …
    #[arg(long, value_name = "N/PERIOD")]
    pub(crate) rate_limit: Option<String>,
    /// Remove the key's rate limit.
    #[arg(long)]
    pub(crate) no_rate_limit: bool,
    /// Print the updated key as JSON (like `show --json`) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct IdArgs {
    /// The key id.
    pub(crate) id: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct IdOnly {
    /// The key id.
    pub(crate) id: String,
}

#[derive(Debug, Args)]
pub(crate) struct RotateArgs {
    /// The key id.
    pub(crate) id: String,
    /// How long the old key keeps working: 24h, 30m, 7d, 0s (not at all), …
    #[arg(long, default_value = "24h", value_name = "DURATION", value_parser = duration)]
    pub(crate) grace: Duration,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The most days `usage --days` shows: hourly counts are kept 90 days.
pub(crate) const MAX_USAGE_DAYS: u32 = 90;

#[derive(Debug, Args)]
pub(crate) struct UsageArgs {
    /// The key id.
    pub(crate) id: String,
    /// How many days to show, ending today (UTC): 1 to 90.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 30,
        value_parser = usage_days,
        allow_negative_numbers = true
    )]
    pub(crate) days: u32,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `--days`: a whole number from 1 to [`MAX_USAGE_DAYS`].
fn usage_days(s: &str) -> Result<u32, String> {
    let bad = || format!("give a whole number of days from 1 to {MAX_USAGE_DAYS}");
    let n: u32 = s.trim().parse().map_err(|_| bad())?;
    if (1..=MAX_USAGE_DAYS).contains(&n) {
        Ok(n)
    } else {
        Err(bad())
    }
}

/// The longest duration a flag takes: 100 years (of 365.25 days, as `humantime` counts `100y`).
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(100 * 31_557_600);

/// A human duration as `humantime` reads it (`90d`, `24h`, `30m`, `500ms`, `1h 30m`, `1.5h`;
/// `m` is minutes, `M` months), at most [`MAX_DURATION`].
pub(crate) fn duration(s: &str) -> Result<Duration, String> {
    let shown: String = s.chars().take(40).collect();
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        format!("invalid duration {shown:?} ({e}): use a number and a unit, like 90d, 24h, 30m or 500ms")
    })?;
    if d > MAX_DURATION {
        return Err(format!(
            "invalid duration {shown:?}: at most 100 years (100y)"
        ));
    }
    Ok(d)
}

/// A key's lifetime (`--expires-in`): a [`duration`] that is not zero.
fn lifetime(s: &str) -> Result<Duration, String> {
    let d = duration(s)?;
    if d.is_zero() {
        return Err(format!(
            "invalid duration {:?}: a key cannot expire right away; give more than zero",
            s.trim()
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_the_documented_forms_with_m_for_minutes() {
        for (s, secs) in [
            ("90d", 90 * 86_400),
            ("24h", 86_400),
            ("30m", 1_800),
            ("30s", 30),
            ("1m", 60),
            ("2w", 14 * 86_400),
            ("1h 30m", 5_400),
            ("1.5h", 5_400),
            (" 7d ", 7 * 86_400),
            ("0s", 0),
            ("100y", 100 * 31_557_600),
        ] {
            assert_eq!(duration(s), Ok(Duration::from_secs(secs)), "{s:?}");
        }
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        // `M` is a month (30.44 days), never a minute.
        assert!(duration("1M").unwrap() > Duration::from_secs(30 * 86_400));
    }

    #[test]
    fn a_bad_duration_is_one_line_naming_it() {
        for s in [
            "",
            "ten days",
            "90",
            "1x",
            "-1d",
            "101y",
            "99999999999999999999d",
        ] {
            let e = duration(s).unwrap_err();
            assert!(e.starts_with("invalid duration"), "{s:?}: {e}");
            assert!(!e.contains('\n'), "{s:?}: {e}");
        }
        assert!(duration("101y").unwrap_err().contains("100 years"));
        assert!(lifetime("0s").unwrap_err().contains("more than zero"));
        assert_eq!(lifetime("90d"), Ok(Duration::from_secs(90 * 86_400)));
    }
}

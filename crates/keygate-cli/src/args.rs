//! The command line, as clap sees it.

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use keygate::KeyStatus;

/// Where keys live when nothing else is said.
pub(crate) const DEFAULT_DATABASE_URL: &str = "sqlite://keygate.db";

/// Manage keygate API keys: create, list, show, update, revoke, delete and rotate, and see their
/// usage.
#[derive(Debug, Parser)]
#[command(name = "keygate", version, about, long_about = None)]
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
    /// Expire after this long: 90d, 24h, 30m, …
    #[arg(long, conflicts_with = "expires_at")]
    pub(crate) expires_in: Option<String>,
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
    /// Expire this long from now: 90d, 24h, 30m, …
    #[arg(long)]
    pub(crate) expires_in: Option<String>,
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
    /// How long the old key keeps working: 24h, 30m, 7d, …
    #[arg(long, default_value = "24h")]
    pub(crate) grace: String,
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

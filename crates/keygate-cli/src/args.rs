//! The command line, as clap sees it.

use clap::{Args, Parser, Subcommand};

/// Where keys live when nothing else is said.
pub(crate) const DEFAULT_DATABASE_URL: &str = "sqlite://keygate.db";

/// Manage keygate API keys: create, list, show, revoke, delete and rotate.
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
    /// List keys with their status and last use.
    List(ListArgs),
    /// Show one key and its audit trail.
    Show(IdArgs),
    /// Revoke a key: it stops working and stays listed for audit.
    Revoke(IdOnly),
    /// Delete a key (its audit trail is kept).
    Delete(IdOnly),
    /// Replace a key by a new one with the same grants; the old one works for a grace period.
    Rotate(RotateArgs),
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
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only keys of this organization.
    #[arg(long)]
    pub(crate) org: Option<String>,
    /// Print a JSON array instead of a table.
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

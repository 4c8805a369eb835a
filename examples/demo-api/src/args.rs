//! Command-line arguments of the quickstarts (the contract in `docs/architecture.md`, "The
//! demo API").

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use serde::Deserialize;

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
    #[arg(
        long,
        env = "KEYGATE_REVOCATION_TTL",
        default_value = DEFAULT_REVOCATION_TTL,
        value_parser = parse_ttl
    )]
    pub revocation_ttl: Duration,

    /// A TOML file with any of `database_url`, `addr` and `revocation_ttl` (like "30s"), and
    /// the tables `[verifier]` (keygate::VerifierConfig) and `[store]`
    /// (keygate_sqlx::StoreOptions); a flag or environment variable given as well wins over
    /// the file.
    #[arg(long, env = "KEYGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The verifier's settings from the `[verifier]` table of `--config` (empty without one).
    #[arg(skip)]
    pub verifier: keygate::VerifierConfig,

    /// The store's settings from the `[store]` table of `--config` (the defaults without one).
    #[arg(skip)]
    pub store: keygate_sqlx::StoreOptions,
}

/// What a `--config` file may set; every key is optional, unknown keys are refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    database_url: Option<String>,
    addr: Option<SocketAddr>,
    /// Read like `--revocation-ttl`: same grammar, same limits.
    revocation_ttl: Option<String>,
    /// Everything else the verifier takes (its `revocation_window` is `revocation_ttl`).
    verifier: Option<keygate::VerifierConfig>,
    /// How the SQL store connects and behaves.
    store: Option<keygate_sqlx::StoreOptions>,
}

/// A one-line usage error about the config file `path`.
fn config_error(path: &Path, what: impl std::fmt::Display) -> clap::Error {
    let line = what
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    clap::Error::raw(
        ErrorKind::InvalidValue,
        format!("config file {}: {line}\n", path.display()),
    )
}

/// Reads `path` and puts what it sets into `args`, except what the command line or the
/// environment already set.
fn apply_config(args: &mut Args, matches: &ArgMatches, path: &Path) -> Result<(), clap::Error> {
    let text = std::fs::read_to_string(path).map_err(|e| config_error(path, e))?;
    let file: ConfigFile = toml::from_str(&text).map_err(|e| {
        let at = e
            .span()
            .map(|s| format!("line {}: ", text[..s.start].matches('\n').count() + 1))
            .unwrap_or_default();
        config_error(path, format!("{at}{}", e.message()))
    })?;
    let unset = |id: &str| matches.value_source(id) == Some(ValueSource::DefaultValue);
    if let Some(url) = file.database_url.filter(|_| unset("database_url")) {
        args.database_url = url;
    }
    if let Some(addr) = file.addr.filter(|_| unset("addr")) {
        args.addr = addr;
    }
    let mut verifier = file.verifier.unwrap_or_default();
    // One name for one setting: the flag's.
    if let Some(window) = verifier.revocation_window.take() {
        return Err(config_error(
            path,
            format!(
                "[verifier] revocation_window: set revocation_ttl = \"{}\" at the top instead",
                humantime::format_duration(window)
            ),
        ));
    }
    // Parameters argon2 refuses stop here, before any store is opened.
    if let Some(params) = verifier.argon2 {
        keygate::Argon2Hasher::with_params(params)
            .map_err(|e| config_error(path, format!("[verifier] argon2: {e}")))?;
    }
    args.verifier = verifier;
    args.store = file.store.unwrap_or_default();
    if let Some(ttl) = file.revocation_ttl.filter(|_| unset("revocation_ttl")) {
        args.revocation_ttl =
            parse_ttl(&ttl).map_err(|e| config_error(path, format!("revocation_ttl: {e}")))?;
    }
    Ok(())
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
        let mut args = Args::from_arg_matches(&matches)?;
        if let Some(path) = args.config.clone() {
            apply_config(&mut args, &matches, &path)?;
        }
        Ok(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keygate.toml");
        std::fs::write(&path, text).unwrap();
        let path = path.display().to_string();
        (dir, path)
    }

    #[test]
    fn a_config_file_sets_the_revocation_window_and_the_address_and_flags_win() {
        let (_dir, path) = config(
            "revocation_ttl = \"5s\"\naddr = \"127.0.0.1:4000\"\ndatabase_url = \"sqlite://from-file.db\"\n",
        );
        let a = Args::try_parse_for("q", ["q", "--config", &path]).unwrap();
        assert_eq!(a.revocation_ttl, Duration::from_secs(5));
        assert_eq!(a.addr, "127.0.0.1:4000".parse().unwrap());
        // KEYGATE_DATABASE_URL may be set where the tests run, and then it wins over the file.
        if std::env::var_os("KEYGATE_DATABASE_URL").is_none() {
            assert_eq!(a.database_url, "sqlite://from-file.db");
        }
        let a = Args::try_parse_for(
            "q",
            [
                "q",
                "--config",
                &path,
                "--revocation-ttl",
                "1m",
                "--database-url",
                "sqlite://flag.db",
            ],
        )
        .unwrap();
        assert_eq!(a.revocation_ttl, Duration::from_secs(60));
        assert_eq!(a.database_url, "sqlite://flag.db");
        assert_eq!(a.addr, "127.0.0.1:4000".parse().unwrap());
    }

    #[test]
    fn a_config_file_sets_the_verifier_and_the_store() {
        let (_dir, path) = config(
            "revocation_ttl = \"5s\"\n\
             [verifier]\nmax_failures = 3\nfailure_window = \"2m\"\n\
             argon2 = { memory_kib = 4096, iterations = 1, parallelism = 1 }\n\
             [store]\ntimeout = \"750ms\"\nnotifications = false\n",
        );
        let a = Args::try_parse_for("q", ["q", "--config", &path]).unwrap();
        assert_eq!(a.revocation_ttl, Duration::from_secs(5));
        assert_eq!(a.verifier.max_failures, Some(3));
        assert_eq!(a.verifier.failure_window, Some(Duration::from_secs(120)));
        assert_eq!(a.verifier.argon2.map(|p| p.memory_kib), Some(4096));
        assert_eq!(a.store.timeout, Duration::from_millis(750));
        assert!(!a.store.notifications);
        assert!(a.store.migrate, "absent from the file: the default");
        // Without a file: nothing set, the store's defaults.
        let a = Args::try_parse_for("q", ["q"]).unwrap();
        assert_eq!(a.verifier, keygate::VerifierConfig::default());
        assert_eq!(a.store, keygate_sqlx::StoreOptions::default());
    }

    #[tokio::test]
    async fn the_store_is_opened_with_the_files_settings() {
        // A store option reaches the store: one that forbids migrating finds no schema. (The
        // URL is given as a flag: KEYGATE_DATABASE_URL, where set, would win over the file.)
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
        let (_dir2, path) = config("[store]\nmigrate = false\n");
        let a = Args::try_parse_for("q", ["q", "--config", &path, "--database-url", &url]).unwrap();
        let (store, verifier) = crate::open_verifier(&a).await.unwrap();
        assert!(
            store.get("any").await.is_err(),
            "no schema: nothing migrated"
        );
        drop(verifier);
    }

    #[test]
    fn a_bad_config_file_is_a_one_line_error_naming_the_file_and_the_problem() {
        for (text, says) in [
            ("revocation_ttl = \"soon\"\n", "invalid duration \"soon\""),
            ("revocation_ttl = 30\n", "line 1"),
            (
                "revocation_tll = \"30s\"\n",
                "unknown field `revocation_tll`",
            ),
            ("addr = \"nowhere\"\n", "line 1"),
            ("[[not toml\n", "line 1"),
            (
                "[verifier]\nrevocation_window = \"5s\"\n",
                "set revocation_ttl = \"5s\" at the top instead",
            ),
            (
                "[verifier]\nmax_failure = 3\n",
                "unknown field `max_failure`",
            ),
            (
                "[store]\ntimeout = \"2\"\n",
                "line 2: invalid value: string \"2\", expected a duration",
            ),
            (
                "# comment\n[store]\nmigrations = false\n",
                "line 3: unknown field `migrations`",
            ),
            (
                "[verifier]\nargon2 = { memory_kib = 1, iterations = 1, parallelism = 1 }\n",
                "[verifier] argon2: hashing failed",
            ),
        ] {
            let (_dir, path) = config(text);
            let e = Args::try_parse_for("q", ["q", "--config", &path]).unwrap_err();
            let shown = e.to_string();
            let first = shown.lines().next().unwrap();
            assert!(
                first.starts_with("error: config file "),
                "{text:?}: {shown}"
            );
            assert!(
                first.contains(&path) && first.contains(says),
                "{text:?}: {shown}"
            );
            assert_eq!(shown.trim_end().lines().count(), 1, "{text:?}: {shown}");
        }
        let e = Args::try_parse_for("q", ["q", "--config", "/nonexistent/keygate.toml"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/keygate.toml"), "{e}");
    }

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

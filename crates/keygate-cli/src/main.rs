//! `keygate`: the admin CLI for keygate API keys and their usage.
//!
//! ```text
//! keygate create --name billing-sync --org acme --scope entities:read --expires-in 90d --rate-limit 1000/1m
//! keygate list --org acme --status active
//! keygate update ID --name billing --no-expiry --rate-limit 10/1s
//! keygate show ID | revoke ID | delete ID | rotate ID --grace 24h
//! keygate usage ID --days 7 --json
//! keygate completions bash
//! ```
//!
//! The store comes from `--database-url`, else `KEYGATE_DATABASE_URL`, else
//! `sqlite://keygate.db`. Every failure exits non-zero with one line on stderr, and input is
//! checked before the store is opened, so a refused command writes nothing.
#![forbid(unsafe_code)]

mod args;
mod command;
mod render;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::args::Cli;
use crate::command::Failure;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(&Failure::Usage(one_line_clap_error(&e))),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&Failure::Failed(format!("cannot start the runtime: {e}"))),
    };
    match runtime.block_on(command::run(cli)) {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(f) => fail(&f),
    }
}

/// Prints `error: …` as one line and picks the exit code (2 for usage, 1 otherwise).
fn fail(f: &Failure) -> ExitCode {
    let (msg, code) = match f {
        Failure::Usage(m) => (m, 2),
        Failure::Failed(m) => (m, 1),
    };
    let line: String = msg
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let _ = writeln!(std::io::stderr(), "error: {line}");
    ExitCode::from(code)
}

/// clap's message without its usage and help footer, on one line.
fn one_line_clap_error(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let text = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let text = text
        .strip_prefix("error:")
        .unwrap_or(&text)
        .trim()
        .to_owned();
    format!("{text} (see keygate --help)")
}

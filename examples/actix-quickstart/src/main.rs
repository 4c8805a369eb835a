//! `cargo run -p actix-quickstart`: the demo API on actix-web over a SQLite key store.

use std::process::ExitCode;

use actix_web::{App, HttpServer};
use demo_api::{banner, bootstrap_demo_keys, flush_on_shutdown, open_verifier, Args, DemoState};
use keygate::KeyManager;

#[actix_web::main]
async fn main() -> ExitCode {
    let args = Args::parse_for("actix-quickstart");
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("actix-quickstart: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let (store, verifier) = open_verifier(&args).await?;
    let state = DemoState::new(verifier.clone());
    // Bind before creating the demo key: a key printed for a server that never started
    // would be lost.
    let server = HttpServer::new(move || {
        let state = state.clone();
        App::new().configure(move |c| actix_quickstart::configure(c, state))
    })
    .workers(2)
    .bind(args.addr)
    .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or("the server is bound to no address")?;
    let manager = KeyManager::new(store).with_verifier(&verifier);
    if let Some(keys) = bootstrap_demo_keys(&manager).await? {
        println!(
            "{}",
            banner(
                keys.demo.key.expose_secret(),
                keys.management.key.expose_secret(),
                addr,
                &args.database_url
            )
        );
    }
    println!(
        "keygate demo API (actix-web) listening on http://{addr} — store {}, revocation window {:?}; Ctrl-C to stop",
        demo_api::redact_url(&args.database_url),
        args.revocation_ttl
    );
    // actix-web stops gracefully on Ctrl-C / SIGTERM.
    server.run().await?;

    flush_on_shutdown(&verifier).await?;
    Ok(())
}

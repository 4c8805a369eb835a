//! `cargo run -p axum-quickstart`: the demo API on axum over a SQLite key store.

use std::process::ExitCode;

use demo_api::{
    banner, bootstrap_demo_keys, flush_on_shutdown, open_verifier, shutdown_signal, Args, DemoState,
};
use keygate::KeyManager;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse_for("axum-quickstart");
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("axum-quickstart: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let (store, verifier) = open_verifier(&args).await?;
    // Bind before creating the demo key: a key printed for a server that never started
    // would be lost.
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let addr = listener.local_addr()?;
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
        "keygate demo API (axum) listening on http://{addr} — store {}, revocation window {:?}; Ctrl-C to stop",
        demo_api::redact_url(&args.database_url),
        args.revocation_ttl
    );

    let app = axum_quickstart::app(DemoState::new(verifier.clone()));
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;

    flush_on_shutdown(&verifier).await?;
    Ok(())
}

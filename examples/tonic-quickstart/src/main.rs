//! `cargo run -p tonic-quickstart`: keygate in front of a tonic gRPC service, over the same
//! key store as the other quickstarts (`--database-url`, `--addr`, `--revocation-ttl`).

use std::process::ExitCode;
use std::sync::Arc;

use demo_api::{bootstrap_demo_keys, flush_on_shutdown, open_verifier, shutdown_signal, Args};
use keygate::KeyManager;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse_for("tonic-quickstart");
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tonic-quickstart: {e}");
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
            tonic_quickstart::banner(keys.demo.key.expose_secret(), addr)
        );
    }
    println!(
        "keygate demo gRPC service (tonic) listening on http://{addr} — store {}, revocation window {:?}; Ctrl-C to stop",
        demo_api::redact_url(&args.database_url),
        args.revocation_ttl
    );

    tonic_quickstart::serve(
        listener,
        verifier.clone(),
        Arc::default(),
        shutdown_signal(),
    )
    .await?;

    flush_on_shutdown(&verifier).await?;
    Ok(())
}

//! The server under test: axum on 127.0.0.1 with keygate's tower `ApiKeyLayer`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use axum::{Extension, Router};
use keygate::{ApiKeyLayer, Principal, Verifier};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Path of the one protected route; it answers with the principal's key id.
pub const WHOAMI: &str = "/whoami";

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

async fn whoami(Extension(who): Extension<Arc<Principal>>) -> String {
    who.id.to_string()
}

/// Binds an ephemeral port on 127.0.0.1 and serves until [`Server::stop`].
pub async fn start(verifier: Verifier) -> anyhow::Result<Server> {
    let app = Router::new()
        .route(WHOAMI, get(whoami))
        .layer(ApiKeyLayer::new(verifier));
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Ok(Server { addr, stop, task })
}

impl Server {
    /// Stops accepting, lets open connections finish, and waits.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }
}

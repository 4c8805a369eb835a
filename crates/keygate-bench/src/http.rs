//! A tiny HTTP/1.1 client over a raw TCP stream: sanity checks, `/stats`, and the cold-start
//! burst (where every request must be sent at the same moment on its own connection).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The request bytes of `GET path` with one authorization header (or none).
pub(crate) fn request(path: &str, authorization: Option<&str>) -> String {
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n")
}

/// Status code and body of a raw response.
pub(crate) fn split_response(raw: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Sends one request on an open stream (which the server then closes) and reads the response.
pub(crate) async fn exchange(mut stream: TcpStream, req: &[u8]) -> Result<(u16, String)> {
    stream.write_all(req).await?;
    let mut buf = Vec::with_capacity(512);
    stream.read_to_end(&mut buf).await?;
    Ok(split_response(&buf))
}

/// `GET path` with an optional `Authorization` value: status and body.
pub(crate) async fn get(
    addr: SocketAddr,
    path: &str,
    authorization: Option<&str>,
) -> Result<(u16, String)> {
    let fut = async {
        let stream = TcpStream::connect(addr).await?;
        exchange(stream, request(path, authorization).as_bytes()).await
    };
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .with_context(|| format!("GET {path} on {addr} timed out"))?
}

/// Blocking convenience wrapper for the orchestrator.
pub(crate) fn get_blocking(
    addr: SocketAddr,
    path: &str,
    authorization: Option<&str>,
) -> Result<(u16, String)> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(get(addr, path, authorization))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_and_body() {
        let (s, b) = split_response(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 2\r\n\r\n{}");
        assert_eq!((s, b.as_str()), (401, "{}"));
    }

    #[test]
    fn garbage_has_status_zero() {
        assert_eq!(split_response(b"").0, 0);
    }
}

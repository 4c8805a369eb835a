//! Talking to a real server over a socket: a tiny blocking HTTP/1.1 client (one request per
//! connection), [`WireApp`] to run the table over it, and [`parse_curl`] for the `curl`
//! lines the quickstarts print.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::driver::{AppUnderTest, TestRequest, TestResponse};

/// Sends `req` to `addr` (`host:port`) with `Connection: close` and reads the whole answer.
pub fn send(addr: &str, req: &TestRequest, timeout: Duration) -> io::Result<TestResponse> {
    let target: SocketAddr = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
    let mut stream = TcpStream::connect_timeout(&target, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut head = format!(
        "{} {} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n",
        req.method, req.path
    )
    .into_bytes();
    for (name, value) in &req.headers {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    if !req.body.is_empty() || req.method != "GET" {
        head.extend_from_slice(format!("content-length: {}\r\n", req.body.len()).as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    head.extend_from_slice(&req.body);
    stream.write_all(&head)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

fn parse_response(raw: &[u8]) -> io::Result<TestResponse> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| bad("head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let headers: Vec<(String, Vec<u8>)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().as_bytes().to_vec()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case(b"chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(TestResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| bad("truncated chunk size"))?;
        let size_text = std::str::from_utf8(&rest[..eol]).map_err(|_| bad("chunk size"))?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad("chunk size"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(..size).ok_or_else(|| bad("truncated chunk"))?;
        body.extend_from_slice(chunk);
        rest = rest.get(size + 2..).ok_or_else(|| bad("truncated chunk"))?;
    }
}

/// A server reached over a socket, as an [`AppUnderTest`].
#[derive(Debug, Clone)]
pub struct WireApp {
    /// `host:port`.
    pub addr: String,
}

impl AppUnderTest for WireApp {
    #[allow(clippy::panic)]
    async fn send(&self, request: TestRequest) -> TestResponse {
        let addr = self.addr.clone();
        // The client is blocking; keep it off the runtime's worker threads.
        let res =
            tokio::task::spawn_blocking(move || send(&addr, &request, Duration::from_secs(10)))
                .await;
        match res {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => panic!("could not reach {}: {e}", self.addr),
            Err(e) => panic!("client thread failed: {e}"),
        }
    }
}

/// A `curl` command line, parsed: where it goes and what it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurlCommand {
    /// `host:port` of the URL.
    pub addr: String,
    /// The request.
    pub request: TestRequest,
}

/// Splits a shell command line into words: single quotes are literal, double quotes allow
/// `\"`, `\\`, `\$` and `` \` `` escapes.
fn shell_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => cur.push(e),
                            Some(other) => {
                                cur.push('\\');
                                cur.push(other);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Parses the `curl` lines the quickstarts print (`-s`, `-S`, `-i`, `-H`, `-d`, `-X` and an
/// `http://` URL), so a test can check them without curl installed.
pub fn parse_curl(line: &str) -> Result<CurlCommand, String> {
    let words = shell_words(line)?;
    let mut it = words.into_iter();
    if it.next().as_deref() != Some("curl") {
        return Err(format!("not a curl command: {line}"));
    }
    let mut method = None;
    let mut headers = Vec::new();
    let mut body: Option<String> = None;
    let mut url = None;
    while let Some(w) = it.next() {
        match w.as_str() {
            "-s" | "-S" | "-sS" | "-i" | "--silent" | "--show-error" | "--include" => {}
            "-H" | "--header" => {
                let h = it.next().ok_or("-H without a value")?;
                let (n, v) = h.split_once(':').ok_or("header without a colon")?;
                headers.push((n.trim().to_owned(), v.trim().as_bytes().to_vec()));
            }
            "-d" | "--data" | "--data-raw" => body = Some(it.next().ok_or("-d without a value")?),
            "-X" | "--request" => method = Some(it.next().ok_or("-X without a value")?),
            u if u.starts_with("http://") => url = Some(u.to_owned()),
            other => return Err(format!("unsupported curl option {other:?}")),
        }
    }
    let url = url.ok_or("no http:// URL")?;
    let rest = &url["http://".len()..];
    let (addr, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let method = method.unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.to_owned());
    if body.is_some()
        && !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        // What curl sends for -d without a Content-Type.
        headers.push((
            "Content-Type".to_owned(),
            b"application/x-www-form-urlencoded".to_vec(),
        ));
    }
    Ok(CurlCommand {
        addr: addr.to_owned(),
        request: TestRequest {
            method,
            path: path.to_owned(),
            headers,
            body: body.unwrap_or_default().into_bytes(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_printed_post_line() {
        let c = parse_curl(
            r#"curl -s -H "X-Api-Key: mk_live_ab.CD" -H "Content-Type: application/json" -d '{"name":"first entity"}' http://127.0.0.1:3000/api/v1/entities"#,
        )
        .unwrap();
        assert_eq!(c.addr, "127.0.0.1:3000");
        assert_eq!(c.request.method, "POST");
        assert_eq!(c.request.path, "/api/v1/entities");
        assert_eq!(c.request.body, br#"{"name":"first entity"}"#);
        assert_eq!(
            c.request.headers[0],
            ("X-Api-Key".into(), b"mk_live_ab.CD".to_vec())
        );
    }

    #[test]
    fn parses_a_plain_get_and_refuses_what_it_does_not_know() {
        let c = parse_curl("curl -s http://127.0.0.1:3000/health").unwrap();
        assert_eq!(
            (c.request.method.as_str(), c.request.path.as_str()),
            ("GET", "/health")
        );
        assert!(parse_curl("curl --fancy http://x/").is_err());
        assert!(parse_curl("wget http://x/").is_err());
    }

    #[test]
    fn reads_chunked_and_plain_responses() {
        let r = parse_response(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (201, &b"abcde"[..]));
        let r = parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").unwrap();
        assert_eq!(r.header("Content-Length").as_deref(), Some("2"));
    }
}

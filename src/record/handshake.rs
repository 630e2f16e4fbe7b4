//! The HTTP/1.1 upgrade handshake as the proxy sees it.
//!
//! Reads a request or response head off a socket (bounded in size and time), parses
//! it with `httparse`, and rewrites the client's request for the upstream: only the
//! request target (the upstream URL's path prefix) and `Host` change; every other header,
//! including `Sec-WebSocket-Key`, `-Protocol` and `-Extensions`, goes through as sent.
//! The upstream's response is forwarded byte for byte, so the client sees exactly the
//! upstream's `101` (or its refusal).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest request or response head accepted.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_HEADERS: usize = 128;

/// A parsed HTTP request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// Request target: path and query.
    pub target: String,
    pub version: u8,
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether this asks for a WebSocket upgrade.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.header("upgrade").is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
        })
    }

    /// The request bytes to send upstream: same method, headers and order; the target
    /// gets the upstream's path prefix and `Host` names the upstream.
    pub fn for_upstream(&self, prefix: &str, host: &str) -> Vec<u8> {
        let target = join_target(prefix, &self.target);
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(
            format!("{} {} HTTP/1.{}\r\n", self.method, target, self.version).as_bytes(),
        );
        let mut host_written = false;
        for (name, value) in &self.headers {
            let value = if name.eq_ignore_ascii_case("host") {
                host_written = true;
                host
            } else {
                value
            };
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if !host_written {
            out.extend_from_slice(format!("Host: {host}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    pub fn request_line(&self) -> String {
        format!("{} {} HTTP/1.{}", self.method, self.target, self.version)
    }
}

/// Puts the upstream URL's path in front of the client's target.
fn join_target(prefix: &str, target: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        target.to_string()
    } else {
        format!("{prefix}{target}")
    }
}

/// A parsed HTTP response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a head could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("the peer closed the connection before sending a complete HTTP head")]
    Closed,
    #[error("no complete HTTP head within {0:?}")]
    Timeout(Duration),
    #[error("HTTP head larger than {MAX_HEAD_BYTES} bytes")]
    TooLarge,
    #[error("malformed HTTP head: {0}")]
    Malformed(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl HeadError {
    /// The status to answer a client with, if one is due.
    pub fn client_status(&self) -> Option<Status> {
        let status = |code, reason| Some(Status { code, reason });
        match self {
            HeadError::Timeout(_) => status(408, "Request Timeout"),
            HeadError::TooLarge => status(431, "Request Header Fields Too Large"),
            HeadError::Malformed(_) => status(400, "Bad Request"),
            HeadError::Closed | HeadError::Io(_) => None,
        }
    }
}

/// An HTTP status code with its reason phrase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: u16,
    pub reason: &'static str,
}

/// Reads from `io` until a full head is in `buf`; returns the head's length.
/// Bytes after the head (already read) stay in `buf[len..]`.
async fn read_head<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut Vec<u8>,
    timeout: Duration,
    complete: impl Fn(&[u8]) -> Result<Option<usize>, HeadError>,
) -> Result<usize, HeadError> {
    let read = async {
        loop {
            if let Some(n) = complete(buf)? {
                return Ok(n);
            }
            if buf.len() >= MAX_HEAD_BYTES {
                return Err(HeadError::TooLarge);
            }
            let mut chunk = [0u8; 4096];
            let n = io.read(&mut chunk).await?;
            if n == 0 {
                return Err(HeadError::Closed);
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| HeadError::Timeout(timeout))?
}

fn parse_error(e: httparse::Error) -> HeadError {
    match e {
        httparse::Error::TooManyHeaders => HeadError::TooLarge,
        other => HeadError::Malformed(other.to_string()),
    }
}

fn owned_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}

/// Reads and parses a request head; returns it and its length in `buf`.
pub async fn read_request<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut Vec<u8>,
    timeout: Duration,
) -> Result<(RequestHead, usize), HeadError> {
    let len = read_head(io, buf, timeout, |b| {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match httparse::Request::new(&mut headers).parse(b) {
            Ok(httparse::Status::Complete(n)) => Ok(Some(n)),
            Ok(httparse::Status::Partial) => Ok(None),
            Err(e) => Err(parse_error(e)),
        }
    })
    .await?;
    parse_request(&buf[..len]).map(|h| (h, len))
}

/// Parses a complete request head.
pub fn parse_request(bytes: &[u8]) -> Result<RequestHead, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => Ok(RequestHead {
            method: req.method.unwrap_or("GET").to_string(),
            target: req.path.unwrap_or("/").to_string(),
            version: req.version.unwrap_or(1),
            headers: owned_headers(req.headers),
        }),
        Ok(httparse::Status::Partial) => Err(HeadError::Malformed("incomplete head".into())),
        Err(e) => Err(parse_error(e)),
    }
}

/// Reads and parses a response head; returns it and its length in `buf`.
pub async fn read_response<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut Vec<u8>,
    timeout: Duration,
) -> Result<(ResponseHead, usize), HeadError> {
    let len = read_head(io, buf, timeout, |b| {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match httparse::Response::new(&mut headers).parse(b) {
            Ok(httparse::Status::Complete(n)) => Ok(Some(n)),
            Ok(httparse::Status::Partial) => Ok(None),
            Err(e) => Err(parse_error(e)),
        }
    })
    .await?;
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    resp.parse(&buf[..len])
        .map_err(|e| HeadError::Malformed(e.to_string()))?;
    Ok((
        ResponseHead {
            status: resp.code.unwrap_or(0),
            headers: owned_headers(resp.headers),
        },
        len,
    ))
}

/// A complete plain-text HTTP response the proxy sends on its own behalf.
pub fn error_response(status: u16, reason: &str, body: &str) -> Vec<u8> {
    let body = format!("{body}\n");
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &[u8] = b"GET /ws?user_id=x HTTP/1.1\r\nHost: 127.0.0.1:18100\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n";

    #[test]
    fn upstream_request_changes_only_host_and_prefix() {
        let head = parse_request(REQ).unwrap();
        assert!(head.is_websocket_upgrade());
        let out = String::from_utf8(head.for_upstream("/base/", "backend:18000")).unwrap();
        insta::assert_snapshot!(out.replace("\r\n", "⏎\n"), @r"
        GET /base/ws?user_id=x HTTP/1.1⏎
        Host: backend:18000⏎
        Upgrade: websocket⏎
        Connection: Upgrade⏎
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==⏎
        Sec-WebSocket-Extensions: permessage-deflate⏎
        ⏎
        ");
        let same = head.for_upstream("", "h");
        assert!(same.starts_with(b"GET /ws?user_id=x HTTP/1.1\r\n"));
    }

    #[tokio::test]
    async fn head_reading_is_bounded() {
        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        big.extend(
            std::iter::repeat_n(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 3000).flatten(),
        );
        let mut buf = Vec::new();
        let err = read_request(&mut &big[..], &mut buf, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(matches!(err, HeadError::TooLarge), "{err}");
        let err = read_request(
            &mut &b"NOT HTTP\r\n\r\n"[..],
            &mut Vec::new(),
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert_eq!(err.client_status().map(|s| s.code), Some(400));
    }
}

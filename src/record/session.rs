//! One recorded connection: a client's WebSocket upgrade forwarded to its route's
//! upstream and recorded until it ends, whichever listener accepted it (a route's,
//! or the forward proxy's for an intercepted host).
//!
//! The client's request goes upstream with only `Host` and the path prefix changed;
//! the upstream's answer is forwarded byte for byte: a `101` starts the tunnel, a
//! refusal reaches the client as sent. After the `101` the bytes flow through
//! [`crate::record::tunnel`] untouched while each direction's [`Tap`] records a copy.
//! An unreachable upstream gets the client a `502` naming the upstream, a log line,
//! and an `open` + `end` (`unreachable`) pair in the recording.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::Route;
use crate::record::deflate::Negotiated;
use crate::record::frame::Budget;
use crate::record::handshake::{self, HeadError, RequestHead};
use crate::record::tap::Tap;
use crate::record::tls::{self, Stream};
use crate::recording::sink::SinkHandle;
use crate::recording::{Dir, End, EndHow, Open, Record, Side};

/// What every connection of the proxy shares, whatever its route.
#[derive(Clone)]
pub(crate) struct Shared {
    pub sink: SinkHandle,
    /// For `wss://` upstreams.
    pub tls: Option<TlsConnector>,
    pub ids: Arc<AtomicU64>,
    pub max_message_bytes: usize,
    pub budget: Arc<Budget>,
    pub handshake_timeout: Duration,
    pub connect_timeout: Duration,
}

/// What every connection of a route shares.
pub(crate) struct RouteCtx {
    pub route: Route,
    /// TLS towards the route's clients, when it listens on `wss://`.
    pub acceptor: Option<TlsAcceptor>,
    pub shared: Shared,
}

/// Forwards a client's WebSocket upgrade `request` (read into `head`, `head_len`
/// bytes long, the bytes after it already read from the client) to the route's
/// upstream and records the connection until it ends.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn record_upgrade(
    id: u64,
    mut client: Stream,
    mut head: Vec<u8>,
    request: RequestHead,
    head_len: usize,
    peer: SocketAddr,
    ctx: &RouteCtx,
    mut shutdown: watch::Receiver<bool>,
) {
    let route = &ctx.route;
    let early_c2s = head.split_off(head_len);
    let mut open = Open {
        continued: false,
        t_us: 0,
        route: route.name.clone(),
        conn: id,
        client: peer.to_string(),
        upstream: route.upstream.url.clone(),
        request: request.request_line(),
        headers: request.headers.clone(),
        status: 0,
        response_headers: Vec::new(),
    };
    let mut upstream = match open_upstream(ctx, &request, &early_c2s).await {
        Ok(u) => u,
        Err(e) => return upstream_unreachable(ctx, &mut client, open, e).await,
    };
    let mut resp = Vec::with_capacity(1024);
    let (response, resp_len) = match handshake::read_response(
        &mut upstream,
        &mut resp,
        ctx.shared.handshake_timeout,
    )
    .await
    {
        Ok(r) => r,
        Err(source) => {
            let e = UpstreamError::NoAnswer {
                upstream: route.upstream.to_string(),
                source,
            };
            return upstream_unreachable(ctx, &mut client, open, e).await;
        }
    };
    open.status = response.status;
    open.response_headers = response.headers.clone();
    ctx.shared.sink.push([Record::Open(open)]);
    if let Err(e) = client.write_all(&resp).await {
        return push_end(
            &ctx.shared.sink,
            id,
            EndHow::Reset,
            Side::Client,
            Some(e.to_string()),
        );
    }
    if response.status != 101 {
        tracing::info!(route = %route.name, conn = id, "upstream refused the upgrade with {}", response.status);
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
            _ = shutdown.changed() => {}
        }
        let error = Some(format!(
            "upstream answered {} instead of 101",
            response.status
        ));
        return push_end(
            &ctx.shared.sink,
            id,
            EndHow::Rejected,
            Side::Upstream,
            error,
        );
    }
    let deflate = response
        .header("sec-websocket-extensions")
        .and_then(Negotiated::from_header);
    let mut c2s = Tap::new(
        id,
        Dir::ClientToServer,
        deflate.as_ref(),
        ctx.shared.max_message_bytes,
        ctx.shared.budget.clone(),
    );
    let mut s2c = Tap::new(
        id,
        Dir::ServerToClient,
        deflate.as_ref(),
        ctx.shared.max_message_bytes,
        ctx.shared.budget.clone(),
    );
    c2s.feed(&early_c2s, &ctx.shared.sink);
    s2c.feed(&resp[resp_len..], &ctx.shared.sink);
    tracing::debug!(route = %route.name, conn = id, %peer, "tunnel open");
    let end = crate::record::tunnel::run(
        &mut client,
        &mut upstream,
        &mut c2s,
        &mut s2c,
        &ctx.shared.sink,
        &mut shutdown,
    )
    .await;
    c2s.finish(&ctx.shared.sink);
    s2c.finish(&ctx.shared.sink);
    if end.how.is_abnormal() {
        tracing::info!(route = %route.name, conn = id, "connection ended: {:?} by {:?} {}", end.how, end.by, end.error.as_deref().unwrap_or(""));
    }
    push_end(&ctx.shared.sink, id, end.how, end.by, end.error);
}

fn push_end(sink: &SinkHandle, conn: u64, how: EndHow, by: Side, error: Option<String>) {
    sink.push([Record::End(End {
        t_us: 0,
        conn,
        how,
        by,
        error,
    })]);
}

/// Why a client's connection could not be forwarded to its route's upstream: the
/// connection's recorded end, and what the client is told in a 502.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("cannot connect to upstream {upstream}: {source}")]
    Connect {
        upstream: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to upstream {upstream}: no answer within {timeout:?}")]
    Timeout { upstream: String, timeout: Duration },
    #[error("TLS handshake with upstream {upstream} failed: {source}")]
    Tls {
        upstream: String,
        #[source]
        source: std::io::Error,
    },
    #[error("upstream {upstream} closed the connection during the upgrade: {source}")]
    Upgrade {
        upstream: String,
        #[source]
        source: std::io::Error,
    },
    #[error("upstream {upstream} did not answer the upgrade: {source}")]
    NoAnswer {
        upstream: String,
        #[source]
        source: HeadError,
    },
}

/// Opens a connection to `host:port`, with TLS (verified as `--ca-cert`/`--insecure`
/// say) when `tls`; `upstream` names it in errors.
pub(crate) async fn connect_upstream(
    shared: &Shared,
    host: &str,
    port: u16,
    tls: bool,
    upstream: impl Fn() -> String,
) -> Result<Stream, UpstreamError> {
    let connect = TcpStream::connect((host, port));
    let tcp = match tokio::time::timeout(shared.connect_timeout, connect).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(source)) => {
            return Err(UpstreamError::Connect {
                upstream: upstream(),
                source,
            })
        }
        Err(_) => {
            return Err(UpstreamError::Timeout {
                upstream: upstream(),
                timeout: shared.connect_timeout,
            })
        }
    };
    let _ = tcp.set_nodelay(true);
    Ok(match &shared.tls {
        Some(connector) if tls => {
            let tls =
                tls::connect(connector, host, tcp)
                    .await
                    .map_err(|source| UpstreamError::Tls {
                        upstream: upstream(),
                        source,
                    })?;
            Stream::client(tls)
        }
        _ => Stream::Plain(tcp),
    })
}

/// Connects to the route's upstream and sends it the client's upgrade request.
async fn open_upstream(
    ctx: &RouteCtx,
    request: &RequestHead,
    early: &[u8],
) -> Result<Stream, UpstreamError> {
    let up = &ctx.route.upstream;
    let upstream = || up.to_string();
    let mut stream = connect_upstream(&ctx.shared, &up.host, up.port, up.tls, upstream).await?;
    let mut out = request.for_upstream(&up.path, &up.authority());
    out.extend_from_slice(early);
    stream
        .write_all(&out)
        .await
        .map_err(|source| UpstreamError::Upgrade {
            upstream: upstream(),
            source,
        })?;
    Ok(stream)
}

async fn upstream_unreachable(
    ctx: &RouteCtx,
    client: &mut Stream,
    mut open: Open,
    error: UpstreamError,
) {
    let error = error.to_string();
    tracing::warn!(route = %ctx.route.name, conn = open.conn, "{error}; answering the client with 502");
    let body = format!("wsreplay: route {:?}: {error}", ctx.route.name);
    let _ = client
        .write_all(&handshake::error_response(502, "Bad Gateway", &body))
        .await;
    let _ = client.shutdown().await;
    open.status = 502;
    let conn = open.conn;
    ctx.shared.sink.push([Record::Open(open)]);
    push_end(
        &ctx.shared.sink,
        conn,
        EndHow::Unreachable,
        Side::Upstream,
        Some(error),
    );
}

/// Answers a client whose request head could not be read (408, 431, 400) when one is
/// due; `what` names the listener in the log.
pub(crate) async fn refuse_handshake(
    client: &mut (impl tokio::io::AsyncWrite + Unpin),
    peer: SocketAddr,
    what: &str,
    e: &HeadError,
) {
    tracing::warn!(route = %what, %peer, "bad handshake: {e}");
    if let Some(handshake::Status {
        code: status,
        reason,
    }) = e.client_status()
    {
        let body = format!("wsreplay: {e}");
        let _ = client
            .write_all(&handshake::error_response(status, reason, &body))
            .await;
        let _ = client.shutdown().await;
    }
}

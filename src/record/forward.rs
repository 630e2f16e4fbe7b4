//! The forward proxy (`record --proxy LISTEN --intercept HOST`): an HTTP/1.1 proxy
//! that clients reach through their proxy setting (Chromium `--proxy-server`,
//! `HTTPS_PROXY`), so a real browser is recorded with no change to the app.
//!
//! `CONNECT host:port` to an intercepted host is answered `200`, and the TLS inside is
//! terminated with a certificate for that host from the local
//! [`Authority`]. The first request inside decides the connection: a WebSocket
//! upgrade is recorded exactly like a route's connection (the route named by the
//! [`Intercept`], upstream `wss://host:port` verified as routes' upstreams are); any
//! other request goes to the host over TLS as received, and the rest of that client
//! connection is tunnelled unrecorded (browsers open WebSockets on connections of
//! their own). `CONNECT` to any other host is tunnelled blind. An absolute-form
//! request (`GET http://host/...`) is recorded the same way (upstream `ws://host:port`)
//! when it is a WebSocket upgrade to an intercepted host, and otherwise forwarded in
//! origin form.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::config::{host_authority as authority, Intercept, Route, Upstream};
use crate::record::authority::Authority;
use crate::record::handshake::{self, RequestHead};
use crate::record::session::{self, RouteCtx, Shared};
use crate::record::tls::Stream;

/// The answer to a `CONNECT` the proxy serves.
const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";

/// What every connection of the forward proxy shares.
pub(crate) struct ForwardCtx {
    /// Where the proxy listens (the `listen` of the routes it records).
    pub listen: SocketAddr,
    pub intercept: Vec<Intercept>,
    /// Issues the intercepted hosts' certificates (present when `intercept` is not empty).
    pub authority: Option<Arc<Authority>>,
    pub shared: Shared,
}

/// Serves one client of the forward proxy.
pub(crate) async fn serve(
    mut socket: TcpStream,
    peer: SocketAddr,
    ctx: Arc<ForwardCtx>,
    shutdown: watch::Receiver<bool>,
) {
    let mut head = Vec::with_capacity(1024);
    let timeout = ctx.shared.handshake_timeout;
    let (request, head_len) = match handshake::read_request(&mut socket, &mut head, timeout).await {
        Ok(r) => r,
        Err(e) => return session::refuse_handshake(&mut socket, peer, "forward proxy", &e).await,
    };
    if request.method.eq_ignore_ascii_case("CONNECT") {
        return connect(socket, head, request, head_len, peer, &ctx, shutdown).await;
    }
    let Some((host, port, origin)) = absolute_form(&request.target) else {
        let body = format!(
            "wsreplay: this port is a forward proxy (record --proxy): set it as your HTTP proxy \
             (e.g. Chromium --proxy-server=http://{}, or HTTPS_PROXY=http://{}) instead of \
             requesting {} from it.",
            ctx.listen, ctx.listen, request.target
        );
        return refuse(&mut socket, 400, "Bad Request", &body).await;
    };
    let mut client = Stream::Plain(socket);
    let mut inner = RequestHead {
        target: origin,
        ..request.clone()
    };
    inner.headers.retain(|(name, _)| {
        !name.eq_ignore_ascii_case("proxy-connection")
            && !name.eq_ignore_ascii_case("proxy-authorization")
    });
    match ctx.intercept.iter().find(|i| i.matches(&host)) {
        Some(i) if request.is_websocket_upgrade() => {
            let target = (i, host.as_str(), port, false);
            record(client, head, inner, head_len, peer, target, &ctx, shutdown).await
        }
        _ => {
            let mut bytes = inner.for_upstream("", &authority(&host, port, false));
            bytes.extend_from_slice(&head[head_len..]);
            tunnel(
                &mut client,
                &bytes,
                &host,
                port,
                false,
                &ctx.shared,
                shutdown,
            )
            .await
        }
    }
}

/// A `CONNECT host:port`: intercepted (TLS terminated, the request inside decides) or
/// tunnelled blind.
async fn connect(
    mut socket: TcpStream,
    head: Vec<u8>,
    request: RequestHead,
    head_len: usize,
    peer: SocketAddr,
    ctx: &ForwardCtx,
    shutdown: watch::Receiver<bool>,
) {
    let Some((host, port)) = host_port(&request.target) else {
        let body = format!(
            "wsreplay: CONNECT needs HOST:PORT, not {:?}",
            request.target
        );
        return refuse(&mut socket, 400, "Bad Request", &body).await;
    };
    let early = &head[head_len..];
    let Some(intercept) = ctx.intercept.iter().find(|i| i.matches(&host)) else {
        let upstream = || format!("{host}:{port}");
        let mut upstream =
            match session::connect_upstream(&ctx.shared, &host, port, false, upstream).await {
                Ok(u) => u,
                Err(e) => return refuse(&mut socket, 502, "Bad Gateway", &e.to_string()).await,
            };
        if socket.write_all(ESTABLISHED).await.is_err() || upstream.write_all(early).await.is_err()
        {
            return;
        }
        return copy_until(&mut Stream::Plain(socket), &mut upstream, shutdown).await;
    };
    if !early.is_empty() {
        let body = "wsreplay: send nothing after CONNECT before its 200 answer";
        return refuse(&mut socket, 400, "Bad Request", body).await;
    }
    let authority = ctx
        .authority
        .as_ref()
        .expect("the proxy opens the CA when it intercepts");
    let config = match authority.server_config(std::slice::from_ref(&host)) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(%peer, "{e}");
            return refuse(&mut socket, 502, "Bad Gateway", &format!("wsreplay: {e}")).await;
        }
    };
    if socket.write_all(ESTABLISHED).await.is_err() {
        return;
    }
    let timeout = ctx.shared.handshake_timeout;
    let accept = TlsAcceptor::from(config).accept(socket);
    let mut client = match tokio::time::timeout(timeout, accept).await {
        Ok(Ok(tls)) => Stream::server(tls),
        Ok(Err(e)) => {
            tracing::warn!(%peer, host = %host, "TLS handshake with the client failed (does it trust the wsreplay CA? see `wsreplay ca`): {e}");
            return;
        }
        Err(_) => return,
    };
    let mut head = Vec::with_capacity(1024);
    let (inner, head_len) = match handshake::read_request(&mut client, &mut head, timeout).await {
        Ok(r) => r,
        Err(e) => return session::refuse_handshake(&mut client, peer, &intercept.route, &e).await,
    };
    if inner.is_websocket_upgrade() {
        let target = (intercept, host.as_str(), port, true);
        record(client, head, inner, head_len, peer, target, ctx, shutdown).await
    } else {
        tunnel(&mut client, &head, &host, port, true, &ctx.shared, shutdown).await
    }
}

/// Records an intercepted WebSocket upgrade as a connection of the intercept's route.
#[allow(clippy::too_many_arguments)]
async fn record(
    client: Stream,
    head: Vec<u8>,
    request: RequestHead,
    head_len: usize,
    peer: SocketAddr,
    (intercept, host, port, tls): (&Intercept, &str, u16, bool),
    ctx: &ForwardCtx,
    shutdown: watch::Receiver<bool>,
) {
    let scheme = if tls { "wss" } else { "ws" };
    let url = format!("{scheme}://{}", authority(host, port, tls));
    let upstream = match Upstream::parse(&url, "") {
        Ok(u) => u,
        Err(e) => {
            let mut client = client;
            let body = format!("wsreplay: {url}: {e}");
            return refuse(&mut client, 400, "Bad Request", &body).await;
        }
    };
    let route = RouteCtx {
        route: Route {
            name: intercept.route.clone(),
            listen: ctx.listen,
            upstream,
            tls: None,
        },
        acceptor: None,
        shared: ctx.shared.clone(),
    };
    let id = ctx.shared.ids.fetch_add(1, Ordering::Relaxed);
    session::record_upgrade(id, client, head, request, head_len, peer, &route, shutdown).await
}

/// Sends `bytes` (a request as the client sent it, and what followed) to `host:port`
/// and copies the rest of the connection both ways, unrecorded.
async fn tunnel(
    client: &mut Stream,
    bytes: &[u8],
    host: &str,
    port: u16,
    tls: bool,
    shared: &Shared,
    shutdown: watch::Receiver<bool>,
) {
    let upstream = || format!("{host}:{port}");
    let mut upstream = match session::connect_upstream(shared, host, port, tls, upstream).await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!("forward proxy: {e}");
            return refuse(client, 502, "Bad Gateway", &format!("wsreplay: {e}")).await;
        }
    };
    if upstream.write_all(bytes).await.is_ok() {
        copy_until(client, &mut upstream, shutdown).await
    }
}

async fn copy_until(
    client: &mut Stream,
    upstream: &mut Stream,
    mut shutdown: watch::Receiver<bool>,
) {
    tokio::select! {
        _ = tokio::io::copy_bidirectional(client, upstream) => {}
        _ = shutdown.changed() => {}
    }
}

async fn refuse(client: &mut (impl AsyncWrite + Unpin), code: u16, reason: &str, body: &str) {
    let _ = client
        .write_all(&handshake::error_response(code, reason, body))
        .await;
    let _ = client.shutdown().await;
}

/// `HOST:PORT` of a `CONNECT` (IPv6 in brackets).
fn host_port(target: &str) -> Option<(String, u16)> {
    let (host, port) = target.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then_some(())?;
    Some((host.to_ascii_lowercase(), port.parse().ok()?))
}

/// An absolute-form target (`http://host[:port]/path?q`, or `ws://`): host, port and
/// the origin-form target.
fn absolute_form(target: &str) -> Option<(String, u16, String)> {
    let url = url::Url::parse(target).ok()?;
    if !matches!(url.scheme(), "http" | "ws") {
        return None;
    }
    let host = url
        .host_str()?
        .trim_matches(|c| c == '[' || c == ']')
        .to_ascii_lowercase();
    let port = url.port_or_known_default().unwrap_or(80);
    let origin = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    Some((host, port, origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(host_port("App.test:443"), Some(("app.test".into(), 443)));
        assert_eq!(host_port("[::1]:8443"), Some(("::1".into(), 8443)));
        assert_eq!(host_port("nohost"), None);
        assert_eq!(host_port(":1"), None);
        assert_eq!(
            absolute_form("http://h.test:8080/ws?u=1"),
            Some(("h.test".into(), 8080, "/ws?u=1".into()))
        );
        assert_eq!(
            absolute_form("ws://h.test/ws"),
            Some(("h.test".into(), 80, "/ws".into()))
        );
        assert_eq!(absolute_form("/ws"), None);
        assert_eq!(authority("::1", 443, true), "[::1]");
        assert_eq!(authority("h", 8443, true), "h:8443");
        assert_eq!(authority("h", 80, false), "h");
    }
}

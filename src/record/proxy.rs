//! The recording proxy: one listener per route, one tunnel per connection.
//!
//! A route with listening TLS ([`crate::config::ListenTls`]) first completes the TLS
//! handshake with the client (`wss://`); the rest is the same.
//! For each client connection the proxy reads the upgrade request, connects to the
//! route's upstream (`ws://` or `wss://`), forwards the request (only `Host` and the
//! path prefix change), and forwards the upstream's answer byte for byte: a `101`
//! starts the tunnel, a refusal (403, 404, ...) reaches the client as the upstream
//! sent it. After the `101` the bytes flow through [`crate::record::tunnel`] untouched while
//! each direction's [`Tap`] records a copy.
//!
//! An unreachable upstream gets the client a `502` naming the upstream, a log line,
//! and an `open` + `end` (`unreachable`) pair in the recording. A request that is not a
//! WebSocket upgrade gets a `400` saying what this port is.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::Route;
use crate::record::authority::{Authority, AuthorityError};
use crate::record::deflate::Negotiated;
use crate::record::frame::Budget;
use crate::record::handshake::{self, HeadError, RequestHead};
use crate::record::serve_tls::{self, ServeTlsError};
use crate::record::tap::Tap;
use crate::record::tls::{self, Stream, TlsOptions};
use crate::recording::filter::Filter;
use crate::recording::rotate::Rotate;
use crate::recording::sink::{Outcome, Output, Sink, SinkHandle, SinkOptions};
use crate::recording::{Dir, End, EndHow, Open, Record, Side};
use crate::redact::{RedactConfig, Redactor};

/// Everything `wsreplay record` needs.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    pub routes: Vec<Route>,
    pub output: Output,
    pub redact: RedactConfig,
    pub tls: TlsOptions,
    /// Longest message body kept in the recording; longer ones are truncated (and sized).
    pub max_message_bytes: usize,
    /// Most bytes all unfinished messages may hold together; beyond it bodies are
    /// recorded truncated (and sized), forwarding never waits.
    pub max_buffered_bytes: usize,
    pub handshake_timeout: Duration,
    pub connect_timeout: Duration,
    /// Which connections are recorded (every one by default); the rest are forwarded
    /// unrecorded.
    pub filter: Filter,
    /// Start a new file by size or age (`record --rotate`).
    pub rotate: Option<Rotate>,
    /// Where the local CA lives (for `--tls-auto` routes); `None` is the user's
    /// config directory ([`crate::record::authority::config_dir`]).
    pub ca_dir: Option<PathBuf>,
}

impl ProxyConfig {
    pub fn new(routes: Vec<Route>, output: Output) -> Self {
        ProxyConfig {
            routes,
            output,
            redact: RedactConfig::default(),
            tls: TlsOptions::default(),
            max_message_bytes: 64 << 20,
            max_buffered_bytes: 256 << 20,
            handshake_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            filter: Filter::default(),
            rotate: None,
            ca_dir: None,
        }
    }
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(
        "route {route}: cannot listen on {addr}: {source}. Is another process using that port?"
    )]
    Bind {
        route: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the recording {path}: {source}")]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    ServeTls(#[from] ServeTlsError),
    #[error(transparent)]
    Authority(#[from] AuthorityError),
}

/// What every connection of a route shares.
struct RouteCtx {
    route: Route,
    sink: SinkHandle,
    tls: Option<TlsConnector>,
    /// TLS towards the route's clients, when it listens on `wss://`.
    acceptor: Option<TlsAcceptor>,
    ids: Arc<AtomicU64>,
    max_message_bytes: usize,
    budget: Arc<Budget>,
    handshake_timeout: Duration,
    connect_timeout: Duration,
}

/// Where a route of a running proxy listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listening {
    /// The route's name.
    pub route: String,
    pub addr: SocketAddr,
    /// Whether clients connect with TLS (`wss://`).
    pub tls: bool,
}

/// A running recording proxy.
pub struct Proxy {
    routes: Vec<Route>,
    addrs: Vec<Listening>,
    shutdown: watch::Sender<bool>,
    accept_loops: Vec<JoinHandle<()>>,
    sink: Sink,
}

impl Proxy {
    /// Binds every route's listener, opens the recording, and starts accepting.
    pub async fn start(config: ProxyConfig) -> Result<Proxy, ProxyError> {
        let mut listeners = Vec::new();
        for route in &config.routes {
            let listener =
                TcpListener::bind(route.listen)
                    .await
                    .map_err(|source| ProxyError::Bind {
                        route: route.name.clone(),
                        addr: route.listen,
                        source,
                    })?;
            listeners.push(listener);
        }
        let tls = if config.routes.iter().any(|r| r.upstream.tls) {
            Some(tls::connector(&config.tls)?)
        } else {
            None
        };
        let acceptors = acceptors(&config)?;
        let sink = Sink::start(
            &config.output,
            Redactor::new(&config.redact),
            SinkOptions {
                filter: config.filter.clone(),
                rotate: config.rotate,
            },
        )
        .map_err(|source| ProxyError::Output {
            path: match &config.output {
                Output::File(p) => p.clone(),
                Output::Discard => PathBuf::from("(discarded)"),
            },
            source,
        })?;
        let (shutdown, _) = watch::channel(false);
        let ids = Arc::new(AtomicU64::new(1));
        let budget = Budget::new(config.max_buffered_bytes);
        let mut addrs = Vec::new();
        let mut accept_loops = Vec::new();
        for ((route, listener), acceptor) in config.routes.iter().zip(listeners).zip(acceptors) {
            let addr = listener.local_addr().map_err(|source| ProxyError::Bind {
                route: route.name.clone(),
                addr: route.listen,
                source,
            })?;
            addrs.push(Listening {
                route: route.name.clone(),
                addr,
                tls: acceptor.is_some(),
            });
            let ctx = Arc::new(RouteCtx {
                route: route.clone(),
                sink: sink.handle(),
                tls: tls.clone(),
                acceptor,
                ids: ids.clone(),
                max_message_bytes: config.max_message_bytes,
                budget: budget.clone(),
                handshake_timeout: config.handshake_timeout,
                connect_timeout: config.connect_timeout,
            });
            let what = format!("route {}", route.name);
            let shutdown_rx = shutdown.subscribe();
            accept_loops.push(tokio::spawn(async move {
                crate::record::accept::accept_until(
                    listener,
                    shutdown_rx,
                    &what,
                    |socket, peer, stop| {
                        let id = ctx.ids.fetch_add(1, Ordering::Relaxed);
                        serve(id, socket, peer, ctx.clone(), stop)
                    },
                )
                .await
            }));
        }
        Ok(Proxy {
            routes: config.routes,
            addrs,
            shutdown,
            accept_loops,
            sink,
        })
    }

    /// The address each route listens on (useful with port 0).
    pub fn addrs(&self) -> &[Listening] {
        &self.addrs
    }

    /// The address a route listens on.
    pub fn addr(&self, route: &str) -> Option<SocketAddr> {
        self.addrs.iter().find(|l| l.route == route).map(|l| l.addr)
    }

    /// The upstream a route forwards to.
    pub fn upstream(&self, route: &str) -> Option<&crate::config::Upstream> {
        self.routes
            .iter()
            .find(|r| r.name == route)
            .map(|r| &r.upstream)
    }

    /// Stops accepting, ends open connections, finishes the recording.
    pub async fn stop(self) -> Outcome {
        let _ = self.shutdown.send(true);
        for task in self.accept_loops {
            let _ = task.await;
        }
        let sink = self.sink;
        tokio::task::spawn_blocking(move || sink.finish())
            .await
            .unwrap_or_default()
    }
}

/// The TLS acceptor of each route (`None` for plain `ws://`), opening the local CA
/// when a route needs it.
fn acceptors(config: &ProxyConfig) -> Result<Vec<Option<TlsAcceptor>>, ProxyError> {
    let auto = config
        .routes
        .iter()
        .any(|r| matches!(r.tls, Some(crate::config::ListenTls::Auto { .. })));
    let authority = match (&config.ca_dir, auto) {
        (_, false) => None,
        (Some(dir), true) => Some(Authority::open(dir)?),
        (None, true) => Some(Authority::open_default()?),
    };
    let mut acceptors = Vec::new();
    for route in &config.routes {
        acceptors.push(match &route.tls {
            Some(listen_tls) => Some(serve_tls::acceptor(
                &route.name,
                route.listen,
                listen_tls,
                authority.as_ref(),
            )?),
            None => None,
        });
    }
    Ok(acceptors)
}

async fn serve(
    id: u64,
    socket: TcpStream,
    peer: SocketAddr,
    ctx: Arc<RouteCtx>,
    shutdown: watch::Receiver<bool>,
) {
    let client = match &ctx.acceptor {
        None => Stream::Plain(socket),
        Some(acceptor) => {
            match tokio::time::timeout(ctx.handshake_timeout, acceptor.accept(socket)).await {
                Ok(Ok(tls)) => Stream::server(tls),
                Ok(Err(e)) => {
                    tracing::warn!(route = %ctx.route.name, %peer, "TLS handshake with the client failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::warn!(route = %ctx.route.name, %peer, "no TLS handshake from the client within {:?}", ctx.handshake_timeout);
                    return;
                }
            }
        }
    };
    serve_stream(id, client, peer, ctx, shutdown).await
}

async fn serve_stream(
    id: u64,
    mut client: Stream,
    peer: SocketAddr,
    ctx: Arc<RouteCtx>,
    mut shutdown: watch::Receiver<bool>,
) {
    let route = &ctx.route;
    let mut head = Vec::with_capacity(1024);
    let (request, head_len) =
        match handshake::read_request(&mut client, &mut head, ctx.handshake_timeout).await {
            Ok(r) => r,
            Err(e) => return refuse_handshake(&mut client, peer, route, &e).await,
        };
    if !request.is_websocket_upgrade() {
        let body = format!(
            "wsreplay: this port records WebSocket traffic for route {:?} (upstream {}). \
             Your request was not a WebSocket upgrade: connect with a WebSocket client ({}://{}{}).",
            route.name,
            route.upstream,
            if ctx.acceptor.is_some() { "wss" } else { "ws" },
            route.listen,
            request.target
        );
        tracing::warn!(route = %route.name, %peer, "not a WebSocket upgrade: {}", request.request_line());
        let _ = client
            .write_all(&handshake::error_response(400, "Bad Request", &body))
            .await;
        return;
    }
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
    let mut upstream = match open_upstream(&ctx, &request, &early_c2s).await {
        Ok(u) => u,
        Err(e) => return upstream_unreachable(&ctx, &mut client, open, e).await,
    };
    let mut resp = Vec::with_capacity(1024);
    let (response, resp_len) =
        match handshake::read_response(&mut upstream, &mut resp, ctx.handshake_timeout).await {
            Ok(r) => r,
            Err(source) => {
                let e = UpstreamError::NoAnswer {
                    upstream: route.upstream.to_string(),
                    source,
                };
                return upstream_unreachable(&ctx, &mut client, open, e).await;
            }
        };
    open.status = response.status;
    open.response_headers = response.headers.clone();
    ctx.sink.push([Record::Open(open)]);
    if let Err(e) = client.write_all(&resp).await {
        return push_end(
            &ctx.sink,
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
        return push_end(&ctx.sink, id, EndHow::Rejected, Side::Upstream, error);
    }
    let deflate = response
        .header("sec-websocket-extensions")
        .and_then(Negotiated::from_header);
    let mut c2s = Tap::new(
        id,
        Dir::ClientToServer,
        deflate.as_ref(),
        ctx.max_message_bytes,
        ctx.budget.clone(),
    );
    let mut s2c = Tap::new(
        id,
        Dir::ServerToClient,
        deflate.as_ref(),
        ctx.max_message_bytes,
        ctx.budget.clone(),
    );
    c2s.feed(&early_c2s, &ctx.sink);
    s2c.feed(&resp[resp_len..], &ctx.sink);
    tracing::debug!(route = %route.name, conn = id, %peer, "tunnel open");
    let end = crate::record::tunnel::run(
        &mut client,
        &mut upstream,
        &mut c2s,
        &mut s2c,
        &ctx.sink,
        &mut shutdown,
    )
    .await;
    c2s.finish(&ctx.sink);
    s2c.finish(&ctx.sink);
    if end.how.is_abnormal() {
        tracing::info!(route = %route.name, conn = id, "connection ended: {:?} by {:?} {}", end.how, end.by, end.error.as_deref().unwrap_or(""));
    }
    push_end(&ctx.sink, id, end.how, end.by, end.error);
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
enum UpstreamError {
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

/// Connects to the route's upstream and sends it the client's upgrade request.
async fn open_upstream(
    ctx: &RouteCtx,
    request: &RequestHead,
    early: &[u8],
) -> Result<Stream, UpstreamError> {
    let up = &ctx.route.upstream;
    let upstream = || up.to_string();
    let connect = TcpStream::connect((up.host.as_str(), up.port));
    let tcp = match tokio::time::timeout(ctx.connect_timeout, connect).await {
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
                timeout: ctx.connect_timeout,
            })
        }
    };
    let _ = tcp.set_nodelay(true);
    let mut stream = match &ctx.tls {
        Some(connector) if up.tls => {
            let tls = tls::connect(connector, &up.host, tcp)
                .await
                .map_err(|source| UpstreamError::Tls {
                    upstream: upstream(),
                    source,
                })?;
            Stream::client(tls)
        }
        _ => Stream::Plain(tcp),
    };
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
    ctx.sink.push([Record::Open(open)]);
    push_end(
        &ctx.sink,
        conn,
        EndHow::Unreachable,
        Side::Upstream,
        Some(error),
    );
}

async fn refuse_handshake(client: &mut Stream, peer: SocketAddr, route: &Route, e: &HeadError) {
    tracing::warn!(route = %route.name, %peer, "bad handshake: {e}");
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

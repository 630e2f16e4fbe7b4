//! The recording proxy: one listener per route (and the forward proxy's, when
//! configured), one recorded session per connection ([`crate::record::session`]).
//!
//! A route with listening TLS ([`crate::config::ListenTls`]) first completes the TLS
//! handshake with the client (`wss://`); the rest is the same. A request that is not
//! a WebSocket upgrade gets a `400` saying what this port is.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::config::{Forward, ListenTls, Route};
use crate::record::authority::{Authority, AuthorityError};
use crate::record::frame::Budget;
use crate::record::handshake;
use crate::record::serve_tls::{self, ServeTlsError};
use crate::record::session::{record_upgrade, refuse_handshake, RouteCtx, Shared};
use crate::record::tls::{self, Stream, TlsOptions};
use crate::recording::filter::Filter;
use crate::recording::rotate::Rotate;
use crate::recording::sink::{Outcome, Output, Sink, SinkOptions};
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
    /// Where the local CA lives (for `--tls-auto` routes and the forward proxy);
    /// `None` is the user's config directory ([`crate::record::authority::config_dir`]).
    pub ca_dir: Option<PathBuf>,
    /// The forward proxy (`record --proxy`), beside or instead of the routes.
    pub forward: Option<Forward>,
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
            forward: None,
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
    #[error("--proxy: cannot listen on {addr}: {source}. Is another process using that port?")]
    BindForward {
        addr: SocketAddr,
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
    forward: Option<SocketAddr>,
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
        let forward_listener = match &config.forward {
            Some(f) => Some(TcpListener::bind(f.listen).await.map_err(|source| {
                ProxyError::BindForward {
                    addr: f.listen,
                    source,
                }
            })?),
            None => None,
        };
        let tls = if config.routes.iter().any(|r| r.upstream.tls) || config.forward.is_some() {
            Some(tls::connector(&config.tls)?)
        } else {
            None
        };
        let authority = authority(&config)?;
        let acceptors = acceptors(&config, authority.as_deref())?;
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
        let shared = Shared {
            sink: sink.handle(),
            tls,
            ids: Arc::new(AtomicU64::new(1)),
            max_message_bytes: config.max_message_bytes,
            budget: Budget::new(config.max_buffered_bytes),
            handshake_timeout: config.handshake_timeout,
            connect_timeout: config.connect_timeout,
        };
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
                acceptor,
                shared: shared.clone(),
            });
            let what = format!("route {}", route.name);
            let shutdown_rx = shutdown.subscribe();
            accept_loops.push(tokio::spawn(async move {
                crate::record::accept::accept_until(
                    listener,
                    shutdown_rx,
                    &what,
                    |socket, peer, stop| {
                        let id = ctx.shared.ids.fetch_add(1, Ordering::Relaxed);
                        serve(id, socket, peer, ctx.clone(), stop)
                    },
                )
                .await
            }));
        }
        let mut forward = None;
        if let (Some(listener), Some(config)) = (forward_listener, config.forward) {
            let addr = listener
                .local_addr()
                .map_err(|source| ProxyError::BindForward {
                    addr: config.listen,
                    source,
                })?;
            forward = Some(addr);
            let ctx = Arc::new(crate::record::forward::ForwardCtx {
                listen: addr,
                intercept: config.intercept,
                authority: authority.clone(),
                shared: shared.clone(),
            });
            let shutdown_rx = shutdown.subscribe();
            accept_loops.push(tokio::spawn(async move {
                crate::record::accept::accept_until(
                    listener,
                    shutdown_rx,
                    "forward proxy",
                    |socket, peer, stop| {
                        crate::record::forward::serve(socket, peer, ctx.clone(), stop)
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
            forward,
        })
    }

    /// The address each route listens on (useful with port 0).
    pub fn addrs(&self) -> &[Listening] {
        &self.addrs
    }

    /// The address the forward proxy listens on (`record --proxy`).
    pub fn forward_addr(&self) -> Option<SocketAddr> {
        self.forward
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

/// The local CA, opened when a `--tls-auto` route or the forward proxy needs it.
fn authority(config: &ProxyConfig) -> Result<Option<Arc<Authority>>, ProxyError> {
    let auto = config
        .routes
        .iter()
        .any(|r| matches!(r.tls, Some(ListenTls::Auto { .. })));
    let needed = auto
        || config
            .forward
            .as_ref()
            .is_some_and(|f| !f.intercept.is_empty());
    Ok(match (&config.ca_dir, needed) {
        (_, false) => None,
        (Some(dir), true) => Some(Arc::new(Authority::open(dir)?)),
        (None, true) => Some(Arc::new(Authority::open_default()?)),
    })
}

/// The TLS acceptor of each route (`None` for plain `ws://`).
fn acceptors(
    config: &ProxyConfig,
    authority: Option<&Authority>,
) -> Result<Vec<Option<TlsAcceptor>>, ProxyError> {
    let mut acceptors = Vec::new();
    for route in &config.routes {
        acceptors.push(match &route.tls {
            Some(listen_tls) => Some(serve_tls::acceptor(
                &route.name,
                route.listen,
                listen_tls,
                authority,
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
            match tokio::time::timeout(ctx.shared.handshake_timeout, acceptor.accept(socket)).await
            {
                Ok(Ok(tls)) => Stream::server(tls),
                Ok(Err(e)) => {
                    tracing::warn!(route = %ctx.route.name, %peer, "TLS handshake with the client failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::warn!(route = %ctx.route.name, %peer, "no TLS handshake from the client within {:?}", ctx.shared.handshake_timeout);
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
    shutdown: watch::Receiver<bool>,
) {
    let route = &ctx.route;
    let mut head = Vec::with_capacity(1024);
    let (request, head_len) =
        match handshake::read_request(&mut client, &mut head, ctx.shared.handshake_timeout).await {
            Ok(r) => r,
            Err(e) => return refuse_handshake(&mut client, peer, &route.name, &e).await,
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
    record_upgrade(id, client, head, request, head_len, peer, &ctx, shutdown).await
}

//! The in-process demo system: a Rust re-implementation of the reference WebSocket SUT
//! (a backend, three agents and a validating frontend client) that tests and
//! `wsreplay demo` start inside the process. This module owns the [`Server`] handle that
//! every service returns, the shared accept loop and shutdown signal, and [`DemoSystem`],
//! which starts the three agents and a backend wired to them on loopback ports.

pub mod agent;
pub mod backend;
pub mod frontend;
pub mod protocol;
pub mod recorded;

pub use recorded::RecordedDemo;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, warn};

use agent::AgentKind;
use backend::BackendConfig;

/// Simulated agent processing time used by [`DemoSystem`] (`AGENT_DELAY_MS` default).
pub const DEFAULT_AGENT_DELAY: Duration = Duration::from_millis(15);
/// How long the backend waits for an agent reply (`AGENT_TIMEOUT_S` default).
pub const DEFAULT_AGENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a closing side waits for the peer's close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A running service: its bound address and the means to stop it.
///
/// Dropping a `Server` without [`Server::shutdown`] also stops it, without waiting.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Server {
    /// Spawns `run`, handing it the shutdown signal of the new server.
    fn start<F>(addr: SocketAddr, run: impl FnOnce(ShutdownSignal) -> F) -> Server
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(run(ShutdownSignal(rx)));
        Server { addr, stop, task }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Stops accepting, closes every connection and waits for all its tasks to end.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        log_join(self.task.await);
    }
}

/// Agents and backend of the demo system, all bound on `127.0.0.1:0`.
#[derive(Debug)]
pub struct DemoSystem {
    /// The nlp agent (`nlp_query`).
    pub nlp: Server,
    /// The data agent (`sql_query`).
    pub data: Server,
    /// The viz agent (`generate_chart`).
    pub viz: Server,
    /// The backend, wired to the three agents above.
    pub backend: Server,
}

impl DemoSystem {
    /// Starts the three agents and a backend; `regression` makes the backend send
    /// `tool_executing` in the broken legacy shape.
    pub async fn start(regression: bool) -> io::Result<DemoSystem> {
        let local = SocketAddr::from(([127, 0, 0, 1], 0));
        let nlp = agent::spawn(AgentKind::Nlp, local, DEFAULT_AGENT_DELAY).await?;
        let data = agent::spawn(AgentKind::Data, local, DEFAULT_AGENT_DELAY).await?;
        let viz = agent::spawn(AgentKind::Viz, local, DEFAULT_AGENT_DELAY).await?;
        let regression_events = if regression {
            vec![protocol::DEFAULT_REGRESSION_EVENT.to_owned()]
        } else {
            Vec::new()
        };
        let cfg = BackendConfig {
            nlp_url: nlp.url(),
            data_url: data.url(),
            viz_url: viz.url(),
            regression_events,
            agent_timeout: DEFAULT_AGENT_TIMEOUT,
            reply_delay: Duration::ZERO,
            mutate: None,
            progress: None,
        };
        let backend = backend::spawn(cfg, local).await?;
        Ok(DemoSystem {
            nlp,
            data,
            viz,
            backend,
        })
    }

    /// Stops the backend, then the agents.
    pub async fn shutdown(self) {
        self.backend.shutdown().await;
        tokio::join!(
            self.nlp.shutdown(),
            self.data.shutdown(),
            self.viz.shutdown()
        );
    }
}

/// Receiving side of a [`Server`]'s shutdown switch; also fires when the server is dropped.
#[derive(Clone, Debug)]
pub(crate) struct ShutdownSignal(watch::Receiver<bool>);

impl ShutdownSignal {
    /// Resolves once shutdown was requested (cancel-safe, for `select!`).
    pub(crate) async fn wait(&mut self) {
        // An error means the Server was dropped: that is a shutdown too.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// Binds a listener and returns it with its actual address.
async fn bind(addr: SocketAddr) -> io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Accepts connections until shutdown, runs `handler` for each (with `TCP_NODELAY` set),
/// then waits for every connection task to end.
async fn accept_loop<H, F>(listener: TcpListener, mut stop: ShutdownSignal, handler: H)
where
    H: Fn(TcpStream, SocketAddr, ShutdownSignal) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        warn!("TCP_NODELAY on {peer}: {e}");
                    }
                    conns.spawn(handler(stream, peer, stop.clone()));
                }
                Err(e) => {
                    warn!("accept failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(done) = conns.join_next(), if !conns.is_empty() => log_join(done),
        }
    }
    drop(listener);
    while let Some(done) = conns.join_next().await {
        log_join(done);
    }
}

fn log_join(result: Result<(), JoinError>) {
    if let Err(e) = result {
        warn!("demo task failed: {e}");
    }
}

/// Server-side WebSocket handshake, abandoned on shutdown; returns the stream and the
/// request URI (path and query), or `None` if the handshake failed or shutdown came first.
async fn handshake(
    stream: TcpStream,
    peer: SocketAddr,
    stop: &mut ShutdownSignal,
) -> Option<(WebSocketStream<TcpStream>, Uri)> {
    let mut uri = Uri::default();
    // The callback's signature (and its large error type) is fixed by tungstenite.
    #[allow(clippy::result_large_err)]
    let capture_uri = |req: &Request, resp: Response| {
        uri = req.uri().clone();
        Ok(resp)
    };
    let accepting = tokio_tungstenite::accept_hdr_async(stream, capture_uri);
    let ws = tokio::select! {
        () = stop.wait() => return None,
        accepted = accepting => match accepted {
            Ok(ws) => ws,
            Err(e) => {
                debug!("WebSocket handshake with {peer} failed: {e}");
                return None;
            }
        },
    };
    Some((ws, uri))
}

/// Sends a close frame with `code` and waits (bounded) for the peer to finish the handshake.
async fn close_ws<S>(ws: &mut WebSocketStream<S>, code: CloseCode)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code,
        reason: "".into(),
    };
    let handshake = async {
        if ws.close(Some(frame)).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    };
    // A peer that never answers the close frame is simply dropped.
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, handshake).await;
}

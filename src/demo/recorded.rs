//! The demo system with the recording proxy on every hop.
//!
//! [`RecordedDemo::start`] wires frontend → proxy → backend → proxy → agents, exactly as
//! a user would put `wsreplay record` in front of a real system, but in-process and on
//! port 0. The tests and the `demo` command both use it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

use super::agent::{self, AgentKind};
use super::backend::{self, BackendConfig};
use super::frontend::{self, FrontendOptions, FrontendReport};
use super::{protocol, Server, DEFAULT_AGENT_DELAY, DEFAULT_AGENT_TIMEOUT};
use crate::config::Route;
use crate::record::proxy::{Proxy, ProxyConfig};
use crate::recording::sink::{Outcome, Output};

/// The demo system running behind a recording proxy.
pub struct RecordedDemo {
    proxy: Proxy,
    backend: Server,
    agents: Vec<Server>,
}

impl RecordedDemo {
    /// Starts agents, the proxy (routes `frontend`, `nlp`, `data`, `viz`) and a backend
    /// whose agent links go through the proxy.
    pub async fn start(regression: bool, output: Output) -> std::io::Result<RecordedDemo> {
        Self::start_with(regression, output, |_| {}).await
    }

    /// Like [`RecordedDemo::start`], with the proxy's configuration changed by `tweak`
    /// (rotation, filters).
    pub async fn start_with(
        regression: bool,
        output: Output,
        tweak: impl FnOnce(&mut ProxyConfig),
    ) -> std::io::Result<RecordedDemo> {
        let local = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut agents = Vec::new();
        for kind in AgentKind::all() {
            agents.push(agent::spawn(kind, local, DEFAULT_AGENT_DELAY).await?);
        }
        let backend_listener = TcpListener::bind(local).await?;
        let backend_url = format!("ws://{}", backend_listener.local_addr()?);
        let mut routes = vec![route("frontend", &backend_url)];
        for (kind, server) in AgentKind::all().iter().zip(&agents) {
            routes.push(route(kind.name(), &server.url()));
        }
        let mut config = ProxyConfig::new(routes, output);
        tweak(&mut config);
        let proxy = Proxy::start(config).await.map_err(std::io::Error::other)?;
        let via = |name: &str| format!("ws://{}", proxy.addr(name).expect("route exists"));
        let backend = backend::spawn_on(
            BackendConfig {
                nlp_url: via("nlp"),
                data_url: via("data"),
                viz_url: via("viz"),
                regression_events: if regression {
                    vec![protocol::DEFAULT_REGRESSION_EVENT.to_owned()]
                } else {
                    Vec::new()
                },
                agent_timeout: DEFAULT_AGENT_TIMEOUT,
                reply_delay: Duration::ZERO,
                mutate: None,
                progress: None,
            },
            backend_listener,
        )?;
        Ok(RecordedDemo {
            proxy,
            backend,
            agents,
        })
    }

    /// Where a frontend connects: the proxy's `frontend` route.
    pub fn frontend_url(&self, user: &str) -> String {
        format!(
            "ws://{}/ws?user_id={user}",
            self.proxy.addr("frontend").expect("route exists")
        )
    }

    /// Runs one frontend session through the proxy.
    pub async fn run_frontend(
        &self,
        user: &str,
        chats: usize,
    ) -> Result<FrontendReport, frontend::FrontendError> {
        let mut options = FrontendOptions::new(self.frontend_url(user));
        options.chats = chats;
        frontend::run(&options).await
    }

    /// Stops the backend (closing its agent links) and the agents, then the proxy.
    pub async fn stop(self) -> Outcome {
        self.backend.shutdown().await;
        for agent in self.agents {
            agent.shutdown().await;
        }
        // Let the last close frames pass through the proxy before it stops.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.proxy.stop().await
    }
}

fn route(name: &str, upstream: &str) -> Route {
    Route::new(name, "127.0.0.1:0", upstream).expect("demo routes are valid")
}

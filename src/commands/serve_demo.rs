//! `wsreplay serve-demo`: services of the demo system as a long-lived process.

use std::net::SocketAddr;
use std::str::FromStr;

use super::args::seconds;
use super::terminal::wait_for_stop_signal;
use crate::config::{parse_listen, ListenError};
use crate::demo::agent::AgentKind;
use crate::gate::Verdict;
use clap::Args;

/// A `--agent KIND=LISTEN`: run the demo agent `kind`, listening on `listen`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentSpec {
    pub kind: AgentKind,
    pub listen: SocketAddr,
}

/// Why an `--agent` is not `KIND=LISTEN`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AgentSpecError {
    #[error("expected KIND=LISTEN, e.g. nlp=127.0.0.1:18001")]
    Syntax,
    #[error("KIND must be nlp, data or viz")]
    Kind,
    #[error(transparent)]
    Listen(#[from] ListenError),
}

impl FromStr for AgentSpec {
    type Err = AgentSpecError;

    fn from_str(spec: &str) -> Result<AgentSpec, AgentSpecError> {
        let (kind, listen) = spec.split_once('=').ok_or(AgentSpecError::Syntax)?;
        let kind = AgentKind::all()
            .into_iter()
            .find(|k| k.name() == kind)
            .ok_or(AgentSpecError::Kind)?;
        Ok(AgentSpec {
            kind,
            listen: parse_listen(listen)?,
        })
    }
}

/// Arguments of `wsreplay serve-demo`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example (the whole demo system on the ports of ../shared/sut):\n  wsreplay serve-demo --agent nlp=127.0.0.1:18001 --agent data=127.0.0.1:18002 \\\n    --agent viz=127.0.0.1:18003 --backend 127.0.0.1:18000"
)]
pub struct ServeDemoArgs {
    /// Run the demo backend, listening on HOST:PORT.
    #[arg(long, value_name = "LISTEN", value_parser = parse_listen)]
    pub backend: Option<SocketAddr>,
    /// The backend's nlp agent [default: the --agent nlp address, else ws://127.0.0.1:18001].
    #[arg(long, value_name = "URL")]
    pub nlp_url: Option<String>,
    /// The backend's data agent [default: the --agent data address, else ws://127.0.0.1:18002].
    #[arg(long, value_name = "URL")]
    pub data_url: Option<String>,
    /// The backend's viz agent [default: the --agent viz address, else ws://127.0.0.1:18003].
    #[arg(long, value_name = "URL")]
    pub viz_url: Option<String>,
    /// Make the backend send tool_executing in the broken legacy shape (payload → data).
    #[arg(long)]
    pub regression: bool,
    /// Seconds the backend waits for an agent's reply before it ends the chat with an
    /// error envelope.
    #[arg(long, value_name = "SECS", default_value_t = crate::demo::DEFAULT_AGENT_TIMEOUT.as_secs_f64())]
    pub agent_timeout: f64,
    /// Milliseconds the backend waits before every message it sends to the frontend
    /// (a slow build, to try `check --timing`).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub reply_delay_ms: u64,
    /// Run a demo agent: KIND=LISTEN with KIND one of nlp, data, viz. Repeatable.
    #[arg(long = "agent", value_name = "KIND=LISTEN")]
    pub agents: Vec<AgentSpec>,
}

pub async fn run(args: ServeDemoArgs) -> anyhow::Result<Verdict> {
    use crate::demo::agent;
    use crate::demo::backend::{self, BackendConfig};
    let mut servers = Vec::new();
    let mut agent_urls = std::collections::BTreeMap::new();
    for &AgentSpec { kind, listen } in &args.agents {
        let server = agent::spawn(kind, listen, crate::demo::DEFAULT_AGENT_DELAY).await?;
        eprintln!("wsreplay: demo {} agent on {}", kind.name(), server.url());
        agent_urls.insert(kind.name(), server.url());
        servers.push(server);
    }
    if let Some(addr) = args.backend {
        let url = |given: &Option<String>, kind: &str, port: u16| {
            given
                .clone()
                .or_else(|| agent_urls.get(kind).cloned())
                .unwrap_or_else(|| format!("ws://127.0.0.1:{port}"))
        };
        let cfg = BackendConfig {
            nlp_url: url(&args.nlp_url, "nlp", 18001),
            data_url: url(&args.data_url, "data", 18002),
            viz_url: url(&args.viz_url, "viz", 18003),
            regression_events: if args.regression {
                vec![crate::demo::protocol::DEFAULT_REGRESSION_EVENT.to_owned()]
            } else {
                Vec::new()
            },
            agent_timeout: seconds("--agent-timeout", args.agent_timeout)?,
            reply_delay: std::time::Duration::from_millis(args.reply_delay_ms),
            mutate: None,
            progress: None,
        };
        let server = backend::spawn(cfg, addr).await?;
        eprintln!("wsreplay: demo backend on {}", server.url());
        servers.push(server);
    }
    anyhow::ensure!(
        !servers.is_empty(),
        "nothing to serve: give --backend LISTEN and/or --agent KIND=LISTEN"
    );
    wait_for_stop_signal().await?;
    for server in servers {
        server.shutdown().await;
    }
    Ok(Verdict::Same)
}

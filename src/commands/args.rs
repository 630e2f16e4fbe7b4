//! Flags shared by several commands (redaction, replay settings) and their
//! conversion into the library's validated configuration.

use std::path::PathBuf;

use clap::Args;

use super::terminal::Bars;
use crate::config::{FileConfig, MockSpec, Target};
use crate::recording::sink::Output;
use crate::redact::RedactConfig;
use crate::replay::credentials::CredentialSpec;
use crate::replay::ProgressHandle;
use crate::replay::{ReplayConfig, SpawnSpec};

/// How routes' messages are read, on top of `[structure.route.NAME]` in wsreplay.toml.
#[derive(Debug, Args)]
pub struct ProtocolFlags {
    /// Read ROUTE's messages as protocol NAME (json, socketio, graphql-ws, jsonrpc, cdp,
    /// stomp, signalr, phoenix, actioncable) instead of choosing it per connection from
    /// the handshake and the first message. Repeatable.
    #[arg(long = "protocol", value_name = "ROUTE=NAME", value_parser = route_protocol)]
    pub protocols: Vec<(String, String)>,
}

impl ProtocolFlags {
    /// `config` with the routes given here read with their protocols, checked.
    pub fn apply(
        &self,
        mut config: crate::structure::StructureConfig,
    ) -> anyhow::Result<crate::structure::StructureConfig> {
        for (route, name) in &self.protocols {
            config.route.entry(route.clone()).or_default().protocol = Some(name.clone());
        }
        config.overrides()?;
        Ok(config)
    }
}

fn route_protocol(spec: &str) -> Result<(String, String), String> {
    let (route, name) = spec
        .split_once('=')
        .ok_or("expected ROUTE=NAME, e.g. frontend=socketio")?;
    if !crate::protocol::NAMES.contains(&name) {
        return Err(format!(
            "{name:?} is not a built-in protocol; use one of: {}",
            crate::protocol::NAMES.join(", ")
        ));
    }
    Ok((route.to_string(), name.to_string()))
}

/// Extra secrets to redact, on top of the defaults.
#[derive(Debug, Args)]
pub struct RedactFlags {
    /// Also redact this header's value (Authorization, Proxy-Authorization, Cookie
    /// and Set-Cookie always are). Repeatable.
    #[arg(long, value_name = "NAME")]
    pub redact_header: Vec<String>,
    /// Also redact this query parameter (token, access_token, api_key and password
    /// always are). Repeatable.
    #[arg(long, value_name = "NAME")]
    pub redact_query: Vec<String>,
    /// Also redact string values of this JSON key, at any depth, in text messages.
    /// Repeatable.
    #[arg(long, value_name = "KEY")]
    pub redact_json_key: Vec<String>,
    /// Do not look for credentials by their shape (JWTs, Bearer tokens, AWS keys,
    /// private keys, random values in fields named like *token*, *secret*, *key* or
    /// *password*). Only the named headers, query parameters and JSON keys are
    /// redacted then.
    #[arg(long)]
    pub no_secret_scan: bool,
}

impl From<RedactFlags> for RedactConfig {
    fn from(f: RedactFlags) -> RedactConfig {
        RedactConfig {
            headers: f.redact_header,
            query: f.redact_query,
            json_keys: f.redact_json_key,
            secret_scan: !f.no_secret_scan,
        }
    }
}

/// Replay settings shared by `replay` and `check`.
#[derive(Debug, Args)]
pub struct ReplayFlags {
    /// Replay the recorded clients of ROUTE against the build at URL (ws:// or wss://).
    /// A URL without a path gets each connection's recorded path and query; a path in
    /// URL replaces the recorded one (its query too, when URL has one); `{path}` and
    /// `{query}` in URL stand for the recorded ones. `{port}` (check and snapshot
    /// --learn) becomes a free port, different for each replay. Repeatable.
    #[arg(short, long = "target", value_name = "ROUTE=URL")]
    pub targets: Vec<Target>,
    /// Stand in for the recorded server of ROUTE, listening on LISTEN (HOST:PORT; port
    /// 0 picks a free one), and answer the build's requests with the recorded
    /// responses. Repeatable.
    #[arg(short, long = "mock", value_name = "ROUTE=LISTEN")]
    pub mocks: Vec<MockSpec>,
    /// Shell command that starts the build under test; run after the mocks listen and
    /// stopped at the end with everything it started, daemons included (SIGTERM, then
    /// SIGKILL after 5 s to whatever is left). It gets WSREPLAY_MOCK_<ROUTE>=ws://… in
    /// its environment.
    #[arg(long, value_name = "CMD")]
    pub spawn: Option<String>,
    /// Seconds the --spawn build may take until the first target accepts connections.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub spawn_timeout: f64,
    /// Replay with the recorded gaps divided by this factor (1.0 = as recorded) instead
    /// of causal pacing. Without --speed, clients pace causally and mocks answer after
    /// the recorded delays.
    #[arg(long, value_name = "FACTOR")]
    pub speed: Option<f64>,
    /// Seconds a client waits for a server message a step depends on before it reports
    /// the wait and goes on.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub step_timeout: f64,
    /// Seconds a client waits, once connected, for the target to finish the TLS and
    /// WebSocket handshakes. A target that never answers is reported; when no
    /// connection of a route gets through, wsreplay exits 2.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub handshake_timeout: f64,
    /// Read correlation overrides ([[correlate]] route/request/response),
    /// [replay.credentials], live values ([[live]]) and, for snapshot and check,
    /// [structure] settings (literal and volatile fields, streams, routes' protocols)
    /// from this TOML file [default: ./wsreplay.toml when present].
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Allow mocks to listen on non-loopback addresses.
    #[arg(long)]
    pub allow_remote: bool,
    /// Inject a fault into what wsreplay sends on ROUTE: a mock's responses (--mock
    /// route) or a replayed client's messages (--target route), limited to messages of
    /// type KIND when given. ACTION: drop, delay=DURATION (2s, 250ms), duplicate,
    /// reorder (sent after the next message), corrupt (invalid JSON), or
    /// disconnect-after=N (drop the connection after N messages). The captured run
    /// holds a `fault` record for every injection. Repeatable.
    #[arg(long = "fault", value_name = "ROUTE:ACTION[:KIND]")]
    pub faults: Vec<crate::replay::fault::FaultRule>,
    /// Send a live value where the recording has a placeholder for the redacted query
    /// parameter, header or message field NAME (a JSON key or STOMP header of a message
    /// the client sends; headers and fields in any case). SOURCE is env:VAR (an
    /// environment variable) or file:PATH (a file's contents, one trailing line break
    /// removed). A header's value is replaced whole (`Bearer …`), or only its token
    /// after a recorded `Bearer ` when the value has no space. Live values are never
    /// written to the capture or a report; without one, the placeholder is sent and
    /// reported as a problem. Adds to and overrides [replay.credentials] in
    /// wsreplay.toml. Repeatable.
    // Parsed here rather than by clap, whose error would repeat a live value given by
    // mistake (`--credential token=s3cret`).
    #[arg(long = "credential", value_name = "NAME=SOURCE")]
    pub credentials: Vec<String>,
}

/// The replay settings of `replay` and `check`.
pub(crate) struct ReplaySetup {
    /// Everything but the targets.
    pub config: ReplayConfig,
    /// The targets as given (`check` fills in `{port}` per recording).
    pub targets: Vec<Target>,
}

/// The replay settings of `replay` and `check`; targets stay as given (`check` fills
/// in `{port}` per recording).
pub(crate) fn replay_config(flags: ReplayFlags, output: Output) -> anyhow::Result<ReplaySetup> {
    let file = FileConfig::load(flags.config.as_deref())?;
    let mut config = ReplayConfig::new(output);
    config.progress = ProgressHandle::new(Bars::default());
    config.id_pairs = file.correlate;
    config.live = file.live;
    config.faults = flags.faults;
    let specs = flags
        .credentials
        .iter()
        .map(|spec| spec.parse::<CredentialSpec>())
        .collect::<Result<Vec<_>, _>>()?;
    // The file's entries that no --credential overrides; a variable they name must be set.
    let from_file: Vec<CredentialSpec> = (file.replay.credential_specs().into_iter())
        .filter(|f| !specs.iter().any(|s| s.name == f.name))
        .collect();
    let file_path = flags.config.as_deref().unwrap_or("wsreplay.toml".as_ref());
    config
        .credentials
        .read(&from_file)
        .map_err(|e| anyhow::anyhow!("{}: [replay.credentials]: {e}", file_path.display()))?;
    config.credentials.read(&specs)?;
    config.step_timeout = seconds("--step-timeout", flags.step_timeout)?;
    config.handshake_timeout = seconds("--handshake-timeout", flags.handshake_timeout)?;
    if let Some(speed) = flags.speed {
        anyhow::ensure!(
            speed > 0.0 && speed.is_finite(),
            "--speed must be a positive number, e.g. 1.0"
        );
        config.speed = Some(speed);
    }
    let targets = flags.targets;
    for mock in flags.mocks {
        check_mock_listen(&mock, flags.allow_remote)?;
        config.mocks.push(mock);
    }
    anyhow::ensure!(
        !targets.is_empty() || !config.mocks.is_empty(),
        "nothing to replay: give --target ROUTE=URL for the recorded clients (and --mock ROUTE=LISTEN for recorded servers)"
    );
    anyhow::ensure!(
        !targets.is_empty(),
        "--mock needs a --target: the mocks answer the build while the recorded clients replay; add --target ROUTE=URL, or serve the recorded servers on their own for any client with `wsreplay mock RECORDING --route ROUTE=LISTEN`"
    );
    if let Some(command) = flags.spawn {
        // Orphans of the build are re-parented to wsreplay, so stopping it finds them.
        crate::replay::spawn::adopt_orphans();
        config.spawn = Some(SpawnSpec {
            command,
            timeout: seconds("--spawn-timeout", flags.spawn_timeout)?,
        });
    }
    Ok(ReplaySetup { config, targets })
}

/// Refuses a mock on a non-loopback address unless `--allow-remote` was given.
pub(crate) fn check_mock_listen(mock: &MockSpec, allow_remote: bool) -> anyhow::Result<()> {
    let (route, addr) = (&mock.route, mock.listen);
    anyhow::ensure!(
        allow_remote || addr.ip().is_loopback(),
        "{:?}: {addr} is not a loopback address; pass --allow-remote if other machines must reach the mock",
        mock.to_string()
    );
    if !addr.ip().is_loopback() {
        tracing::warn!("mock {route} listens on {addr}, reachable from other machines");
    }
    Ok(())
}

pub(crate) fn seconds(flag: &str, secs: f64) -> anyhow::Result<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(secs)
        .map_err(|_| anyhow::anyhow!("{flag} must be a non-negative number of seconds"))
}

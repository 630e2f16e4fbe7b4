//! Replay: drive a build with recorded clients, and stand in for its recorded servers.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use wsreplay::recording::Recording;
//! use wsreplay::replay::{Replay, ReplayConfig};
//! use wsreplay::recording::sink::Output;
//!
//! let recording = Recording::read("recordings/checkout.jsonl")?;
//! let mut config = ReplayConfig::new(Output::File("runs/checkout.jsonl".into()));
//! config.mock("nlp", "127.0.0.1:0".parse()?);
//! let replay = Replay::start(recording, config).await?;    // mocks listen now
//! let nlp = replay.mock_addr("nlp").unwrap();              // point the build here
//! // ... start the build under test ...
//! let mut replay = replay;
//! replay.target("frontend", "ws://127.0.0.1:18000")?;
//! let report = replay.run().await?;
//! println!("{}", report.render());
//! # Ok(()) }
//! ```
//!
//! | module | owns |
//! |---|---|
//! | [`script`] | what to play, read off a recording |
//! | [`client`] | one replayed client connection |
//! | [`causal`] | what a client waits for before each step, across connections |
//! | [`credentials`] | live credentials in place of recorded placeholders (`--credential`) |
//! | [`live`] | values the server issues, learned from the build and sent back in place of the recorded ones |
//! | [`mock`] | a mock peer answering with recorded responses |
//! | [`correlate`] | request similarity and which ids a reply must carry |
//! | [`rewrite`] | changing values in a recorded message, byte for byte otherwise |
//! | [`fault`] | `--fault` rules: dropping, delaying, duplicating, reordering, corrupting messages, disconnecting |
//! | [`capture`] | writing the replay in the recording format |
//! | [`spawn`] | starting and stopping the build under test |

pub mod capture;
pub mod causal;
pub mod client;
pub mod correlate;
pub mod credentials;
pub mod fault;
pub mod live;
pub mod mock;
pub mod progress;
pub mod rewrite;
pub mod script;
pub mod spawn;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::{MockSpec, Upstream};
use crate::recording::sink::{Outcome, Output, Sink};
use crate::recording::{Dir, Recording};
use crate::redact::{RedactConfig, Redactor};
use capture::Capture;
use correlate::IdPair;
use credentials::{Credentials, Redacted};
use mock::{MockCtx, MockServer};
pub use progress::{Progress, ProgressHandle, ProgressTask};
use spawn::{SpawnError, Spawned};

/// Something that went wrong in a replay without stopping it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A client step (or the end of a connection) waited longer than the step timeout.
    StepTimeout {
        route: String,
        conn: u64,
        target: String,
        waited: Duration,
        waiting_for: String,
    },
    /// The target ended a connection before the recorded conversation was over.
    ClosedEarly {
        route: String,
        conn: u64,
        target: String,
        detail: String,
    },
    /// Recorded connections were replayed with a placeholder where the recording had
    /// redacted a query parameter or header, because no credential was given for it.
    CredentialMissing {
        route: String,
        /// The recorded connections (ids in the recording).
        conns: Vec<u64>,
        place: Redacted,
    },
    /// A recorded connection could not be opened.
    ConnectFailed {
        route: String,
        conn: u64,
        url: String,
        error: String,
        /// The target answered the upgrade, with a refusal (not `101`).
        refused: bool,
    },
    /// The target accepted the TCP connection but did not finish the TLS or WebSocket
    /// handshake within the handshake timeout.
    HandshakeTimeout {
        route: String,
        conn: u64,
        url: String,
        waited: Duration,
        stage: Handshake,
    },
    /// A mock got a request it has no recorded answer for.
    Unmatched {
        route: String,
        label: String,
        excerpt: String,
    },
    /// A mock got a request whose structure differs from the recorded one.
    RequestChanged {
        route: String,
        label: String,
        difference: String,
    },
    /// A mock could not answer an upgrade as the client asked (its subprotocol).
    MockHandshake { route: String, detail: String },
    /// A client of a mock left without a word right after the upgrade.
    ClientLeft { route: String, detail: String },
    /// The `--spawn` build exited during the replay.
    BuildDied { status: String, tail: String },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::StepTimeout { route, conn, target, waited, waiting_for } => write!(
                f,
                "{route}#{conn} {target}: waited {waited:?} for {waiting_for}"
            ),
            Problem::ClosedEarly { route, conn, target, detail } => {
                write!(f, "{route}#{conn} {target}: {detail}")
            }
            Problem::CredentialMissing { route, conns, place } => write!(
                f,
                "{route} ({}): {place} was redacted when recorded, so its placeholder was sent; pass --credential {name}=env:VAR (or set {name} under [replay.credentials] in wsreplay.toml) to send a live value",
                connections(conns),
                name = place.name()
            ),
            Problem::ConnectFailed { route, conn, url, error, .. } => write!(
                f,
                "{route} (recorded connection {conn}): cannot connect to {url}: {error}"
            ),
            Problem::HandshakeTimeout { route, conn, url, waited, stage } => write!(
                f,
                "{route} (recorded connection {conn}): {url} accepted the connection but did not finish the {stage} handshake within {waited:?} (--handshake-timeout)"
            ),
            Problem::Unmatched { route, label, excerpt } => write!(
                f,
                "mock {route}: no unused recorded request matches this `{label}`, so it got no answer: {excerpt}"
            ),
            Problem::RequestChanged { route, label, difference } => write!(
                f,
                "mock {route}: `{label}` request structure differs from the recording: {difference}"
            ),
            Problem::MockHandshake { route, detail } | Problem::ClientLeft { route, detail } => {
                write!(f, "mock {route}: {detail}")
            }
            Problem::BuildDied { status, tail } => {
                write!(f, "the build under test exited during the replay ({status}); {tail}")
            }
        }
    }
}

impl Problem {
    /// Whether it tells what the replay could not do (a wait for a recorded event that
    /// timed out, a placeholder sent for want of a credential) rather than what the
    /// build did.
    pub fn of_the_replay(&self) -> bool {
        matches!(
            self,
            Problem::StepTimeout { .. } | Problem::CredentialMissing { .. }
        )
    }

    /// What makes a problem a repeat of another: a mock's unmatched requests of one
    /// kind, the same change in the same kind of request. Other problems stand alone.
    fn repeat_key(&self) -> Option<(&str, &str, &str)> {
        match self {
            Problem::Unmatched { route, label, .. } => Some((route, label, "")),
            Problem::RequestChanged {
                route,
                label,
                difference,
            } => Some((route, label, difference)),
            _ => None,
        }
    }
}

/// Problems as lines for people: repeats (a mock's unexpected requests of one kind,
/// the same change in the same kind of request) folded into their first occurrence
/// with a count, so 100,000 unexpected requests are one line.
pub fn problem_lines(problems: &[Problem]) -> Vec<String> {
    let mut lines: Vec<(String, usize)> = Vec::new();
    let mut first: HashMap<(&str, &str, &str), usize> = HashMap::new();
    for p in problems {
        match p.repeat_key() {
            Some(key) => match first.get(&key) {
                Some(&i) => lines[i].1 += 1,
                None => {
                    first.insert(key, lines.len());
                    lines.push((p.to_string(), 1));
                }
            },
            None => lines.push((p.to_string(), 1)),
        }
    }
    lines
        .into_iter()
        .map(|(line, n)| match n {
            1 => line,
            n => format!("{line} (×{n}: this and {} more like it)", n - 1),
        })
        .collect()
}

/// "recorded connection 3", "recorded connections 1, 2, 5", "recorded connections 1,
/// 2, 3, 4, 5, … (12 in all)".
fn connections(conns: &[u64]) -> String {
    let shown: Vec<String> = conns.iter().take(5).map(u64::to_string).collect();
    match conns.len() {
        1 => format!("recorded connection {}", shown[0]),
        n if n <= 5 => format!("recorded connections {}", shown.join(", ")),
        n => format!("recorded connections {}, … ({n} in all)", shown.join(", ")),
    }
}

/// Which handshake of a replayed connection did not finish in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handshake {
    /// The TLS handshake of a `wss://` target.
    Tls,
    /// The WebSocket upgrade (HTTP request and `101` response).
    WebSocket,
}

impl fmt::Display for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Handshake::Tls => "TLS",
            Handshake::WebSocket => "WebSocket",
        })
    }
}

/// Problems collected from every task of a replay.
#[derive(Clone, Default)]
pub struct Problems(Arc<Mutex<Vec<Problem>>>);

impl Problems {
    pub fn push(&self, p: Problem) {
        tracing::debug!("replay problem: {p}");
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(p);
    }

    fn take(&self) -> Vec<Problem> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A route whose recorded clients are replayed, and the build's URL for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayTarget {
    pub route: String,
    /// Where the build under test listens for this route's clients.
    pub upstream: Upstream,
}

impl ReplayTarget {
    /// A `--target ROUTE=URL`, its URL checked.
    pub fn resolve(
        target: &crate::config::Target,
    ) -> Result<ReplayTarget, crate::config::ConfigError> {
        Ok(ReplayTarget {
            route: target.route.clone(),
            upstream: target.upstream()?,
        })
    }
}

/// The build under test, as `--spawn` starts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpawnSpec {
    /// A shell command; it gets `WSREPLAY_MOCK_<ROUTE>=ws://…` in its environment.
    pub command: String,
    /// How long it may take until the first target accepts connections.
    pub timeout: Duration,
}

/// How to replay.
#[derive(Clone, Debug)]
pub struct ReplayConfig {
    /// Routes whose recorded clients are replayed, and the build's URL for each.
    pub targets: Vec<ReplayTarget>,
    /// Routes whose recorded servers are mocked, and where each mock listens.
    pub mocks: Vec<MockSpec>,
    /// `None`: causal pacing. `Some(s)`: recorded gaps divided by `s` (mocks always
    /// keep recorded response delays, divided by `s`, default 1).
    pub speed: Option<f64>,
    /// Longest wait for a server message a client step depends on.
    pub step_timeout: Duration,
    /// Longest wait for a target to accept a TCP connection.
    pub connect_timeout: Duration,
    /// Longest wait, once TCP is connected, for the TLS and WebSocket handshakes (a
    /// target that accepts connections but never answers the upgrade).
    pub handshake_timeout: Duration,
    /// Where the capture of the replay goes.
    pub output: Output,
    /// Explicit correlation id pairs (in addition to the detected ones).
    pub id_pairs: Vec<IdPair>,
    /// Mocks serve the recording again once every recorded connection has been served
    /// (`wsreplay mock --loop`); otherwise further connections get private views of it.
    pub looping: bool,
    /// The build under test: a shell command, and how long it may take to listen.
    pub spawn: Option<SpawnSpec>,
    /// `--fault` rules, applied to what the mocks and replayed clients send.
    pub faults: Vec<fault::FaultRule>,
    /// Where the replay reports how far it has got (nothing by default).
    pub progress: ProgressHandle,
    /// Live values sent in place of the placeholders of redacted query parameters and
    /// headers (`--credential`); never written to the capture.
    pub credentials: Credentials,
    /// `[[live]]` entries: values the server issues, declared or ignored
    /// ([`live`]; detected automatically unless switched off).
    pub live: Vec<live::LiveEntry>,
}

impl ReplayConfig {
    pub fn new(output: Output) -> Self {
        ReplayConfig {
            targets: Vec::new(),
            mocks: Vec::new(),
            speed: None,
            step_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            output,
            id_pairs: Vec::new(),
            looping: false,
            spawn: None,
            faults: Vec::new(),
            progress: ProgressHandle::default(),
            credentials: Credentials::default(),
            live: Vec::new(),
        }
    }

    /// Adds a mock for `route` listening on `listen`.
    pub fn mock(&mut self, route: &str, listen: SocketAddr) -> &mut Self {
        self.mocks.push(MockSpec::new(route, listen));
        self
    }
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{path}: has no route {route:?}; its routes are: {known}")]
    UnknownRoute {
        path: String,
        route: String,
        known: String,
    },
    /// A target's URL (or another part of the configuration) is not usable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("--fault {spec:?}: route {route} is neither replayed (--target) nor mocked (--mock), so the fault would never be injected")]
    FaultNotReplayed { spec: String, route: String },
    #[error(
        "--fault {spec:?}: KIND `{kind}` never occurs on route {route} in the direction the fault acts on (kinds: {})",
        list_or_none(.kinds)
    )]
    FaultKindNeverSent {
        spec: String,
        kind: String,
        route: String,
        /// The kinds that do occur there.
        kinds: Vec<String>,
    },
    #[error(
        "mock {route}: cannot listen on {addr}: {source}. Is another process using that port?"
    )]
    Bind {
        route: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the capture file: {0}")]
    Output(#[source] std::io::Error),
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error(
        "target {route} at {url} is unreachable: {error}. Is the build under test running there?"
    )]
    TargetUnreachable {
        route: String,
        url: String,
        error: String,
    },
    #[error(
        "target {route} at {url} refused every connection: {error}. They were sent with placeholders where the recording had redacted the {}; pass --credential {}=env:VAR (or set it under [replay.credentials] in wsreplay.toml) to send a live value",
        places.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        places.first().map_or("NAME", |p| p.name())
    )]
    CredentialRefused {
        route: String,
        url: String,
        error: String,
        /// Where placeholders were sent for want of a credential.
        places: Vec<Redacted>,
    },
    #[error(
        "target {route} at {url} accepted connections but never finished the {stage} handshake (waited {waited:?} each time). Is the build under test stuck, or is another program listening there? --handshake-timeout sets the wait"
    )]
    TargetSilent {
        route: String,
        url: String,
        waited: Duration,
        stage: Handshake,
    },
    #[error(transparent)]
    Tls(#[from] crate::record::tls::TlsError),
    #[error(
        "{path}: replaying route {route} would wait {hours:.0} hours for {what}, longer than the {} hours a replay waits for a recorded time: its `t_us` values look hand-edited or corrupt. Fix them{}",
        MAX_RECORDED_WAIT.as_secs() / 3600,
        if *.speed_helps { ", or replay faster (--speed)" } else { "" }
    )]
    AbsurdWait {
        path: String,
        route: String,
        /// What would be waited for: a connection's start, a step, a mock's reply.
        what: String,
        hours: f64,
        /// Whether a larger `--speed` shortens this wait.
        speed_helps: bool,
    },
}

/// The longest a replay waits for a recorded time: a connection's start, a step at its
/// recorded offset (`--speed`), a mock's recorded reply delay. A recording that asks
/// for longer is refused ([`ReplayError::AbsurdWait`]) rather than slept on.
pub const MAX_RECORDED_WAIT: Duration = Duration::from_secs(24 * 3600);

/// What the replayed clients of one target route did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    pub route: String,
    /// Recorded connections replayed.
    pub connections: usize,
    /// Of those, how many could connect.
    pub connected: usize,
    /// Messages sent.
    pub sent: u64,
    /// Messages received.
    pub received: u64,
}

/// What the mock of one route did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MockStats {
    pub route: String,
    /// Requests the build sent it.
    pub requests: u64,
    /// Requests answered from the recording.
    pub answered: u64,
    /// Responses dropped by `--fault`.
    pub dropped: u64,
    /// Requests with no unused recorded request to match.
    pub unmatched: u64,
}

/// What a replay did.
#[derive(Debug)]
pub struct ReplayReport {
    pub problems: Vec<Problem>,
    /// Per target route.
    pub clients: Vec<ClientStats>,
    /// Per mock route.
    pub mocks: Vec<MockStats>,
    pub capture: Outcome,
    /// Values the server issued that were substituted (or could not be).
    pub live: live::LiveSummary,
}

impl ReplayReport {
    /// Whether the replay ran with nothing to report.
    pub fn clean(&self) -> bool {
        self.problems.is_empty() && self.capture.complete()
    }

    /// The text `wsreplay replay` prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.clients {
            out += &format!(
                "client {}: {}/{} connection(s) replayed, {} message(s) sent, {} received\n",
                c.route, c.connected, c.connections, c.sent, c.received
            );
        }
        for MockStats {
            route,
            requests,
            answered,
            dropped,
            unmatched,
        } in &self.mocks
        {
            let dropped = if *dropped > 0 {
                format!(" ({dropped} dropped by --fault)")
            } else {
                String::new()
            };
            out += &format!(
                "mock {route}: {requests} request(s), {answered} answered from the recording{dropped}, {unmatched} unmatched\n"
            );
        }
        for line in self.live.lines() {
            out += &format!("{line}\n");
        }
        if self.problems.is_empty() {
            out += "no problems\n";
            return out;
        }
        out += &format!("{} problem(s):\n", self.problems.len());
        let (replay, build): (Vec<Problem>, Vec<Problem>) = self
            .problems
            .iter()
            .cloned()
            .partition(Problem::of_the_replay);
        for (heading, group) in [
            ("what the build did", build),
            (
                "what the replay could not do (each wait that timed out, once, with what it waited for)",
                replay,
            ),
        ] {
            if !group.is_empty() {
                out += &format!("  {heading}:\n");
                for line in problem_lines(&group) {
                    out += &format!("  - {line}\n");
                }
            }
        }
        out
    }
}

/// A replay whose mocks are listening; set targets, then [`Replay::run`].
pub struct Replay {
    recording: Arc<Recording>,
    config: ReplayConfig,
    mocks: Vec<MockServer>,
    sink: Option<Sink>,
    capture: Capture,
    problems: Problems,
    spawned: Option<Spawned>,
}

impl Replay {
    /// Checks the routes, opens the capture, starts the mocks (and the `--spawn` build).
    /// Pass the recording by value (or as an `Arc`) to spare a copy of a large one.
    pub async fn start(
        recording: impl Into<Arc<Recording>>,
        config: ReplayConfig,
    ) -> Result<Replay, ReplayError> {
        let recording: Arc<Recording> = recording.into();
        let routes = config.targets.iter().map(|t| &t.route);
        for route in routes.chain(config.mocks.iter().map(|m| &m.route)) {
            check_route(&recording, route)?;
        }
        for rule in &config.faults {
            check_route(&recording, &rule.route)?;
        }
        // The credentials' names are redacted too, and their values wherever they turn up.
        let names: Vec<String> = config.credentials.names().map(String::from).collect();
        let redactor = Redactor::new(&RedactConfig {
            headers: names.clone(),
            query: names,
            ..RedactConfig::default()
        });
        let scrubber = credentials::Scrubber::new(&config.credentials, &redactor);
        let sink = Sink::start(&config.output, redactor, Default::default())
            .map_err(ReplayError::Output)?;
        let capture = Capture::scrubbing(sink.handle(), scrubber);
        let problems = Problems::default();
        let mut mocks = Vec::new();
        for MockSpec { route, listen } in &config.mocks {
            let table = mock::table::mock_table(&recording, route, &config.id_pairs);
            let ctx = MockCtx {
                route: route.clone(),
                claims: Mutex::new(mock::matcher::Claims::new(&table, config.looping)),
                table,
                connections: AtomicU64::new(0),
                capture: capture.clone(),
                speed: config.speed.unwrap_or(1.0),
                problems: problems.clone(),
                id_pairs: config.id_pairs.clone(),
                stats: Default::default(),
                listen: *listen,
                faults: config.faults.clone(),
            };
            let server = MockServer::start(ctx)
                .await
                .map_err(|source| ReplayError::Bind {
                    route: route.clone(),
                    addr: *listen,
                    source,
                })?;
            mocks.push(server);
        }
        let mut replay = Replay {
            recording,
            config,
            mocks,
            sink: Some(sink),
            capture,
            problems,
            spawned: None,
        };
        if let Some(SpawnSpec { command, timeout }) = replay.config.spawn.clone() {
            let env: Vec<(String, String)> = replay
                .mocks
                .iter()
                .map(|m| {
                    (
                        format!("WSREPLAY_MOCK_{}", m.ctx.route.to_ascii_uppercase()),
                        format!("ws://{}", m.addr),
                    )
                })
                .collect();
            let mut spawned = Spawned::start(&command, &env)?;
            if let Some(target) = replay.config.targets.first() {
                let up = &target.upstream;
                spawned.wait_ready(&up.host, up.port, timeout).await?;
            }
            replay.spawned = Some(spawned);
        }
        Ok(replay)
    }

    /// Where a mock listens (useful with port 0).
    pub fn mock_addr(&self, route: &str) -> Option<SocketAddr> {
        self.mocks
            .iter()
            .find(|m| m.ctx.route == route)
            .map(|m| m.addr)
    }

    /// Every mock's route and the address it listens on.
    pub fn mock_addrs(&self) -> Vec<MockSpec> {
        self.mocks
            .iter()
            .map(|m| MockSpec::new(m.ctx.route.clone(), m.addr))
            .collect()
    }

    /// Adds a target: replay the recorded clients of `route` against `url`.
    pub fn target(&mut self, route: &str, url: &str) -> Result<(), ReplayError> {
        check_route(&self.recording, route)?;
        let upstream = crate::config::parse_target(route, url)?;
        self.config.targets.push(ReplayTarget {
            route: route.to_string(),
            upstream,
        });
        Ok(())
    }

    /// Why `rule`'s KIND can never match: no message of that kind is sent on its
    /// route in the direction wsreplay sends there (a target's client messages, a
    /// mock's responses). `None` when it can, or when the rule has no KIND.
    fn kind_never_sent(&self, rule: &fault::FaultRule) -> Option<ReplayError> {
        let kind = rule.kind.as_deref()?;
        let is_target = self.config.targets.iter().any(|t| t.route == rule.route);
        let is_mock = self.config.mocks.iter().any(|m| m.route == rule.route);
        let mut kinds = std::collections::BTreeSet::new();
        for conn in crate::recording::summary::summarize(&self.recording) {
            if conn.route != rule.route {
                continue;
            }
            for (dir, labels) in &conn.messages {
                let sent = match dir {
                    Dir::ClientToServer => is_target,
                    Dir::ServerToClient => is_mock,
                };
                if sent {
                    kinds.extend(labels.keys().cloned());
                }
            }
        }
        if kinds.contains(kind) {
            return None;
        }
        Some(ReplayError::FaultKindNeverSent {
            spec: rule.spec.clone(),
            kind: kind.to_string(),
            route: rule.route.clone(),
            kinds: kinds.into_iter().collect(),
        })
    }

    /// The first recorded time this replay would wait on for longer than
    /// [`MAX_RECORDED_WAIT`], as an error.
    fn absurd_wait<'a>(
        &self,
        scripts: impl Iterator<Item = &'a script::ClientScript>,
    ) -> Option<ReplayError> {
        let limit = MAX_RECORDED_WAIT.as_secs_f64();
        let err = |route: &str, what: String, secs: f64, speed_helps| ReplayError::AbsurdWait {
            path: self.recording.path.display().to_string(),
            route: route.to_string(),
            what,
            hours: secs / 3600.0,
            speed_helps,
        };
        for s in scripts {
            let start = s.start_us as f64 / 1e6;
            if start > limit {
                let what = format!("recorded connection {} to start", s.conn);
                return Some(err(&s.route, what, start, false));
            }
            let Some(speed) = self.config.speed else {
                continue;
            };
            if let Some(step) = s
                .steps
                .iter()
                .find(|st| st.at_us as f64 / 1e6 / speed > limit)
            {
                let what = format!(
                    "step `{}` of recorded connection {} (recorded {} µs after it opened)",
                    step.label(),
                    s.conn,
                    step.at_us
                );
                return Some(err(&s.route, what, step.at_us as f64 / 1e6 / speed, true));
            }
        }
        let speed = self.config.speed.unwrap_or(1.0);
        for m in &self.mocks {
            for reply in m.ctx.table.replies() {
                let secs = reply.delay_us as f64 / 1e6 / speed;
                if secs > limit {
                    let what = format!(
                        "the mock to send its recorded `{}` ({} µs after what it answers)",
                        reply.message.label, reply.delay_us
                    );
                    return Some(err(&m.ctx.route, what, secs, true));
                }
            }
        }
        None
    }

    /// Plays every recorded client connection of the targets, concurrently and at their
    /// recorded relative start times; then stops the build, the mocks and the capture.
    pub async fn run(mut self) -> Result<ReplayReport, ReplayError> {
        let replayed = |route: &str| {
            let routes = self.config.targets.iter().map(|t| &t.route);
            routes
                .chain(self.config.mocks.iter().map(|m| &m.route))
                .any(|r| r == route)
        };
        if let Some(rule) = self.config.faults.iter().find(|f| !replayed(&f.route)) {
            let err = ReplayError::FaultNotReplayed {
                spec: rule.spec.clone(),
                route: rule.route.clone(),
            };
            self.shutdown().await;
            return Err(err);
        }
        if let Some(err) = self
            .config
            .faults
            .iter()
            .find_map(|f| self.kind_never_sent(f))
        {
            self.shutdown().await;
            return Err(err);
        }
        let mut scripts: Vec<_> = self
            .config
            .targets
            .iter()
            .map(|t| (t.clone(), script::client_scripts(&self.recording, &t.route)))
            .collect();
        if let Some(err) = self.absurd_wait(scripts.iter().flat_map(|(_, s)| s)) {
            self.shutdown().await;
            return Err(err);
        }
        let total_messages: usize = scripts
            .iter()
            .flat_map(|(_, s)| s)
            .map(|s| s.steps.len() + s.server.len())
            .sum();
        let missing = apply_credentials(&mut scripts, &self.config.credentials);
        for problem in &missing {
            self.problems.push(problem.clone());
        }
        let progress = self.config.progress.begin(total_messages as u64);
        let tls = if self.config.targets.iter().any(|t| t.upstream.tls) {
            Some(crate::record::tls::connector(&Default::default())?)
        } else {
            None
        };
        let routes: Vec<String> = scripts.iter().map(|(t, _)| t.route.clone()).collect();
        // The live values and the causal milestones are two independent readings of
        // the whole recording (each decodes every replayed message): side by side.
        let (live, board) = std::thread::scope(|s| {
            let live = s.spawn(|| live::Live::plan(&self.recording, &routes, &self.config.live));
            let board = causal::Board::new(&self.recording, scripts.iter().flat_map(|(_, s)| s));
            let live = live.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            (Arc::new(live), board)
        });
        let ctx = Arc::new(client::ClientCtx {
            capture: self.capture.clone(),
            step_timeout: self.config.step_timeout,
            connect_timeout: self.config.connect_timeout,
            handshake_timeout: self.config.handshake_timeout,
            speed: self.config.speed,
            problems: self.problems.clone(),
            progress: progress.clone(),
            tls,
            faults: self.config.faults.clone(),
            credentials: self.config.credentials.clone(),
            live: live.clone(),
            causal: Arc::new(board),
        });
        let mut clients = Vec::new();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, (target, route_scripts)) in scripts.into_iter().enumerate() {
            clients.push(ClientStats {
                route: target.route,
                connections: route_scripts.len(),
                ..ClientStats::default()
            });
            for script in route_scripts {
                let (ctx, target) = (ctx.clone(), target.upstream.clone());
                tasks.spawn(async move {
                    tokio::time::sleep(Duration::from_micros(script.start_us)).await;
                    (i, client::play(script, target, ctx).await)
                });
            }
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok((i, played)) = done {
                let c = &mut clients[i];
                c.connected += usize::from(played.connected);
                c.sent += played.sent;
                c.received += played.received;
            }
        }
        progress.finish();
        let mut problems = self.problems.take();
        for ClientStats {
            route,
            connections,
            connected,
            ..
        } in &clients
        {
            if *connections > 0 && *connected == 0 {
                let err = problems.iter().find_map(|p| match p {
                    Problem::ConnectFailed {
                        route: r,
                        url,
                        error,
                        refused,
                        ..
                    } if r == route => {
                        let places: Vec<Redacted> = missing
                            .iter()
                            .filter_map(|p| match p {
                                Problem::CredentialMissing {
                                    route: r, place, ..
                                } if r == route => Some(place.clone()),
                                _ => None,
                            })
                            .collect();
                        let (route, url, error) = (route.clone(), url.clone(), error.clone());
                        Some(if places.is_empty() || !refused {
                            ReplayError::TargetUnreachable { route, url, error }
                        } else {
                            ReplayError::CredentialRefused {
                                route,
                                url,
                                error,
                                places,
                            }
                        })
                    }
                    Problem::HandshakeTimeout {
                        route: r,
                        url,
                        waited,
                        stage,
                        ..
                    } if r == route => Some(ReplayError::TargetSilent {
                        route: route.clone(),
                        url: url.clone(),
                        waited: *waited,
                        stage: *stage,
                    }),
                    _ => None,
                });
                if let Some(err) = err {
                    self.shutdown().await;
                    return Err(err);
                }
            }
        }
        if let Some(spawned) = &mut self.spawned {
            if let Some(status) = spawned.exited() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                problems.push(Problem::BuildDied {
                    status: status.to_string(),
                    tail: spawned.tail(),
                });
            }
        }
        let mocks = self.mock_stats();
        let capture = self.shutdown().await;
        problems.extend(self.problems.take());
        Ok(ReplayReport {
            problems,
            clients,
            mocks,
            capture,
            live: live.summary(),
        })
    }

    /// Serves the mocks alone, for any client (`wsreplay mock`), until `stop` resolves
    /// or, with `once`, until every recorded connection of every mocked route has been
    /// served; then stops them and reports what they answered.
    pub async fn serve(
        mut self,
        stop: impl std::future::Future<Output = ()>,
        once: bool,
    ) -> ReplayReport {
        tokio::pin!(stop);
        let all_served = |mocks: &[MockServer]| {
            mocks.iter().all(|m| {
                let claims = m.ctx.claims.lock();
                claims.is_ok_and(|c| c.all_served())
            })
        };
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {
                    if once && all_served(&self.mocks) {
                        break;
                    }
                }
            }
        }
        let mocks = self.mock_stats();
        let capture = self.shutdown().await;
        ReplayReport {
            problems: self.problems.take(),
            clients: Vec::new(),
            mocks,
            capture,
            live: Default::default(),
        }
    }

    /// The URL a mock serves (`ws://127.0.0.1:PORT`), for pointing a client at it.
    pub fn mock_url(&self, route: &str) -> Option<String> {
        self.mock_addr(route).map(|a| format!("ws://{a}"))
    }

    fn mock_stats(&self) -> Vec<MockStats> {
        self.mocks
            .iter()
            .map(|m| {
                let s = &m.ctx.stats;
                MockStats {
                    route: m.ctx.route.clone(),
                    requests: s.requests.load(Ordering::Relaxed),
                    answered: s.answered.load(Ordering::Relaxed),
                    dropped: s.dropped.load(Ordering::Relaxed),
                    unmatched: s.unmatched.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// Stops the build, the mocks and the capture.
    async fn shutdown(&mut self) -> Outcome {
        if let Some(spawned) = self.spawned.take() {
            spawned.stop().await;
        }
        for m in self.mocks.drain(..) {
            m.stop().await;
        }
        match self.sink.take() {
            Some(sink) => tokio::task::spawn_blocking(move || sink.finish())
                .await
                .unwrap_or_default(),
            None => Outcome::default(),
        }
    }
}

/// Puts the live credentials into the messages the scripts send, and gives one problem
/// per route and redacted place where a placeholder will be sent for want of a
/// credential (in the upgrade or in a message), naming the recorded connections.
fn apply_credentials(
    scripts: &mut [(ReplayTarget, Vec<script::ClientScript>)],
    credentials: &Credentials,
) -> Vec<Problem> {
    let mut found: std::collections::BTreeMap<(&str, Redacted), Vec<u64>> = Default::default();
    for (target, route_scripts) in scripts.iter_mut() {
        for script in route_scripts {
            let mut live = credentials::live_request(&script.target, &script.headers, credentials);
            for step in &mut script.steps {
                if let script::Action::Send(_, crate::recording::Body::Text(text)) =
                    &mut step.action
                {
                    if let Some(new) =
                        credentials::live_message(text, credentials, &mut live.missing)
                    {
                        *text = new;
                    }
                }
            }
            live.missing.sort();
            live.missing.dedup();
            for place in live.missing {
                found
                    .entry((target.route.as_str(), place))
                    .or_default()
                    .push(script.conn);
            }
        }
    }
    found
        .into_iter()
        .map(|((route, place), conns)| Problem::CredentialMissing {
            route: route.to_string(),
            conns,
            place,
        })
        .collect()
}

/// `a, b, c`, or `none`.
fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

fn check_route(recording: &Recording, route: &str) -> Result<(), ReplayError> {
    let known = recording.routes();
    if known.contains(&route) {
        return Ok(());
    }
    Err(ReplayError::UnknownRoute {
        path: recording.path.display().to_string(),
        route: route.to_string(),
        known: known.join(", "),
    })
}

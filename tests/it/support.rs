//! Shared helpers: in-process proxies and raw WebSocket peers on port 0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use wsreplay::config::Route;

use crate::snapshots::{RECORDINGS, SNAPSHOTS};
use wsreplay::record::proxy::{Proxy, ProxyConfig};
use wsreplay::recording::sink::Output;
use wsreplay::recording::{Record, Recording};

pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A proxy with one route named `r` in front of `upstream`, recording into a temp dir.
pub struct Recorder {
    pub proxy: Proxy,
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Recorder {
    pub async fn start(upstream: &str) -> Recorder {
        Self::start_with(upstream, |_| {}).await
    }

    pub async fn start_with(upstream: &str, tweak: impl FnOnce(&mut ProxyConfig)) -> Recorder {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.jsonl");
        let route: Route = format!("r=127.0.0.1:0={upstream}").parse().unwrap();
        let mut config = ProxyConfig::new(vec![route], Output::File(path.clone()));
        tweak(&mut config);
        let proxy = Proxy::start(config).await.unwrap();
        Recorder {
            proxy,
            path,
            _dir: dir,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.proxy.addr("r").unwrap()
    }

    /// Stops the proxy and reads back what it wrote.
    pub async fn finish(self) -> (Recording, String) {
        let outcome = self.proxy.stop().await;
        assert!(outcome.complete(), "{outcome:?}");
        let text = std::fs::read_to_string(&self.path).unwrap();
        (Recording::read(&self.path).unwrap(), text)
    }
}

/// Reads up to and including the blank line that ends an HTTP head.
pub async fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// A raw WebSocket server: completes one upgrade by hand, then hands over the socket.
pub struct RawUpstream {
    pub url: String,
    pub listener: TcpListener,
}

impl RawUpstream {
    pub async fn bind() -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}", listener.local_addr().unwrap());
        RawUpstream { url, listener }
    }

    /// Accepts one connection, answers the upgrade with `extra` response headers,
    /// and returns the socket and the request head it received.
    pub async fn accept(&self, extra: &str) -> (TcpStream, String) {
        self.accept_with(extra, &[]).await
    }

    /// Like `accept`, and sends `early` in the same write as the 101 response.
    pub async fn accept_with(&self, extra: &str, early: &[u8]) -> (TcpStream, String) {
        let (mut s, _) = self.listener.accept().await.unwrap();
        let head = read_head(&mut s).await;
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap_or(KEY)
            .to_string();
        let resp = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n{extra}\r\n",
            derive_accept_key(key.as_bytes())
        );
        let mut out = resp.into_bytes();
        out.extend_from_slice(early);
        s.write_all(&out).await.unwrap();
        (s, head)
    }
}

/// Opens a raw client connection through `addr` and completes the upgrade.
pub async fn raw_client(addr: SocketAddr, target: &str, extra: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let head = read_head(&mut s).await;
    (s, head)
}

/// Reads exactly `n` bytes, failing the test after 10 s.
pub async fn read_exact(s: &mut (impl tokio::io::AsyncRead + Unpin), n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut buf))
        .await
        .expect("timed out waiting for forwarded bytes")
        .unwrap();
    buf
}

/// The records of a recording other than `open`, `end` and `finish`.
pub fn traffic(rec: &Recording) -> Vec<&Record> {
    rec.records
        .iter()
        .filter(|r| !matches!(r, Record::Open(_) | Record::End(_) | Record::Finish(_)))
        .collect()
}

/// Runs `wsreplay ARGS` with NO_COLOR unset; returns exit code (-1 when killed by a
/// signal), stdout and stderr.
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(bin())
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The committed demo recording (4 routes: frontend, nlp, data, viz).
pub const CHECKOUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/recordings/checkout.jsonl");

/// Path of the built `wsreplay` binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_wsreplay")
}

/// An upgrade's response that accepts the first subprotocol the client offers.
pub fn first_subprotocol(request: &Request, mut response: Response) -> Response {
    if let Some(first) = request
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
    {
        response
            .headers_mut()
            .insert("sec-websocket-protocol", first.trim().parse().unwrap());
    }
    response
}

/// A tokio-tungstenite echo server; returns its URL.
pub async fn echo_server() -> String {
    echo_server_with(|_, response| response).await
}

/// An echo server whose answer to each upgrade request is `upgrade(request, response)`
/// (to choose a subprotocol, or to note what was asked); returns its URL.
pub async fn echo_server_with(
    upgrade: impl Fn(&Request, Response) -> Response + Clone + Send + Sync + 'static,
) -> String {
    use futures_util::{SinkExt, StreamExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let upgrade = upgrade.clone();
            tokio::spawn(async move {
                // The callback's error type is tungstenite's, not ours to shrink.
                #[allow(clippy::result_large_err)]
                let callback = |request: &Request, response| Ok(upgrade(request, response));
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(s, callback).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    url
}

/// Records `clients` parallel demo frontends (each sending `chats` chats) through the
/// proxy on all four hops; returns the recording (also on disk at `path`).
pub async fn record_demo_to(
    path: &std::path::Path,
    clients: usize,
    chats: usize,
) -> (Recording, Vec<wsreplay::demo::frontend::FrontendReport>) {
    let demo = wsreplay::demo::recorded::RecordedDemo::start(false, Output::File(path.to_owned()))
        .await
        .unwrap();
    let sessions = (0..clients).map(|i| {
        let demo = &demo;
        async move { demo.run_frontend(&format!("user{i}"), chats).await }
    });
    let reports: Vec<_> = futures_util::future::join_all(sessions)
        .await
        .into_iter()
        .map(|r| r.expect("frontend session"))
        .collect();
    assert!(demo.stop().await.complete());
    (Recording::read(path).unwrap(), reports)
}

/// Like [`record_demo_to`], into a temporary file.
pub async fn record_demo(
    clients: usize,
    chats: usize,
) -> (Recording, Vec<wsreplay::demo::frontend::FrontendReport>) {
    let dir = tempfile::tempdir().unwrap();
    record_demo_to(&dir.path().join("demo.jsonl"), clients, chats).await
}

/// Messages per (route, direction, label): what "the same conversation" means here.
pub fn label_counts(
    rec: &Recording,
) -> std::collections::BTreeMap<(String, wsreplay::recording::Dir, String), u64> {
    let mut out = std::collections::BTreeMap::new();
    for c in wsreplay::recording::summary::summarize(rec) {
        for (dir, labels) in &c.messages {
            for (label, n) in labels {
                *out.entry((c.route.clone(), *dir, label.clone()))
                    .or_default() += n;
            }
        }
    }
    out
}

/// The demo's agent routes.
pub const AGENTS: [&str; 3] = ["nlp", "data", "viz"];

/// Command-line flags that mock the demo's three agents on free ports.
pub const MOCK_AGENTS: [&str; 6] = [
    "--mock",
    "nlp=127.0.0.1:0",
    "--mock",
    "data=127.0.0.1:0",
    "--mock",
    "viz=127.0.0.1:0",
];

/// A hang guard (not a performance assertion): a replay must always end.
pub async fn guard<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(60), f)
        .await
        .expect("the replay hung")
}

/// A demo backend (a "build under test") talking to the agents at these URLs, changed
/// by `tweak` (regression events, a `Mutator`, the progress knob, ...).
pub async fn demo_build(
    nlp: String,
    data: String,
    viz: String,
    tweak: impl FnOnce(&mut wsreplay::demo::backend::BackendConfig),
) -> wsreplay::demo::Server {
    use wsreplay::demo::backend::{self, BackendConfig};
    let mut config = BackendConfig {
        nlp_url: nlp,
        data_url: data,
        viz_url: viz,
        regression_events: Vec::new(),
        agent_timeout: wsreplay::demo::DEFAULT_AGENT_TIMEOUT,
        reply_delay: Duration::ZERO,
        mutate: None,
        progress: None,
    };
    tweak(&mut config);
    backend::spawn(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// Checks `gate` (its agents mocked) against a fresh demo backend changed by `tweak`,
/// as a team's test body does.
pub async fn check_demo_build(
    gate: wsreplay::Gate,
    tweak: impl FnOnce(&mut wsreplay::demo::backend::BackendConfig),
) -> wsreplay::Outcome {
    let mocks = gate
        .mock("nlp")
        .mock("data")
        .mock("viz")
        .start()
        .await
        .unwrap();
    let build = demo_build(mocks.url("nlp"), mocks.url("data"), mocks.url("viz"), tweak).await;
    let outcome = guard(mocks.target("frontend", build.url()).run())
        .await
        .unwrap();
    build.shutdown().await;
    outcome
}

/// Seeds a run from the clock unless `WSREPLAY_TEST_SEED` is set (to reproduce one).
pub fn seed() -> u64 {
    std::env::var("WSREPLAY_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

/// How long a replayed client waits for a build that sends fewer messages than recorded
/// (today's pacing counts them): far longer than a demo chat takes on a loaded machine,
/// short enough for 20 checks in a row.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(2);

/// Checks the demo recording (`recordings/checkout.jsonl`) against its snapshot and a
/// demo build changed by `tweak`, without writing a `.snap.new`.
pub async fn check_checkout(
    tweak: impl FnOnce(&mut wsreplay::demo::backend::BackendConfig),
) -> wsreplay::Outcome {
    let runs = tempfile::tempdir().unwrap();
    let gate = wsreplay::Gate::load(format!("{RECORDINGS}/checkout.jsonl"))
        .snapshots(SNAPSHOTS)
        .runs(runs.path())
        .step_timeout(STEP_TIMEOUT)
        .check_only();
    let outcome = check_demo_build(gate, tweak).await;
    assert!(outcome.result().error.is_none(), "{}", outcome.report());
    outcome
}

/// The summary lines of a check that found a difference.
pub fn differences(outcome: &wsreplay::Outcome) -> Vec<String> {
    assert_eq!(
        outcome.verdict(),
        wsreplay::Verdict::Differs,
        "{}",
        outcome.report()
    );
    outcome
        .result()
        .routes
        .iter()
        .flat_map(|r| r.summary.clone())
        .collect()
}

/// Replays `rec` against a fresh in-process demo backend (a "new build", changed by
/// `regression_events` and `mutate`) whose agents are wsreplay's mocks; returns the
/// report and the captured run.
pub async fn replay_demo(
    rec: &Recording,
    tweak: impl FnOnce(&mut wsreplay::replay::ReplayConfig),
    regression_events: Vec<String>,
    mutate: Option<wsreplay::demo::backend::Mutator>,
) -> (wsreplay::replay::ReplayReport, Recording) {
    use wsreplay::replay::{Replay, ReplayConfig};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run.jsonl");
    let mut config = ReplayConfig::new(Output::File(out.clone()));
    for agent in AGENTS {
        config.mock(agent, "127.0.0.1:0".parse().unwrap());
    }
    tweak(&mut config);
    let mut replay = Replay::start(rec.clone(), config).await.unwrap();
    let mock = |r: &str| format!("ws://{}", replay.mock_addr(r).unwrap());
    let backend = demo_build(mock("nlp"), mock("data"), mock("viz"), |c| {
        c.regression_events = regression_events;
        c.agent_timeout = Duration::from_secs(2);
        c.mutate = mutate;
    })
    .await;
    replay.target("frontend", &backend.url()).unwrap();
    let report = guard(replay.run()).await.unwrap();
    backend.shutdown().await;
    (report, Recording::read(&out).unwrap())
}

/// Writes a recording held in memory to a file, through the format's writer.
pub fn write_recording(rec: &Recording, path: &std::path::Path) {
    let mut w = wsreplay::recording::Writer::new(std::fs::File::create(path).unwrap(), &rec.header)
        .unwrap();
    for r in &rec.records {
        w.write(r).unwrap();
    }
}

/// Debian's chromium, or `WSREPLAY_CHROMIUM`.
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("WSREPLAY_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/chromium".into());
    path.exists().then_some(path)
}

/// Flags for a headless Chromium that stays quiet and off the network.
pub const HEADLESS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

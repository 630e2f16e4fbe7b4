//! The command line: clap definitions and the glue from arguments to the library.
//!
//! `main.rs` parses a [`Cli`] and calls [`run`]; everything here turns raw arguments
//! into validated configuration, calls the library, prints, and maps the result to a
//! documented exit code ([`EXIT_OK`], [`EXIT_DIFFERS`], [`EXIT_ERROR`]).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{validate_routes, FileConfig, Route};
use crate::gate::check;
use crate::record::proxy::{Proxy, ProxyConfig};
use crate::record::tls::TlsOptions;
use crate::recording::format::Recording;
use crate::recording::sink::{Outcome, Output};
use crate::redact::RedactConfig;
use crate::replay::{Replay, ReplayConfig};

/// Success.
pub const EXIT_OK: i32 = 0;
/// The structure of the traffic differs from the snapshot.
pub const EXIT_DIFFERS: i32 = 1;
/// wsreplay could not do its job: bad input, unreachable target, incomplete recording.
pub const EXIT_ERROR: i32 = 2;
/// `check --timing`: the structure is the same, but the build is slower than the
/// timing envelope allows ([`check::Verdict::Slow`]).
pub const EXIT_SLOW: i32 = 3;

/// Record, replay and structurally diff WebSocket traffic between services.
#[derive(Debug, Parser)]
#[command(name = "wsreplay", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Put a recording proxy in front of one or more WebSocket services and record
    /// every hop into one file, until Ctrl-C or SIGTERM.
    Record(RecordArgs),
    /// Replay a recording against a new build: play its recorded clients against the
    /// --target routes and stand in for the --mock routes' servers, capturing what
    /// happened as a new recording.
    Replay(ReplayArgs),
    /// Write the structure snapshot of recordings (snapshots/<name>.snap, an insta
    /// snapshot file): message kinds per route and direction with their key paths,
    /// types and formats, and the conversation sequences. No volatile values.
    Snapshot(SnapshotArgs),
    /// Replay recordings against a build and compare the structure of what it did with
    /// their snapshots: the CI gate. Exit 0 same, 1 differs, 2 could not check, 3
    /// same structure but outside the --timing envelope.
    Check(CheckArgs),
    /// Compare the structure of two recordings (B against A), without replaying.
    /// Exit 0 same, 1 differs, 2 bad input.
    Diff(DiffArgs),
    /// Accept or reject the changed structures `check` left as snapshots/*.snap.new,
    /// one by one with their diff, or all at once. Works in any project; in a Rust
    /// project `cargo insta review` does the same.
    Review(ReviewArgs),
    /// Print what a recording holds: per route and connection, message counts by
    /// type, close codes and how each connection ended.
    Show(ShowArgs),
    /// Measure the recorder, the normaliser and the replayer against a direct
    /// connection, a blind TCP relay and a minimal client, and print the figures with
    /// their ratios and targets.
    Bench(BenchArgs),
    /// Push many concurrent connections through a recording proxy and check that every
    /// message arrives byte-identical and the recording holds exactly those messages.
    Soak(SoakArgs),
    /// The bench's blind TCP relay (LISTEN UPSTREAM), run as its own process.
    #[command(hide = true)]
    BenchRelay {
        listen: std::net::SocketAddr,
        upstream: std::net::SocketAddr,
    },
    /// Run services of the built-in demo system as a long-lived process (until Ctrl-C),
    /// e.g. as a build under test for `replay --spawn`, or to try wsreplay by hand.
    ServeDemo(ServeDemoArgs),
    /// Turn a capture made elsewhere into a recording: `import har` reads the HAR file a
    /// browser (Chrome DevTools, Playwright) or mitmproxy wrote.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Infer the event contract from recordings: a JSON Schema (2020-12) per route,
    /// direction and message kind, or an AsyncAPI 3.0 document with a channel per route.
    Schema(SchemaArgs),
    /// Check the messages of a recording (or of a replay's capture) against a JSON
    /// Schema or AsyncAPI document. Exit 0 all valid, 1 violations, 2 bad input.
    Validate(ValidateArgs),
    /// Run the built-in demo: start a small multi-service system, record a session,
    /// snapshot it, then check the same build (passes) and a build with a breaking
    /// change (fails, with the diff). Needs nothing else running.
    Demo(DemoArgs),
}

/// What `wsreplay import` reads.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import the WebSocket connections of a HAR file (Chrome DevTools "Save all as
    /// HAR", Playwright recordHar, mitmproxy's HAR export) as a recording that show,
    /// replay, snapshot and check accept. Other entries are skipped.
    #[command(
        after_help = "Example:\n  wsreplay import har capture.har --out recordings/checkout.jsonl --route frontend\n\nThe time unit (seconds or milliseconds) is detected. A HAR has no close frames, close\ncodes or pings: the recording has none either. Secrets are redacted as when recording."
    )]
    Har(ImportHarArgs),
}

/// Arguments of `wsreplay import har`.
#[derive(Debug, Args)]
pub struct ImportHarArgs {
    /// The HAR file. Playwright's side files (content: 'attach') are read from its
    /// directory.
    pub file: PathBuf,
    /// The recording to write (JSON Lines).
    #[arg(short, long, value_name = "FILE")]
    pub out: PathBuf,
    /// The route name of the imported connections (what `replay --target ROUTE=URL`
    /// and the snapshot call them).
    #[arg(long, value_name = "NAME", default_value = "frontend")]
    pub route: String,
    #[command(flatten)]
    pub redact: RedactFlags,
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

/// Output formats of `wsreplay schema`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaFormat {
    /// One JSON Schema 2020-12 document, a definition per route, direction and kind.
    JsonSchema,
    /// An AsyncAPI 3.0 document: a channel per route, send/receive operations.
    Asyncapi,
}

/// Arguments of `wsreplay schema`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  wsreplay schema recordings/ --format json-schema --out contract.schema.json\n  wsreplay schema recordings/checkout.jsonl --format asyncapi --out asyncapi.json\n  wsreplay validate runs/checkout.jsonl --schema contract.schema.json"
)]
pub struct SchemaArgs {
    /// Recordings (or directories of *.jsonl recordings) to infer from.
    #[arg(required = true)]
    pub recordings: Vec<PathBuf>,
    /// What to write.
    #[arg(long, value_enum)]
    pub format: SchemaFormat,
    /// Write to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Read literal-field overrides ([structure] literal/volatile: which fields become
    /// enums) from this TOML file [default: ./wsreplay.toml when present].
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Arguments of `wsreplay validate`.
#[derive(Debug, Args)]
#[command(
    after_help = "The schema is a `wsreplay schema` document (each message is checked against its route,\ndirection and kind), an AsyncAPI 3.x document (channels are routes; receive = c2s,\nsend = s2c), or any JSON Schema (every message is checked against it).\n\nExit status: 0 every message is valid, 1 violations (each printed with its path), 2 bad input."
)]
pub struct ValidateArgs {
    /// The recording (or replay capture) whose messages to check.
    pub recording: PathBuf,
    /// The JSON Schema or AsyncAPI document (JSON).
    #[arg(long, value_name = "FILE")]
    pub schema: PathBuf,
    /// Check only the messages of this route.
    #[arg(long, value_name = "NAME")]
    pub route: Option<String>,
    /// Check only the messages of this direction.
    #[arg(long, value_name = "DIR", value_parser = ["c2s", "s2c"])]
    pub dir: Option<String>,
}

/// Arguments of `wsreplay record`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  wsreplay record --out recordings/checkout.jsonl \\\n    --route frontend=127.0.0.1:18100=ws://127.0.0.1:18000 \\\n    --route nlp=127.0.0.1:18101=ws://127.0.0.1:18001\n\nPoint the client at ws://127.0.0.1:18100 and the backend's agent URL at ws://127.0.0.1:18101."
)]
pub struct RecordArgs {
    /// The recording to write (JSON Lines). Overrides `out` in the config file.
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Parse and serialise everything but write no file (to measure the recorder
    /// without its disk cost).
    #[arg(long, conflicts_with = "out")]
    pub discard: bool,
    /// A hop to record, as NAME=LISTEN=UPSTREAM: the proxy listens on LISTEN
    /// (HOST:PORT) and forwards to UPSTREAM (ws:// or wss:// URL). Repeat for
    /// every hop. Replaces the routes of the config file.
    #[arg(short, long = "route", value_name = "NAME=LISTEN=UPSTREAM")]
    pub routes: Vec<Route>,
    /// Read routes, output and redaction from this TOML file [default: ./wsreplay.toml
    /// when present].
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Extra PEM CA certificate(s) to trust for wss:// upstreams.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Do not verify wss:// upstream certificates (self-signed staging only).
    #[arg(long)]
    pub insecure: bool,
    #[command(flatten)]
    pub redact: RedactFlags,
    /// Keep at most this many bytes of each message body; longer bodies are
    /// recorded truncated, with their full size. Forwarding is never affected.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub max_message_size: usize,
    /// Allow listening on non-loopback addresses (exposes the recorder to the network).
    #[arg(long)]
    pub allow_remote: bool,
}

/// Arguments of `wsreplay replay`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example (the build under test is a backend; its agents are mocked):\n  wsreplay replay recordings/checkout.jsonl \\\n    --target frontend=ws://127.0.0.1:18000 \\\n    --mock nlp=127.0.0.1:28001 --mock data=127.0.0.1:28002 --mock viz=127.0.0.1:28003 \\\n    --spawn 'NLP_AGENT_URL=ws://127.0.0.1:28001 ... ./start-backend.sh'\n\nExit status: 0 replayed with no problems, 1 problems were reported, 2 could not replay."
)]
pub struct ReplayArgs {
    /// The recording to replay.
    pub recording: PathBuf,
    #[command(flatten)]
    pub replay: ReplayFlags,
    /// Where to write the capture of the replay [default: runs/<recording name>.jsonl].
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Arguments of `wsreplay review`.
#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// Only these snapshots (names as in snapshots/NAME.snap.new) [default: all pending].
    pub names: Vec<String>,
    /// Where snapshots live.
    #[arg(long, value_name = "DIR", default_value = "snapshots")]
    pub snapshots: PathBuf,
    /// Accept every pending snapshot without asking (NAME.snap.new replaces NAME.snap).
    #[arg(long, conflicts_with = "reject")]
    pub accept: bool,
    /// Reject every pending snapshot without asking (NAME.snap.new is deleted).
    #[arg(long)]
    pub reject: bool,
}

/// Arguments of `wsreplay snapshot`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Recordings (or directories of *.jsonl recordings) to snapshot.
    #[arg(required = true)]
    pub recordings: Vec<PathBuf>,
    /// Where snapshots live.
    #[arg(long, value_name = "DIR", default_value = "snapshots")]
    pub snapshots: PathBuf,
    /// Read literal-field overrides ([structure] literal/volatile) from this TOML file
    /// [default: ./wsreplay.toml when present].
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Arguments of `wsreplay check`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example (a backend under test, its agents mocked, a free port per recording):\n  wsreplay check recordings/ --target frontend=ws://127.0.0.1:{port} \\\n    --mock nlp=127.0.0.1:0 --mock data=127.0.0.1:0 --mock viz=127.0.0.1:0 \\\n    --spawn './backend --port {port}' --junit junit.xml --summary-md summary.md\n(the build finds its mocked agents in $WSREPLAY_MOCK_NLP, $WSREPLAY_MOCK_DATA, ...)\n\nExit status: 0 same structure, 1 structure differs (or no snapshot yet), 2 could not check,\n3 same structure but slower than the --timing envelope allows."
)]
pub struct CheckArgs {
    /// Recordings, or directories of *.jsonl recordings, to check.
    #[arg(required = true)]
    pub recordings: Vec<PathBuf>,
    #[command(flatten)]
    pub replay: ReplayFlags,
    /// Write no snapshot files, neither a new snapshot nor a .snap.new to review (also
    /// when the CI environment variable is set): a difference only fails. The captured
    /// runs and the reports asked for are still written.
    #[arg(long)]
    pub check: bool,
    /// Where snapshots live.
    #[arg(long, value_name = "DIR", default_value = "snapshots")]
    pub snapshots: PathBuf,
    /// Where the captured runs go (one <name>.jsonl per recording).
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub runs: PathBuf,
    /// Write a JUnit XML report: one test case per recording and route.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a Markdown summary (e.g. for $GITHUB_STEP_SUMMARY).
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
    /// Write a self-contained HTML report for reviewers: a row per recording and route,
    /// the structure diff with changed paths highlighted, the summary, and a sequence
    /// diagram of the session across hops with the first differing message marked.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Also compare timing with the recording: per route and message kind the build
    /// sends, the time to the first message and the longest gap before one. A figure
    /// above recorded × --timing-tolerance + --timing-slack-ms is reported apart from
    /// the structure, and exits 3 when the structure is the same.
    #[arg(long)]
    pub timing: bool,
    /// With --timing: how many times slower than recorded a figure may be.
    #[arg(long, value_name = "FACTOR", default_value_t = crate::structure::timing::TimingConfig::default().tolerance, requires = "timing")]
    pub timing_tolerance: f64,
    /// With --timing: milliseconds allowed on top, for scheduling noise on small figures.
    #[arg(long, value_name = "MS", default_value_t = crate::structure::timing::TimingConfig::default().slack.as_millis() as u64, requires = "timing")]
    pub timing_slack_ms: u64,
    /// Check this many recordings at once (their mocks must use port 0 and their
    /// targets {port}, or they would collide).
    #[arg(short, long, value_name = "N", default_value_t = 1)]
    pub jobs: usize,
    /// Check only shard I of N (every N-th recording, in name order), to split the
    /// work across CI machines.
    #[arg(long, value_name = "I/N")]
    pub partition: Option<String>,
}

/// Replay settings shared by `replay` and `check`.
#[derive(Debug, Args)]
pub struct ReplayFlags {
    /// Replay the recorded clients of ROUTE against the build at URL (ws:// or wss://).
    /// The recorded path and query are appended to URL. `{port}` (check only) becomes
    /// a free port, different for each recording. Repeatable.
    #[arg(short, long = "target", value_name = "ROUTE=URL")]
    pub targets: Vec<String>,
    /// Stand in for the recorded server of ROUTE, listening on LISTEN (HOST:PORT; port
    /// 0 picks a free one), and answer the build's requests with the recorded
    /// responses. Repeatable.
    #[arg(short, long = "mock", value_name = "ROUTE=LISTEN")]
    pub mocks: Vec<String>,
    /// Shell command that starts the build under test; run after the mocks listen and
    /// stopped (SIGTERM, then SIGKILL) at the end. It gets WSREPLAY_MOCK_<ROUTE>=ws://…
    /// in its environment.
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
    /// Read correlation overrides ([[correlate]] route/request/response) from this TOML
    /// file [default: ./wsreplay.toml when present].
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
}

/// Arguments of `wsreplay diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The baseline recording.
    pub a: PathBuf,
    /// The recording compared with it.
    pub b: PathBuf,
    /// Also write the comparison as a self-contained HTML report (see `check --html`).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Read literal-field overrides ([structure] literal/volatile) from this TOML file
    /// [default: ./wsreplay.toml when present].
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Arguments of `wsreplay show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The recording to describe.
    pub file: PathBuf,
    /// Print every message in order, one line each, across all hops.
    #[arg(long, conflicts_with = "mermaid")]
    pub timeline: bool,
    /// List what was redacted: where (header, query parameter, message field) and
    /// what kind (jwt, aws-key, private-key, secret), with counts. Never a value.
    #[arg(long, conflicts_with_all = ["timeline", "mermaid"])]
    pub secrets: bool,
    /// Print the session as a Mermaid sequence diagram: each route's client and server
    /// are participants, messages are labelled by their type, runs of the same message
    /// are collapsed (`progress_update ×3`). Paste into a Markdown ```mermaid block.
    #[arg(long)]
    pub mermaid: bool,
}

/// Arguments of `wsreplay bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Print the figures as JSON (for machines) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Smaller workloads: about 15 s instead of a few minutes, noisier figures.
    #[arg(long)]
    pub quick: bool,
    /// Run only one workload (for profiling).
    #[arg(long, value_enum, value_name = "WORKLOAD")]
    pub only: Option<crate::measure::bench::Workload>,
}

/// Arguments of `wsreplay soak`.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Concurrent connections.
    #[arg(long, default_value_t = 1000)]
    pub connections: u64,
    /// Messages each connection sends (and gets echoed).
    #[arg(long, default_value_t = 100)]
    pub messages: u64,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `wsreplay serve-demo`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example (the whole demo system on the ports of ../shared/sut):\n  wsreplay serve-demo --agent nlp=127.0.0.1:18001 --agent data=127.0.0.1:18002 \\\n    --agent viz=127.0.0.1:18003 --backend 127.0.0.1:18000"
)]
pub struct ServeDemoArgs {
    /// Run the demo backend, listening on HOST:PORT.
    #[arg(long, value_name = "LISTEN")]
    pub backend: Option<String>,
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
    pub agents: Vec<String>,
}

/// Arguments of `wsreplay demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory for the demo's recording, snapshot and runs (emptied first if the demo
    /// made it; any other non-empty directory is refused) [default: wsreplay-demo-UID in
    /// the system's temporary directory].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Chats the demo frontend sends.
    #[arg(long, default_value_t = 3)]
    pub chats: usize,
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    if !cli.command.uses_sockets() {
        restore_default_sigpipe();
    }
    init_logging(cli.verbose);
    // The recorder forwards on one thread (its writer has a thread of its own): on a
    // small machine that avoids a wake-up between worker threads for every frame.
    let mut builder = match cli.command {
        Command::Record(_) | Command::BenchRelay { .. } => {
            tokio::runtime::Builder::new_current_thread()
        }
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return EXIT_ERROR;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Record(args) => record(args).await,
            Command::Replay(args) => replay(args).await,
            Command::Show(args) => show(args),
            Command::Snapshot(args) => snapshot(args),
            Command::Check(args) => check(args).await,
            Command::Diff(args) => diff(args),
            Command::Review(args) => review(args),
            Command::Bench(args) => bench(args).await,
            Command::Soak(args) => soak(args).await,
            Command::BenchRelay { listen, upstream } => {
                crate::measure::bench::blind_relay(listen, upstream).await?;
                Ok(EXIT_OK)
            }
            Command::ServeDemo(args) => serve_demo(args).await,
            Command::Import(ImportCommand::Har(args)) => import_har(args),
            Command::Schema(args) => schema(args),
            Command::Validate(args) => validate(args),
            Command::Demo(args) => {
                let dir = args.dir.unwrap_or_else(crate::demo::default_dir);
                crate::demo::run_cli(dir, args.chats).await
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            // Every error names its cause in its own message: printing the chain of
            // sources as well would repeat the OS reason.
            eprintln!("error: {e}");
            EXIT_ERROR
        }
    }
}

impl Command {
    /// Whether the command talks over sockets (records, replays, serves).
    fn uses_sockets(&self) -> bool {
        !matches!(
            self,
            Command::Show(_)
                | Command::Snapshot(_)
                | Command::Diff(_)
                | Command::Review(_)
                | Command::Import(_)
                | Command::Schema(_)
                | Command::Validate(_)
        )
    }
}

/// Lets a closed stdout (`wsreplay show X --timeline | head`) end the process quietly,
/// as it ends other Unix tools, instead of a panic on "Broken pipe". Rust starts
/// programs with SIGPIPE ignored; the commands that only read files and print get the
/// default back. The commands that use sockets keep it ignored: a peer that goes away
/// while a TLS record is written must be an error on that connection, not the end of
/// the recorder.
fn restore_default_sigpipe() {
    // SAFETY: called at the start of the program, before any other thread exists;
    // SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init_logging(verbose: u8) {
    // The demo system's own services log at info; keep them quiet unless asked.
    let default = match verbose {
        0 => "wsreplay=info,wsreplay::demo=warn",
        1 => "wsreplay=debug",
        _ => "wsreplay=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = color_on(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

async fn record(args: RecordArgs) -> anyhow::Result<i32> {
    let file = FileConfig::load(args.config.as_deref())?;
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("wsreplay.toml"));
    let routes = if args.routes.is_empty() {
        file.routes(&config_path)?
    } else {
        args.routes
    };
    validate_routes(&routes, args.allow_remote)?;
    let output = if args.discard {
        Output::Discard
    } else {
        Output::File(args.out.or(file.out).ok_or_else(|| {
            anyhow::anyhow!("no output file: pass --out FILE (or set `out` in wsreplay.toml)")
        })?)
    };
    let out = match &output {
        Output::File(p) => p.clone(),
        Output::Discard => PathBuf::from("(discarded)"),
    };
    let mut redact = file.redact;
    redact.merge(args.redact.into());
    for r in routes.iter().filter(|r| !r.listen.ip().is_loopback()) {
        tracing::warn!(
            "route {} listens on {}, reachable from other machines",
            r.name,
            r.listen
        );
    }
    let mut config = ProxyConfig::new(routes, output);
    config.redact = redact;
    config.tls = TlsOptions {
        ca_cert: args.ca_cert,
        insecure: args.insecure,
    };
    config.max_message_bytes = args.max_message_size;
    let proxy = Proxy::start(config).await?;
    for (name, addr) in proxy.addrs() {
        eprintln!(
            "wsreplay: route {name}: ws://{addr} → {}",
            upstream_of(&proxy, name)
        );
    }
    eprintln!(
        "wsreplay: recording to {}; press Ctrl-C to stop",
        out.display()
    );
    wait_for_stop_signal().await?;
    let outcome = proxy.stop().await;
    Ok(report_outcome(&out, &outcome))
}

fn upstream_of(proxy: &Proxy, route: &str) -> String {
    proxy
        .upstream(route)
        .map(|u| u.to_string())
        .unwrap_or_default()
}

/// Prints one line per route and says whether the recording is complete.
pub fn report_outcome(out: &std::path::Path, outcome: &Outcome) -> i32 {
    for (route, s) in &outcome.routes {
        let c2s = s
            .messages
            .get(&crate::recording::format::Dir::ClientToServer)
            .copied()
            .unwrap_or(0);
        let s2c = s
            .messages
            .get(&crate::recording::format::Dir::ServerToClient)
            .copied()
            .unwrap_or(0);
        println!(
            "{route}: {} connection(s), {c2s} c2s + {s2c} s2c message(s), {} abnormal end(s)",
            s.connections, s.abnormal_ends
        );
    }
    if outcome.complete() {
        println!("{}", wrote(out, outcome.records));
        EXIT_OK
    } else {
        eprintln!(
            "error: the recording {} is INCOMPLETE: {} record(s) could not be written ({}). Traffic was forwarded regardless.",
            out.display(),
            outcome.lost,
            outcome.error.as_deref().unwrap_or("unknown error")
        );
        EXIT_ERROR
    }
}

/// `wrote FILE (N records)`, the last line of a complete recording.
fn wrote(out: &std::path::Path, records: u64) -> String {
    let s = if records == 1 { "" } else { "s" };
    format!("wrote {} ({records} record{s})", out.display())
}

async fn wait_for_stop_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// The replay settings of `replay` and `check`; targets stay raw (`check` fills in
/// `{port}` per recording).
fn replay_config(
    flags: ReplayFlags,
    output: Output,
) -> anyhow::Result<(ReplayConfig, Vec<(String, String)>)> {
    let file = FileConfig::load(flags.config.as_deref())?;
    let mut config = ReplayConfig::new(output);
    config.id_pairs = file.correlate;
    config.faults = flags.faults;
    config.step_timeout = seconds("--step-timeout", flags.step_timeout)?;
    if let Some(speed) = flags.speed {
        anyhow::ensure!(
            speed > 0.0 && speed.is_finite(),
            "--speed must be a positive number, e.g. 1.0"
        );
        config.speed = Some(speed);
    }
    let mut targets = Vec::new();
    for spec in &flags.targets {
        let (route, url) = spec.split_once('=').ok_or_else(|| {
            anyhow::anyhow!(
                "--target {spec:?}: expected ROUTE=URL, e.g. frontend=ws://127.0.0.1:18000"
            )
        })?;
        targets.push((route.to_string(), url.to_string()));
    }
    for spec in &flags.mocks {
        let (route, listen) = spec.split_once('=').ok_or_else(|| {
            anyhow::anyhow!("--mock {spec:?}: expected ROUTE=LISTEN, e.g. nlp=127.0.0.1:28001")
        })?;
        let addr = crate::config::parse_listen(listen)
            .map_err(|e| anyhow::anyhow!("--mock {spec:?}: {e}"))?;
        anyhow::ensure!(
            flags.allow_remote || addr.ip().is_loopback(),
            "--mock {spec:?}: {addr} is not a loopback address; pass --allow-remote if other machines must reach the mock"
        );
        if !addr.ip().is_loopback() {
            tracing::warn!("mock {route} listens on {addr}, reachable from other machines");
        }
        config.mock(route, addr);
    }
    anyhow::ensure!(
        !targets.is_empty() || !config.mocks.is_empty(),
        "nothing to replay: give --target ROUTE=URL for the recorded clients (and --mock ROUTE=LISTEN for recorded servers)"
    );
    anyhow::ensure!(
        !targets.is_empty(),
        "--mock needs a --target: the mocks answer the build while the recorded clients replay; add --target ROUTE=URL"
    );
    if let Some(cmd) = flags.spawn {
        config.spawn = Some((cmd, seconds("--spawn-timeout", flags.spawn_timeout)?));
    }
    Ok((config, targets))
}

async fn replay(args: ReplayArgs) -> anyhow::Result<i32> {
    let recording = Recording::read(&args.recording)?;
    for w in &recording.warnings {
        eprintln!("warning: {}", w.at(&args.recording));
    }
    let out = args.out.unwrap_or_else(|| {
        let stem = args.recording.file_stem().unwrap_or_default();
        PathBuf::from("runs").join(stem).with_extension("jsonl")
    });
    let (mut config, targets) = replay_config(args.replay, Output::File(out.clone()))?;
    for (route, url) in targets {
        let upstream = crate::config::parse_target(&route, &url).map_err(anyhow::Error::msg)?;
        config.targets.push((route, upstream));
    }
    let replay = Replay::start(recording, config).await?;
    for (route, addr) in replay.mock_addrs() {
        eprintln!("wsreplay: mock {route} listening on ws://{addr}");
    }
    let report = replay.run().await?;
    print!("{}", report.render());
    let code = report_outcome(&out, &report.capture);
    Ok(if code != EXIT_OK {
        code
    } else if report.problems.is_empty() {
        EXIT_OK
    } else {
        EXIT_DIFFERS
    })
}

fn snapshot(args: SnapshotArgs) -> anyhow::Result<i32> {
    let structure_config = FileConfig::load(args.config.as_deref())?.structure;
    for file in check::expand(&args.recordings)? {
        let (path, structure) = check::write_snapshot(&file, &args.snapshots, &structure_config)?;
        let kinds: usize = structure.routes.values().map(|r| r.kinds.len()).sum();
        println!(
            "wrote {} ({} route(s), {kinds} message kind(s)) from {}",
            path.display(),
            structure.routes.len(),
            file.display()
        );
    }
    Ok(EXIT_OK)
}

fn review(args: ReviewArgs) -> anyhow::Result<i32> {
    use crate::gate::review::Decision;
    let decision = match (args.accept, args.reject) {
        (true, _) => Decision::Accept,
        (_, true) => Decision::Reject,
        _ => Decision::Ask,
    };
    let done = crate::gate::review::review(
        &args.snapshots,
        &args.names,
        decision,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout(),
        use_color(),
    )?;
    if done.accepted.is_empty() && done.rejected.is_empty() && done.skipped.is_empty() {
        println!("no pending snapshots in {}", args.snapshots.display());
        return Ok(EXIT_OK);
    }
    let list = |names: &[String]| match names {
        [] => String::new(),
        names => format!(" ({})", names.join(", ")),
    };
    println!(
        "accepted {}{}, rejected {}{}, left pending {}{}",
        done.accepted.len(),
        list(&done.accepted),
        done.rejected.len(),
        list(&done.rejected),
        done.skipped.len(),
        list(&done.skipped)
    );
    Ok(EXIT_OK)
}

async fn check(args: CheckArgs) -> anyhow::Result<i32> {
    let files = check::partition(check::expand(&args.recordings)?, args.partition.as_deref())?;
    let structure = FileConfig::load(args.replay.config.as_deref())?.structure;
    let (replay, targets) = replay_config(args.replay, Output::Discard)?;
    let read_only = args.check || check::in_ci();
    let mut config = check::CheckConfig {
        targets,
        replay,
        runs_dir: args.runs,
        snapshots: check::SnapshotPolicy {
            dir: args.snapshots,
            read_only,
        },
        structure,
        timing: None,
    };
    if args.timing {
        anyhow::ensure!(
            args.timing_tolerance >= 1.0 && args.timing_tolerance.is_finite(),
            "--timing-tolerance must be a factor of at least 1.0, e.g. 2.0"
        );
        config.timing = Some(crate::structure::timing::TimingConfig {
            tolerance: args.timing_tolerance,
            slack: std::time::Duration::from_millis(args.timing_slack_ms),
        });
    }
    let results = check::check_all(files, config, args.jobs).await;
    let color = use_color();
    for r in &results {
        print!("{}", r.render(color));
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, check::junit(&results))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.summary_md {
        std::fs::write(path, check::summary_markdown(&results))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.html {
        write_html(path, &results)?;
    }
    let worst = results
        .iter()
        .map(|r| r.verdict())
        .max()
        .unwrap_or(check::Verdict::Same);
    let counts = |v| results.iter().filter(|r| r.verdict() == v).count();
    println!(
        "\n{} recording(s): {} same, {} outside the timing envelope, {} differ, {} could not be checked{}",
        results.len(),
        counts(check::Verdict::Same),
        counts(check::Verdict::Slow),
        counts(check::Verdict::Differs),
        counts(check::Verdict::Error),
        if read_only {
            " (no snapshot files written)"
        } else {
            ""
        }
    );
    Ok(worst.exit_code())
}

fn write_html(path: &std::path::Path, results: &[check::CheckResult]) -> anyhow::Result<()> {
    std::fs::write(path, crate::gate::export::html::html(results))
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

fn diff(args: DiffArgs) -> anyhow::Result<i32> {
    let structure = FileConfig::load(args.config.as_deref())?.structure;
    let result = check::diff_recordings(&args.a, &args.b, &structure)?;
    print!("{}", result.render(use_color()));
    if let Some(path) = &args.html {
        write_html(path, std::slice::from_ref(&result))?;
    }
    Ok(result.verdict().exit_code())
}

/// Colour on stdout: on a terminal, unless NO_COLOR is set.
pub fn use_color() -> bool {
    color_on(&std::io::stdout())
}

/// Colour on `stream`: when it is a terminal and NO_COLOR is not set.
fn color_on(stream: &impl std::io::IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

async fn serve_demo(args: ServeDemoArgs) -> anyhow::Result<i32> {
    use crate::demo::agent::{self, AgentKind};
    use crate::demo::backend::{self, BackendConfig};
    let mut servers = Vec::new();
    let mut agent_urls = std::collections::BTreeMap::new();
    for spec in &args.agents {
        let (kind, listen) = spec.split_once('=').ok_or_else(|| {
            anyhow::anyhow!("--agent {spec:?}: expected KIND=LISTEN, e.g. nlp=127.0.0.1:18001")
        })?;
        let kind = AgentKind::all()
            .into_iter()
            .find(|k| k.name() == kind)
            .ok_or_else(|| anyhow::anyhow!("--agent {spec:?}: KIND must be nlp, data or viz"))?;
        let addr = crate::config::parse_listen(listen)
            .map_err(|e| anyhow::anyhow!("--agent {spec:?}: {e}"))?;
        let server = agent::spawn(kind, addr, crate::demo::DEFAULT_AGENT_DELAY).await?;
        eprintln!("wsreplay: demo {} agent on {}", kind.name(), server.url());
        agent_urls.insert(kind.name(), server.url());
        servers.push(server);
    }
    if let Some(listen) = &args.backend {
        let addr =
            crate::config::parse_listen(listen).map_err(|e| anyhow::anyhow!("--backend: {e}"))?;
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
    Ok(EXIT_OK)
}

async fn bench(args: BenchArgs) -> anyhow::Result<i32> {
    if !args.json {
        eprintln!("wsreplay bench: measuring (a few minutes; --quick for a short run)...");
    }
    let report = crate::measure::bench::run(crate::measure::bench::BenchOptions {
        quick: args.quick,
        only: args.only,
    })
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(EXIT_OK)
}

async fn soak(args: SoakArgs) -> anyhow::Result<i32> {
    let dir = std::env::temp_dir().join(format!("wsreplay-soak-{}", std::process::id()));
    let report =
        crate::measure::soak::run(args.connections, args.messages, &dir.join("soak.jsonl")).await;
    let _ = std::fs::remove_dir_all(&dir);
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(if report.passed() { EXIT_OK } else { EXIT_ERROR })
}

fn seconds(flag: &str, secs: f64) -> anyhow::Result<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(secs)
        .map_err(|_| anyhow::anyhow!("{flag} must be a non-negative number of seconds"))
}

fn show(args: ShowArgs) -> anyhow::Result<i32> {
    let recording = Recording::read(&args.file)?;
    if args.mermaid {
        print!(
            "{}",
            crate::structure::sequence::Sequence::of(&recording).mermaid()
        );
    } else if args.timeline {
        print!("{}", crate::recording::summary::render_timeline(&recording));
        for w in &recording.warnings {
            eprintln!("warning: {}", w.at(&args.file));
        }
    } else if args.secrets {
        print!(
            "{}",
            crate::redact::secrets::Inventory::of(&recording).render()
        );
    } else {
        print!("{}", crate::recording::summary::render(&recording));
    }
    Ok(EXIT_OK)
}

fn import_har(args: ImportHarArgs) -> anyhow::Result<i32> {
    let options = crate::interop::har::ImportOptions {
        route: args.route,
        redact: args.redact.into(),
    };
    let report = crate::interop::har::import(&args.file, &args.out, &options)?;
    let count = |d| report.messages.get(&d).copied().unwrap_or(0);
    println!(
        "imported {} WebSocket connection(s) from {} ({}) into {}: {} c2s + {} s2c message(s) on route {}",
        report.connections,
        args.file.display(),
        report.creator,
        args.out.display(),
        count(crate::recording::format::Dir::ClientToServer),
        count(crate::recording::format::Dir::ServerToClient),
        options.route
    );
    println!("  message times: {}", report.unit.describe());
    if report.skipped_entries > 0 {
        println!(
            "  skipped {} non-WebSocket {} (pages, scripts, XHR)",
            report.skipped_entries,
            if report.skipped_entries == 1 {
                "entry"
            } else {
                "entries"
            }
        );
    }
    for note in &report.notes {
        println!("  note: {note}");
    }
    println!(
        "  not in a HAR, so not in the recording: {}",
        report.missing
    );
    if report.connections == 0 {
        eprintln!(
            "warning: {} has no WebSocket connection; in DevTools, keep the Network panel open while the page connects, then \"Save all as HAR\"",
            args.file.display()
        );
    }
    Ok(EXIT_OK)
}

fn schema(args: SchemaArgs) -> anyhow::Result<i32> {
    let config = FileConfig::load(args.config.as_deref())?.structure;
    let mut contract = crate::interop::schema::Contract::new(config);
    let files = check::expand(&args.recordings)?;
    for file in &files {
        let recording = Recording::read(file)?;
        contract.add(&recording);
    }
    let doc = match args.format {
        SchemaFormat::JsonSchema => contract.json_schema(),
        SchemaFormat::Asyncapi => contract.asyncapi(),
    };
    let text = serde_json::to_string_pretty(&doc)? + "\n";
    let (routes, kinds) = contract.counts();
    let summary = format!(
        "{routes} route(s), {kinds} message kind(s) from {} recording(s){}",
        files.len(),
        if contract.skipped > 0 {
            format!("; {} non-JSON message(s) have no schema", contract.skipped)
        } else {
            String::new()
        }
    );
    match &args.out {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            }
            std::fs::write(path, text)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            eprintln!("wrote {}: {summary}", path.display());
        }
        None => {
            print!("{text}");
            eprintln!("{summary}");
        }
    }
    Ok(EXIT_OK)
}

fn validate(args: ValidateArgs) -> anyhow::Result<i32> {
    let schema = crate::interop::validate::Schema::read(&args.schema)?;
    let recording = Recording::read(&args.recording)?;
    let dir = args.dir.as_deref().map(|d| {
        if d == "c2s" {
            crate::recording::format::Dir::ClientToServer
        } else {
            crate::recording::format::Dir::ServerToClient
        }
    });
    if let Some(route) = &args.route {
        let routes = recording.routes();
        anyhow::ensure!(
            routes.contains(&route.as_str()),
            "{}: route {route} is not in the recording (routes: {})",
            args.recording.display(),
            routes.join(", ")
        );
    }
    let report = schema.check(&recording, args.route.as_deref(), dir);
    print!("{}", report.render(&args.recording, &args.schema));
    anyhow::ensure!(
        report.checked > 0 || report.not_covered.is_empty(),
        "{} describes none of the routes of {}: it has {}. Name AsyncAPI channels after the recording's routes (or give them the address the connections used)",
        args.schema.display(),
        args.recording.display(),
        schema.routes().join(", ")
    );
    Ok(if report.passed() {
        EXIT_OK
    } else {
        EXIT_DIFFERS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_summary_counts_in_words() {
        let out = std::path::Path::new("rc.jsonl");
        assert_eq!(wrote(out, 1), "wrote rc.jsonl (1 record)");
        assert_eq!(wrote(out, 2), "wrote rc.jsonl (2 records)");
    }
}

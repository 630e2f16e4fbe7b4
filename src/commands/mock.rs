//! `wsreplay mock`: the recorded servers of a recording, served on their own for any
//! client, until Ctrl-C (or, with `--once`, until every recorded connection was served).

use std::path::PathBuf;

use clap::Args;

use super::args::check_mock_listen;
use super::replay::print_report;
use super::terminal::wait_for_stop_signal;
use crate::config::{FileConfig, MockSpec};
use crate::gate::Verdict;
use crate::recording::sink::Output;
use crate::recording::{stem_of, Recording};
use crate::replay::{Replay, ReplayConfig};
use crate::text::printable;

/// Arguments of `wsreplay mock`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example (a frontend under development, against the backend as it was recorded):\n  wsreplay mock recordings/checkout.jsonl --route frontend=127.0.0.1:18000\n  BACKEND_WS_URL=ws://127.0.0.1:18000 npm run dev\n\nEach client connection is matched to the recorded connection it resembles (path, query,\nheaders, subprotocol, then its first messages) and answered from it; ids the client\nchose (JSON-RPC ids, ack ids, message ids) are carried into the recorded answers.\n\nExit status: 0 served with no problems, 1 problems were reported (requests with no\nrecorded answer, requests whose structure changed), 2 could not serve."
)]
pub struct MockArgs {
    /// The recording whose servers to stand in for.
    pub recording: PathBuf,
    /// Serve the recorded server of ROUTE on LISTEN (HOST:PORT; port 0 picks a free
    /// one). Repeatable.
    #[arg(short, long = "route", value_name = "ROUTE=LISTEN", required = true)]
    pub routes: Vec<MockSpec>,
    /// Serve the recording again once every recorded connection has been served, for
    /// clients that reconnect or run again. Without it, further connections are
    /// answered from a private copy of the recorded conversations.
    #[arg(long = "loop", conflicts_with = "once")]
    pub looping: bool,
    /// Stop once every recorded connection has been served and closed, instead of at
    /// Ctrl-C.
    #[arg(long)]
    pub once: bool,
    /// Send the recorded answers after their recorded delays divided by FACTOR (2.0 =
    /// twice as fast).
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0)]
    pub speed: f64,
    /// Read correlation overrides ([[correlate]] route/request/response) from this
    /// TOML file [default: ./wsreplay.toml when present].
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Allow listening on non-loopback addresses.
    #[arg(long)]
    pub allow_remote: bool,
    /// Where to write what the clients did, in the recording format
    /// [default: runs/<recording name>-mock.jsonl].
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub async fn run(args: MockArgs) -> anyhow::Result<Verdict> {
    anyhow::ensure!(
        args.speed > 0.0 && args.speed.is_finite(),
        "--speed must be a positive number, e.g. 1.0"
    );
    let recording = Recording::read(&args.recording)?;
    for w in recording.warning_lines() {
        eprintln!("warning: {}", printable(&w));
    }
    let out = args.out.unwrap_or_else(|| {
        PathBuf::from("runs").join(format!("{}-mock.jsonl", stem_of(&args.recording)))
    });
    let file = FileConfig::load(args.config.as_deref())?;
    let mut config = ReplayConfig::new(Output::File(out.clone()));
    config.id_pairs = file.correlate;
    config.speed = Some(args.speed);
    config.looping = args.looping;
    for route in args.routes {
        check_mock_listen(&route, args.allow_remote)?;
        config.mocks.push(route);
    }
    let replay = Replay::start(recording, config).await?;
    for mock in replay.mock_addrs() {
        eprintln!(
            "wsreplay: serving the recorded {} server on ws://{}",
            mock.route, mock.listen
        );
    }
    eprintln!(
        "wsreplay: {}",
        if args.once {
            "until every recorded connection has been served (or Ctrl-C)"
        } else {
            "until Ctrl-C"
        }
    );
    let stop = async {
        if let Err(e) = wait_for_stop_signal().await {
            tracing::warn!("cannot wait for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    let report = replay.serve(stop, args.once).await;
    Ok(print_report(&out, &report))
}

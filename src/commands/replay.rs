//! `wsreplay replay`: the recorded clients against a build, mocks for its peers.

use std::path::PathBuf;

use clap::Args;

use super::args::{replay_config, ReplayFlags, ReplaySetup};
use super::record::report_outcome;
use crate::gate::Verdict;
use crate::recording::sink::Output;
use crate::recording::{stem_of, Recording};
use crate::replay::{Replay, ReplayReport, ReplayTarget};
use crate::text::printable;

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

pub async fn run(args: ReplayArgs) -> anyhow::Result<Verdict> {
    let recording = Recording::read(&args.recording)?;
    for w in recording.warning_lines() {
        eprintln!("warning: {}", printable(&w));
    }
    let out = args.out.unwrap_or_else(|| {
        PathBuf::from("runs").join(format!("{}.jsonl", stem_of(&args.recording)))
    });
    let ReplaySetup {
        mut config,
        targets,
    } = replay_config(args.replay, Output::File(out.clone()))?;
    for target in &targets {
        config.targets.push(ReplayTarget::resolve(target)?);
    }
    let replay = Replay::start(recording, config).await?;
    for mock in replay.mock_addrs() {
        eprintln!(
            "wsreplay: mock {} listening on ws://{}",
            mock.route, mock.listen
        );
    }
    let report = replay.run().await?;
    Ok(print_report(&out, &report))
}

/// Prints a replay's (or a mock's) report and what its capture holds; the verdict:
/// an incomplete capture, else problems, else success.
pub(crate) fn print_report(out: &std::path::Path, report: &ReplayReport) -> Verdict {
    print!("{}", printable(&report.render()));
    let code = report_outcome(out, &report.capture);
    if code != Verdict::Same {
        code
    } else if report.problems.is_empty() {
        Verdict::Same
    } else {
        Verdict::Differs
    }
}

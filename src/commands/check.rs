//! `wsreplay check`: the CI gate; prints each recording's result and writes the reports
//! asked for.

use std::path::PathBuf;

use clap::Args;

use super::args::{replay_config, ReplayFlags, ReplaySetup};
use super::terminal::use_color;
use crate::config::FileConfig;
use crate::gate::check;
use crate::gate::export::{self, html::Html, junit::Junit, markdown::Markdown};
use crate::gate::{CheckResult, Verdict};
use crate::recording::sink::Output;

/// Arguments of `wsreplay check`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example (a backend under test, its agents mocked, a free port per recording):\n  wsreplay check recordings/ --target frontend=ws://127.0.0.1:{port} \\\n    --mock nlp=127.0.0.1:0 --mock data=127.0.0.1:0 --mock viz=127.0.0.1:0 \\\n    --spawn './backend --port {port}' --junit junit.xml --summary-md summary.md\n(the build finds its mocked agents in $WSREPLAY_MOCK_NLP, $WSREPLAY_MOCK_DATA, ...)\n\nExit status: 0 same structure, 1 structure differs (or no snapshot yet), 2 could not check,\n3 same structure but slower than the --timing envelope allows,\n4 flaky (with --confirm: a difference that did not reproduce; no real difference)."
)]
pub struct CheckArgs {
    /// Recordings, or directories of *.jsonl / *.jsonl.zst recordings, to check.
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
    /// Replay a recording whose structure differs up to N more times: when a confirm
    /// run is the same as the snapshot, the difference is reported as flaky (exit 4,
    /// unless another recording really differs), not as a change; when every confirm
    /// run differs too, it is a real difference (exit 1).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub confirm: usize,
    /// A recording without a snapshot yet is replayed N times (instead of once) and
    /// its .snap.new learns what varied between those runs and the recording, as
    /// `wsreplay snapshot --learn N` does (not with --check or in CI, where no
    /// .snap.new is written); recordings with a snapshot are checked as usual.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub learn: usize,
    /// Check this many recordings at once (their mocks must use port 0 and their
    /// targets {port}, or they would collide).
    #[arg(short, long, value_name = "N", default_value_t = 1)]
    pub jobs: usize,
    /// Check only shard I of N (every N-th recording, in name order), to split the
    /// work across CI machines.
    #[arg(long, value_name = "I/N")]
    pub partition: Option<check::Partition>,
    #[command(flatten)]
    pub protocol: super::args::ProtocolFlags,
}

pub async fn run(args: CheckArgs) -> anyhow::Result<Verdict> {
    let files = check::expand(&args.recordings)?;
    check::unique_names(&files)?;
    let files = check::partition(files, args.partition);
    let structure = args
        .protocol
        .apply(FileConfig::load(args.replay.config.as_deref())?.structure)?;
    let ReplaySetup {
        config: replay,
        targets,
    } = replay_config(args.replay, Output::Discard)?;
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
        confirm: args.confirm,
        learn: args.learn,
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
    let results = crate::gate::runs::check_all(files, config, args.jobs).await;
    let color = use_color();
    for r in &results {
        print!("{}", r.render(color));
    }
    if let Some(path) = &args.junit {
        export::to_file(&Junit, &results, path)?;
    }
    if let Some(path) = &args.summary_md {
        export::to_file(&Markdown, &results, path)?;
    }
    if let Some(path) = &args.html {
        write_html(path, &results)?;
    }
    let worst = results
        .iter()
        .map(|r| r.verdict())
        .max()
        .unwrap_or(Verdict::Same);
    let counts = |v| results.iter().filter(|r| r.verdict() == v).count();
    println!(
        "\n{} recording(s): {} same, {} outside the timing envelope, {} flaky, {} differ, {} could not be checked{}",
        results.len(),
        counts(Verdict::Same),
        counts(Verdict::Slow),
        counts(Verdict::Flaky),
        counts(Verdict::Differs),
        counts(Verdict::Error),
        if read_only {
            " (no snapshot files written)"
        } else {
            ""
        }
    );
    Ok(worst)
}

pub(crate) fn write_html(path: &std::path::Path, results: &[CheckResult]) -> anyhow::Result<()> {
    export::to_file(&Html, results, path)?;
    println!("wrote {}", path.display());
    Ok(())
}

//! `wsreplay snapshot`: the structure snapshot of recordings, as recorded or learned
//! from replays of the clean build (`--learn N`).

use std::path::PathBuf;

use clap::Args;

use super::args::{replay_config, ReplayFlags, ReplaySetup};
use crate::config::FileConfig;
use crate::gate::check::{self, CheckConfig, SnapshotPolicy};
use crate::gate::Verdict;
use crate::recording::sink::Output;
use crate::text::printable;

/// Arguments of `wsreplay snapshot`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example (learn the noise of the build the recording came from, then review the learned lines):\n  wsreplay snapshot recordings/checkout.jsonl --learn 3 --target frontend=ws://127.0.0.1:{port} \\\n    --mock nlp=127.0.0.1:0 --mock data=127.0.0.1:0 --mock viz=127.0.0.1:0 \\\n    --spawn './backend --port {port}'"
)]
pub struct SnapshotArgs {
    /// Recordings (or directories of *.jsonl / *.jsonl.zst recordings) to snapshot.
    #[arg(required = true)]
    pub recordings: Vec<PathBuf>,
    /// Where snapshots live.
    #[arg(long, value_name = "DIR", default_value = "snapshots")]
    pub snapshots: PathBuf,
    /// Replay each recording N times against the build it came from (--target, --mock,
    /// --spawn as for check) and learn what varies between those runs and the
    /// recording: optional fields, extra types, formats and values, kinds whose number
    /// varies, conversations whose order varies. Each tolerance is a line of the
    /// snapshot marked `(learned: …)`; review them, delete any that should stay strict.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub learn: Option<u64>,
    /// With --learn: where the learning runs' captures go (<name>.learnK.jsonl).
    #[arg(long, value_name = "DIR", default_value = "runs", requires = "learn")]
    pub runs: PathBuf,
    #[command(flatten)]
    pub replay: ReplayFlags,
    #[command(flatten)]
    pub protocol: super::args::ProtocolFlags,
}

pub async fn run(args: SnapshotArgs) -> anyhow::Result<Verdict> {
    let structure = args
        .protocol
        .apply(FileConfig::load(args.replay.config.as_deref())?.structure)?;
    let files = check::expand(&args.recordings)?;
    check::unique_names(&files)?;
    let learning = match args.learn {
        Some(n) => {
            let ReplaySetup { config, targets } = replay_config(args.replay, Output::Discard)?;
            Some(CheckConfig {
                targets,
                replay: config,
                runs_dir: args.runs,
                snapshots: SnapshotPolicy {
                    dir: args.snapshots.clone(),
                    read_only: false,
                },
                structure: structure.clone(),
                timing: None,
                confirm: 0,
                learn: n as usize,
            })
        }
        None => {
            let replays = !args.replay.targets.is_empty()
                || !args.replay.mocks.is_empty()
                || args.replay.spawn.is_some();
            anyhow::ensure!(
                !replays,
                "--target, --mock and --spawn replay the recording to learn from; add --learn N (e.g. --learn 3), or leave them out to snapshot the recording as it is"
            );
            None
        }
    };
    for file in files {
        let snap = match &learning {
            Some(config) => crate::gate::learn::learn_snapshot(&file, config).await?,
            None => check::write_snapshot(&file, &args.snapshots, &structure)?,
        };
        for w in &snap.warnings {
            eprintln!("warning: {}", printable(w));
        }
        let routes = &snap.structure.routes;
        let kinds: usize = routes.values().map(|r| r.kinds.len()).sum();
        let streams: Vec<String> = routes
            .iter()
            .flat_map(|(route, section)| {
                let streams = section.kinds.iter().filter(|(_, k)| k.stream);
                streams.map(move |((dir, label), _)| format!("{route} {dir} {label}"))
            })
            .collect();
        let streams = match streams.len() {
            0 => String::new(),
            // Labels come from the recording: escaped for the terminal.
            n => format!(", {n} taken as streams: {}", printable(&streams.join(", "))),
        };
        let learned = match &learning {
            Some(config) => {
                let lines = snap.structure.render().matches("  (learned").count();
                format!("; {lines} line(s) learned from {} run(s)", config.learn)
            }
            None => String::new(),
        };
        println!(
            "wrote {} ({} route(s), {kinds} message kind(s){streams}{learned}) from {}",
            snap.path.display(),
            routes.len(),
            file.display()
        );
    }
    Ok(Verdict::Same)
}

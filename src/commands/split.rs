//! `wsreplay split`: a long capture cut into small recordings for CI, one per
//! connection, user or session of the frontend route.

use std::path::PathBuf;

use clap::Args;

use crate::config::FileConfig;
use crate::gate::Verdict;
use crate::recording::source::Source;
use crate::recording::Recording;
use crate::split::By;
use crate::text::printable;

/// Arguments of `wsreplay split`.
#[derive(Debug, Args)]
pub struct SplitArgs {
    /// The recording to split (.jsonl or .jsonl.zst).
    pub file: PathBuf,
    /// What each output file holds.
    #[arg(long, value_enum)]
    pub by: By,
    /// The directory the recordings are written to (made if missing). Files are named
    /// after what they hold: NAME-session-003-user-alice.jsonl.
    #[arg(long, value_name = "DIR", default_value = "recordings")]
    pub out_dir: PathBuf,
    /// The route the users connect to; every other route is an agent hop [default:
    /// the route of the recording's first connection].
    #[arg(long, value_name = "ROUTE")]
    pub frontend: Option<String>,
    /// Write zstd-compressed files (.jsonl.zst) [default: when the input is].
    #[arg(long)]
    pub compress: bool,
    /// Read correlation overrides ([[correlate]] route/request/response) from this
    /// TOML file, used to pair agent requests with their responses [default:
    /// ./wsreplay.toml when present].
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

pub fn run(args: SplitArgs) -> anyhow::Result<Verdict> {
    let pairs = FileConfig::load(args.config.as_deref())?.correlate;
    let recording = Recording::read(&args.file)?;
    for w in recording.warning_lines() {
        eprintln!("warning: {}", printable(&w));
    }
    let compressed = matches!(crate::recording::open(&args.file)?, Source::Zstd(_));
    let split = crate::split::plan(&recording, args.by, args.frontend.as_deref(), &pairs)?;
    let files = crate::split::write(
        &recording,
        &split,
        args.by,
        &args.out_dir,
        args.compress || compressed,
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "cannot write into {}: {e}; choose another --out-dir",
            args.out_dir.display()
        )
    })?;
    println!(
        "{}: {} recording(s) by {} of route {} in {}",
        args.file.display(),
        files.len(),
        args.by.as_str(),
        printable(&split.frontend),
        args.out_dir.display()
    );
    for (file, part) in files.iter().zip(&split.parts) {
        println!(
            "  {}  {} records, {}",
            file.display(),
            part.records.len(),
            printable(&part.note)
        );
    }
    if split.unattributed > 0 {
        eprintln!(
            "warning: {} agent exchange(s) began before any {} connection opened and are in no file",
            split.unattributed,
            printable(&split.frontend)
        );
    }
    Ok(Verdict::Same)
}

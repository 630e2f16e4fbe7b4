//! `wsreplay merge`: the recordings of several recorders (one per machine, pod or
//! hop) interleaved into one timeline.

use std::path::PathBuf;

use clap::Args;

use crate::gate::Verdict;
use crate::recording::source::is_compressed_name;
use crate::recording::Recording;
use crate::text::printable;

/// Arguments of `wsreplay merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The recordings to merge (two or more, .jsonl or .jsonl.zst). Their records are
    /// interleaved by wall-clock time (each file's start time plus its records' times),
    /// so the recorders' clocks should agree (NTP); connection ids that collide are
    /// renumbered, routes with the same name become one route.
    #[arg(required = true, num_args = 2.., value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The merged recording to write (zstd-compressed when it ends in .zst).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

pub fn run(args: MergeArgs) -> anyhow::Result<Verdict> {
    let mut inputs = Vec::new();
    for file in &args.files {
        let recording = Recording::read(file)?;
        for w in recording.warning_lines() {
            eprintln!("warning: {}", printable(&w));
        }
        inputs.push(recording);
    }
    let merged = crate::recording::merge::merge(&inputs)?;
    crate::recording::save(
        &args.out,
        &merged.header,
        &merged.records,
        is_compressed_name(&args.out),
    )
    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", args.out.display()))?;
    println!(
        "{}: {} recordings merged, {} connection(s), {} records",
        args.out.display(),
        inputs.len(),
        merged.connections,
        merged.records.len()
    );
    for source in &merged.header.sources {
        for (old, new) in &source.renumbered {
            println!(
                "  {}: connection {old} is connection {new}",
                printable(&source.file)
            );
        }
    }
    Ok(Verdict::Same)
}

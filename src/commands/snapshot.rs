//! `wsreplay snapshot`: the structure snapshot of recordings.

use std::path::PathBuf;

use clap::Args;

use crate::config::FileConfig;
use crate::gate::check;
use crate::gate::Verdict;
use crate::text::printable;

/// Arguments of `wsreplay snapshot`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Recordings (or directories of *.jsonl / *.jsonl.zst recordings) to snapshot.
    #[arg(required = true)]
    pub recordings: Vec<PathBuf>,
    /// Where snapshots live.
    #[arg(long, value_name = "DIR", default_value = "snapshots")]
    pub snapshots: PathBuf,
    /// Read [structure] settings (literal and volatile fields, streams, routes' protocols) from this TOML file
    /// [default: ./wsreplay.toml when present].
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub protocol: super::args::ProtocolFlags,
}

pub fn run(args: SnapshotArgs) -> anyhow::Result<Verdict> {
    let structure_config = args
        .protocol
        .apply(FileConfig::load(args.config.as_deref())?.structure)?;
    let files = check::expand(&args.recordings)?;
    check::unique_names(&files)?;
    for file in files {
        let snap = check::write_snapshot(&file, &args.snapshots, &structure_config)?;
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
        println!(
            "wrote {} ({} route(s), {kinds} message kind(s){streams}) from {}",
            snap.path.display(),
            routes.len(),
            file.display()
        );
    }
    Ok(Verdict::Same)
}

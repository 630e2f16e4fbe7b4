//! `wsreplay show`: what a recording holds.

use std::path::PathBuf;

use clap::Args;

use crate::gate::Verdict;
use crate::recording::Recording;
use crate::text::printable;

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
    #[command(flatten)]
    pub protocol: super::args::ProtocolFlags,
}

pub fn run(args: ShowArgs) -> anyhow::Result<Verdict> {
    let recording = Recording::read(&args.file)?;
    let overrides = args.protocol.apply(Default::default())?.overrides()?;
    let text = if args.mermaid {
        crate::structure::sequence::Sequence::of_with(&recording, &overrides).mermaid()
    } else if args.timeline {
        crate::recording::summary::render_timeline(&recording, &overrides)
    } else if args.secrets {
        crate::redact::secrets::Inventory::of(&recording).render()
    } else {
        crate::recording::summary::render_with(&recording, &overrides)
    };
    // Recorded text never reaches the terminal raw (escape sequences, bidi overrides).
    print!("{}", printable(&text));
    if args.timeline {
        for w in recording.warning_lines() {
            eprintln!("warning: {}", printable(&w));
        }
    }
    Ok(Verdict::Same)
}

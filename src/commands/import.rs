//! `wsreplay import har`: a browser's or mitmproxy's HAR capture as a recording.

use std::path::PathBuf;

use super::args::RedactFlags;
use crate::gate::Verdict;
use clap::{Args, Subcommand};

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
    /// The HAR file. Playwright's side files (content: 'attach') are read only from
    /// its directory, and only as regular files of at most 1 GiB.
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

pub fn run(args: ImportHarArgs) -> anyhow::Result<Verdict> {
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
        count(crate::recording::Dir::ClientToServer),
        count(crate::recording::Dir::ServerToClient),
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
    Ok(Verdict::Same)
}

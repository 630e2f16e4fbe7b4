//! `wsreplay soak`: many connections through the recorder, nothing lost.

use std::path::PathBuf;

use crate::gate::Verdict;
use crate::measure::soak::Load;
use clap::Args;

/// Arguments of `wsreplay soak`.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Concurrent connections.
    #[arg(long, default_value_t = 1000)]
    pub connections: u64,
    /// Messages each connection sends (and gets echoed), unless --duration is given.
    #[arg(long, default_value_t = 100)]
    pub messages: u64,
    /// Keep every connection sending for this long instead of a number of messages
    /// (30s, 10m, 1h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Messages per second each connection sends [default: as fast as the echoes
    /// come back].
    #[arg(long, value_name = "PER_SEC")]
    pub rate: Option<f64>,
    /// Record compressed (zstd), as `record --compress` does.
    #[arg(long)]
    pub compress: bool,
    /// Rotate the recording by size or age, as `record --rotate` does (each file is
    /// then read back on its own).
    #[arg(long, value_name = "SIZE|AGE")]
    pub rotate: Option<crate::recording::rotate::Rotate>,
    /// Fail unless the files on disk are at least this many times smaller than the
    /// JSON Lines they hold (5 for the --compress promise).
    #[arg(long, value_name = "RATIO")]
    pub min_ratio: Option<f64>,
    /// Write the recording files into this directory and keep them (to read them
    /// with `wsreplay show`) [default: a temporary directory, removed afterwards].
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `30s`, `10m`, `1h`: the durations `--rotate` takes.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    match text.parse()? {
        crate::recording::rotate::Rotate::Every(d) => Ok(d),
        crate::recording::rotate::Rotate::Size(_) => Err(format!(
            "{text:?} is a size; give a duration such as 30s, 10m or 1h"
        )),
    }
}

pub async fn run(args: SoakArgs) -> anyhow::Result<Verdict> {
    let temp = std::env::temp_dir().join(format!("wsreplay-soak-{}", std::process::id()));
    let dir = args.keep.clone().unwrap_or_else(|| temp.clone());
    let out = dir.join(crate::recording::source::file_name("soak", args.compress));
    let load = Load {
        connections: args.connections,
        messages: args.messages,
        duration: args.duration,
        rate: args.rate,
        min_ratio: args.min_ratio,
    };
    let report = crate::measure::soak::run(&load, &out, args.rotate).await;
    if args.keep.is_none() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(if report.passed() {
        Verdict::Same
    } else {
        Verdict::Error
    })
}

//! `wsreplay soak`: many connections through the recorder, nothing lost.

use crate::gate::Verdict;
use clap::Args;

/// Arguments of `wsreplay soak`.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Concurrent connections.
    #[arg(long, default_value_t = 1000)]
    pub connections: u64,
    /// Messages each connection sends (and gets echoed).
    #[arg(long, default_value_t = 100)]
    pub messages: u64,
    /// Record compressed (zstd), as `record --compress` does.
    #[arg(long)]
    pub compress: bool,
    /// Rotate the recording by size or age, as `record --rotate` does (each file is
    /// then read back on its own).
    #[arg(long, value_name = "SIZE|AGE")]
    pub rotate: Option<crate::recording::rotate::Rotate>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: SoakArgs) -> anyhow::Result<Verdict> {
    let dir = std::env::temp_dir().join(format!("wsreplay-soak-{}", std::process::id()));
    let out = dir.join(crate::recording::source::file_name("soak", args.compress));
    let report =
        crate::measure::soak::run(args.connections, args.messages, &out, args.rotate).await;
    let _ = std::fs::remove_dir_all(&dir);
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

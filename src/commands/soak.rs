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
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: SoakArgs) -> anyhow::Result<Verdict> {
    let dir = std::env::temp_dir().join(format!("wsreplay-soak-{}", std::process::id()));
    let report =
        crate::measure::soak::run(args.connections, args.messages, &dir.join("soak.jsonl")).await;
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

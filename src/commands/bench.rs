//! `wsreplay bench`: the performance figures.

use crate::gate::Verdict;
use clap::Args;

/// Arguments of `wsreplay bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Print the figures as JSON (for machines) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Smaller workloads: about 15 s instead of a few minutes, noisier figures.
    #[arg(long)]
    pub quick: bool,
    /// Run only one workload (for profiling).
    #[arg(long, value_enum, value_name = "WORKLOAD")]
    pub only: Option<crate::measure::bench::Workload>,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<Verdict> {
    if !args.json {
        eprintln!("wsreplay bench: measuring (a few minutes; --quick for a short run)...");
    }
    let report = crate::measure::bench::run(crate::measure::bench::BenchOptions {
        quick: args.quick,
        only: args.only,
    })
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(Verdict::Same)
}

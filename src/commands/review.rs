//! `wsreplay review`: accept or reject pending `.snap.new` files.

use std::path::PathBuf;

use super::terminal::use_color;
use crate::gate::Verdict;
use clap::Args;

/// Arguments of `wsreplay review`.
#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// Only these snapshots (names as in snapshots/NAME.snap.new) [default: all pending].
    pub names: Vec<String>,
    /// Where snapshots live.
    #[arg(long, value_name = "DIR", default_value = "snapshots")]
    pub snapshots: PathBuf,
    /// Accept every pending snapshot without asking (NAME.snap.new replaces NAME.snap).
    #[arg(long, conflicts_with = "reject")]
    pub accept: bool,
    /// Reject every pending snapshot without asking (NAME.snap.new is deleted).
    #[arg(long)]
    pub reject: bool,
}

pub fn run(args: ReviewArgs) -> anyhow::Result<Verdict> {
    use crate::gate::review::Decision;
    let decision = match (args.accept, args.reject) {
        (true, _) => Decision::Accept,
        (_, true) => Decision::Reject,
        _ => Decision::Ask,
    };
    let done = crate::gate::review::review(
        &args.snapshots,
        &args.names,
        decision,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout(),
        use_color(),
    )?;
    if done.accepted.is_empty() && done.rejected.is_empty() && done.skipped.is_empty() {
        println!("no pending snapshots in {}", args.snapshots.display());
        return Ok(Verdict::Same);
    }
    let list = |names: &[String]| match names {
        [] => String::new(),
        names => format!(" ({})", names.join(", ")),
    };
    println!(
        "accepted {}{}, rejected {}{}, left pending {}{}",
        done.accepted.len(),
        list(&done.accepted),
        done.rejected.len(),
        list(&done.rejected),
        done.skipped.len(),
        list(&done.skipped)
    );
    Ok(Verdict::Same)
}

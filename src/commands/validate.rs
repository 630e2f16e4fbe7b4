//! `wsreplay validate`: a recording's messages checked against a schema.

use std::path::PathBuf;

use clap::Args;

use crate::gate::Verdict;
use crate::recording::{Dir, Recording};
use crate::text::printable;

/// Arguments of `wsreplay validate`.
#[derive(Debug, Args)]
#[command(
    after_help = "The schema is a `wsreplay schema` document (each message is checked against its route,\ndirection and kind), an AsyncAPI 3.x document (channels are routes; receive = c2s,\nsend = s2c), or any JSON Schema (every message is checked against it).\n\nExit status: 0 every message is valid, 1 violations (each printed with its path), 2 bad input."
)]
pub struct ValidateArgs {
    /// The recording (or replay capture) whose messages to check.
    pub recording: PathBuf,
    /// The JSON Schema or AsyncAPI document (JSON).
    #[arg(long, value_name = "FILE")]
    pub schema: PathBuf,
    /// Check only the messages of this route.
    #[arg(long, value_name = "NAME")]
    pub route: Option<String>,
    /// Check only the messages of this direction.
    #[arg(long, value_name = "DIR", value_enum)]
    pub dir: Option<Dir>,
}

pub fn run(args: ValidateArgs) -> anyhow::Result<Verdict> {
    let schema = crate::interop::validate::Schema::read(&args.schema)?;
    let recording = Recording::read(&args.recording)?;
    if let Some(route) = &args.route {
        let routes = recording.routes();
        anyhow::ensure!(
            routes.contains(&route.as_str()),
            "{}: route {route} is not in the recording (routes: {})",
            args.recording.display(),
            routes.join(", ")
        );
    }
    let report = schema.check(&recording, args.route.as_deref(), args.dir);
    print!(
        "{}",
        printable(&report.render(&args.recording, &args.schema))
    );
    anyhow::ensure!(
        report.checked > 0 || report.not_covered.is_empty(),
        "{} describes none of the routes of {}: it has {}. Name AsyncAPI channels after the recording's routes (or give them the address the connections used)",
        args.schema.display(),
        args.recording.display(),
        schema.routes().join(", ")
    );
    Ok(if report.passed() {
        Verdict::Same
    } else {
        Verdict::Differs
    })
}

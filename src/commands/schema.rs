//! `wsreplay schema`: the event contract inferred from recordings, as JSON Schema or AsyncAPI.

use std::path::PathBuf;

use clap::Args;

use crate::config::FileConfig;
use crate::gate::check;
use crate::gate::Verdict;
use crate::interop::schema::ContractCounts;
use crate::recording::Recording;
use crate::text::printable;

/// Output formats of `wsreplay schema`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaFormat {
    /// One JSON Schema 2020-12 document, a definition per route, direction and kind.
    JsonSchema,
    /// An AsyncAPI 3.0 document: a channel per route, send/receive operations.
    Asyncapi,
}

/// Arguments of `wsreplay schema`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  wsreplay schema recordings/ --format json-schema --out contract.schema.json\n  wsreplay schema recordings/checkout.jsonl --format asyncapi --out asyncapi.json\n  wsreplay validate runs/checkout.jsonl --schema contract.schema.json"
)]
pub struct SchemaArgs {
    /// Recordings (or directories of *.jsonl / *.jsonl.zst recordings) to infer from.
    #[arg(required = true)]
    pub recordings: Vec<PathBuf>,
    /// What to write.
    #[arg(long, value_enum)]
    pub format: SchemaFormat,
    /// Write to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Read literal-field overrides ([structure] literal/volatile: which fields become
    /// enums) from this TOML file [default: ./wsreplay.toml when present].
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

pub fn run(args: SchemaArgs) -> anyhow::Result<Verdict> {
    let config = FileConfig::load(args.config.as_deref())?.structure;
    let mut contract = crate::interop::schema::Contract::new(config);
    let files = check::expand(&args.recordings)?;
    for file in &files {
        let recording = Recording::read(file)?;
        for w in recording.warning_lines() {
            eprintln!("warning: {}", printable(&w));
        }
        contract.add(&recording);
    }
    let doc = match args.format {
        SchemaFormat::JsonSchema => contract.json_schema(),
        SchemaFormat::Asyncapi => contract.asyncapi(),
    };
    let text = serde_json::to_string_pretty(&doc)? + "\n";
    let ContractCounts { routes, kinds } = contract.counts();
    let summary = format!(
        "{routes} route(s), {kinds} message kind(s) from {} recording(s){}",
        files.len(),
        if contract.skipped > 0 {
            format!("; {} non-JSON message(s) have no schema", contract.skipped)
        } else {
            String::new()
        }
    );
    match &args.out {
        Some(path) => {
            crate::files::replace(path, text.as_bytes(), false)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            eprintln!("wrote {}: {summary}", path.display());
        }
        None => {
            print!("{text}");
            eprintln!("{summary}");
        }
    }
    Ok(Verdict::Same)
}

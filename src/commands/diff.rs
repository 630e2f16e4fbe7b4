//! `wsreplay diff A B`: the structure of two recordings compared, without a replay.

use std::path::PathBuf;

use clap::Args;

use super::check::write_html;
use super::terminal::use_color;
use crate::config::FileConfig;
use crate::gate::{check, Verdict};

/// Arguments of `wsreplay diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The baseline recording.
    pub a: PathBuf,
    /// The recording compared with it.
    pub b: PathBuf,
    /// Also write the comparison as a self-contained HTML report (see `check --html`).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Read [structure] settings (literal and volatile fields, streams, routes' protocols) from this TOML file
    /// [default: ./wsreplay.toml when present].
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub protocol: super::args::ProtocolFlags,
}

pub fn run(args: DiffArgs) -> anyhow::Result<Verdict> {
    let structure = args
        .protocol
        .apply(FileConfig::load(args.config.as_deref())?.structure)?;
    let result = check::diff_recordings(&args.a, &args.b, &structure)?;
    print!("{}", result.render(use_color()));
    if let Some(path) = &args.html {
        write_html(path, std::slice::from_ref(&result))?;
    }
    Ok(result.verdict())
}

//! The `wsreplay` binary: parses arguments and hands them to the library.

use clap::Parser;

fn main() {
    std::process::exit(wsreplay::commands::run(wsreplay::commands::Cli::parse()));
}

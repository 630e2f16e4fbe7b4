//! The `wsreplay` binary: parses arguments and hands them to the library.

use clap::Parser;

fn main() {
    std::process::exit(wsreplay::cli::run(wsreplay::cli::Cli::parse()));
}

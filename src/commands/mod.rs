//! The command line: clap definitions and the glue from arguments to the library.
//!
//! `main.rs` parses a [`Cli`] and calls [`run`]. Each command's module turns its raw
//! arguments into validated configuration, calls the library and prints; it returns a
//! [`Verdict`], whose [`Verdict::exit_code`] is the documented exit status. Only this
//! layer draws progress bars, decides colour and installs logging (the `cli` feature).

// The argument structs' doc comments are clap's help text, written for a terminal:
// `[structure]` there is a TOML table, not a link.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

use clap::{Parser, Subcommand};

pub mod args;
pub mod bench;
pub mod ca;
pub mod check;
pub mod demo;
pub mod diff;
pub mod import;
pub mod merge;
pub mod mock;
pub mod record;
pub mod replay;
pub mod review;
pub mod schema;
pub mod serve_demo;
pub mod show;
pub mod snapshot;
pub mod soak;
pub mod split;
pub mod terminal;
pub mod validate;

use self::bench::BenchArgs;
use self::ca::CaArgs;
use self::check::CheckArgs;
use self::demo::DemoArgs;
use self::diff::DiffArgs;
use self::import::ImportCommand;
use self::merge::MergeArgs;
use self::mock::MockArgs;
use self::record::RecordArgs;
use self::replay::ReplayArgs;
use self::review::ReviewArgs;
use self::schema::SchemaArgs;
use self::serve_demo::ServeDemoArgs;
use self::show::ShowArgs;
use self::snapshot::SnapshotArgs;
use self::soak::SoakArgs;
use self::split::SplitArgs;
use self::terminal::{init_logging, restore_default_sigpipe};
use self::validate::ValidateArgs;
use crate::gate::Verdict;

/// Record, replay and structurally diff WebSocket traffic between services.
#[derive(Debug, Parser)]
#[command(name = "wsreplay", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, display_order = 999)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Put a recording proxy in front of one or more WebSocket services and record
    /// every hop into one file, until Ctrl-C or SIGTERM.
    Record(RecordArgs),
    /// Replay a recording against a new build: play its recorded clients against the
    /// --target routes and stand in for the --mock routes' servers, capturing what
    /// happened as a new recording.
    Replay(ReplayArgs),
    /// Serve the recorded servers of a recording on their own, for any client (a
    /// frontend under development, a test suite), until Ctrl-C: each client connection
    /// is answered from the recorded connection it resembles.
    Mock(MockArgs),
    /// Write the structure snapshot of recordings (snapshots/<name>.snap, an insta
    /// snapshot file): message kinds per route and direction with their key paths,
    /// types and formats, and the conversation sequences. No volatile values.
    Snapshot(SnapshotArgs),
    /// Replay recordings against a build and compare the structure of what it did with
    /// their snapshots: the CI gate. Exit 0 same, 1 differs, 2 could not check, 3
    /// same structure but outside the --timing envelope.
    Check(CheckArgs),
    /// Compare the structure of two recordings (B against A), without replaying.
    /// Exit 0 same, 1 differs, 2 bad input.
    Diff(DiffArgs),
    /// Accept or reject the changed structures `check` left as snapshots/*.snap.new,
    /// one by one with their diff, or all at once. Works in any project; in a Rust
    /// project `cargo insta review` does the same.
    Review(ReviewArgs),
    /// Print what a recording holds: per route and connection, message counts by
    /// type, close codes and how each connection ended.
    Show(ShowArgs),
    /// Cut a long recording into small ones for CI: one file per connection, per user
    /// or per session (a frontend connection with the agent-hop messages that belong
    /// to it), each replayable on its own.
    Split(SplitArgs),
    /// Merge the recordings of several recorders (one per machine, pod or hop) into
    /// one timeline, connection ids kept distinct.
    Merge(MergeArgs),
    /// Measure the recorder, the normaliser and the replayer against a direct
    /// connection, a blind TCP relay and a minimal client, and print the figures with
    /// their ratios and targets.
    Bench(BenchArgs),
    /// Push many concurrent connections through a recording proxy and check that every
    /// message arrives byte-identical and the recording holds exactly those messages.
    Soak(SoakArgs),
    /// The bench's blind TCP relay (LISTEN UPSTREAM), run as its own process.
    #[command(hide = true)]
    BenchRelay {
        listen: std::net::SocketAddr,
        upstream: std::net::SocketAddr,
    },
    /// Run services of the built-in demo system as a long-lived process (until Ctrl-C),
    /// e.g. as a build under test for `replay --spawn`, or to try wsreplay by hand.
    ServeDemo(ServeDemoArgs),
    /// Turn a capture made elsewhere into a recording: `import har` reads the HAR file a
    /// browser (Chrome DevTools, Playwright) or mitmproxy wrote.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Infer the event contract from recordings: a JSON Schema (2020-12) per route,
    /// direction and message kind, or an AsyncAPI 3.0 document with a channel per route.
    Schema(SchemaArgs),
    /// The local wsreplay CA behind `record --tls-auto` and `record --proxy`: where its
    /// certificate is, its SPKI hash, and how to trust it (created on first use).
    Ca(CaArgs),
    /// Check the messages of a recording (or of a replay's capture) against a JSON
    /// Schema or AsyncAPI document. Exit 0 all valid, 1 violations, 2 bad input.
    Validate(ValidateArgs),
    /// Run the built-in demo: start a small multi-service system, record a session,
    /// snapshot it, then check the same build (passes) and a build with a breaking
    /// change (fails, with the diff). Needs nothing else running.
    Demo(DemoArgs),
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    if !cli.command.uses_sockets() {
        restore_default_sigpipe();
    }
    init_logging(cli.verbose, matches!(cli.command, Command::Mock(_)));
    // The recorder forwards on one thread (its writer has a thread of its own): on a
    // small machine that avoids a wake-up between worker threads for every frame.
    let mut builder = match cli.command {
        Command::Record(_) | Command::BenchRelay { .. } => {
            tokio::runtime::Builder::new_current_thread()
        }
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Verdict::Error.exit_code();
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Record(args) => record::run(args).await,
            Command::Replay(args) => replay::run(args).await,
            Command::Mock(args) => mock::run(args).await,
            Command::Show(args) => show::run(args),
            Command::Split(args) => split::run(args),
            Command::Merge(args) => merge::run(args),
            Command::Snapshot(args) => snapshot::run(args).await,
            Command::Check(args) => check::run(args).await,
            Command::Diff(args) => diff::run(args),
            Command::Review(args) => review::run(args),
            Command::Bench(args) => bench::run(args).await,
            Command::Soak(args) => soak::run(args).await,
            Command::BenchRelay { listen, upstream } => {
                crate::measure::bench::blind_relay(listen, upstream).await?;
                Ok(Verdict::Same)
            }
            Command::ServeDemo(args) => serve_demo::run(args).await,
            Command::Import(ImportCommand::Har(args)) => import::run(args),
            Command::Schema(args) => schema::run(args),
            Command::Ca(args) => ca::run(args),
            Command::Validate(args) => validate::run(args),
            Command::Demo(args) => demo::run(args).await,
        }
    });
    match result {
        Ok(verdict) => verdict.exit_code(),
        Err(e) => {
            // Every error names its cause in its own message: printing the chain of
            // sources as well would repeat the OS reason.
            eprintln!("error: {}", crate::text::printable(&e.to_string()));
            Verdict::Error.exit_code()
        }
    }
}

impl Command {
    /// Whether the command talks over sockets (records, replays, serves).
    fn uses_sockets(&self) -> bool {
        !matches!(
            self,
            Command::Show(_)
                | Command::Split(_)
                | Command::Merge(_)
                | Command::Snapshot(_)
                | Command::Diff(_)
                | Command::Review(_)
                | Command::Import(_)
                | Command::Schema(_)
                | Command::Validate(_)
                | Command::Ca(_)
        )
    }
}

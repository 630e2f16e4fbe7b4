//! What only a terminal program decides: colour, SIGPIPE, logging, progress bars, and
//! waiting for Ctrl-C or SIGTERM.

use crate::replay::{Progress, ProgressTask};

/// Lets a closed stdout (`wsreplay show X --timeline | head`) end the process quietly,
/// as it ends other Unix tools, instead of a panic on "Broken pipe". Rust starts
/// programs with SIGPIPE ignored; the commands that only read files and print get the
/// default back. The commands that use sockets keep it ignored: a peer that goes away
/// while a TLS record is written must be an error on that connection, not the end of
/// the recorder.
pub(crate) fn restore_default_sigpipe() {
    // SAFETY: called at the start of the program, before any other thread exists;
    // SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Installs the log output; `mock_connections` shows each connection a mock accepts.
pub(crate) fn init_logging(verbose: u8, mock_connections: bool) {
    // The demo system's own services log at info; keep them quiet unless asked.
    let mut default = match verbose {
        0 => "wsreplay=info,wsreplay::demo=warn",
        1 => "wsreplay=debug",
        _ => "wsreplay=trace",
    }
    .to_string();
    if mock_connections && verbose == 0 {
        default += ",wsreplay::replay::mock=debug";
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = color_on(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

pub(crate) async fn wait_for_stop_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// Colour on stdout: on a terminal, unless NO_COLOR (or CLICOLOR=0) says otherwise;
/// CLICOLOR_FORCE forces it (anstream's reading of the conventions).
pub fn use_color() -> bool {
    color_on(&std::io::stdout())
}

/// Colour on `stream`, by the same rules.
pub(crate) fn color_on<S: anstream::stream::RawStream>(stream: &S) -> bool {
    anstream::AutoStream::choice(stream) != anstream::ColorChoice::Never
}

/// Replays shown as progress bars on stderr (indicatif hides them off a terminal).
#[derive(Default)]
pub struct Bars(indicatif::MultiProgress);

impl Progress for Bars {
    fn begin(&self, total: u64) -> Box<dyn ProgressTask> {
        let bar = indicatif::ProgressBar::new(total).with_style(
            indicatif::ProgressStyle::with_template(
                "replaying {bar:30} {pos}/{len} messages {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Box::new(Bar(self.0.add(bar)))
    }
}

struct Bar(indicatif::ProgressBar);

impl ProgressTask for Bar {
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

//! `wsreplay record`: the recording proxy on every route until Ctrl-C or SIGTERM, and the
//! per-route summary printed at the end.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::args::RedactFlags;
use super::terminal::wait_for_stop_signal;
use crate::config::{
    parse_listen, validate_routes, FileConfig, Forward, Intercept, ListenTls, Route,
};
use crate::gate::Verdict;
use crate::record::proxy::{Proxy, ProxyConfig};
use crate::record::tls::TlsOptions;
use crate::recording::filter::Filter;
use crate::recording::rotate::Rotate;
use crate::recording::sink::{Outcome, Output};

/// Arguments of `wsreplay record`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  wsreplay record --out recordings/checkout.jsonl \\\n    --route frontend=127.0.0.1:18100=ws://127.0.0.1:18000 \\\n    --route nlp=127.0.0.1:18101=ws://127.0.0.1:18001\n\nPoint the client at ws://127.0.0.1:18100 and the backend's agent URL at ws://127.0.0.1:18101."
)]
pub struct RecordArgs {
    /// The recording to write (JSON Lines). Overrides `out` in the config file.
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write the recording zstd-compressed, as FILE.zst (`.jsonl.zst`; an --out that
    /// already ends in .zst is compressed anyway). Every command reads compressed
    /// recordings as they are; a killed recorder's file reads up to its last flush
    /// (at most ~20 ms of traffic is lost, as with plain files).
    #[arg(long, conflicts_with = "discard")]
    pub compress: bool,
    /// Parse and serialise everything but write no file (to measure the recorder
    /// without its disk cost).
    #[arg(long, conflicts_with = "out")]
    pub discard: bool,
    /// A hop to record, as NAME=LISTEN=UPSTREAM: the proxy listens on LISTEN
    /// (HOST:PORT) and forwards to UPSTREAM (ws:// or wss:// URL). Repeat for
    /// every hop. Replaces the routes of the config file.
    #[arg(short, long = "route", value_name = "NAME=LISTEN=UPSTREAM")]
    pub routes: Vec<Route>,
    /// Also run a forward proxy on LISTEN (HOST:PORT): an HTTP proxy for browsers and
    /// other clients (Chromium --proxy-server=http://LISTEN, HTTPS_PROXY). WebSocket
    /// sessions to the --intercept hosts are recorded; everything else passes
    /// through unrecorded. With --proxy, --route is optional.
    #[arg(long, value_name = "LISTEN", value_parser = parse_listen_flag)]
    pub proxy: Option<SocketAddr>,
    /// A host whose WebSocket sessions the --proxy records, as HOST or NAME=HOST (the
    /// route they are recorded under; the host name by default). Its TLS is
    /// terminated with a certificate from the local wsreplay CA (`wsreplay ca`);
    /// CONNECT to any other host is tunnelled blind. Repeatable.
    #[arg(long, value_name = "[NAME=]HOST", requires = "proxy")]
    pub intercept: Vec<Intercept>,
    /// Read routes, output and redaction from this TOML file [default: ./wsreplay.toml
    /// when present].
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Extra PEM CA certificate(s) to trust for wss:// upstreams.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Do not verify wss:// upstream certificates (self-signed staging only).
    #[arg(long)]
    pub insecure: bool,
    /// Listen in wss:// (TLS) with this PEM certificate (chain), on every route that
    /// does not set its own TLS in wsreplay.toml. Needs --tls-key.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "tls_auto"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Listen in wss:// (TLS) on every route that does not set its own TLS, with a
    /// certificate for the listen address, localhost and 127.0.0.1 issued by the local
    /// wsreplay CA (created on first use; `wsreplay ca` says how to trust it).
    #[arg(long)]
    pub tls_auto: bool,
    /// Another host name the --tls-auto certificate covers (the name clients use
    /// to reach the recorder). Repeatable.
    #[arg(long, value_name = "NAME", requires = "tls_auto")]
    pub tls_name: Vec<String>,
    #[command(flatten)]
    pub redact: RedactFlags,
    /// Keep at most this many bytes of each message body; longer bodies are
    /// recorded truncated, with their full size. Forwarding is never affected.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub max_message_size: usize,
    /// Keep at most this many bytes of unfinished messages across all connections
    /// together (clients stalling inside huge frames cannot add up past it); beyond it,
    /// bodies are recorded truncated, with their full size. Forwarding is never
    /// affected.
    #[arg(long, value_name = "BYTES", default_value_t = 256 << 20)]
    pub max_buffered: usize,
    /// Start a new file when the current one reaches SIZE (500KB, 1MB, 2GB) or AGE
    /// (30s, 10m, 1h). Files are named after --out with their start time
    /// (recordings/staging-20261125T211500Z.jsonl); each stands alone: a connection
    /// still open continues in the next file, its `open` repeated and marked
    /// `continued`.
    #[arg(long, value_name = "SIZE|AGE")]
    pub rotate: Option<Rotate>,
    /// Record only WebSocket upgrades whose request path starts with PREFIX (e.g.
    /// `/ws`); other connections are forwarded but not recorded. Noted in the header.
    #[arg(long, value_name = "PREFIX")]
    pub only_path: Option<String>,
    /// Record only this fraction of connections (0.1 = one in ten), drawn at random per
    /// connection; a recorded connection is recorded whole. Noted in the header.
    #[arg(long, value_name = "FRACTION", value_parser = crate::recording::filter::parse_fraction)]
    pub sample: Option<f64>,
    /// Allow listening on non-loopback addresses (exposes the recorder to the network).
    #[arg(long)]
    pub allow_remote: bool,
}

pub async fn run(args: RecordArgs) -> anyhow::Result<Verdict> {
    let file = FileConfig::load(args.config.as_deref())?;
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("wsreplay.toml"));
    let mut routes = if args.routes.is_empty() {
        file.routes(&config_path)?
    } else {
        args.routes
    };
    let tls = ListenTls::from_parts(args.tls_cert, args.tls_key, args.tls_auto, args.tls_name)
        .map_err(|e| anyhow::anyhow!("--tls-cert/--tls-key/--tls-auto: {e}"))?;
    for route in routes.iter_mut().filter(|r| r.tls.is_none()) {
        route.tls = tls.clone();
    }
    let forward = args.proxy.map(|listen| Forward {
        listen,
        intercept: args.intercept,
    });
    validate_routes(&routes, forward.as_ref(), args.allow_remote)?;
    let output = if args.discard {
        Output::Discard
    } else {
        let out = args.out.or(file.out).ok_or_else(|| {
            anyhow::anyhow!("no output file: pass --out FILE (or set `out` in wsreplay.toml)")
        })?;
        Output::File(if args.compress {
            compressed_path(out)
        } else {
            out
        })
    };
    let out = match &output {
        Output::File(p) => p.clone(),
        Output::Discard => PathBuf::from("(discarded)"),
    };
    let mut redact = file.redact;
    redact.merge(args.redact.into());
    for r in routes.iter().filter(|r| !r.listen.ip().is_loopback()) {
        tracing::warn!(
            "route {} listens on {}, reachable from other machines",
            r.name,
            r.listen
        );
    }
    let mut config = ProxyConfig::new(routes, output);
    config.forward = forward;
    config.redact = redact;
    config.tls = TlsOptions {
        ca_cert: args.ca_cert,
        insecure: args.insecure,
    };
    config.max_message_bytes = args.max_message_size;
    config.max_buffered_bytes = args.max_buffered;
    config.rotate = args.rotate;
    config.filter = Filter {
        only_path: args.only_path,
        sample: args.sample,
    };
    let config_forward = config.forward.clone();
    let proxy = Proxy::start(config).await?;
    for listening in proxy.addrs() {
        eprintln!(
            "wsreplay: route {}: {}://{} → {}",
            listening.route,
            if listening.tls { "wss" } else { "ws" },
            listening.addr,
            upstream_of(&proxy, &listening.route)
        );
    }
    if let (Some(addr), Some(forward)) = (proxy.forward_addr(), &config_forward) {
        let hosts: Vec<String> = forward.intercept.iter().map(|i| i.to_string()).collect();
        eprintln!(
            "wsreplay: forward proxy on http://{addr}, recording WebSocket sessions to {}",
            if hosts.is_empty() {
                "no host (add --intercept HOST)".to_string()
            } else {
                hosts.join(", ")
            }
        );
    }
    eprintln!(
        "wsreplay: recording to {}; press Ctrl-C to stop",
        out.display()
    );
    wait_for_stop_signal().await?;
    let outcome = proxy.stop().await;
    Ok(report_outcome(&out, &outcome))
}

fn parse_listen_flag(s: &str) -> Result<SocketAddr, String> {
    parse_listen(s).map_err(|e| e.to_string())
}

/// `FILE` → `FILE.zst`, unless it already ends in `.zst`.
fn compressed_path(out: PathBuf) -> PathBuf {
    if crate::recording::source::is_compressed_name(&out) {
        return out;
    }
    let mut name = out.into_os_string();
    name.push(".zst");
    name.into()
}

pub(crate) fn upstream_of(proxy: &Proxy, route: &str) -> String {
    proxy
        .upstream(route)
        .map(|u| u.to_string())
        .unwrap_or_default()
}

/// Prints one line per route and says whether the recording is complete.
pub fn report_outcome(out: &std::path::Path, outcome: &Outcome) -> Verdict {
    for (route, s) in &outcome.routes {
        let c2s = s
            .messages
            .get(&crate::recording::Dir::ClientToServer)
            .copied()
            .unwrap_or(0);
        let s2c = s
            .messages
            .get(&crate::recording::Dir::ServerToClient)
            .copied()
            .unwrap_or(0);
        println!(
            "{route}: {} connection(s), {c2s} c2s + {s2c} s2c message(s), {} abnormal end(s)",
            s.connections, s.abnormal_ends
        );
    }
    if outcome.complete() {
        match &outcome.files[..] {
            [] => println!("{}", wrote(out, outcome.records)),
            [one] => println!("{}", wrote(one, outcome.records)),
            files => {
                let n = files.len();
                println!(
                    "wrote {n} files ({} records), each readable on its own:",
                    outcome.records
                );
                for f in files {
                    println!("  {}", f.display());
                }
            }
        }
        Verdict::Same
    } else {
        eprintln!(
            "error: the recording {} is INCOMPLETE: {} record(s) could not be written ({}). Traffic was forwarded regardless.",
            out.display(),
            outcome.lost,
            outcome.error.as_deref().unwrap_or("unknown error")
        );
        Verdict::Error
    }
}

/// `wrote FILE (N records)`, the last line of a complete recording.
pub(crate) fn wrote(out: &std::path::Path, records: u64) -> String {
    let s = if records == 1 { "" } else { "s" };
    format!("wrote {} ({records} record{s})", out.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_summary_counts_in_words() {
        let out = std::path::Path::new("rc.jsonl");
        assert_eq!(wrote(out, 1), "wrote rc.jsonl (1 record)");
        assert_eq!(wrote(out, 2), "wrote rc.jsonl (2 records)");
    }
}

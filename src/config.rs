//! Validated configuration: routes and the `wsreplay.toml` file.
//!
//! Command-line arguments (see `cli`) and the TOML file are both turned into these
//! types; the engine never sees raw strings or clap types.
//!
//! ```toml
//! # wsreplay.toml
//! out = "recordings/checkout.jsonl"
//!
//! [[route]]
//! name = "frontend"
//! listen = "127.0.0.1:18100"
//! upstream = "ws://127.0.0.1:18000"
//! tls_auto = true               # wss:// for clients, certificate from the wsreplay CA
//! # tls_cert = "certs/frontend.pem" and tls_key = "certs/frontend-key.pem" instead
//!
//! [redact]
//! headers = ["x-api-key"]
//! query = ["sig"]
//! json_keys = ["session_token"]
//!
//! [replay.credentials]          # live values for what was redacted (replay, check)
//! token = "env:TEST_TOKEN"
//! Authorization = "file:secrets/auth-header"
//!
//! [[live]]                      # a value the server issues (detected automatically too)
//! from = "s2c connection_established client_id"
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

use crate::redact::RedactConfig;
use crate::replay::credentials::{CredentialSource, CredentialSpec};

/// Why a configuration is not usable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("route {spec:?}: {source}. Expected NAME=LISTEN=UPSTREAM, e.g. frontend=127.0.0.1:18100=ws://127.0.0.1:18000")]
    Route {
        spec: String,
        #[source]
        source: RouteError,
    },
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{path}: route {name:?}: {source}")]
    RouteInFile {
        path: PathBuf,
        name: String,
        #[source]
        source: RouteError,
    },
    #[error("route name {0:?} is used twice; every route needs its own name")]
    DuplicateRoute(String),
    #[error("no routes given: pass --route NAME=LISTEN=UPSTREAM (or list [[route]] entries in wsreplay.toml), or run a forward proxy with --proxy LISTEN --intercept HOST")]
    NoRoutes,
    #[error("--proxy {addr} is not a loopback address, so other machines could use the recorder as their proxy. Pass --allow-remote if that is intended")]
    ProxyNotLoopback { addr: SocketAddr },
    #[error("route {route}: {addr} is not a loopback address, so other machines could reach the recorder and the traffic it records. Pass --allow-remote if that is intended")]
    NotLoopback { route: String, addr: SocketAddr },
    /// The URL of a `--target ROUTE=URL`.
    #[error("--target {route}={url}: {source}")]
    TargetUrl {
        route: String,
        url: String,
        #[source]
        source: UrlError,
    },
}

/// Why a `ws://` or `wss://` URL is not usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// `example` is put in front of the corrected URL the message suggests.
    #[error("the URL must start with ws:// or wss://, e.g. {example}ws://{rest}")]
    Scheme { example: String, rest: String },
    #[error("{url:?} is not a URL: {source}")]
    Invalid {
        url: String,
        #[source]
        source: url::ParseError,
    },
    #[error("{url:?} has no host")]
    NoHost { url: String },
}

/// Why one route (`NAME=LISTEN=UPSTREAM`, or a `[[route]]` entry) is not usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("it needs three parts separated by '='")]
    Parts,
    #[error("route name {0:?} must be letters, digits, '-', '_' or '.'")]
    Name(String),
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error("upstream {upstream}: {source}")]
    Upstream {
        upstream: String,
        #[source]
        source: UrlError,
    },
    #[error("tls_cert and tls_key go together: give both, or tls_auto = true instead")]
    TlsPair,
    #[error("tls_auto issues its own certificate: give either tls_auto or tls_cert/tls_key")]
    TlsBoth,
}

/// A listen address that is neither `HOST:PORT` nor a bare port.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("listen address {0:?} is not HOST:PORT (e.g. 127.0.0.1:18100)")]
pub struct ListenError(pub String);

/// Why a `ROUTE=VALUE` flag (`--target`, `--mock`) is not usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("expected ROUTE=URL, e.g. frontend=ws://127.0.0.1:18000")]
    Target,
    #[error("expected ROUTE=LISTEN, e.g. nlp=127.0.0.1:28001")]
    Mock,
    #[error(transparent)]
    Listen(#[from] ListenError),
}

/// Where a route forwards to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    /// The URL as given (`ws://host:port/prefix`).
    pub url: String,
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path prefix put in front of every client's request target ("" for none).
    pub path: String,
    /// The query the URL was given with, if any.
    pub query: Option<String>,
    /// The path and query as given, when they hold `{path}` or `{query}`.
    pub template: Option<String>,
}

impl Upstream {
    /// `host:port` as the `Host` header should name it.
    pub fn authority(&self) -> String {
        host_authority(&self.host, self.port, self.tls)
    }
}

/// `host:port` as a `Host` header or URL names it: IPv6 in brackets, the port left out
/// when it is the default of the scheme (`tls`: 443, else 80).
pub fn host_authority(host: &str, port: u16, tls: bool) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    if port == if tls { 443 } else { 80 } {
        host
    } else {
        format!("{host}:{port}")
    }
}

impl FromStr for Upstream {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, UrlError> {
        Upstream::parse(s, "")
    }
}

impl Upstream {
    /// Parses a `ws://` or `wss://` URL; `example` is put in front of the corrected URL
    /// an error suggests (`frontend=` for `--target frontend=...`).
    pub fn parse(s: &str, example: &str) -> Result<Upstream, UrlError> {
        let (scheme, rest) = s.split_once("://").unwrap_or(("", s));
        // `{path}` and `{query}` (replay targets) are kept aside: a URL cannot hold them.
        let template = rest
            .find(['/', '?'])
            .map(|i| &rest[i..])
            .filter(|t| t.contains("{path}") || t.contains("{query}"))
            .map(str::to_string);
        let plain;
        let s = match &template {
            Some(t) => {
                plain = s.replacen(t.as_str(), "", 1);
                plain.as_str()
            }
            None => s,
        };
        if !matches!(scheme, "ws" | "wss") {
            return Err(UrlError::Scheme {
                example: example.to_string(),
                rest: rest.to_string(),
            });
        }
        let url = url::Url::parse(s).map_err(|source| UrlError::Invalid {
            url: s.to_string(),
            source,
        })?;
        let tls = url.scheme() == "wss";
        let host = url
            .host_str()
            .ok_or_else(|| UrlError::NoHost { url: s.to_string() })?
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        let port = url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        let path = url.path().trim_end_matches('/').to_string();
        Ok(Upstream {
            url: match &template {
                Some(t) => format!("{s}{t}"),
                None => s.to_string(),
            },
            tls,
            host,
            port,
            path,
            query: url.query().map(str::to_string),
            template,
        })
    }

    /// The request target a replayed client asks this build for, given the recorded
    /// one (`/devtools/browser/<id>?x=1`): a URL without a path keeps the recorded path
    /// and query; a URL with a path replaces the recorded path (and its query, when the
    /// URL has one); `{path}` and `{query}` in the URL stand for the recorded ones.
    pub fn replay_target(&self, recorded: &str) -> String {
        let (path, query) = recorded.split_once('?').unwrap_or((recorded, ""));
        if let Some(template) = &self.template {
            let out = template.replace("{path}", path).replace("{query}", query);
            return if out.ends_with('?') {
                out.trim_end_matches('?').to_string()
            } else {
                out
            };
        }
        if self.path.is_empty() {
            return recorded.to_string();
        }
        match (&self.query, query) {
            (Some(q), _) => format!("{}?{q}", self.path),
            (None, "") => self.path.clone(),
            (None, q) => format!("{}?{q}", self.path),
        }
    }
}

/// Parses the URL of `--target ROUTE=URL`.
pub fn parse_target(route: &str, url: &str) -> Result<Upstream, ConfigError> {
    Upstream::parse(url, &format!("{route}=")).map_err(|source| ConfigError::TargetUrl {
        route: route.to_string(),
        url: url.to_string(),
        source,
    })
}

/// The URL for logs and error messages: a password in its user info is shown as `***`.
impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, rest) = self.url.split_once("://").unwrap_or(("", &self.url));
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        match authority
            .rsplit_once('@')
            .and_then(|(u, _)| u.split_once(':'))
        {
            Some((user, _)) => {
                let host = &rest[authority.rfind('@').map_or(0, |i| i + 1)..];
                write!(f, "{scheme}://{user}:***@{host}")
            }
            None => f.write_str(&self.url),
        }
    }
}

/// A `--target ROUTE=URL` as given: replay the recorded clients of `route` against
/// the build at `url`. The URL is checked by [`Target::upstream`], once `check` has
/// put a port in place of any `{port}` in it ([`Target::with_port`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The recorded route whose clients are replayed.
    pub route: String,
    /// Where the build under test listens (`ws://` or `wss://`; may hold `{port}`).
    pub url: String,
}

impl Target {
    pub fn new(route: impl Into<String>, url: impl Into<String>) -> Target {
        Target {
            route: route.into(),
            url: url.into(),
        }
    }

    /// The target with `{port}` in its URL replaced by `port`.
    pub fn with_port(&self, port: u16) -> Target {
        Target {
            route: self.route.clone(),
            url: self.url.replace("{port}", &port.to_string()),
        }
    }

    /// The URL, checked.
    pub fn upstream(&self) -> Result<Upstream, ConfigError> {
        parse_target(&self.route, &self.url)
    }
}

impl FromStr for Target {
    type Err = SpecError;

    fn from_str(spec: &str) -> Result<Target, SpecError> {
        let (route, url) = spec.split_once('=').ok_or(SpecError::Target)?;
        Ok(Target::new(route, url))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.route, self.url)
    }
}

/// A `--mock ROUTE=LISTEN`: stand in for the recorded server of `route`, listening on
/// `listen` (port 0 picks a free one). Also where a started mock listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MockSpec {
    /// The recorded route whose server is mocked.
    pub route: String,
    /// Where the mock listens.
    pub listen: SocketAddr,
}

impl MockSpec {
    pub fn new(route: impl Into<String>, listen: SocketAddr) -> MockSpec {
        MockSpec {
            route: route.into(),
            listen,
        }
    }
}

impl FromStr for MockSpec {
    type Err = SpecError;

    fn from_str(spec: &str) -> Result<MockSpec, SpecError> {
        let (route, listen) = spec.split_once('=').ok_or(SpecError::Mock)?;
        Ok(MockSpec::new(route, parse_listen(listen)?))
    }
}

impl fmt::Display for MockSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.route, self.listen)
    }
}

/// One hop to record: listen here, forward there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub listen: SocketAddr,
    pub upstream: Upstream,
    /// TLS towards the route's clients (`wss://`); `None` listens in plain `ws://`.
    pub tls: Option<ListenTls>,
}

/// Where a `wss://` listener's certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenTls {
    /// A PEM certificate (chain) and its private key (`--tls-cert`, `--tls-key`).
    Files { cert: PathBuf, key: PathBuf },
    /// Issued by the local wsreplay CA for the listen address, `localhost`,
    /// `127.0.0.1` and these extra names (`--tls-auto`, `--tls-name`).
    Auto { names: Vec<String> },
}

impl ListenTls {
    /// The TLS of `cert`/`key` files or `auto`, as the flags and the file give them;
    /// `None` when none is given.
    pub fn from_parts(
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        auto: bool,
        names: Vec<String>,
    ) -> Result<Option<ListenTls>, RouteError> {
        match (cert, key, auto) {
            (Some(_), _, true) | (_, Some(_), true) => Err(RouteError::TlsBoth),
            (Some(cert), Some(key), false) => Ok(Some(ListenTls::Files { cert, key })),
            (None, None, true) => Ok(Some(ListenTls::Auto { names })),
            (None, None, false) => Ok(None),
            _ => Err(RouteError::TlsPair),
        }
    }
}

/// Parses `HOST:PORT`, or a bare `PORT` meaning 127.0.0.1.
pub fn parse_listen(s: &str) -> Result<SocketAddr, ListenError> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    s.parse::<SocketAddr>()
        .map_err(|_| ListenError(s.to_string()))
}

/// Whether `name` can name a route: letters, digits, `-`, `_` and `.`.
fn valid_route_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

impl Route {
    pub fn new(name: &str, listen: &str, upstream: &str) -> Result<Route, RouteError> {
        if !valid_route_name(name) {
            return Err(RouteError::Name(name.to_string()));
        }
        Ok(Route {
            name: name.to_string(),
            listen: parse_listen(listen)?,
            upstream: Upstream::parse(upstream, &format!("{name}={listen}=")).map_err(
                |source| RouteError::Upstream {
                    upstream: upstream.to_string(),
                    source,
                },
            )?,
            tls: None,
        })
    }
}

impl FromStr for Route {
    type Err = ConfigError;

    fn from_str(spec: &str) -> Result<Route, ConfigError> {
        let err = |source: RouteError| ConfigError::Route {
            spec: spec.to_string(),
            source,
        };
        let mut parts = spec.splitn(3, '=');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(name), Some(listen), Some(upstream)) => {
                Route::new(name, listen, upstream).map_err(err)
            }
            _ => Err(err(RouteError::Parts)),
        }
    }
}

/// The forward proxy (`record --proxy LISTEN --intercept HOST`): an HTTP proxy whose
/// clients' WebSocket sessions to the intercepted hosts are recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    pub listen: SocketAddr,
    pub intercept: Vec<Intercept>,
}

/// A host whose WebSocket sessions the forward proxy records, under a route name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intercept {
    /// The route its sessions are recorded under (the host name unless declared).
    pub route: String,
    /// The host name (or IP address) clients ask the proxy for, in lower case.
    pub host: String,
}

impl Intercept {
    /// Whether a client's `host` (as in `CONNECT host:port`) is this one.
    pub fn matches(&self, host: &str) -> bool {
        self.host
            .eq_ignore_ascii_case(host.trim_matches(|c| c == '[' || c == ']'))
    }
}

/// Why an `--intercept [NAME=]HOST` is not usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("--intercept {0:?}: expected HOST or NAME=HOST (a host name or IP address without port; NAME letters, digits, '-', '_' or '.'), e.g. staging.example.com or frontend=staging.example.com")]
pub struct InterceptError(String);

impl fmt::Display for Intercept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.route == self.host {
            f.write_str(&self.host)
        } else {
            write!(f, "{} (route {})", self.host, self.route)
        }
    }
}

impl FromStr for Intercept {
    type Err = InterceptError;

    fn from_str(spec: &str) -> Result<Intercept, InterceptError> {
        let (route, host) = spec.split_once('=').unwrap_or((spec, spec));
        let host = host.trim_matches(|c| c == '[' || c == ']');
        let host_ok = host.parse::<IpAddr>().is_ok()
            || (!host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
        if !host_ok || !valid_route_name(route) {
            return Err(InterceptError(spec.to_string()));
        }
        Ok(Intercept {
            route: route.to_string(),
            host: host.to_ascii_lowercase(),
        })
    }
}

/// Checks a set of routes and the forward proxy: at least one of them, unique route
/// names (intercepted hosts' too), loopback unless allowed.
pub fn validate_routes(
    routes: &[Route],
    forward: Option<&Forward>,
    allow_remote: bool,
) -> Result<(), ConfigError> {
    if routes.is_empty() && forward.is_none() {
        return Err(ConfigError::NoRoutes);
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(forward) = forward {
        if !allow_remote && !forward.listen.ip().is_loopback() {
            return Err(ConfigError::ProxyNotLoopback {
                addr: forward.listen,
            });
        }
        for i in &forward.intercept {
            if !seen.insert(i.route.as_str()) {
                return Err(ConfigError::DuplicateRoute(i.route.clone()));
            }
        }
    }
    for r in routes {
        if !seen.insert(r.name.as_str()) {
            return Err(ConfigError::DuplicateRoute(r.name.clone()));
        }
        if !allow_remote && !r.listen.ip().is_loopback() {
            return Err(ConfigError::NotLoopback {
                route: r.name.clone(),
                addr: r.listen,
            });
        }
    }
    Ok(())
}

/// The contents of `wsreplay.toml`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub out: Option<PathBuf>,
    #[serde(default, rename = "route")]
    pub routes: Vec<FileRoute>,
    #[serde(default)]
    pub redact: RedactConfig,
    /// Correlation id overrides for mocks (`[[correlate]]`).
    #[serde(default)]
    pub correlate: Vec<crate::replay::correlate::IdPair>,
    /// Overrides of the structure normaliser (`[structure]`): literal fields, streams.
    #[serde(default)]
    pub structure: crate::structure::StructureConfig,
    /// Replay settings (`[replay]`).
    #[serde(default)]
    pub replay: FileReplay,
    /// Values the server issues, declared or ignored (`[[live]]`).
    #[serde(default)]
    pub live: Vec<crate::replay::live::LiveEntry>,
}

/// The `[replay]` table.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileReplay {
    /// `[replay.credentials]`: NAME = "env:VAR" or "file:PATH", a live value for the
    /// placeholders of redacted query parameter or header NAME (as `--credential`).
    #[serde(default)]
    pub credentials: std::collections::BTreeMap<String, CredentialSource>,
}

impl FileReplay {
    /// The `[replay.credentials]` entries as `--credential` specs.
    pub fn credential_specs(&self) -> Vec<CredentialSpec> {
        self.credentials
            .iter()
            .map(|(name, source)| CredentialSpec {
                name: name.clone(),
                source: source.clone(),
            })
            .collect()
    }
}

/// A `[[route]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRoute {
    pub name: String,
    pub listen: String,
    pub upstream: String,
    /// PEM certificate (chain) for `wss://` clients; with `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// `wss://` for clients with a certificate from the local wsreplay CA.
    #[serde(default)]
    pub tls_auto: bool,
    /// Extra host names the `tls_auto` certificate covers.
    #[serde(default)]
    pub tls_names: Vec<String>,
}

impl FileConfig {
    /// Reads a config file.
    pub fn read(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            reason: format!("cannot read: {e}"),
        })?;
        let config: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        config
            .structure
            .overrides()
            .map_err(|e| ConfigError::File {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(config)
    }

    /// Reads `path` if given, else `wsreplay.toml` in the current directory if present.
    pub fn load(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
        match path {
            Some(p) => Self::read(p),
            None if Path::new("wsreplay.toml").is_file() => Self::read(Path::new("wsreplay.toml")),
            None => Ok(FileConfig::default()),
        }
    }

    /// The file's routes, validated.
    pub fn routes(&self, path: &Path) -> Result<Vec<Route>, ConfigError> {
        self.routes
            .iter()
            .map(|r| {
                let route = Route::new(&r.name, &r.listen, &r.upstream).and_then(|mut route| {
                    route.tls = ListenTls::from_parts(
                        r.tls_cert.clone(),
                        r.tls_key.clone(),
                        r.tls_auto,
                        r.tls_names.clone(),
                    )?;
                    Ok(route)
                });
                route.map_err(|source| ConfigError::RouteInFile {
                    path: path.to_owned(),
                    name: r.name.clone(),
                    source,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `--target` URL with a path replaces the recorded path (a browser's
    /// `/devtools/browser/<id>` is issued anew); without one the recorded path and
    /// query are kept; `{path}` and `{query}` mix the two.
    #[test]
    fn replay_targets_with_and_without_a_path() {
        let t =
            |url: &str, recorded: &str| Upstream::parse(url, "").unwrap().replay_target(recorded);
        let recorded = "/devtools/browser/old-id?x=1";
        assert_eq!(t("ws://127.0.0.1:9222", recorded), recorded);
        assert_eq!(t("ws://127.0.0.1:9222/", recorded), recorded);
        assert_eq!(
            t("ws://127.0.0.1:9222/devtools/browser/new-id", recorded),
            "/devtools/browser/new-id?x=1"
        );
        assert_eq!(t("ws://h:1/ws?user=a", "/chat?user=b"), "/ws?user=a");
        assert_eq!(t("ws://h:1/api{path}", "/chat?user=b"), "/api/chat");
        assert_eq!(
            t("ws://h:1/api{path}?{query}", "/chat?user=b"),
            "/api/chat?user=b"
        );
        assert_eq!(
            t("ws://h:1/v2?{query}&debug=1", "/chat?u=b"),
            "/v2?u=b&debug=1"
        );
        assert_eq!(t("ws://h:1/api{path}?{query}", "/chat"), "/api/chat");
    }

    #[test]
    fn route_specs() {
        let r: Route = "nlp=127.0.0.1:18101=wss://agents.example:8443/nlp/?v=1"
            .parse()
            .unwrap();
        assert_eq!(r.name, "nlp");
        assert_eq!(r.listen.port(), 18101);
        assert!(r.upstream.tls);
        assert_eq!(r.upstream.path, "/nlp");
        assert_eq!(r.upstream.authority(), "agents.example:8443");
        let bare: Route = "f=18100=ws://127.0.0.1:18000".parse().unwrap();
        assert_eq!(bare.listen.to_string(), "127.0.0.1:18100");
        assert_eq!(bare.upstream.path, "");
        let secret: Upstream = "wss://app:s3cret-pw@agents.example/nlp?x=1"
            .parse()
            .unwrap();
        assert_eq!(secret.to_string(), "wss://app:***@agents.example/nlp?x=1");
        assert_eq!(secret.host, "agents.example");
        let err = "frontend=127.0.0.1:18100"
            .parse::<Route>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("NAME=LISTEN=UPSTREAM"), "{err}");
        let err = "f=1=http://x".parse::<Route>().unwrap_err().to_string();
        assert!(err.contains("ws:// or wss://"), "{err}");
    }

    #[test]
    fn remote_binding_needs_consent() {
        let r: Vec<Route> = vec!["a=0.0.0.0:1=ws://x".parse().unwrap()];
        assert!(matches!(
            validate_routes(&r, None, false),
            Err(ConfigError::NotLoopback { .. })
        ));
        assert!(validate_routes(&r, None, true).is_ok());
        let forward = Forward {
            listen: "127.0.0.1:0".parse().unwrap(),
            intercept: vec!["a=app.test".parse().unwrap()],
        };
        assert!(validate_routes(&[], Some(&forward), false).is_ok());
        assert!(matches!(
            validate_routes(&r, Some(&forward), true),
            Err(ConfigError::DuplicateRoute(_))
        ));
    }

    #[test]
    fn intercept_specs() {
        let i: Intercept = "Staging.Example.com".parse().unwrap();
        assert_eq!(
            (i.route.as_str(), i.host.as_str()),
            ("Staging.Example.com", "staging.example.com")
        );
        assert!(i.matches("STAGING.example.com"));
        let i: Intercept = "frontend=127.0.0.1".parse().unwrap();
        assert_eq!(i.route, "frontend");
        assert!(i.matches("127.0.0.1"));
        for bad in ["", "a=", "host:443", "a b=host", "x=https://h"] {
            assert!(bad.parse::<Intercept>().is_err(), "{bad}");
        }
    }

    #[test]
    fn toml_file() {
        let cfg: FileConfig = toml::from_str(
            "out = 'r.jsonl'\n[[route]]\nname='f'\nlisten='127.0.0.1:1'\nupstream='ws://h:2'\n[redact]\nheaders=['x-k']\n",
        )
        .unwrap();
        assert_eq!(cfg.routes(Path::new("w.toml")).unwrap()[0].upstream.port, 2);
        assert_eq!(cfg.routes(Path::new("w.toml")).unwrap()[0].tls, None);
        let route = "[[route]]\nname='f'\nlisten='1'\nupstream='ws://h:2'\n";
        let tls = |keys: &str| {
            toml::from_str::<FileConfig>(&format!("{route}{keys}"))
                .unwrap()
                .routes(Path::new("w.toml"))
                .map(|r| r[0].tls.clone())
        };
        assert_eq!(
            tls("tls_auto = true\ntls_names = ['app.test']").unwrap(),
            Some(ListenTls::Auto {
                names: vec!["app.test".into()]
            })
        );
        assert_eq!(
            tls("tls_cert = 'c.pem'\ntls_key = 'k.pem'").unwrap(),
            Some(ListenTls::Files {
                cert: "c.pem".into(),
                key: "k.pem".into()
            })
        );
        let err = tls("tls_cert = 'c.pem'").unwrap_err().to_string();
        assert!(err.contains("w.toml") && err.contains("tls_key"), "{err}");
        assert_eq!(cfg.redact.headers, vec!["x-k"]);
        let cfg: FileConfig =
            toml::from_str("[replay.credentials]\ntoken = 'env:T'\nAuthorization = 'file:a.txt'\n")
                .unwrap();
        let specs: Vec<String> = cfg
            .replay
            .credential_specs()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(specs, ["Authorization=file:a.txt", "token=env:T"]);
        let err = toml::from_str::<FileConfig>("[replay.credentials]\ntoken = 's3cret'\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("env:VAR"), "{err}");
    }
}

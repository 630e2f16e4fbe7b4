//! `record --proxy --intercept`: the forward proxy. A `wss://` session through
//! `CONNECT` to an intercepted host is recorded like a route's; plain HTTPS inside is
//! forwarded unrecorded; other hosts are tunnelled blind; and a real headless
//! Chromium, told to use the proxy, loads an `https://` page whose script talks
//! `wss://` to a TLS backend, unchanged, while the recorder records the session.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use wsreplay::config::{Forward, Intercept};
use wsreplay::demo::DemoSystem;
use wsreplay::record::authority::Authority;
use wsreplay::record::proxy::{Proxy, ProxyConfig};
use wsreplay::recording::sink::Output;
use wsreplay::recording::{Dir, Record, Recording};

use crate::browser::{chat_html, page_text};
use crate::listen_tls::{heartbeat_over_tls, recorded_types, test_ca, tls_to, TestCa};
use crate::peers::chromium::Chromium;
use crate::support::guard;

/// A TLS terminator for `localhost` (the test CA's leaf) in front of the plain TCP
/// service at `backend`; returns its port.
async fn tls_front(backend: SocketAddr, ca: &TestCa) -> u16 {
    use rustls::pki_types::pem::PemObject;
    let chain = rustls::pki_types::CertificateDer::pem_file_iter(&ca.cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&ca.key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(s).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

/// A plain HTTP server answering `GET /` with `html` (anything else: 404), one request
/// per connection.
async fn page_server(html: String) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let html = Arc::new(html);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let html = html.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let (status, body) = if head.starts_with(b"GET / ") {
                    ("200 OK", html.as_str())
                } else {
                    ("404 Not Found", "not here")
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(response.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// A recorder running only the forward proxy, intercepting `intercept`, trusting the
/// test CA upstream, with its local CA in `dir/config`.
async fn forward_proxy(dir: &Path, intercept: &str, upstream_ca: &Path) -> Proxy {
    let mut config = ProxyConfig::new(vec![], Output::File(dir.join("rec.jsonl")));
    config.forward = Some(Forward {
        listen: "127.0.0.1:0".parse().unwrap(),
        intercept: vec![intercept.parse::<Intercept>().unwrap()],
    });
    config.ca_dir = Some(dir.join("config"));
    config.tls.ca_cert = Some(upstream_ca.to_owned());
    Proxy::start(config).await.unwrap()
}

async fn finish(proxy: Proxy, dir: &Path) -> Recording {
    assert!(proxy.stop().await.complete());
    Recording::read(dir.join("rec.jsonl")).unwrap()
}

/// Sends `CONNECT host:port` through the proxy; returns the socket after its answer
/// and the answer's status line.
async fn connect_through(proxy: SocketAddr, host: &str, port: u16) -> (TcpStream, String) {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let request = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let head = crate::support::read_head(&mut s).await;
    let status = head.lines().next().unwrap_or_default().to_string();
    (s, status)
}

fn opens(rec: &Recording) -> Vec<wsreplay::recording::Open> {
    rec.records
        .iter()
        .filter_map(|r| match r {
            Record::Open(o) => Some(o.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn an_intercepted_wss_session_is_recorded_like_a_route() {
    let dir = tempfile::tempdir().unwrap();
    let ca = test_ca(dir.path(), &["localhost"]);
    let demo = DemoSystem::start(false).await.unwrap();
    let backend = tls_front(demo.backend.addr(), &ca).await;
    let proxy = forward_proxy(dir.path(), "frontend=localhost", &ca.ca).await;
    let addr = proxy.forward_addr().unwrap();

    let (tcp, status) = connect_through(addr, "localhost", backend).await;
    assert_eq!(status, "HTTP/1.1 200 Connection established");
    let wsreplay_ca = dir.path().join("config").join("ca.pem");
    let reply = heartbeat_over_tls(tcp, backend, &wsreplay_ca).await;
    assert_eq!(reply.unwrap(), "heartbeat_response");
    // The client's own trust in the test CA is not enough: the proxy presents the
    // wsreplay CA's certificate.
    let (tcp, _) = connect_through(addr, "localhost", backend).await;
    let err = heartbeat_over_tls(tcp, backend, &ca.ca).await.unwrap_err();
    assert!(err.contains("certificate"), "{err}");

    let rec = finish(proxy, dir.path()).await;
    demo.shutdown().await;
    let opens = opens(&rec);
    assert_eq!(opens.len(), 1, "{opens:?}");
    assert_eq!(opens[0].route, "frontend");
    assert_eq!(opens[0].upstream, format!("wss://localhost:{backend}"));
    assert_eq!(opens[0].request, "GET /ws?user_id=tls HTTP/1.1");
    assert_eq!(opens[0].status, 101);
    assert_eq!(
        recorded_types(&rec),
        [
            (Dir::ClientToServer, "heartbeat".to_string()),
            (Dir::ServerToClient, "heartbeat_response".to_string())
        ]
    );
}

#[tokio::test]
async fn https_inside_and_other_hosts_pass_unrecorded() {
    let dir = tempfile::tempdir().unwrap();
    let ca = test_ca(dir.path(), &["localhost", "127.0.0.1"]);
    let page = page_server("<p>hello</p>".into()).await;
    let https = tls_front(page, &ca).await;
    let proxy = forward_proxy(dir.path(), "localhost", &ca.ca).await;
    let addr = proxy.forward_addr().unwrap();
    // `GET /` from `host` over TLS through a CONNECT tunnel, trusting `ca`.
    let https_get = |host: &'static str, ca: PathBuf| async move {
        let (tcp, status) = connect_through(addr, host, https).await;
        assert_eq!(status, "HTTP/1.1 200 Connection established");
        let mut tls = tls_to(tcp, host, &[&ca]).await.unwrap();
        let get = format!("GET / HTTP/1.1\r\nHost: {host}:{https}\r\nConnection: close\r\n\r\n");
        tls.write_all(get.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let _ = tls.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    };

    // Intercepted: TLS from the wsreplay CA, the request forwarded as sent.
    let answer = https_get("localhost", dir.path().join("config").join("ca.pem")).await;
    assert!(
        answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("<p>hello</p>"),
        "{answer}"
    );

    // Not intercepted (127.0.0.1): a blind tunnel, the test CA's certificate end to end.
    let answer = https_get("127.0.0.1", ca.ca.clone()).await;
    assert!(answer.ends_with("<p>hello</p>"), "{answer}");

    // Plain HTTP in absolute form is forwarded in origin form.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET http://127.0.0.1:{}/ HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nProxy-Connection: keep-alive\r\n\r\n",
        page.port(),
        page.port()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(
        out.starts_with("HTTP/1.1 200 OK") && out.ends_with("<p>hello</p>"),
        "{out}"
    );

    let rec = finish(proxy, dir.path()).await;
    assert!(crate::support::traffic(&rec).is_empty());
}

/// Issue 19's acceptance 1: a real browser, proxied, records a staging frontend over
/// TLS with no change to the page.
#[tokio::test]
async fn chromium_through_the_forward_proxy_records_a_wss_session() {
    let dir = tempfile::tempdir().unwrap();
    let ca = test_ca(dir.path(), &["localhost"]);
    let demo = DemoSystem::start(false).await.unwrap();
    let backend = tls_front(demo.backend.addr(), &ca).await;
    let ws_url = format!("wss://localhost:{backend}/ws?user_id=page");
    let page = tls_front(page_server(chat_html(&ws_url)).await, &ca).await;
    let proxy = forward_proxy(dir.path(), "frontend=localhost", &ca.ca).await;
    let wsreplay_spki = Authority::open(&dir.path().join("config"))
        .unwrap()
        .spki_sha256_base64();
    let flags = [
        format!("--proxy-server=http://{}", proxy.forward_addr().unwrap()),
        // Chromium goes direct to loopback hosts unless told otherwise.
        "--proxy-bypass-list=<-loopback>".to_string(),
        format!(
            "--ignore-certificate-errors-spki-list={wsreplay_spki},{}",
            ca.spki
        ),
    ];
    let Some(browser) = Chromium::start_with(&flags).await else {
        return;
    };
    let text = page_text(&browser, &format!("https://localhost:{page}/"), "DONE").await;
    drop(browser);
    let shown: Vec<&str> = text.lines().filter(|l| *l != "DONE").collect();
    assert!(shown.contains(&"agent_completed"), "{text}");
    assert!(text.contains("DONE"), "{text}");

    let rec = guard(finish(proxy, dir.path())).await;
    demo.shutdown().await;
    let opens = opens(&rec);
    assert_eq!(opens.len(), 1, "{opens:?}");
    assert_eq!(opens[0].route, "frontend");
    assert_eq!(opens[0].request, "GET /ws?user_id=page HTTP/1.1");
    assert_eq!(opens[0].upstream, format!("wss://localhost:{backend}"));
    let types = recorded_types(&rec);
    assert_eq!(types[0], (Dir::ClientToServer, "chat".to_string()));
    let received: Vec<&str> = types
        .iter()
        .filter(|(dir, _)| *dir == Dir::ServerToClient)
        .map(|(_, t)| t.as_str())
        .collect();
    assert_eq!(received, shown, "the recording holds what the page showed");
}

//! `wss://` on a route's listener: `--tls-cert/--tls-key` files from a test CA, and
//! `--tls-auto` certificates from the local wsreplay CA; the sessions reach the
//! (plain `ws://`) demo backend and are recorded like any other.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::Message;
use wsreplay::config::ListenTls;
use wsreplay::demo::DemoSystem;
use wsreplay::recording::{Dir, Record};

use crate::support::*;

/// A test CA and a leaf certificate it signed, as PEM files.
pub struct TestCa {
    /// The CA certificate.
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA's SPKI SHA-256, base64 (for Chromium's --ignore-certificate-errors-spki-list).
    pub spki: String,
}

/// A test CA and a leaf certificate it signed for `names`, as PEM files in `dir`.
pub fn test_ca(dir: &Path, names: &[&str]) -> TestCa {
    use base64::Engine;
    use rcgen::PublicKeyData;
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "wsreplay test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let spki = ring::digest::digest(&ring::digest::SHA256, &ca_key.subject_public_key_info());
    let spki = base64::engine::general_purpose::STANDARD.encode(spki);
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let leaf = rcgen::CertificateParams::new(names)
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let test = TestCa {
        ca: dir.join("test-ca.pem"),
        cert: dir.join("leaf.pem"),
        key: dir.join("leaf-key.pem"),
        spki,
    };
    std::fs::write(&test.ca, ca_cert.pem()).unwrap();
    // The chain: the leaf, then its CA.
    std::fs::write(&test.cert, leaf.pem() + &ca_cert.pem()).unwrap();
    std::fs::write(&test.key, leaf_key.serialize_pem()).unwrap();
    test
}

/// A rustls client configuration trusting only the CA certificates in `pem`.
pub fn trusting(pems: &[&Path]) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for pem in pems {
        roots
            .add(rustls::pki_types::CertificateDer::from_pem_file(pem).unwrap())
            .unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// TLS to `name` over `tcp`, trusting only the CA certificates in `cas`.
pub async fn tls_to(
    tcp: TcpStream,
    name: &str,
    cas: &[&Path],
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    tokio_rustls::TlsConnector::from(trusting(cas))
        .connect(name, tcp)
        .await
}

/// Opens `wss://localhost:PORT/ws?user_id=tls` trusting `ca`, sends a heartbeat, and
/// returns the type of the backend's reply.
async fn heartbeat_over_wss(port: u16, ca: &Path) -> Result<String, String> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    heartbeat_over_tls(tcp, port, ca).await
}

/// [`heartbeat_over_wss`] on a connection already made (to a proxy, say).
pub async fn heartbeat_over_tls(tcp: TcpStream, port: u16, ca: &Path) -> Result<String, String> {
    let tls = tls_to(tcp, "localhost", &[ca])
        .await
        .map_err(|e| e.to_string())?;
    let url = format!("wss://localhost:{port}/ws?user_id=tls");
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls)
        .await
        .map_err(|e| e.to_string())?;
    ws.send(Message::text(r#"{"type":"heartbeat"}"#))
        .await
        .unwrap();
    let reply = ws.next().await.unwrap().unwrap().into_text().unwrap();
    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    Ok(reply["type"].as_str().unwrap_or_default().to_string())
}

/// The recorded messages as (direction, JSON `type`).
pub fn recorded_types(rec: &wsreplay::recording::Recording) -> Vec<(Dir, String)> {
    rec.records
        .iter()
        .filter_map(|r| match r {
            Record::Message(m) => {
                let v: serde_json::Value = serde_json::from_str(m.body.as_text()?).ok()?;
                Some((m.dir, v["type"].as_str()?.to_string()))
            }
            _ => None,
        })
        .collect()
}

async fn record_one_heartbeat(tls: ListenTls, ca_dir: Option<PathBuf>, trust: &Path) {
    let demo = DemoSystem::start(false).await.unwrap();
    let rec = Recorder::start_with(&demo.backend.url(), |c| {
        c.routes[0].tls = Some(tls);
        c.ca_dir = ca_dir;
    })
    .await;
    assert!(rec.proxy.addrs()[0].tls);
    let reply = heartbeat_over_wss(rec.addr().port(), trust).await.unwrap();
    assert_eq!(reply, "heartbeat_response");
    let (recording, _) = rec.finish().await;
    demo.shutdown().await;
    assert_eq!(
        recorded_types(&recording),
        [
            (Dir::ClientToServer, "heartbeat".to_string()),
            (Dir::ServerToClient, "heartbeat_response".to_string())
        ]
    );
    let open = recording.records.iter().find_map(|r| match r {
        Record::Open(o) => Some(o.clone()),
        _ => None,
    });
    let open = open.unwrap();
    assert_eq!((open.route.as_str(), open.status), ("r", 101));
    assert_eq!(open.request, "GET /ws?user_id=tls HTTP/1.1");
}

#[tokio::test]
async fn a_route_with_cert_and_key_files_accepts_wss_clients() {
    let dir = tempfile::tempdir().unwrap();
    let TestCa { ca, cert, key, .. } = test_ca(dir.path(), &["localhost"]);
    record_one_heartbeat(ListenTls::Files { cert, key }, None, &ca).await;
}

#[tokio::test]
async fn a_tls_auto_route_uses_the_local_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("config");
    let auto = ListenTls::Auto { names: vec![] };
    record_one_heartbeat(auto, Some(ca_dir.clone()), &ca_dir.join("ca.pem")).await;
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(ca_dir.join("ca-key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_is_not_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let TestCa { cert, key, .. } = test_ca(dir.path(), &["localhost"]);
    let other = tempfile::tempdir().unwrap();
    let other_ca = test_ca(other.path(), &["localhost"]).ca;
    let demo = DemoSystem::start(false).await.unwrap();
    let rec = Recorder::start_with(&demo.backend.url(), |c| {
        c.routes[0].tls = Some(ListenTls::Files { cert, key });
    })
    .await;
    let err = heartbeat_over_wss(rec.addr().port(), &other_ca)
        .await
        .unwrap_err();
    assert!(err.contains("certificate"), "{err}");
    let (recording, _) = rec.finish().await;
    demo.shutdown().await;
    assert!(traffic(&recording).is_empty());
}

#[test]
fn bad_certificate_or_key_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let TestCa { cert, key, .. } = test_ca(dir.path(), &["localhost"]);
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let other = tempfile::tempdir().unwrap();
    let other_key = test_ca(other.path(), &["localhost"]).key;
    let upstream = "ws://127.0.0.1:9";
    let route = |tls: (&Path, &Path)| {
        format!(
            "--route=r=127.0.0.1:0={upstream} --tls-cert={} --tls-key={}",
            tls.0.display(),
            tls.1.display()
        )
    };
    for (files, named, says) in [
        (
            (garbage.as_path(), key.as_path()),
            &garbage,
            "no CERTIFICATE",
        ),
        (
            (cert.as_path(), garbage.as_path()),
            &garbage,
            "no PRIVATE KEY",
        ),
        ((missing.as_path(), key.as_path()), &missing, "cannot read"),
        ((cert.as_path(), cert.as_path()), &cert, "no PRIVATE KEY"),
        (
            (cert.as_path(), other_key.as_path()),
            &other_key,
            "do not work together",
        ),
    ] {
        let spec = route(files);
        let mut args: Vec<&str> = vec!["record", "--discard"];
        args.extend(spec.split(' '));
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains(&named.display().to_string()) && stderr.contains(says),
            "{stderr}"
        );
    }
}

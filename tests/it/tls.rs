//! `wss://` upstreams: a private CA via `--ca-cert`, `--insecure`, and a clear failure
//! when the certificate is not trusted.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::Message;
use wsreplay::record::tls::TlsOptions;
use wsreplay::recording::{EndHow, Record};

use crate::support::*;

/// A TLS echo server for `localhost` with a fresh self-signed certificate.
async fn tls_echo_server(dir: &std::path::Path) -> (String, std::path::PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let pem = dir.join("ca.pem");
    std::fs::write(&pem, cert.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("wss://localhost:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(s).await else {
                    return;
                };
                let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if m.is_text() && ws.send(m).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (url, pem)
}

async fn echo_through(rec: &Recorder) -> Result<String, String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/secure", rec.addr()))
        .await
        .map_err(|e| e.to_string())?;
    ws.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
    let reply = ws
        .next()
        .await
        .unwrap()
        .unwrap()
        .into_text()
        .unwrap()
        .to_string();
    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
    Ok(reply)
}

#[tokio::test]
async fn wss_upstream_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (url, pem) = tls_echo_server(dir.path()).await;
    let rec = Recorder::start_with(&url, |c| {
        c.tls = TlsOptions {
            ca_cert: Some(pem),
            insecure: false,
        }
    })
    .await;
    assert_eq!(echo_through(&rec).await.unwrap(), r#"{"type":"ping"}"#);
    let (recording, _) = rec.finish().await;
    let messages = recording
        .records
        .iter()
        .filter(|r| matches!(r, Record::Message(_)))
        .count();
    assert_eq!(messages, 2);
}

#[tokio::test]
async fn wss_upstream_with_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _) = tls_echo_server(dir.path()).await;
    let rec = Recorder::start_with(&url, |c| c.tls.insecure = true).await;
    assert_eq!(echo_through(&rec).await.unwrap(), r#"{"type":"ping"}"#);
    rec.finish().await;
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_502_naming_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _) = tls_echo_server(dir.path()).await;
    let rec = Recorder::start(&url).await;
    let err = echo_through(&rec).await.unwrap_err();
    assert!(err.contains("502"), "{err}");
    let (recording, _) = rec.finish().await;
    let end = recording.records.iter().find_map(|r| match r {
        Record::End(e) => Some(e.clone()),
        _ => None,
    });
    let end = end.unwrap();
    assert_eq!(end.how, EndHow::Unreachable);
    assert!(end.error.unwrap().contains("TLS handshake"));
}

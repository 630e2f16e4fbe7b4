//! TLS towards clients (`wss://` on a route's listener, the forward proxy's
//! intercepted hosts): the rustls server configuration of a route, from its
//! certificate and key files or issued by the local [`Authority`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::config::ListenTls;
use crate::record::authority::{Authority, AuthorityError};

/// Why a route's listening TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ServeTlsError {
    #[error("route {route}: TLS certificate {path}: {reason}. Give a PEM file holding the certificate (chain), e.g. from `openssl req -x509` or mkcert")]
    Cert {
        route: String,
        path: String,
        reason: String,
    },
    #[error("route {route}: TLS key {path}: {reason}. Give the PEM private key (PKCS#8, PKCS#1 or SEC1) of the certificate")]
    Key {
        route: String,
        path: String,
        reason: String,
    },
    #[error("route {route}: TLS certificate {cert} and key {key} do not work together: {reason}")]
    Pair {
        route: String,
        cert: String,
        key: String,
        reason: String,
    },
    #[error("route {route}: {source}")]
    Authority {
        route: String,
        #[source]
        source: AuthorityError,
    },
}

/// The names a `--tls-auto` certificate for a listener on `listen` covers: the
/// listen address (unless it is the unspecified address), `localhost`, `127.0.0.1`
/// and `extra`.
pub fn auto_names(listen: SocketAddr, extra: &[String]) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    }
    names.extend(extra.iter().cloned());
    names
}

/// The acceptor of route `route` listening on `listen` with `tls`; `authority` is the
/// local CA for [`ListenTls::Auto`].
pub fn acceptor(
    route: &str,
    listen: SocketAddr,
    tls: &ListenTls,
    authority: Option<&Authority>,
) -> Result<TlsAcceptor, ServeTlsError> {
    let config = match tls {
        ListenTls::Files { cert, key } => from_files(route, cert, key)?,
        ListenTls::Auto { names } => {
            let authority = authority.expect("the proxy opens the CA for --tls-auto routes");
            authority
                .server_config(&auto_names(listen, names))
                .map_err(|source| ServeTlsError::Authority {
                    route: route.to_string(),
                    source,
                })?
        }
    };
    Ok(TlsAcceptor::from(config))
}

fn from_files(route: &str, cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, ServeTlsError> {
    let chain = super::tls::read_certs(cert).map_err(|reason| ServeTlsError::Cert {
        route: route.to_string(),
        path: cert.display().to_string(),
        reason,
    })?;
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| ServeTlsError::Key {
        route: route.to_string(),
        path: key.display().to_string(),
        reason: match e {
            rustls::pki_types::pem::Error::Io(e) => format!("cannot read: {e}"),
            rustls::pki_types::pem::Error::NoItemsFound => "contains no PRIVATE KEY block".into(),
            other => format!("not a PEM private key: {other}"),
        },
    })?;
    super::tls::server_config(chain, private).map_err(|e| ServeTlsError::Pair {
        route: route.to_string(),
        cert: cert.display().to_string(),
        key: key.display().to_string(),
        reason: e.to_string(),
    })
}

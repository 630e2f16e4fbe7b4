//! The local wsreplay certificate authority: the CA that signs the certificates of
//! `--tls-auto` routes and of the hosts the forward proxy intercepts.
//!
//! It is created once, on first use, under the user's config directory
//! (`$WSREPLAY_CONFIG_DIR`, else `$XDG_CONFIG_HOME/wsreplay`, else
//! `~/.config/wsreplay`) as `ca.pem` (the certificate users trust) and `ca-key.pem`
//! (its private key, mode 0600), and reused afterwards. Leaf certificates are issued
//! in memory, one per set of host names, cached for the life of the process and never
//! written to disk.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// The CA certificate's file name in the config directory.
pub const CERT_FILE: &str = "ca.pem";
/// The CA key's file name in the config directory.
pub const KEY_FILE: &str = "ca-key.pem";

/// How long an issued leaf certificate is valid (under the 398 days browsers accept).
const LEAF_DAYS: i64 = 397;
/// How long the CA is valid.
const CA_DAYS: i64 = 3650;

/// Why the local CA could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    #[error("cannot find the config directory for the wsreplay CA: set WSREPLAY_CONFIG_DIR (or XDG_CONFIG_HOME or HOME)")]
    NoConfigDir,
    #[error("wsreplay CA {path}: {reason}. Fix or delete the file (a new CA is created when both ca.pem and ca-key.pem are missing; clients must then trust the new one)")]
    Files { path: PathBuf, reason: String },
    #[error("cannot create the wsreplay CA in {dir}: {source}")]
    Create {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot issue a certificate for {names}: {reason}")]
    Issue { names: String, reason: String },
}

/// The directory the CA lives in: `$WSREPLAY_CONFIG_DIR`, else
/// `$XDG_CONFIG_HOME/wsreplay`, else `$HOME/.config/wsreplay`.
pub fn config_dir() -> Result<PathBuf, AuthorityError> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("WSREPLAY_CONFIG_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(xdg) = var("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(xdg).join("wsreplay"));
    }
    var("HOME")
        .map(|home| PathBuf::from(home).join(".config").join("wsreplay"))
        .ok_or(AuthorityError::NoConfigDir)
}

/// The local CA, loaded (or created) from its directory.
pub struct Authority {
    dir: PathBuf,
    cert: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    spki_sha256: Vec<u8>,
    leaves: Mutex<HashMap<Vec<String>, Arc<ServerConfig>>>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").field("dir", &self.dir).finish()
    }
}

impl Authority {
    /// The CA in the default directory ([`config_dir`]), created if missing.
    pub fn open_default() -> Result<Authority, AuthorityError> {
        Authority::open(&config_dir()?)
    }

    /// The CA in `dir`, created there if neither of its files exists yet.
    pub fn open(dir: &Path) -> Result<Authority, AuthorityError> {
        let (cert_path, key_path) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
        if !cert_path.exists() && !key_path.exists() {
            create(dir)?;
        }
        let files = |path: &Path, reason: String| AuthorityError::Files {
            path: path.to_owned(),
            reason,
        };
        let key_pem = std::fs::read_to_string(&key_path)
            .map_err(|e| files(&key_path, format!("cannot read: {e}")))?;
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| files(&key_path, format!("not a PEM private key: {e}")))?;
        let cert = CertificateDer::from_pem_file(&cert_path)
            .map_err(|e| files(&cert_path, format!("not a PEM certificate: {e}")))?;
        let spki = key.subject_public_key_info();
        let params = ca_params(&spki);
        let spki_sha256 = sha256(&spki);
        Ok(Authority {
            dir: dir.to_owned(),
            cert,
            issuer: Issuer::new(params, key),
            spki_sha256,
            leaves: Mutex::new(HashMap::new()),
        })
    }

    /// Where the CA certificate (PEM) is.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join(CERT_FILE)
    }

    /// Where the CA's private key is.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join(KEY_FILE)
    }

    /// The SHA-256 of the CA's SubjectPublicKeyInfo, base64: what Chromium's
    /// `--ignore-certificate-errors-spki-list` takes.
    pub fn spki_sha256_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.spki_sha256)
    }

    /// A TLS server configuration presenting a certificate for `names` (host names
    /// or IP addresses) signed by this CA; issued once per set of names.
    pub fn server_config(&self, names: &[String]) -> Result<Arc<ServerConfig>, AuthorityError> {
        let mut key: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        key.sort();
        key.dedup();
        let mut leaves = self.leaves.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(config) = leaves.get(&key) {
            return Ok(config.clone());
        }
        let (chain, private) = self.issue(&key)?;
        let config =
            super::tls::server_config(chain, private).map_err(|e| AuthorityError::Issue {
                names: key.join(", "),
                reason: e.to_string(),
            })?;
        leaves.insert(key, config.clone());
        Ok(config)
    }

    /// A fresh leaf certificate (and its key) for `names`; the chain holds the CA too.
    fn issue(
        &self,
        names: &[String],
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), AuthorityError> {
        let err = |e: rcgen::Error| AuthorityError::Issue {
            names: names.join(", "),
            reason: e.to_string(),
        };
        let mut params = CertificateParams::new(names.to_vec()).map_err(err)?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().map_or("wsreplay", String::as_str),
        );
        params.distinguished_name = dn;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(LEAF_DAYS);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(err)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(err)?;
        let private = PrivateKeyDer::Pkcs8(key.serialize_der().into());
        Ok((vec![cert.der().clone(), self.cert.clone()], private))
    }
}

/// The CA's own parameters, derived from its public key alone, so that the issuer
/// can be rebuilt from the key file without parsing the certificate.
fn ca_params(spki: &[u8]) -> CertificateParams {
    let mut params = CertificateParams::default();
    let short: String = sha256(spki)[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "wsreplay");
    dn.push(DnType::CommonName, format!("wsreplay local CA {short}"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// Creates the CA's key (mode 0600) and certificate in `dir`.
fn create(dir: &Path) -> Result<(), AuthorityError> {
    let io = |source| AuthorityError::Create {
        dir: dir.to_owned(),
        source,
    };
    let rc = |e: rcgen::Error| io(std::io::Error::other(e.to_string()));
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
    }
    let key = KeyPair::generate().map_err(rc)?;
    let mut params = ca_params(&key.subject_public_key_info());
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(CA_DAYS);
    let cert = params.self_signed(&key).map_err(rc)?;
    write_new(&dir.join(KEY_FILE), key.serialize_pem().as_bytes(), 0o600).map_err(io)?;
    write_new(&dir.join(CERT_FILE), cert.pem().as_bytes(), 0o644).map_err(io)?;
    tracing::debug!("created the wsreplay CA in {}", dir.display());
    Ok(())
}

/// Writes a file that must not exist yet, with `mode` from the start.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_created_once_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let first = Authority::open(dir.path()).unwrap();
        let pem = std::fs::read(first.cert_path()).unwrap();
        let again = Authority::open(dir.path()).unwrap();
        assert_eq!(std::fs::read(again.cert_path()).unwrap(), pem);
        assert_eq!(first.spki_sha256_base64(), again.spki_sha256_base64());
        assert_eq!(first.spki_sha256_base64().len(), 44);
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let a = again.server_config(&names).unwrap();
        let b = again
            .server_config(&["127.0.0.1".to_string(), "LOCALHOST".to_string()])
            .unwrap();
        assert!(
            Arc::ptr_eq(&a, &b),
            "leaf certificates are cached per name set"
        );
    }

    #[test]
    fn a_half_missing_ca_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        Authority::open(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
        let err = Authority::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains(KEY_FILE), "{err}");
    }
}

//! `wsreplay ca`: the local wsreplay CA that signs `--tls-auto` and forward-proxy
//! certificates; prints where it is and how to trust it (creating it on first use).

use clap::Args;

use crate::gate::Verdict;
use crate::record::authority::Authority;

/// Arguments of `wsreplay ca`.
#[derive(Debug, Args)]
#[command(
    after_help = "The CA lives in $WSREPLAY_CONFIG_DIR, else $XDG_CONFIG_HOME/wsreplay, else ~/.config/wsreplay\n(ca.pem, and ca-key.pem readable by you alone). It is created the first time it is needed."
)]
pub struct CaArgs {
    /// Print where the CA certificate is, its SPKI hash, and how to make browsers,
    /// the system, Node and Python trust it (the default).
    #[arg(long, conflicts_with = "path")]
    pub install_hint: bool,
    /// Print only the path of the CA certificate (PEM), for scripts.
    #[arg(long)]
    pub path: bool,
}

pub fn run(args: CaArgs) -> anyhow::Result<Verdict> {
    let ca = Authority::open_default()?;
    let cert = ca.cert_path();
    let cert = cert.display();
    if args.path {
        println!("{cert}");
        return Ok(Verdict::Same);
    }
    let spki = ca.spki_sha256_base64();
    println!("wsreplay CA certificate: {cert}");
    println!("SPKI SHA-256 (base64):   {spki}");
    println!(
        "Its key {} signs the certificates of --tls-auto routes and of the hosts `record --proxy` intercepts: keep it private.",
        ca.key_path().display()
    );
    println!();
    println!("Trust it in one of these ways:");
    println!("  Chromium/Chrome, one run:  --ignore-certificate-errors-spki-list={spki}");
    println!("  Chromium/Firefox on Linux (NSS):");
    println!("    certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n wsreplay -i {cert}");
    println!("  Debian/Ubuntu (system-wide):");
    println!("    sudo cp {cert} /usr/local/share/ca-certificates/wsreplay.crt && sudo update-ca-certificates");
    println!("  macOS (system keychain):");
    println!("    sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {cert}");
    println!("  Node:    NODE_EXTRA_CA_CERTS={cert} node app.js");
    println!(
        "  Python:  SSL_CERT_FILE={cert} python app.py   (replaces the default roots for that run)"
    );
    Ok(Verdict::Same)
}

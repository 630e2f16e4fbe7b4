//! Real implementations of the protocols wsreplay decodes, served and spoken in-process
//! by their own libraries (not by us): a Socket.IO chat room (socketioxide, with
//! rust_socketio users) and a GraphQL server over `graphql-transport-ws`
//! (async-graphql); headless Chromium's DevTools endpoint (`chromium`). Tests record their sessions through the proxy, replay them against
//! the same server and against a variant that renamed one payload field.

pub mod chromium;
pub mod graphql;
pub mod socketio;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;

use tokio::net::{TcpListener, TcpStream};

/// A server on a port of its own; stops accepting when dropped.
pub struct Listening {
    pub addr: SocketAddr,
    accept: tokio::task::JoinHandle<()>,
}

impl Listening {
    /// Binds a port on the loopback and hands each connection to `serve`, on a task of
    /// its own.
    pub async fn start<F, Fut>(serve: F) -> Listening
    where
        F: Fn(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream));
            }
        });
        Listening { addr, accept }
    }

    /// The URL a recorder's route or a replay's `--target` points at.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// `wsreplay check FILE --target r=URL --snapshots SNAPS` in the recording's folder
/// (where it writes its `runs/`), run without blocking the test's runtime (the server
/// under test lives on it): the exit code and the output.
pub async fn check(file: &Path, snaps: &Path, url: &str) -> (i32, String) {
    let target = format!("r={url}");
    let out = crate::support::guard(
        tokio::process::Command::new(crate::support::bin())
            .current_dir(file.parent().unwrap())
            .args(["check", file.to_str().unwrap(), "--target", &target])
            .args(["--snapshots", snaps.to_str().unwrap()])
            .env_remove("CI")
            .output(),
    )
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

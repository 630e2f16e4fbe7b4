//! Headless Chromium with its DevTools endpoint, and a DevTools Protocol client:
//! numbered commands, events skipped while waiting for an answer.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{chromium, guard, HEADLESS};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Headless Chromium with remote debugging on a free port, stopped when dropped.
pub struct Chromium {
    _child: tokio::process::Child,
    /// `ws://127.0.0.1:PORT/devtools/browser/<uuid>`.
    pub url: String,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts `/usr/bin/chromium` (or `WSREPLAY_CHROMIUM`); `None`, saying why, when
    /// it is not installed.
    pub async fn start() -> Option<Chromium> {
        Chromium::start_with(&[]).await
    }

    /// [`Chromium::start`] with extra command-line flags.
    pub async fn start_with(flags: &[String]) -> Option<Chromium> {
        use tokio::io::AsyncBufReadExt;
        let Some(path) = chromium() else {
            eprintln!("SKIPPED: no /usr/bin/chromium (apt-get install chromium, or set WSREPLAY_CHROMIUM)");
            return None;
        };
        let profile = tempfile::tempdir().unwrap();
        let mut child = tokio::process::Command::new(path)
            .args(HEADLESS)
            .arg("--remote-debugging-port=0")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(flags)
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let url = guard(async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return url.trim().to_string();
                }
            }
            panic!("chromium exited without listening for DevTools");
        })
        .await;
        // Chromium keeps logging to stderr: keep reading, or it blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(Chromium {
            _child: child,
            url,
            _profile: profile,
        })
    }
}

/// A DevTools Protocol client.
pub struct Cdp {
    pub ws: Socket,
    next: u64,
}

impl Cdp {
    /// Connects to a DevTools endpoint (a browser's, or a recorder in front of it).
    pub async fn connect(url: &str) -> Cdp {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Cdp { ws, next: 0 }
    }

    /// Sends a command (to a page's `session`, when given) and returns its result.
    pub async fn call(&mut self, method: &str, params: Value, session: Option<&str>) -> Value {
        self.next += 1;
        let mut command = json!({"id": self.next, "method": method, "params": params});
        if let Some(session) = session {
            command["sessionId"] = json!(session);
        }
        self.ws
            .send(Message::text(command.to_string()))
            .await
            .unwrap();
        loop {
            let msg = guard(self.ws.next()).await.unwrap().unwrap();
            let Message::Text(text) = msg else { continue };
            let answer: Value = serde_json::from_str(&text).unwrap();
            if answer["id"] == self.next {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// Opens `url` in a new page; returns the page's session.
    pub async fn open_page(&mut self, url: &str) -> String {
        let created = self
            .call("Target.createTarget", json!({"url": url}), None)
            .await;
        let attached = self
            .call(
                "Target.attachToTarget",
                json!({"targetId": created["targetId"], "flatten": true}),
                None,
            )
            .await;
        attached["sessionId"].as_str().unwrap().to_string()
    }
}

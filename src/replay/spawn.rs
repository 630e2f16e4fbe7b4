//! `--spawn`: starting and stopping the build under test around a replay.
//!
//! The command runs through `sh -c` in its own process group, so stopping it (SIGTERM,
//! then SIGKILL after a grace period) reaches everything it started. Its stderr is kept
//! as a tail of the last lines for the report; its stdout is discarded.

use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// Lines of stderr kept for the report.
pub const TAIL_LINES: usize = 20;
/// Time between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Why the build could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("--spawn {command:?}: cannot start: {source}")]
    Start {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("--spawn {command:?} exited ({status}) before {target} accepted connections; {tail}")]
    DiedEarly {
        command: String,
        status: ExitStatus,
        target: String,
        tail: String,
    },
    #[error("--spawn {command:?}: {target} did not accept connections within {timeout:?}; {tail}")]
    NotReady {
        command: String,
        target: String,
        timeout: Duration,
        tail: String,
    },
}

/// The running build under test.
pub struct Spawned {
    command: String,
    child: Child,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Spawned {
    /// Starts `command` with extra environment variables.
    pub fn start(command: &str, env: &[(String, String)]) -> Result<Spawned, SpawnError> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        let mut child = cmd.spawn().map_err(|source| SpawnError::Start {
            command: command.to_string(),
            source,
        })?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            let tail = tail.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                    if t.len() == TAIL_LINES {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            });
        }
        Ok(Spawned {
            command: command.to_string(),
            child,
            tail,
        })
    }

    /// The last lines the build wrote to stderr, introduced ("its stderr ends with:"),
    /// or that there were none.
    pub fn tail(&self) -> String {
        let t = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        if t.is_empty() {
            return "(its stderr was empty)".into();
        }
        let lines: Vec<_> = t.iter().map(|l| format!("  | {l}")).collect();
        format!("its stderr ends with:\n{}", lines.join("\n"))
    }

    /// Waits until `host:port` accepts TCP connections, or the build dies, or `timeout`.
    pub async fn wait_ready(
        &mut self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<(), SpawnError> {
        let target = format!("{host}:{port}");
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                tokio::time::sleep(Duration::from_millis(50)).await; // let stderr drain
                return Err(SpawnError::DiedEarly {
                    command: self.command.clone(),
                    status,
                    target,
                    tail: self.tail(),
                });
            }
            if TcpStream::connect((host, port)).await.is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(SpawnError::NotReady {
                    command: self.command.clone(),
                    target,
                    timeout,
                    tail: self.tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the build has exited on its own (and how).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Stops the build: SIGTERM to its process group, SIGKILL after [`STOP_GRACE`].
    pub async fn stop(mut self) {
        if self.exited().is_some() {
            return;
        }
        #[cfg(unix)]
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) with a negative pid signals the process group we created.
            unsafe {
                libc::kill(-(pid as i32), libc::SIGTERM);
            }
        }
        if tokio::time::timeout(STOP_GRACE, self.child.wait())
            .await
            .is_err()
        {
            #[cfg(unix)]
            if let Some(pid) = self.child.id() {
                // SAFETY: as above.
                unsafe {
                    libc::kill(-(pid as i32), libc::SIGKILL);
                }
            }
            let _ = self.child.kill().await;
        }
    }
}

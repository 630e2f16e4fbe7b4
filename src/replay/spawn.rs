//! `--spawn`: starting and stopping the build under test around a replay.
//!
//! The command runs through `sh -c` in its own process group, with a marker of its own
//! in its environment ([`MARKER_VAR`]). Its stderr is kept as a tail of the last lines
//! for the report; its stdout is discarded.
//!
//! Stopping it ends everything it started: SIGTERM to every process found, then,
//! after [`STOP_GRACE`], SIGKILL to whatever is left, always (also when `sh` itself
//! has exited, or the processes ignore SIGTERM). What is found:
//!
//! - on every Unix: the command's process group;
//! - on Linux also, from `/proc`: every descendant of those processes (a `setsid`
//!   daemon still running under its parent, a process that changed its group), and
//!   every process whose environment carries this build's marker, which everything
//!   the build starts inherits: a daemon that double-forked away from its parent and
//!   was re-parented is still found;
//! - on Linux, after [`adopt_orphans`] (the command line calls it; the library only
//!   when asked, since it changes who reaps orphans for the whole process): orphaned
//!   descendants are re-parented to this process instead of init, and while no other
//!   build is running, such an adopted child is ended as well even when it cleared its
//!   environment. Stopped processes that are this process's children are reaped.
//!
//! Not found: on Unix systems other than Linux, anything that left the process group
//! (`setsid`, `setpgid`); on Linux without [`adopt_orphans`], a process that left the
//! group, lost its parent *and* cleared its environment; anywhere, what the build had
//! another service start for it (systemd, a container runtime), or a process running
//! as another user. On non-Unix systems only the `sh` process itself is stopped.

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
/// The environment variable that marks every process of one `--spawn` build (its
/// value is unique to the build).
pub const MARKER_VAR: &str = "WSREPLAY_SPAWN_ID";
/// How often a stopping build is looked at.
const POLL: Duration = Duration::from_millis(50);

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
    /// `sh`'s process id, which is also the process group's.
    pid: Option<u32>,
    /// `MARKER_VAR=<value>`, as it appears in the build's environment.
    marker: String,
    stopped: bool,
}

impl Spawned {
    /// Starts `command` with extra environment variables.
    pub fn start(command: &str, env: &[(String, String)]) -> Result<Spawned, SpawnError> {
        let marker = new_marker();
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .envs(env.iter().cloned())
            .env(MARKER_VAR, &marker)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        let marker = format!("{MARKER_VAR}={marker}");
        // Registered under the lock it is spawned under: a stop running meanwhile never
        // mistakes this `sh` for an orphan.
        let (mut child, pid) = track::register(&marker, || {
            let child = cmd.spawn()?;
            let pid = child.id();
            Ok((child, pid))
        })
        .map_err(|source| SpawnError::Start {
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
            pid,
            marker,
            stopped: false,
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

    /// Stops the build and everything it started (see the module documentation):
    /// SIGTERM, and SIGKILL to whatever is left after [`STOP_GRACE`].
    pub async fn stop(mut self) {
        self.stopped = true;
        let Some(pid) = self.pid else {
            return;
        };
        let mut procs = track::Build::new(pid, &self.marker);
        procs.signal(Signal::Term);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
            if !procs.alive(self.exited().is_none()) {
                break;
            }
        }
        // Always, for what ignored SIGTERM or was started meanwhile; a few rounds, as
        // a dying process may still fork.
        for _ in 0..40 {
            if !procs.alive(self.exited().is_none()) {
                break;
            }
            procs.signal(Signal::Kill);
            tokio::time::sleep(POLL).await;
        }
        let _ = self.child.kill().await;
    }
}

impl Drop for Spawned {
    /// Dropped without [`Spawned::stop`] (a build that never got ready): SIGKILL at once.
    fn drop(&mut self) {
        if let (false, Some(pid)) = (self.stopped, self.pid) {
            let mut procs = track::Build::new(pid, &self.marker);
            procs.signal(Signal::Kill);
        }
        if let Some(pid) = self.pid {
            track::unregister(pid);
        }
    }
}

/// A build's marker value: unique per build, across processes.
fn new_marker() -> String {
    let mut random = [0u8; 8];
    let _ = getrandom::fill(&mut random);
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{hex}", std::process::id())
}

/// Makes this process a child subreaper (Linux): orphaned descendants of a `--spawn`
/// build are re-parented to it rather than to init, so [`Spawned::stop`] can end (and
/// reap) them even when they cleared their environment. Affects the whole process:
/// call it only where every child process is a `--spawn` build or is reaped by its
/// owner, as in the `wsreplay` command line. Returns whether it took effect (never on
/// other systems).
pub fn adopt_orphans() -> bool {
    track::adopt_orphans()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signal {
    Term,
    Kill,
}

#[cfg(unix)]
impl Signal {
    fn number(self) -> i32 {
        match self {
            Signal::Term => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
        }
    }
}

/// Finding the processes of a build (see the module documentation).
mod track {
    use std::sync::Mutex;

    use super::Signal;

    /// A started build: its `sh` and its marker.
    struct Registered {
        pid: u32,
        /// `sh`'s start time (Linux), to tell its process group from a later one that
        /// reuses the id.
        start: Option<u64>,
        marker: String,
        stopping: bool,
    }

    /// Builds started by this process and not yet dropped.
    static BUILDS: Mutex<Vec<Registered>> = Mutex::new(Vec::new());

    fn builds() -> std::sync::MutexGuard<'static, Vec<Registered>> {
        BUILDS.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Spawns (with `spawn`) and registers a build, under the registry's lock.
    pub fn register<C>(
        marker: &str,
        spawn: impl FnOnce() -> std::io::Result<(C, Option<u32>)>,
    ) -> std::io::Result<(C, Option<u32>)> {
        let mut builds = builds();
        let (child, pid) = spawn()?;
        if let Some(pid) = pid {
            #[cfg(target_os = "linux")]
            let start = linux::stat(pid as i32).map(|p| p.start);
            #[cfg(not(target_os = "linux"))]
            let start = None;
            builds.push(Registered {
                pid,
                start,
                marker: marker.to_string(),
                stopping: false,
            });
        }
        Ok((child, pid))
    }

    pub fn unregister(pid: u32) {
        builds().retain(|b| b.pid != pid);
    }

    /// The processes of one build, as far as they can be found.
    pub struct Build {
        pgid: i32,
        /// `sh`'s start time, when known.
        #[cfg(target_os = "linux")]
        sh_start: Option<u64>,
        #[cfg(target_os = "linux")]
        marker: String,
        /// Found so far: pid and start time (so that a reused pid is not mistaken).
        #[cfg(target_os = "linux")]
        found: std::collections::HashMap<i32, u64>,
    }

    impl Build {
        pub fn new(pid: u32, marker: &str) -> Build {
            let mut builds = builds();
            let registered = builds.iter_mut().find(|b| b.pid == pid);
            let sh_start = registered.and_then(|b| {
                b.stopping = true;
                b.start
            });
            #[cfg(not(target_os = "linux"))]
            let _ = (marker, sh_start);
            Build {
                pgid: pid as i32,
                #[cfg(target_os = "linux")]
                sh_start,
                #[cfg(target_os = "linux")]
                marker: marker.to_string(),
                #[cfg(target_os = "linux")]
                found: Default::default(),
            }
        }

        /// Sends `sig` to the process group and to every process of the build found.
        pub fn signal(&mut self, sig: Signal) {
            #[cfg(target_os = "linux")]
            {
                let table = linux::scan();
                self.find(&table);
                for p in &table {
                    if self.found.get(&p.pid) == Some(&p.start) && !p.zombie {
                        // SAFETY: kill(2) on a process found just now, start time checked.
                        unsafe { libc::kill(p.pid, sig.number()) };
                    }
                }
                if !self.group_is_ours(&table) {
                    return;
                }
            }
            #[cfg(unix)]
            // SAFETY: kill(2) with a negative pid signals the process group we created
            // (also members forked since the scan).
            unsafe {
                libc::kill(-self.pgid, sig.number());
            }
            #[cfg(not(unix))]
            let _ = sig;
        }

        /// Whether any process of the build is still running (`sh_running`: the `sh`
        /// process, which the caller reaps). Reaps stopped processes that are this
        /// process's children.
        pub fn alive(&mut self, sh_running: bool) -> bool {
            #[cfg(target_os = "linux")]
            {
                let table = linux::scan();
                self.find(&table);
                let me = std::process::id() as i32;
                let builds = builds();
                let mut alive = sh_running;
                for p in &table {
                    if self.found.get(&p.pid) != Some(&p.start) {
                        continue;
                    }
                    if !p.zombie {
                        alive = true;
                    } else if p.ppid == me && !builds.iter().any(|b| b.pid as i32 == p.pid) {
                        // An adopted orphan of the build: reap it (a `sh` is its
                        // Child's to reap).
                        // SAFETY: waitpid(2) on one specific zombie child.
                        unsafe { libc::waitpid(p.pid, std::ptr::null_mut(), libc::WNOHANG) };
                    }
                }
                alive
            }
            #[cfg(all(unix, not(target_os = "linux")))]
            {
                // SAFETY: signal 0 only asks whether the group has members.
                sh_running || unsafe { libc::kill(-self.pgid, 0) } == 0
            }
            #[cfg(not(unix))]
            sh_running
        }

        /// Whether the process group with the build's id is the build's: not a later
        /// group that reuses the id once every member of the build's has gone (its
        /// leader has the id, but another start time).
        #[cfg(target_os = "linux")]
        fn group_is_ours(&self, table: &[linux::Proc]) -> bool {
            !table
                .iter()
                .any(|p| p.pid == self.pgid && Some(p.start) != self.sh_start)
        }

        /// Adds the build's processes in `table` to `found`: the process group, those
        /// with the marker, adopted orphans when no other build runs, and all their
        /// descendants.
        #[cfg(target_os = "linux")]
        fn find(&mut self, table: &[linux::Proc]) {
            let me = std::process::id() as i32;
            let group_is_ours = self.group_is_ours(table);
            let builds = builds();
            let others_running = builds
                .iter()
                .any(|b| b.pid as i32 != self.pgid && !b.stopping);
            let adopting = linux::ADOPTING.load(std::sync::atomic::Ordering::Relaxed);
            for p in table {
                if p.pid == me || self.found.get(&p.pid) == Some(&p.start) {
                    continue;
                }
                let ours = if p.pgid == self.pgid && group_is_ours {
                    true
                } else if p.zombie {
                    // No environment left to read.
                    adopting && p.ppid == me && !others_running && !is_sh(&builds, p.pid)
                } else if p.ppid == me && adopting {
                    let env = linux::environ(p.pid);
                    let has = |m: &str| env.iter().any(|e| e == m.as_bytes());
                    has(&self.marker)
                        || (!others_running
                            && !is_sh(&builds, p.pid)
                            && !builds.iter().any(|b| has(&b.marker)))
                } else {
                    linux::environ(p.pid)
                        .iter()
                        .any(|e| e == self.marker.as_bytes())
                };
                if ours {
                    self.found.insert(p.pid, p.start);
                }
            }
            // Descendants, to any depth.
            let starts: std::collections::HashMap<i32, u64> =
                table.iter().map(|p| (p.pid, p.start)).collect();
            loop {
                let mut more = false;
                for p in table {
                    let parent_found = starts
                        .get(&p.ppid)
                        .is_some_and(|start| self.found.get(&p.ppid) == Some(start));
                    if parent_found && p.pid != me && self.found.get(&p.pid) != Some(&p.start) {
                        self.found.insert(p.pid, p.start);
                        more = true;
                    }
                }
                if !more {
                    break;
                }
            }
        }
    }

    #[cfg(target_os = "linux")]
    fn is_sh(builds: &[Registered], pid: i32) -> bool {
        builds.iter().any(|b| b.pid as i32 == pid)
    }

    pub fn adopt_orphans() -> bool {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: prctl(2) with PR_SET_CHILD_SUBREAPER only sets a process flag.
            let ok = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == 0;
            linux::ADOPTING.store(ok, std::sync::atomic::Ordering::Relaxed);
            ok
        }
        #[cfg(not(target_os = "linux"))]
        false
    }

    #[cfg(target_os = "linux")]
    mod linux {
        use std::sync::atomic::AtomicBool;

        /// Whether this process is a child subreaper ([`super::adopt_orphans`]).
        pub static ADOPTING: AtomicBool = AtomicBool::new(false);

        /// A line of `/proc/<pid>/stat`, the fields used here.
        pub struct Proc {
            pub pid: i32,
            pub ppid: i32,
            pub pgid: i32,
            /// Start time in clock ticks after boot: with the pid, a unique name.
            pub start: u64,
            pub zombie: bool,
        }

        /// Every process in `/proc`.
        pub fn scan() -> Vec<Proc> {
            let Ok(dir) = std::fs::read_dir("/proc") else {
                return Vec::new();
            };
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                .filter_map(stat)
                .collect()
        }

        pub fn stat(pid: i32) -> Option<Proc> {
            let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name, in parentheses, may itself hold spaces and parentheses.
            let rest = &text[text.rfind(')')? + 1..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // fields[0] is field 3 (state) of proc(5).
            Some(Proc {
                pid,
                zombie: matches!(*fields.first()?, "Z" | "X"),
                ppid: fields.get(1)?.parse().ok()?,
                pgid: fields.get(2)?.parse().ok()?,
                start: fields.get(19)?.parse().ok()?,
            })
        }

        /// The `NAME=value` entries of a process's environment (none when unreadable:
        /// another user's process, or one that has exited).
        pub fn environ(pid: i32) -> Vec<Vec<u8>> {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|bytes| bytes.split(|b| *b == 0).map(<[u8]>::to_vec).collect())
                .unwrap_or_default()
        }
    }
}

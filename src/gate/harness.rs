//! The regression gate from Rust tests: what `wsreplay check` does, in a few lines of a
//! team's own `#[tokio::test]`, with the same verdict.
//!
//! A [`Gate`] names a recording (or, with [`Gate::each`], every recording of a
//! directory) and the routes whose recorded servers wsreplay stands in for. Its mocks
//! start first ([`Gate::start`]), so the build under test can be pointed at them; the
//! recorded clients are then replayed against the build ([`Mocks::target`],
//! [`Mocks::run`]) and the run is judged exactly as `check` judges it: the same routes
//! compared, the same `wsreplay.toml` (`[structure]` hints and `[[correlate]]` pairs),
//! the same `snapshots/<name>.snap`, a `.snap.new` to review with `wsreplay review` or
//! `cargo insta review` when the structure changed (none when `CI` is set, as insta
//! does).
//!
//! ```no_run
//! # async fn spawn_backend(nlp: String, data: String, viz: String) -> String { String::new() }
//! # async fn test() {
//! let gate = wsreplay::Gate::load("recordings/checkout.jsonl").mock("nlp").mock("data").mock("viz");
//! let mocks = gate.start().await.unwrap();
//! let build = spawn_backend(mocks.url("nlp"), mocks.url("data"), mocks.url("viz")).await;
//! mocks.target("frontend", build).run().await.unwrap().assert_structure();
//! # }
//! ```
//!
//! A build that checks credentials gets live values in place of the recording's
//! placeholders: [`Gate::credential`] (as `--credential`), or `[replay.credentials]`
//! in `wsreplay.toml`. Values the server issues are learned and sent back as in
//! `check` (`[[live]]` in `wsreplay.toml` too); the result lists them.
//!
//! [`Gate::confirm`] replays a recording whose structure differs again before failing
//! (as `check --confirm N`), and [`Gate::learn`] learns a missing snapshot from several
//! replays (as `check --learn N`); both replay against the same build, whose mocks
//! listen on the same addresses in every replay.
//!
//! Captured runs go to a directory of their own that is removed afterwards, and mocks
//! listen on free ports, so gates may run in parallel tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::check::{compared_routes, expand, in_ci, judge, CheckError, Replayed, SnapshotPolicy};
use super::learn::{write_pending, Learning};
use super::runs::Confirmation;
use super::{CheckResult, Verdict};
use crate::config::FileConfig;
use crate::recording::sink::Output;
use crate::recording::Recording;
use crate::replay::{Replay, ReplayConfig, ReplayReport};
use crate::structure::snapshot;
use crate::structure::{Structure, StructureConfig};

/// A recording to check, and how.
#[derive(Clone, Debug)]
pub struct Gate {
    recording: PathBuf,
    mocks: Vec<String>,
    snapshots: PathBuf,
    config: Option<PathBuf>,
    read_only: bool,
    step_timeout: Duration,
    handshake_timeout: Duration,
    runs: Option<PathBuf>,
    /// Given with [`Gate::credential`]; `Debug` shows names only.
    credentials: Vec<(String, LiveValue)>,
    confirm: usize,
    learn: usize,
}

/// A live value that `Debug` does not show.
#[derive(Clone)]
struct LiveValue(String);

impl std::fmt::Debug for LiveValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("…")
    }
}

impl Gate {
    /// A gate for one recording, with `check`'s defaults: snapshots in `snapshots/`,
    /// `./wsreplay.toml` when present, `.snap.new` written unless `CI` is set, a 10 s
    /// step timeout and a 10 s handshake timeout. Nothing is read until [`Gate::start`].
    pub fn load(recording: impl AsRef<Path>) -> Gate {
        Gate {
            recording: recording.as_ref().to_owned(),
            mocks: Vec::new(),
            snapshots: PathBuf::from("snapshots"),
            config: None,
            read_only: in_ci(),
            step_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            runs: None,
            credentials: Vec::new(),
            confirm: 0,
            learn: 0,
        }
    }

    /// A gate for every `*.jsonl` recording of `dir`, in name order (as `check DIR`).
    pub fn each(dir: impl AsRef<Path>) -> Result<Vec<Gate>, CheckError> {
        let files = expand(&[dir.as_ref().to_owned()])?;
        Ok(files.into_iter().map(Gate::load).collect())
    }

    /// Stands in for the recorded server of `route` (as `--mock ROUTE=127.0.0.1:0`).
    pub fn mock(mut self, route: &str) -> Gate {
        self.mocks.push(route.to_owned());
        self
    }

    /// Where snapshots live (as `--snapshots DIR`).
    pub fn snapshots(mut self, dir: impl AsRef<Path>) -> Gate {
        self.snapshots = dir.as_ref().to_owned();
        self
    }

    /// Reads hints and correlation pairs from this TOML file (as `--config FILE`).
    pub fn config(mut self, file: impl AsRef<Path>) -> Gate {
        self.config = Some(file.as_ref().to_owned());
        self
    }

    /// Writes no snapshot file, also outside CI (as `--check`).
    pub fn check_only(mut self) -> Gate {
        self.read_only = true;
        self
    }

    /// How long a replayed client waits for a message a step depends on.
    pub fn step_timeout(mut self, timeout: Duration) -> Gate {
        self.step_timeout = timeout;
        self
    }

    /// How long a replayed client waits, once connected, for the build to finish the
    /// TLS and WebSocket handshakes (as `--handshake-timeout`): a build that accepts
    /// connections but never answers fails the run instead of hanging it.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Gate {
        self.handshake_timeout = timeout;
        self
    }

    /// Keeps the captured run as `DIR/<name>.jsonl` (as `--runs DIR`) instead of
    /// removing it.
    pub fn runs(mut self, dir: impl AsRef<Path>) -> Gate {
        self.runs = Some(dir.as_ref().to_owned());
        self
    }

    /// Sends `value` where the recording has a placeholder for the redacted query
    /// parameter or header `name` (as `--credential`; headers in any case). It is never
    /// written to the captured run or the report. Overrides an entry of the same name
    /// under `[replay.credentials]` in `wsreplay.toml`.
    pub fn credential(mut self, name: &str, value: impl Into<String>) -> Gate {
        self.credentials
            .push((name.to_owned(), LiveValue(value.into())));
        self
    }

    /// Replays a recording whose structure differs up to `runs` more times (as
    /// `check --confirm N`): when a confirm run is the same as the snapshot, the
    /// verdict is [`Verdict::Flaky`] and no `.snap.new` is written; when every confirm
    /// run differs too, it stays [`Verdict::Differs`].
    pub fn confirm(mut self, runs: usize) -> Gate {
        self.confirm = runs;
        self
    }

    /// When the recording has no snapshot yet, replays it `runs` times (as `check
    /// --learn N`) and writes a `.snap.new` (unless read-only) that learned what varied
    /// between those runs and the recording: `(learned: …)` lines to review. A recording
    /// with a snapshot is checked as usual, by the learned lines it holds.
    pub fn learn(mut self, runs: usize) -> Gate {
        self.learn = runs;
        self
    }

    /// The recording this gate checks.
    pub fn recording(&self) -> &Path {
        &self.recording
    }

    /// Reads the recording, its snapshot and the configuration, and starts the mocks
    /// on free loopback ports.
    pub async fn start(self) -> Result<Mocks, CheckError> {
        let recording = Arc::new(Recording::read(&self.recording)?);
        let file = FileConfig::load(self.config.as_deref())?;
        let name = snapshot::name_of(&self.recording);
        let stored = snapshot::read_structure(&snapshot::path_for(&self.snapshots, &name))?;
        let run_dir = match &self.runs {
            Some(dir) => RunDir::kept(dir)?,
            None => RunDir::temporary()?,
        };
        let run_path = run_dir.path.join(format!("{name}.jsonl"));
        let mut config = ReplayConfig::new(Output::File(run_path.clone()));
        config.id_pairs = file.correlate;
        config.live = file.live;
        config.step_timeout = self.step_timeout;
        let from_file: Vec<_> = (file.replay.credential_specs().into_iter())
            .filter(|f| !self.credentials.iter().any(|(name, _)| *name == f.name))
            .collect();
        config.credentials.read(&from_file)?;
        for (name, LiveValue(value)) in &self.credentials {
            config.credentials.insert(name, value.clone())?;
        }
        config.handshake_timeout = self.handshake_timeout;
        for route in &self.mocks {
            config.mock(route, SocketAddr::from(([127, 0, 0, 1], 0)));
        }
        let replay = Replay::start(recording.clone(), config.clone()).await?;
        // Later replays (confirm and learning runs) listen where the build was pointed.
        config.mocks = replay.mock_addrs();
        Ok(Mocks {
            gate: self,
            recording,
            structure: file.structure,
            stored,
            replay,
            config,
            run_dir,
            run_path,
            targets: Vec::new(),
        })
    }
}

/// A gate's mocks, listening: point the build under test at [`Mocks::url`], then
/// replay the recorded clients against it.
pub struct Mocks {
    gate: Gate,
    recording: Arc<Recording>,
    structure: StructureConfig,
    stored: Option<Structure>,
    replay: Replay,
    /// The replay settings again, the mocks on the addresses they listen on.
    config: ReplayConfig,
    run_dir: RunDir,
    run_path: PathBuf,
    targets: Vec<(String, String)>,
}

impl Mocks {
    /// The `ws://` URL of the mock of `route`.
    ///
    /// # Panics
    /// When `route` was not given to [`Gate::mock`].
    #[track_caller]
    pub fn url(&self, route: &str) -> String {
        match self.replay.mock_addr(route) {
            Some(addr) => format!("ws://{addr}"),
            None => panic!(
                "no mock for route {route:?}: add .mock({route:?}) to the Gate of {}",
                self.gate.recording.display()
            ),
        }
    }

    /// Replays the recorded clients of `route` against the build at `url` (ws:// or
    /// wss://; its path, if any, replaces the recorded one, as with `--target`).
    pub fn target(mut self, route: &str, url: impl Into<String>) -> Mocks {
        self.targets.push((route.to_owned(), url.into()));
        self
    }

    /// Replays the targets, stops the mocks and judges the run against the snapshot
    /// (with the confirm or learning runs asked for).
    pub async fn run(self) -> Result<Outcome, CheckError> {
        let Mocks {
            gate,
            recording,
            structure,
            stored,
            mut replay,
            config,
            run_dir,
            run_path,
            targets,
        } = self;
        for (route, url) in &targets {
            replay.target(route, url)?;
        }
        let report = replay.run().await?;
        let run = Recording::read(&run_path)?;
        let gate = Replays {
            gate,
            recording,
            structure,
            stored,
            config,
            run_dir,
            targets,
        };
        let (result, learned) = gate.judge_all(run, report).await?;
        drop(gate.run_dir);
        Ok(Outcome { result, learned })
    }
}

/// What a gate needs to replay its recording again and judge the runs.
struct Replays {
    gate: Gate,
    recording: Arc<Recording>,
    structure: StructureConfig,
    stored: Option<Structure>,
    /// The replay settings, the mocks on the addresses they listened on.
    config: ReplayConfig,
    run_dir: RunDir,
    targets: Vec<(String, String)>,
}

impl Replays {
    /// Judges the first run, and makes the confirm or learning runs asked for: the
    /// result, and the snapshot learned.
    async fn judge_all(
        &self,
        run: Recording,
        report: ReplayReport,
    ) -> Result<(CheckResult, Option<Structure>), CheckError> {
        let policy = SnapshotPolicy {
            dir: self.gate.snapshots.clone(),
            read_only: self.gate.read_only,
        };
        let quiet = SnapshotPolicy {
            read_only: true,
            ..policy.clone()
        };
        if self.stored.is_none() && self.gate.learn > 0 {
            let judged = self.judge(&run, &report, &quiet)?;
            let mut learning = Learning::new(run, judged);
            for k in 2..=self.gate.learn {
                let (run, report) = self.again(&format!("learn{k}")).await?;
                learning.add(run, &report);
            }
            let targets: Vec<String> = self.targets.iter().map(|(r, _)| r.clone()).collect();
            let routes = compared_routes(&targets, &self.gate.mocks);
            let (learned, mut result) = learning.finish(&self.recording, &routes, &self.structure);
            write_pending(&learned, &mut result, &policy, &self.gate.recording)?;
            return Ok((result, Some(learned.structure)));
        }
        let mut result = self.judge(&run, &report, &policy)?;
        if Confirmation::wanted(&result, self.gate.confirm) {
            let mut confirmation = Confirmation::default();
            for k in 1..=self.gate.confirm {
                let again = self.again(&format!("confirm{k}")).await;
                confirmation.add(again.and_then(|(run, report)| self.judge(&run, &report, &quiet)));
            }
            confirmation.settle(&mut result, self.gate.confirm);
        }
        Ok((result, None))
    }

    /// Replays the targets once more, the mocks listening where they did: the capture
    /// (`<name>.<what>.jsonl`) and the replay's report.
    async fn again(&self, what: &str) -> Result<(Recording, ReplayReport), CheckError> {
        let name = snapshot::name_of(&self.gate.recording);
        let path = self.run_dir.path.join(format!("{name}.{what}.jsonl"));
        let mut config = self.config.clone();
        config.output = Output::File(path.clone());
        let mut replay = Replay::start(self.recording.clone(), config).await?;
        for (route, url) in &self.targets {
            replay.target(route, url)?;
        }
        let report = replay.run().await?;
        Ok((Recording::read(&path)?, report))
    }

    /// Judges a capture of the recording as `check` does.
    fn judge(
        &self,
        run: &Recording,
        report: &ReplayReport,
        policy: &SnapshotPolicy,
    ) -> Result<CheckResult, CheckError> {
        let replayed = Replayed {
            recording_path: &self.gate.recording,
            recording: &self.recording,
            stored: self.stored.clone(),
            run,
            problems: crate::replay::problem_lines(&report.problems),
            live: report.live.lines(),
            targets: self
                .targets
                .iter()
                .map(|(route, _)| route.clone())
                .collect(),
            mocks: self.gate.mocks.clone(),
        };
        Ok(judge(replayed, policy, &self.structure, None)?)
    }
}

/// What a gate found.
#[derive(Clone, Debug)]
pub struct Outcome {
    result: CheckResult,
    learned: Option<Structure>,
}

impl Outcome {
    /// The verdict `wsreplay check` gives on the same inputs.
    pub fn verdict(&self) -> Verdict {
        self.result.verdict()
    }

    /// Everything found: routes compared with their summaries and diffs, replay
    /// problems, where a `.snap.new` was written.
    pub fn result(&self) -> &CheckResult {
        &self.result
    }

    /// The snapshot [`Gate::learn`] learned for a recording without one (also written
    /// as `.snap.new` unless read-only); `None` otherwise.
    pub fn learned(&self) -> Option<&Structure> {
        self.learned.as_ref()
    }

    /// The report `wsreplay check` prints for this recording (without colour).
    pub fn report(&self) -> String {
        self.result.render(false)
    }

    /// Panics with the report (the semantic summary and the diff) unless the structure
    /// is the same as the snapshot's.
    #[track_caller]
    pub fn assert_structure(&self) {
        if self.verdict() != Verdict::Same {
            panic!("wsreplay gate: {}", self.report());
        }
    }
}

/// Panics with the report of every outcome whose structure is not the same, after
/// looking at all of them.
#[track_caller]
pub fn assert_all(outcomes: &[Outcome]) {
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| o.verdict() != Verdict::Same)
        .map(Outcome::report)
        .collect();
    if !failed.is_empty() {
        panic!(
            "wsreplay gate: {} of {} recording(s) failed\n{}",
            failed.len(),
            outcomes.len(),
            failed.join("\n")
        );
    }
}

/// Where a gate's captured run goes: a directory of its own, removed when done, or one
/// the user asked to keep.
struct RunDir {
    path: PathBuf,
    remove: bool,
}

impl RunDir {
    fn temporary() -> Result<RunDir, CheckError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "wsreplay-gate-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        RunDir::make(path, true)
    }

    fn kept(dir: &Path) -> Result<RunDir, CheckError> {
        RunDir::make(dir.to_owned(), false)
    }

    fn make(path: PathBuf, remove: bool) -> Result<RunDir, CheckError> {
        std::fs::create_dir_all(&path).map_err(|source| CheckError::RunDir {
            path: path.clone(),
            source,
        })?;
        Ok(RunDir { path, remove })
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

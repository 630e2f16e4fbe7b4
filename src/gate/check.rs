//! `wsreplay snapshot`, `check` and `diff`: the regression gate.
//!
//! `check` replays each recording against the build (see [`crate::replay`]), normalises
//! the captured run with the recording's [`Hints`](crate::structure::Hints) (and the
//! streams a learned snapshot names), reads it against the snapshot's learned lines
//! ([`crate::structure::learn`]) and compares the replayed routes with
//! `snapshots/<name>.snap`. A difference is printed as a unified diff and a semantic
//! summary, and (unless in CI or `--check`) written to `snapshots/<name>.snap.new` for
//! `wsreplay review` (or `cargo insta review`). Confirm and learning runs, and many
//! recordings at once, are [`super::runs`]; recordings can be split across CI machines
//! (`--partition I/N`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::config::{ConfigError, Target};
use crate::recording::sink::Output;
use crate::recording::{Dir, ReadError, Record, Recording};
use crate::replay::{Replay, ReplayConfig, ReplayError, ReplayReport, ReplayTarget};
use crate::structure::diff::{compare, routes_of, RouteDiff};
use crate::structure::sequence::{ArrowKind, Sequence};
use crate::structure::snapshot::{self, SnapshotError};
use crate::structure::timing::TimingConfig;
use crate::structure::{learn, Observation, Structure, StructureConfig};

use super::result::{CheckResult, Diagram};
use super::verdict::Verdict;

/// Why a recording could not be snapshotted, checked or diffed, or the recordings to
/// check could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Credential(#[from] crate::replay::credentials::CredentialError),
    /// No free port for `{port}`.
    #[error(transparent)]
    FreePort(std::io::Error),
    #[error("{path}: cannot list: {source}")]
    ListDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no *.jsonl or *.jsonl.zst recordings in this directory")]
    NoRecordings { path: PathBuf },
    #[error(
        "{first} and {second} would share the snapshot {name}.snap (a snapshot is named after its recording's file name); rename one of them"
    )]
    SameName {
        first: PathBuf,
        second: PathBuf,
        name: String,
    },
    #[error("cannot make a directory for the captured run in {path}: {source}")]
    RunDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where snapshots live and whether wsreplay may write there.
#[derive(Clone, Debug)]
pub struct SnapshotPolicy {
    pub dir: PathBuf,
    /// Write no snapshot files (`--check`, or `CI` set).
    pub read_only: bool,
}

/// Whether `CI` is set the way insta reads it (anything but empty, `0`, `false`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// A snapshot [`write_snapshot`] wrote.
#[derive(Clone, Debug)]
pub struct WrittenSnapshot {
    /// The snapshot file (`DIR/<name>.snap`).
    pub path: PathBuf,
    /// The structure it holds.
    pub structure: Structure,
    /// What the reader tolerated in the recording (`FILE:LINE: message`).
    pub warnings: Vec<String>,
}

/// `wsreplay snapshot`: writes `DIR/<name>.snap` for a recording.
pub fn write_snapshot(
    recording_path: &Path,
    dir: &Path,
    config: &StructureConfig,
) -> Result<WrittenSnapshot, CheckError> {
    let recording = Recording::read(recording_path)?;
    let structure = Structure::of_with(&recording, config);
    let path = snapshot::path_for(dir, &snapshot::name_of(recording_path));
    snapshot::write(&path, recording_path, &structure.render())?;
    Ok(WrittenSnapshot {
        path,
        structure,
        warnings: recording.warning_lines(),
    })
}

/// `wsreplay diff A B`: B's structure against A's, with A's hints.
pub fn diff_recordings(
    a: &Path,
    b: &Path,
    config: &StructureConfig,
) -> Result<CheckResult, CheckError> {
    let (a_rec, b_rec) = (Recording::read(a)?, Recording::read(b)?);
    let a_obs = Observation::of_with(&a_rec, config);
    let hints = a_obs.hints_with(config);
    let new = Observation::of_with(&b_rec, config).render(&hints);
    let old = a_obs.render(&hints);
    Ok(CheckResult {
        recording: b.to_owned(),
        name: snapshot::name_of(a),
        routes: compare(&old, &new, &routes_of(&old, &new)),
        error: None,
        replay_problems: Vec::new(),
        live: Vec::new(),
        snapshot_missing: false,
        written: None,
        timing: Vec::new(),
        faults: injected(&b_rec),
        diagram: Some(diagram(&b_rec, &old, &new)),
        warnings: [a_rec.warning_lines(), b_rec.warning_lines()].concat(),
        flaky: None,
        reproduced: 0,
    })
}

/// The sequence diagram of `run`, with the first message whose kind's structure
/// differs between `old` and `new` marked.
fn diagram(run: &Recording, old: &Structure, new: &Structure) -> Diagram {
    let seq = Sequence::of(run);
    let kind = |s: &Structure, route: &str, key: &(Dir, String)| {
        s.routes.get(route).and_then(|r| r.kinds.get(key)).cloned()
    };
    let first = seq.arrows.iter().position(|a| {
        let key = (a.dir, a.label.clone());
        a.kind == ArrowKind::Message
            && old.routes.contains_key(&a.route)
            && kind(old, &a.route, &key) != kind(new, &a.route, &key)
    });
    Diagram {
        sequence: seq,
        first_difference: first,
    }
}

/// Says which summary lines a `--fault` caused: a kind the rule hit on its route.
fn mark_injected(routes: &mut [RouteDiff], run: &Recording) {
    let conns: std::collections::BTreeMap<u64, &str> =
        run.opens().map(|o| (o.conn, o.route.as_str())).collect();
    for r in &run.records {
        let Record::Fault(f) = r else { continue };
        let Some(route) = routes
            .iter_mut()
            .find(|d| conns.get(&f.conn) == Some(&d.route.as_str()))
        else {
            continue;
        };
        let suffix = format!(" — injected by --fault {}", f.rule);
        for line in &mut route.summary {
            if line.starts_with(&format!("{} (", f.label)) && !line.ends_with(&suffix) {
                line.push_str(&suffix);
            }
        }
    }
}

/// The faults a replay injected: "data: drop sql_query_response ×2 (--fault …)".
fn injected(run: &Recording) -> Vec<String> {
    let routes: std::collections::BTreeMap<u64, &str> =
        run.opens().map(|o| (o.conn, o.route.as_str())).collect();
    let mut counts: std::collections::BTreeMap<(&str, &str, &str, &str), usize> =
        Default::default();
    for r in &run.records {
        if let Record::Fault(f) = r {
            let route = routes.get(&f.conn).copied().unwrap_or("?");
            *counts
                .entry((route, &f.action, &f.label, &f.rule))
                .or_default() += 1;
        }
    }
    counts
        .into_iter()
        .map(|((route, action, label, rule), n)| {
            format!("{route}: {action} {label} ×{n} (--fault {rule})")
        })
        .collect()
}

/// What `check` replays against: the replay settings shared by every recording.
#[derive(Clone, Debug)]
pub struct CheckConfig {
    /// The targets as given; a URL may contain `{port}` (a free port per recording).
    pub targets: Vec<Target>,
    /// Mocks, pacing, timeouts, id pairs and the `--spawn` command (which may contain
    /// `{port}`, like the targets) for every replay.
    pub replay: ReplayConfig,
    /// Directory for the captured runs (`runs/`).
    pub runs_dir: PathBuf,
    pub snapshots: SnapshotPolicy,
    /// Literal-field overrides (`[structure]` in `wsreplay.toml`).
    pub structure: StructureConfig,
    /// Compare timing with the recording (`--timing`), within this envelope.
    pub timing: Option<TimingConfig>,
    /// `--confirm N`: replay a recording whose structure differs up to N more times;
    /// when some confirm run is the same, the difference is flaky, not a failure.
    pub confirm: usize,
    /// `--learn N`: a recording without a snapshot is replayed N times and its
    /// `.snap.new` learns what varied ([`crate::structure::learn`]); not when the
    /// snapshots are read-only (nothing would be written).
    pub learn: usize,
}

impl CheckConfig {
    /// The routes whose recorded servers are mocked.
    pub(super) fn mocks(&self) -> Vec<String> {
        self.replay.mocks.iter().map(|m| m.route.clone()).collect()
    }

    /// The routes a replay is compared on: the targets' and the mocks', sorted.
    pub(super) fn replayed_routes(&self) -> Vec<String> {
        let targets: Vec<String> = self.targets.iter().map(|t| t.route.clone()).collect();
        compared_routes(&targets, &self.mocks())
    }
}

/// The routes compared after a replay: the replayed clients' and the mocked servers',
/// sorted, once each.
pub(super) fn compared_routes(targets: &[String], mocks: &[String]) -> Vec<String> {
    let mut routes: Vec<String> = targets.iter().chain(mocks).cloned().collect();
    routes.sort();
    routes.dedup();
    routes
}

/// One replay of a recording to judge: the first, a confirm or a learning run.
pub(super) struct Run<'a> {
    pub recording_path: &'a Path,
    pub recording: &'a Recording,
    pub stored: &'a Option<Structure>,
    /// The capture's file name in the runs directory.
    pub capture: String,
}

/// Replays `run` against the build (a free port per replay) and judges its capture.
pub(super) async fn replay_and_judge(
    run: Run<'_>,
    config: &CheckConfig,
    snapshots: &SnapshotPolicy,
) -> Result<CheckResult, CheckError> {
    let (captured, report) = replay(&run, config).await?;
    judge_replay(&run, &captured, &report, config, snapshots)
}

/// Replays `run` against the build, on a free port: the capture and what the replay
/// reported.
pub(super) async fn replay(
    run: &Run<'_>,
    config: &CheckConfig,
) -> Result<(Recording, ReplayReport), CheckError> {
    let port = free_port().map_err(CheckError::FreePort)?;
    let run_path = config.runs_dir.join(&run.capture);
    let mut replay_config = config.replay.clone();
    replay_config.output = Output::File(run_path.clone());
    if let Some(spawn) = &mut replay_config.spawn {
        spawn.command = spawn.command.replace("{port}", &port.to_string());
    }
    replay_config.targets = config
        .targets
        .iter()
        .map(|t| ReplayTarget::resolve(&t.with_port(port)))
        .collect::<Result<_, ConfigError>>()?;
    let report = Replay::start(run.recording.clone(), replay_config)
        .await?
        .run()
        .await?;
    Ok((Recording::read(&run_path)?, report))
}

/// Judges the capture of a replay of `run` against its snapshot.
pub(super) fn judge_replay(
    run: &Run<'_>,
    captured: &Recording,
    report: &ReplayReport,
    config: &CheckConfig,
    snapshots: &SnapshotPolicy,
) -> Result<CheckResult, CheckError> {
    let replayed = Replayed {
        recording_path: run.recording_path,
        recording: run.recording,
        stored: run.stored.clone(),
        run: captured,
        problems: crate::replay::problem_lines(&report.problems),
        live: report.live.lines(),
        targets: config.targets.iter().map(|t| t.route.clone()).collect(),
        mocks: config.mocks(),
    };
    Ok(judge(
        replayed,
        snapshots,
        &config.structure,
        config.timing.as_ref(),
    )?)
}

/// What a replay left to judge against the snapshot.
pub(crate) struct Replayed<'a> {
    pub recording_path: &'a Path,
    pub recording: &'a Recording,
    /// The snapshot as stored, if there is one.
    pub stored: Option<Structure>,
    /// The capture of the replay.
    pub run: &'a Recording,
    /// What the replay reported (context, not verdict).
    pub problems: Vec<String>,
    /// What the replay did with live values (context, not verdict).
    pub live: Vec<String>,
    /// Routes whose recorded clients were replayed.
    pub targets: Vec<String>,
    /// Routes whose recorded servers were mocked.
    pub mocks: Vec<String>,
}

/// Normalises a replay's capture with the recording's hints, compares the replayed
/// routes with the stored snapshot (and timing, when asked), and writes the changed
/// structure as `.snap.new` unless the policy is read-only. `check` and the Rust test
/// API ([`crate::Gate`]) both judge with this, so they give the same verdict.
pub(crate) fn judge(
    replayed: Replayed<'_>,
    snapshots: &SnapshotPolicy,
    structure: &StructureConfig,
    timing: Option<&TimingConfig>,
) -> Result<CheckResult, snapshot::SnapshotError> {
    let Replayed {
        recording_path,
        recording,
        stored,
        run,
        problems,
        live,
        targets,
        mocks,
    } = replayed;
    let name = snapshot::name_of(recording_path);
    // A learned snapshot's streams are streams in the run too; its other learned lines
    // take the run's lines that stay within them.
    let mut structure = structure.clone();
    if let Some(stored) = &stored {
        structure.learned_streams = learn::learned_streams(stored);
    }
    let hints = Observation::of_with(recording, &structure).hints_with(&structure);
    let mut new = Observation::of_with(run, &structure).render(&hints);
    if let Some(stored) = &stored {
        learn::relax(&mut new, stored);
    }
    let routes = compared_routes(&targets, &mocks);
    let mut result = CheckResult {
        recording: recording_path.to_owned(),
        name: name.clone(),
        routes: Vec::new(),
        error: None,
        replay_problems: problems,
        live,
        snapshot_missing: stored.is_none(),
        written: None,
        timing: Vec::new(),
        faults: injected(run),
        diagram: None,
        warnings: [recording.warning_lines(), run.warning_lines()].concat(),
        flaky: None,
        reproduced: 0,
    };
    let base = stored.clone().unwrap_or_default();
    result.diagram = Some(diagram(run, &base, &new));
    result.routes = if stored.is_some() {
        compare(&base, &new, &routes)
    } else {
        Vec::new()
    };
    mark_injected(&mut result.routes, run);
    if let Some(envelope) = timing {
        // What the build sends: server messages to replayed clients, requests to mocks.
        let streams: Vec<(String, Dir)> = targets
            .iter()
            .map(|r| (r.clone(), Dir::ServerToClient))
            .chain(mocks.iter().map(|r| (r.clone(), Dir::ClientToServer)))
            .collect();
        result.timing = crate::structure::timing::compare(recording, run, &streams, envelope);
    }
    if result.verdict() == Verdict::Differs && !snapshots.read_only {
        // Routes that were not replayed keep their snapshot sections.
        let mut merged = base;
        for route in &routes {
            match new.routes.get(route) {
                Some(section) => merged.routes.insert(route.clone(), section.clone()),
                None => merged.routes.remove(route),
            };
        }
        let path = snapshot::new_path_for(&snapshots.dir, &name);
        snapshot::write(&path, recording_path, &merged.render())?;
        result.written = Some(path);
    }
    Ok(result)
}

/// A free port for `{port}`, below the system's ephemeral range (Linux's
/// `ip_local_port_range`, else the IANA 49152–65535) and never handed out twice by
/// this process. A port the kernel gives for `:0` was free only when asked: before the
/// build bound it, a mock of a parallel recording (`-j`) bound `:0` and got the same
/// one, or an outgoing connection took it, so the build failed to listen and that
/// recording's client talked to another's mock (seen once in 40 parallel checks of
/// the Python example system). Ports below the range are never given for `:0` nor to
/// outgoing connections; falls back to `:0` when none is free.
fn free_port() -> std::io::Result<u16> {
    use std::sync::Mutex;
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(49152);
    let (low, high) = (10_000u16, ephemeral.saturating_sub(1));
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    if high > low {
        for _ in 0..200 {
            let port = low + (getrandom::u32().unwrap_or(0) % u32::from(high - low)) as u16;
            if !given.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                given.push(port);
                return Ok(port);
            }
        }
    }
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Refuses two recordings that would share a snapshot (`a/same.jsonl`, `b/same.jsonl`).
pub fn unique_names(files: &[PathBuf]) -> Result<(), CheckError> {
    let mut seen: std::collections::HashMap<String, &PathBuf> = Default::default();
    for file in files {
        let name = snapshot::name_of(file);
        if let Some(first) = seen.insert(name.clone(), file) {
            if first != file {
                return Err(CheckError::SameName {
                    first: first.clone(),
                    second: file.clone(),
                    name,
                });
            }
        }
    }
    Ok(())
}

/// Expands directories to their `*.jsonl` and `*.jsonl.zst` files, sorted; keeps files as given.
pub fn expand(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, CheckError> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|source| CheckError::ListDir {
                    path: input.clone(),
                    source,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| crate::recording::is_recording_name(p))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(CheckError::NoRecordings {
                    path: input.clone(),
                });
            }
            out.extend(files);
        } else {
            out.push(input.clone());
        }
    }
    Ok(out)
}

/// `--partition I/N`: shard `index` of `count`, to split the recordings across CI
/// machines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Which shard, from 1 to `count`.
    pub index: usize,
    /// How many shards.
    pub count: usize,
}

/// A `--partition` that is not `I/N` with `1 <= I <= N`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected I/N with 1 <= I <= N, e.g. 2/4")]
pub struct PartitionError;

impl Partition {
    /// The recordings this shard takes: every N-th, starting at the I-th.
    pub fn select(self, files: Vec<PathBuf>) -> Vec<PathBuf> {
        files
            .into_iter()
            .enumerate()
            .filter(|(k, _)| k % self.count == self.index - 1)
            .map(|(_, f)| f)
            .collect()
    }
}

impl FromStr for Partition {
    type Err = PartitionError;

    fn from_str(spec: &str) -> Result<Partition, PartitionError> {
        let (i, n) = spec.split_once('/').ok_or(PartitionError)?;
        let index = i.trim().parse::<usize>().map_err(|_| PartitionError)?;
        let count = n.trim().parse::<usize>().map_err(|_| PartitionError)?;
        if count == 0 || !(1..=count).contains(&index) {
            return Err(PartitionError);
        }
        Ok(Partition { index, count })
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// `--partition I/N`: the recordings this shard takes (all of them without one).
pub fn partition(files: Vec<PathBuf>, partition: Option<Partition>) -> Vec<PathBuf> {
    match partition {
        Some(p) => p.select(files),
        None => files,
    }
}

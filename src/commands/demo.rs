//! `wsreplay demo`: the whole story on the built-in demo system: record it, snapshot it,
//! check the same build (passes) and a build with a breaking change (fails, with the
//! diff), printing what a CI job would see.

use std::path::PathBuf;

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use super::terminal::use_color;
use crate::demo::RecordedDemo;
use crate::gate::Verdict;
use crate::recording::sink::Output;

/// Arguments of `wsreplay demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory for the demo's recording, snapshot and runs (emptied first if the demo
    /// made it; any other non-empty directory is refused) [default: wsreplay-demo-UID in
    /// the system's temporary directory].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Chats the demo frontend sends.
    #[arg(long, default_value_t = 3)]
    pub chats: usize,
}

/// `wsreplay demo`: record the demo system, snapshot it, check the same build, then
/// check a build with the payload→data regression, printing what a CI job would see.
pub async fn run(args: DemoArgs) -> anyhow::Result<Verdict> {
    let dir = args.dir.unwrap_or_else(default_dir);
    run_in(dir, args.chats).await
}

async fn run_in(dir: PathBuf, chats: usize) -> anyhow::Result<Verdict> {
    let color = use_color();
    let recording = dir.join("recordings").join("checkout.jsonl");
    let snapshots = dir.join("snapshots");
    prepare_dir(&dir)?;
    println!("wsreplay demo: catching a breaking change in a WebSocket event, end to end.");
    println!(
        "Everything runs on this machine; files go to {}\n",
        dir.display()
    );

    println!("1. RECORD. A backend and three agents (nlp, data, viz) start in-process, with the");
    println!(
        "   recording proxy on all four hops. A frontend sends a heartbeat, {chats} chats and a"
    );
    println!("   malformed message through it.\n");
    let demo = RecordedDemo::start(false, Output::File(recording.clone())).await?;
    let report = demo.run_frontend("demo", chats).await;
    let outcome = demo.stop().await;
    let report = report?;
    anyhow::ensure!(outcome.complete(), "the demo recording is incomplete");
    let rec = crate::recording::Recording::read(&recording)?;
    indent(&crate::recording::summary::render(&rec));
    println!(
        "   The frontend validated every event: {} problem(s).\n",
        report.problems.len()
    );

    println!("2. SNAPSHOT. Each message kind reduced to its structure (key paths, types, formats;");
    println!("   no ids, timestamps or other volatile values), as an insta snapshot file:\n");
    let snap = crate::gate::check::write_snapshot(&recording, &snapshots, &Default::default())?;
    let section = snap.structure.render_route("frontend");
    let excerpt: String = section
        .split("\n\n")
        .filter(|block| block.starts_with("### s2c tool_executing"))
        .collect();
    println!(
        "   $ wsreplay snapshot {}   → {}",
        recording.display(),
        snap.path.display()
    );
    indent(&format!("[...]\n{excerpt}\n[...]"));

    let exe = std::env::current_exe()?;
    for (step, regression) in [(3, false), (4, true)] {
        if regression {
            println!("4. CHECK A NEW BUILD. The backend now sends tool_executing as");
            println!("   {{\"type\",\"data\":{{...}},\"user_id\",...}} instead of {{\"type\",\"payload\":{{...}}}}:");
            println!("   the frontend would silently drop every such event.\n");
        } else {
            println!(
                "\n3. CHECK THE SAME BUILD. wsreplay replays the recorded frontend against a fresh"
            );
            println!("   backend (started with --spawn) and answers for the agents from the recording.\n");
        }
        let spawn = format!(
            "exec '{}' serve-demo --backend 127.0.0.1:{{port}} --nlp-url \"$WSREPLAY_MOCK_NLP\" --data-url \"$WSREPLAY_MOCK_DATA\" --viz-url \"$WSREPLAY_MOCK_VIZ\"{}",
            exe.display(),
            if regression { " --regression" } else { "" }
        );
        let mut replay = crate::replay::ReplayConfig::new(Output::Discard);
        replay.progress = crate::replay::ProgressHandle::new(super::terminal::Bars::default());
        for agent in ["nlp", "data", "viz"] {
            replay.mock(agent, SocketAddr::from(([127, 0, 0, 1], 0)));
        }
        replay.step_timeout = Duration::from_secs(5);
        replay.spawn = Some(crate::replay::SpawnSpec {
            command: spawn,
            timeout: Duration::from_secs(10),
        });
        let config = crate::gate::check::CheckConfig {
            targets: vec![crate::config::Target::new(
                "frontend",
                "ws://127.0.0.1:{port}",
            )],
            replay,
            runs_dir: dir.join("runs"),
            snapshots: crate::gate::check::SnapshotPolicy {
                dir: snapshots.clone(),
                read_only: regression && crate::gate::check::in_ci(),
            },
            structure: Default::default(),
            timing: None,
            confirm: 0,
            learn: 0,
        };
        println!(
            "   $ wsreplay check {} --target frontend=ws://127.0.0.1:{{port}} \\\n       --mock nlp=127.0.0.1:0 --mock data=127.0.0.1:0 --mock viz=127.0.0.1:0 \\\n       --spawn 'backend{} ...'\n",
            recording.display(),
            if regression { " (new build)" } else { "" }
        );
        let result = crate::gate::runs::check_one(&recording, &config).await;
        indent(&result.render(color));
        let code = result.verdict().exit_code();
        println!(
            "   → exit code {code}{}\n",
            match (step, code) {
                (3, 0) => ": same structure, a CI job passes",
                (4, 1) => ": structure differs, a CI job FAILS here",
                _ => " (unexpected for this demo step)",
            }
        );
        let expected = if regression { 1 } else { 0 };
        anyhow::ensure!(
            code == expected,
            "demo step {step} gave exit code {code}, expected {expected}"
        );
    }
    println!("If the change was intended, a reviewer accepts it:");
    println!("   wsreplay review        (or, in a Rust project: cargo insta review)");
    println!("and the next check passes. Try it on your own system with `wsreplay record`, see README.md.");
    Ok(Verdict::Same)
}

/// The file that marks a directory as the demo's own: `demo` empties only such a one.
const MARKER: &str = ".wsreplay-demo";

/// What a demo directory may hold besides [`MARKER`]: the demo's own output.
const DEMO_ENTRIES: [&str; 3] = ["recordings", "snapshots", "runs"];

/// The default `--dir`: per user, so that users sharing a temporary directory do not
/// meet each other's demo.
pub fn default_dir() -> PathBuf {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("wsreplay-demo-{uid}"))
}

/// Makes `dir` an empty demo directory holding only [`MARKER`]. An existing directory is
/// emptied only when it is one the demo made: it has the marker and nothing but the
/// demo's own output. Anything else is refused before a file is touched (a project's own
/// `recordings/` and `snapshots/` look like the demo's, but have no marker).
fn prepare_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    let mut entries = Vec::new();
    match fs_err::read_dir(dir) {
        Ok(list) => {
            for entry in list {
                entries.push(entry?.file_name());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let marked = entries.iter().any(|n| n == MARKER);
    let only_own = entries
        .iter()
        .all(|n| n == MARKER || DEMO_ENTRIES.iter().any(|d| n == d));
    let demo_dir = entries.is_empty() || (marked && only_own);
    if !demo_dir {
        anyhow::bail!(
            "{} is not empty and is not a wsreplay demo directory; choose another --dir (nothing was deleted)",
            dir.display()
        );
    }
    for name in &entries {
        let path = dir.join(name);
        if path.is_dir() && !path.is_symlink() {
            fs_err::remove_dir_all(&path)?;
        } else {
            fs_err::remove_file(&path)?;
        }
    }
    fs_err::create_dir_all(dir)?;
    fs_err::write(
        dir.join(MARKER),
        "made by `wsreplay demo`, which empties this directory when it runs again\n",
    )?;
    Ok(())
}

/// Prints text indented under a step.
fn indent(text: &str) {
    for line in text.lines() {
        println!("   {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_the_demo_did_not_make_is_left_alone() {
        let refused = |dir: &std::path::Path| {
            let err = prepare_dir(dir).unwrap_err().to_string();
            assert_eq!(
                err,
                format!(
                    "{} is not empty and is not a wsreplay demo directory; choose another --dir (nothing was deleted)",
                    dir.display()
                )
            );
        };
        // A project of the user's: the same folders as the demo's, but no marker.
        let project = tempfile::tempdir().unwrap();
        for d in DEMO_ENTRIES {
            std::fs::create_dir(project.path().join(d)).unwrap();
        }
        refused(project.path());
        assert!(project.path().join("recordings").exists());
        // A demo directory the user has put a file of their own into.
        let demo = tempfile::tempdir().unwrap();
        prepare_dir(demo.path()).unwrap();
        std::fs::write(demo.path().join("notes.txt"), "mine").unwrap();
        refused(demo.path());
        assert!(demo.path().join("notes.txt").exists());
    }

    #[test]
    fn a_demo_directory_is_emptied_and_marked() {
        let fresh = tempfile::tempdir().unwrap();
        let new = fresh.path().join("new");
        prepare_dir(&new).unwrap();
        assert!(new.join(MARKER).exists());

        // What a run leaves: the marker and the demo's own output. All of it goes.
        for d in DEMO_ENTRIES {
            std::fs::create_dir_all(new.join(d).join("x")).unwrap();
        }
        prepare_dir(&new).unwrap();
        let names: Vec<_> = std::fs::read_dir(&new)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [MARKER]);

        // An empty directory is fine too.
        let empty = tempfile::tempdir().unwrap();
        prepare_dir(empty.path()).unwrap();
        assert!(empty.path().join(MARKER).exists());
    }
}

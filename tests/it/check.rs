//! `wsreplay snapshot`, `check` and `diff` as a CI job runs them: exit codes, files
//! written for review, JUnit and Markdown outputs.

use std::path::Path;
use std::process::Output;

use crate::support::*;

/// A scratch project with the repository's demo recording.
pub fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("recordings")).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/recordings/checkout.jsonl"),
        dir.path().join("recordings/checkout.jsonl"),
    )
    .unwrap();
    dir
}

/// [`project`] with its recording snapshotted.
pub async fn snapshotted_project() -> tempfile::TempDir {
    let p = project();
    let snap = wsreplay(p.path(), &["snapshot", "recordings/checkout.jsonl"], false).await;
    assert!(snap.status.success(), "{}", text(&snap));
    p
}

pub async fn wsreplay(dir: &Path, args: &[&str], ci: bool) -> Output {
    let mut cmd = tokio::process::Command::new(bin());
    cmd.current_dir(dir).args(args).env_remove("CI");
    if ci {
        cmd.env("CI", "true");
    }
    guard(cmd.output()).await.unwrap()
}

async fn check(dir: &Path, regression: bool, extra: &[&str], ci: bool) -> Output {
    let serve = if regression { " --regression" } else { "" };
    check_with(dir, serve, extra, ci).await
}

/// `wsreplay check` against `serve-demo` with `serve` appended to its arguments.
pub async fn check_with(dir: &Path, serve: &str, extra: &[&str], ci: bool) -> Output {
    check_spawning(dir, &serve_demo(serve), extra, ci).await
}

/// The `--spawn` command of a `serve-demo` build with `serve` appended to its arguments.
pub fn serve_demo(serve: &str) -> String {
    format!(
        "exec {} serve-demo --backend 127.0.0.1:{{port}} --nlp-url $WSREPLAY_MOCK_NLP --data-url $WSREPLAY_MOCK_DATA --viz-url $WSREPLAY_MOCK_VIZ{serve}",
        bin(),
    )
}

/// `wsreplay check` of the project's recordings against the build `spawn` starts.
async fn check_spawning(dir: &Path, spawn: &str, extra: &[&str], ci: bool) -> Output {
    let mut args = vec![
        "check",
        "recordings/",
        "--target",
        "frontend=ws://127.0.0.1:{port}",
    ];
    args.extend_from_slice(&MOCK_AGENTS);
    args.extend_from_slice(&["--spawn", spawn]);
    args.extend_from_slice(extra);
    wsreplay(dir, &args, ci).await
}

/// The test cases of a JUnit report, as a standard consumer reads them.
fn junit_cases(path: &Path) -> Vec<junit_parser::TestCase> {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    junit_parser::from_reader(file)
        .unwrap()
        .suites
        .remove(0)
        .cases
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test]
async fn the_gate_passes_fails_and_writes_a_reviewable_snapshot() {
    let p = project();
    let dir = p.path();
    let snap = wsreplay(dir, &["snapshot", "recordings/checkout.jsonl"], false).await;
    assert!(snap.status.success(), "{}", text(&snap));
    assert!(insta::Snapshot::from_file(&dir.join("snapshots/checkout.snap")).is_ok());

    let same = check(dir, false, &["--junit", "same.xml"], false).await;
    assert_eq!(same.status.code(), Some(0), "{}", text(&same));
    assert!(text(&same).contains("recordings/checkout.jsonl: same structure"));

    let differs = check(
        dir,
        true,
        &["--junit", "junit.xml", "--summary-md", "summary.md"],
        false,
    )
    .await;
    let out = text(&differs);
    assert_eq!(differs.status.code(), Some(1), "{out}");
    assert!(
        out.contains("tool_executing (server→client): `payload` object missing; new `data` object"),
        "{out}"
    );
    assert!(
        out.contains("-payload                         object"),
        "{out}"
    );
    let new = dir.join("snapshots/checkout.snap.new");
    let pending = insta::Snapshot::from_file(&new).expect("a .snap.new insta can read");
    assert!(
        matches!(pending.contents(), insta::internals::SnapshotContents::Text(t) if t.to_string().contains("data.tool_name"))
    );

    // A standard JUnit consumer reads the report: one case per route, the frontend failing.
    let cases = &junit_cases(&dir.join("junit.xml"));
    assert_eq!(cases.len(), 4);
    let frontend = cases
        .iter()
        .find(|c| c.original_name == "checkout: frontend")
        .unwrap();
    assert_eq!(
        frontend.classname.as_deref(),
        Some("recordings/checkout.jsonl")
    );
    let junit_parser::TestStatus::Failure(failure) = &frontend.status else {
        panic!("the frontend case should fail: {:?}", frontend.status)
    };
    assert!(
        failure.message.contains("`payload` object missing"),
        "{}",
        failure.message
    );
    assert!(cases
        .iter()
        .filter(|c| c.original_name != "checkout: frontend")
        .all(|c| c.status.is_success()));
    assert!(junit_cases(&dir.join("same.xml"))
        .iter()
        .all(|c| c.status.is_success()));
    let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        md.contains("| recordings/checkout.jsonl | frontend | ❌ differs | tool\\_executing"),
        "{md}"
    );

    // Accepting the change (what `cargo insta accept` does: .snap.new → .snap) makes
    // the new build pass.
    std::fs::rename(&new, dir.join("snapshots/checkout.snap")).unwrap();
    let accepted = check(dir, true, &[], false).await;
    assert_eq!(accepted.status.code(), Some(0), "{}", text(&accepted));
}

#[tokio::test]
async fn in_ci_no_snapshot_file_is_written() {
    let p = project();
    let dir = p.path();
    wsreplay(dir, &["snapshot", "recordings/"], false).await;
    let differs = check(dir, true, &[], true).await;
    assert_eq!(differs.status.code(), Some(1), "{}", text(&differs));
    assert!(!dir.join("snapshots/checkout.snap.new").exists());
    assert!(text(&differs).contains("(no snapshot files written)"));
    let explicit = check(dir, true, &["--check"], false).await;
    assert_eq!(explicit.status.code(), Some(1));
    assert!(!dir.join("snapshots/checkout.snap.new").exists());
}

#[tokio::test]
async fn a_missing_snapshot_fails_and_an_unreachable_target_is_exit_2() {
    let p = project();
    let dir = p.path();
    let missing = check(dir, false, &["--check"], false).await;
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
    assert!(text(&missing).contains("NO SNAPSHOT"));
    wsreplay(dir, &["snapshot", "recordings/"], false).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = format!("frontend=ws://127.0.0.1:{port}");
    let down = wsreplay(
        dir,
        &[
            "check",
            "recordings/",
            "--target",
            &target,
            "--junit",
            "j.xml",
        ],
        false,
    )
    .await;
    assert_eq!(down.status.code(), Some(2), "{}", text(&down));
    assert!(
        text(&down).contains(&format!("127.0.0.1:{port}")),
        "{}",
        text(&down)
    );
    assert!(matches!(
        junit_cases(&dir.join("j.xml"))[0].status,
        junit_parser::TestStatus::Error(_)
    ));
}

#[tokio::test]
async fn partitions_split_the_recordings_between_machines() {
    let p = project();
    let dir = p.path();
    for name in ["b", "c"] {
        std::fs::copy(
            dir.join("recordings/checkout.jsonl"),
            dir.join(format!("recordings/{name}.jsonl")),
        )
        .unwrap();
    }
    let files = wsreplay::gate::check::expand(&[dir.join("recordings")]).unwrap();
    let names = |spec: &str| -> Vec<String> {
        wsreplay::gate::check::partition(files.clone(), Some(spec.parse().unwrap()))
            .iter()
            .map(|f| wsreplay::structure::snapshot::name_of(f))
            .collect()
    };
    assert_eq!(names("1/2"), ["b", "checkout"]);
    assert_eq!(names("2/2"), ["c"]);
    assert!("3/2".parse::<wsreplay::gate::check::Partition>().is_err());
}

#[tokio::test]
async fn diff_compares_two_recordings_without_replaying() {
    let p = project();
    let dir = p.path();
    let rec = wsreplay::recording::Recording::read(dir.join("recordings/checkout.jsonl")).unwrap();
    let (_, same_run) = replay_demo(&rec, |_| {}, vec![], None).await;
    let (_, broken_run) = replay_demo(&rec, |_| {}, vec!["tool_executing".into()], None).await;
    for (run, name) in [(&same_run, "same.jsonl"), (&broken_run, "broken.jsonl")] {
        write_recording(run, &dir.join(name));
    }
    let same = wsreplay(
        dir,
        &["diff", "recordings/checkout.jsonl", "same.jsonl"],
        false,
    )
    .await;
    assert_eq!(same.status.code(), Some(0), "{}", text(&same));
    let broken = wsreplay(
        dir,
        &["diff", "recordings/checkout.jsonl", "broken.jsonl"],
        false,
    )
    .await;
    assert_eq!(broken.status.code(), Some(1));
    assert!(
        text(&broken).contains("looks like `payload` moved to `data`"),
        "{}",
        text(&broken)
    );
}

/// Two recordings with the same file name would share one snapshot: refused, before
/// anything is written or replayed.
#[test]
fn recordings_that_would_share_a_snapshot_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["a", "b"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
        std::fs::copy(CHECKOUT, dir.path().join(sub).join("same.jsonl")).unwrap();
    }
    let a = dir.path().join("a/same.jsonl");
    let b = dir.path().join("b/same.jsonl");
    let snaps = dir.path().join("snapshots");
    let (a, b, snaps) = (
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        snaps.to_str().unwrap(),
    );
    let expected = format!(
        "error: {a} and {b} would share the snapshot same.snap (a snapshot is named after its recording's file name); rename one of them\n"
    );
    let (code, _, err) = run(&["snapshot", a, b, "--snapshots", snaps]);
    assert_eq!((code, err.as_str()), (2, expected.as_str()));
    assert!(!dir.path().join("snapshots").exists());
    let target = "frontend=ws://127.0.0.1:9";
    let (code, _, err) = run(&["check", a, b, "--target", target, "--snapshots", snaps]);
    assert_eq!((code, err.as_str()), (2, expected.as_str()));
}

/// `check --confirm 2` against a build that changes only on its first start: the first
/// spawn is the regression build (a marker file says it ran), later ones the clean build.
async fn check_first_start_changed(dir: &Path, extra: &[&str]) -> Output {
    let marker = dir.join("first-build-started");
    let spawn = format!(
        "if [ -e '{m}' ]; then R=''; else : > '{m}'; R=--regression; fi; {}",
        serve_demo(" $R"),
        m = marker.display()
    );
    let extra = [&["--confirm", "2"], extra].concat();
    check_spawning(dir, &spawn, &extra, false).await
}

#[tokio::test]
async fn a_difference_that_does_not_reproduce_is_flaky_and_a_real_one_still_fails() {
    let p = snapshotted_project().await;
    let dir = p.path();
    let flaky = check_first_start_changed(
        dir,
        &[
            "--junit",
            "junit.xml",
            "--summary-md",
            "summary.md",
            "--html",
            "report.html",
        ],
    )
    .await;
    let out = text(&flaky);
    assert_eq!(flaky.status.code(), Some(4), "{out}");
    assert!(out.contains("recordings/checkout.jsonl: FLAKY"), "{out}");
    assert!(
        out.contains("flaky: differed once, then the same in 2 of 2 confirm run(s)"),
        "{out}"
    );
    // The part that varied is named.
    assert!(out.contains("`payload` object missing"), "{out}");
    assert!(out.contains("1 flaky, 0 differ"), "{out}");
    assert!(!dir.join("snapshots/checkout.snap.new").exists());

    // A standard JUnit consumer: the frontend case passes, with the run that differed
    // as a flakyFailure.
    let cases = &junit_cases(&dir.join("junit.xml"));
    assert!(cases.iter().all(|c| c.status.is_success()), "{cases:?}");
    let frontend = cases
        .iter()
        .find(|c| c.original_name == "checkout: frontend")
        .unwrap();
    assert_eq!(frontend.reruns.len(), 1, "{frontend:?}");
    let rerun = &frontend.reruns[0];
    assert!(matches!(
        rerun.kind,
        junit_parser::RerunOrFlakyKind::FlakyFailure
    ));
    assert!(
        rerun.message.contains("`payload` object missing"),
        "{}",
        rerun.message
    );
    assert!(cases
        .iter()
        .filter(|c| c.original_name != "checkout: frontend")
        .all(|c| c.reruns.is_empty()));
    let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        md.contains("| recordings/checkout.jsonl | frontend | ⚠️ flaky | differed once, then the same in 2 of 2 confirm run\\(s\\): tool\\_executing"),
        "{md}"
    );
    assert!(!md.contains("❌"), "{md}");
    let html = std::fs::read_to_string(dir.join("report.html")).expect(&out);
    assert!(html.contains("<td class=\"flaky\">FLAKY</td>"), "{html}");
    assert!(!html.contains(">FAIL<"), "{html}");

    // A regression that reproduces every time is still a failure.
    let real = check(
        dir,
        true,
        &["--confirm", "2", "--summary-md", "real.md"],
        false,
    )
    .await;
    let out = text(&real);
    assert_eq!(real.status.code(), Some(1), "{out}");
    assert!(out.contains("STRUCTURE DIFFERS"), "{out}");
    assert!(!out.contains("flaky:"), "{out}");
    assert!(
        out.contains("confirmed: the difference reproduced in 2 confirm run(s)"),
        "{out}"
    );
    assert!(dir.join("snapshots/checkout.snap.new").exists());
    let md = std::fs::read_to_string(dir.join("real.md")).unwrap();
    assert!(md.contains("❌ differs"), "{md}");
}

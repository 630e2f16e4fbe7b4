//! The regression gate of this repository, written with the Rust test API a team uses
//! in its own harness: every recording in `recordings/` is replayed against the
//! in-process demo backend, whose agents are wsreplay's mocks, and its structure is
//! judged against `snapshots/<name>.snap` exactly as `wsreplay check` judges it. A
//! change fails `cargo test` with the summary and the diff, and leaves a `.snap.new` for
//! `wsreplay review` or `cargo insta review` (none in CI).

use wsreplay::demo::Server;
use wsreplay::{Gate, Verdict};

use crate::check::{check_with, project, text, wsreplay};
use crate::support::{check_demo_build, demo_build};

pub const RECORDINGS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/recordings");
pub const SNAPSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots");

/// `regression`: the build sends `tool_executing` in the broken legacy shape.
fn regression_events(regression: bool) -> Vec<String> {
    if regression {
        vec![wsreplay::demo::protocol::DEFAULT_REGRESSION_EVENT.to_owned()]
    } else {
        Vec::new()
    }
}

/// The build under test: the demo backend, talking to the agents at these URLs; with
/// `regression`, it sends `tool_executing` in the broken legacy shape.
async fn spawn_backend(nlp: String, data: String, viz: String, regression: bool) -> Server {
    demo_build(nlp, data, viz, |c| {
        c.regression_events = regression_events(regression)
    })
    .await
}

/// Checks `gate` against a fresh demo backend; what a team's test body looks like.
async fn check(gate: Gate, regression: bool) -> wsreplay::Outcome {
    check_demo_build(gate, |c| {
        c.regression_events = regression_events(regression)
    })
    .await
}

/// The build under test of the README's example: the demo backend.
mod my_backend {
    pub async fn spawn(nlp: String, data: String, viz: String) -> wsreplay::demo::Server {
        super::spawn_backend(nlp, data, viz, false).await
    }
}

// The README's "From Rust tests" example, word for word (see the test below it).
#[tokio::test]
async fn checkout_keeps_its_structure() {
    let gate = wsreplay::Gate::load("recordings/checkout.jsonl")
        .mock("nlp")
        .mock("data")
        .mock("viz");
    let mocks = gate.start().await.unwrap();
    let build = my_backend::spawn(mocks.url("nlp"), mocks.url("data"), mocks.url("viz")).await;
    mocks
        .target("frontend", build.url())
        .run()
        .await
        .unwrap()
        .assert_structure();
}

#[test]
fn the_readme_shows_the_example_above() {
    let readme = include_str!("../../README.md");
    let this = include_str!("snapshots.rs");
    let section = readme.split("### From Rust tests").nth(1).unwrap();
    let example = section.split("```rust\n").nth(1).unwrap();
    let example = example.split("```").next().unwrap();
    assert!(
        this.contains(example),
        "README.md's example differs from tests/it/snapshots.rs:\n{example}"
    );
}

#[tokio::test]
async fn every_recording_matches_its_snapshot() {
    let gates = Gate::each(RECORDINGS).unwrap();
    assert!(
        !gates.is_empty(),
        "recordings/ holds at least the demo recording"
    );
    let mut outcomes = Vec::new();
    for gate in gates {
        outcomes.push(check(gate.snapshots(SNAPSHOTS), false).await);
    }
    wsreplay::gate::assert_all(&outcomes);
}

#[tokio::test]
async fn a_breaking_change_fails_with_the_summary_and_the_diff() {
    let gate = Gate::load(format!("{RECORDINGS}/checkout.jsonl"))
        .snapshots(SNAPSHOTS)
        .check_only();
    let outcome = check(gate, true).await;
    assert_eq!(outcome.verdict(), Verdict::Differs);
    assert!(
        outcome.result().written.is_none(),
        "check_only writes no .snap.new"
    );
    let panic = std::panic::catch_unwind(|| outcome.assert_structure()).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(message.contains("STRUCTURE DIFFERS"), "{message}");
    // The semantic summary ...
    assert!(
        message.contains("tool_executing (server→client): `payload` object missing"),
        "{message}"
    );
    assert!(
        message.contains("looks like `payload` moved to `data`"),
        "{message}"
    );
    // ... and the diff.
    assert!(
        message.contains("\n--- checkout (snapshot) route frontend\n+++ new run\n"),
        "{message}"
    );
    assert!(message.contains("\n-payload.tool_name"), "{message}");
}

#[tokio::test]
async fn a_changed_structure_is_left_for_review() {
    let p = project();
    let snapshots = p.path().join("snapshots");
    let snap = wsreplay(p.path(), &["snapshot", "recordings/checkout.jsonl"], false).await;
    assert!(snap.status.success(), "{}", text(&snap));
    let gate = Gate::load(p.path().join("recordings/checkout.jsonl")).snapshots(&snapshots);
    let outcome = check(gate, true).await;
    // Outside CI (as a developer runs `cargo test`), a .snap.new is written to review.
    if wsreplay::gate::check::in_ci() {
        assert!(outcome.result().written.is_none());
    } else {
        let written = outcome.result().written.clone().unwrap();
        assert_eq!(written, snapshots.join("checkout.snap.new"));
        assert!(insta::Snapshot::from_file(&written).is_ok());
    }
}

#[tokio::test]
async fn the_gate_gives_the_verdict_wsreplay_check_gives() {
    for regression in [false, true] {
        let p = project();
        let snap = wsreplay(p.path(), &["snapshot", "recordings/checkout.jsonl"], false).await;
        assert!(snap.status.success(), "{}", text(&snap));
        let serve = if regression { " --regression" } else { "" };
        let cli = check_with(p.path(), serve, &["--check"], false).await;
        let gate = Gate::load(p.path().join("recordings/checkout.jsonl"))
            .snapshots(p.path().join("snapshots"))
            .check_only();
        let outcome = check(gate, regression).await;
        assert_eq!(
            cli.status.code(),
            Some(outcome.verdict().exit_code()),
            "regression={regression}\ncheck printed:\n{}\nthe gate reported:\n{}",
            text(&cli),
            outcome.report()
        );
        // The same summary lines, word for word.
        for route in outcome.result().routes.iter().filter(|r| !r.same()) {
            for line in &route.summary {
                assert!(text(&cli).contains(line.as_str()), "{line}\n{}", text(&cli));
            }
        }
        assert_eq!(
            outcome.verdict(),
            if regression {
                Verdict::Differs
            } else {
                Verdict::Same
            }
        );
    }
}

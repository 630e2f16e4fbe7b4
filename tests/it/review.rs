//! Review and resilience tooling against the demo system: `--fault` injections and
//! what the build makes of them, `check --timing` on a slowed-down build, and the HTML
//! report's contents (its rendering is in `browser.rs`).

use std::time::Duration;

use wsreplay::recording::{Dir, EndHow, Record, Recording};
use wsreplay::replay::fault::FaultRule;

use crate::check::{check_with, project, snapshotted_project, text, wsreplay};
use crate::support::*;

/// Route of each connection of a recording.
fn route_of(rec: &Recording, conn: u64) -> String {
    rec.opens()
        .find(|o| o.conn == conn)
        .map(|o| o.route.clone())
        .unwrap()
}

/// Text messages of `route` in `dir`, in order.
fn texts(rec: &Recording, route: &str, dir: Dir) -> Vec<String> {
    rec.records
        .iter()
        .filter_map(|r| match r {
            Record::Message(m) if m.dir == dir && route_of(rec, m.conn) == route => {
                m.body.as_text().map(str::to_string)
            }
            _ => None,
        })
        .collect()
}

fn faults(rec: &Recording) -> Vec<(String, String, String)> {
    rec.records
        .iter()
        .filter_map(|r| match r {
            Record::Fault(f) => Some((route_of(rec, f.conn), f.action.clone(), f.label.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_dropped_agent_reply_becomes_an_error_envelope_and_check_reports_just_that() {
    let p = snapshotted_project().await;
    let dir = p.path();
    let out = check_with(
        dir,
        " --agent-timeout 0.3",
        &[
            "--fault",
            "data:drop:sql_query_response",
            "--step-timeout",
            "1",
            "--check",
            "--html",
            "report.html",
        ],
        false,
    )
    .await;
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    for expected in [
        "faults injected (--fault):\n    - data: drop sql_query_response ×2 (--fault data:drop:sql_query_response)",
        // The injected cause, attributed to the rule...
        "sql_query_response (server→client): no longer sent (was ×2) — injected by --fault data:drop:sql_query_response",
        // ...and what the build made of it: an error envelope per chat.
        "error (server→client): ×1 → ×3",
    ] {
        assert!(report.contains(expected), "{expected:?} missing:\n{report}");
    }
    assert!(!report.contains("nlp:"), "nlp was not touched: {report}");

    let run = Recording::read(dir.join("runs/checkout.jsonl")).unwrap();
    assert_eq!(
        faults(&run),
        vec![("data".into(), "drop".into(), "sql_query_response".into()); 2]
    );
    assert!(texts(&run, "data", Dir::ServerToClient).is_empty());
    let timeouts = texts(&run, "frontend", Dir::ServerToClient)
        .into_iter()
        .filter(|t| t.contains(r#""type":"error""#) && t.contains("data agent timed out"))
        .count();
    assert_eq!(timeouts, 2);

    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    for expected in [
        "STRUCTURE DIFFERS",
        "fault: drop sql_query_response",
        "first diff ▶",
        "build under test",
        "<mark>",
    ] {
        assert!(
            html.contains(expected),
            "{expected:?} missing from the report"
        );
    }
}

#[tokio::test]
async fn a_ten_times_slower_build_fails_timing_and_passes_without_it() {
    let p = snapshotted_project().await;
    let dir = p.path();
    let slow = " --reply-delay-ms 150";
    let (plain, timed) = tokio::join!(
        check_with(dir, slow, &["--check", "--runs", "runs-plain"], false),
        check_with(
            dir,
            slow,
            &[
                "--check",
                "--runs",
                "runs-timed",
                "--timing",
                "--junit",
                "junit.xml",
                "--summary-md",
                "summary.md"
            ],
            false
        ),
    );
    assert_eq!(plain.status.code(), Some(0), "{}", text(&plain));
    let out = text(&timed);
    assert_eq!(timed.status.code(), Some(3), "{out}");
    assert!(
        out.contains("checkout.jsonl: same structure, TIMING OUTSIDE THE ENVELOPE"),
        "{out}"
    );
    assert!(
        out.contains("frontend s2c heartbeat_response: time to first message"),
        "{out}"
    );
    assert!(!out.contains("STRUCTURE DIFFERS"), "{out}");

    // The build really was 10× slower than recorded (a lower bound: its 150 ms pauses).
    let duration = |rec: &Recording| {
        let c = wsreplay::recording::summary::summarize(rec)
            .into_iter()
            .find(|c| c.route == "frontend")
            .unwrap();
        c.last_us - c.start_us
    };
    let recorded = Recording::read(dir.join("recordings/checkout.jsonl")).unwrap();
    let run = Recording::read(dir.join("runs-timed/checkout.jsonl")).unwrap();
    assert!(duration(&run) >= 10 * duration(&recorded));

    // JUnit: timing is its own test case and failure type; the structure passes.
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    let suites = junit_parser::from_reader(std::io::Cursor::new(junit.as_bytes())).unwrap();
    let cases: Vec<_> = suites.suites.iter().flat_map(|s| &s.cases).collect();
    let case = |name: &str| cases.iter().find(|c| c.original_name == name).unwrap();
    assert!(case("checkout: frontend").status.is_success());
    match &case("checkout: timing frontend").status {
        junit_parser::TestStatus::Failure(f) => assert_eq!(f.failure_type, "timing"),
        other => panic!("{other:?}"),
    }
    let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        md.contains("| frontend | ✅ same |") && md.contains("⏱ timing"),
        "{md}"
    );
}

#[tokio::test]
async fn faults_on_the_mock_side_and_the_client_side_are_injected_and_recorded() {
    let (rec, _) = record_demo(1, 2).await;
    // A replay against the demo backend with these --fault rules; its capture.
    let replay_with = |specs: &[&str]| {
        let rules: Vec<FaultRule> = specs.iter().map(|s| s.parse().unwrap()).collect();
        let rec = rec.clone();
        async move {
            let tweak = |c: &mut wsreplay::replay::ReplayConfig| {
                c.faults = rules;
                c.step_timeout = Duration::from_millis(500);
            };
            replay_demo(&rec, tweak, Vec::new(), None).await.1
        }
    };

    // Mock side: duplicated and corrupted agent replies; client side: a delayed heartbeat.
    let run = replay_with(&[
        "nlp:duplicate:nlp_query_response",
        "viz:corrupt",
        "frontend:delay=50ms:heartbeat",
    ])
    .await;
    let nlp = texts(&run, "nlp", Dir::ServerToClient);
    assert_eq!(nlp.len(), 4, "{nlp:?}");
    assert_eq!(nlp[0], nlp[1]);
    let viz = texts(&run, "viz", Dir::ServerToClient);
    assert!(!viz.is_empty());
    assert!(viz
        .iter()
        .all(|t| serde_json::from_str::<serde_json::Value>(t).is_err()));
    let injected = faults(&run);
    assert_eq!(
        injected.iter().filter(|f| f.1 == "duplicate").count(),
        2,
        "{injected:?}"
    );
    assert!(injected.contains(&("frontend".into(), "delay=50ms".into(), "heartbeat".into())));
    assert!(injected.iter().any(|f| f.0 == "viz" && f.1 == "corrupt"));

    // Client side: the heartbeat goes after the chat, then the connection is cut.
    let run = replay_with(&["frontend:reorder:heartbeat", "frontend:disconnect-after=2"]).await;
    let sent: Vec<String> = texts(&run, "frontend", Dir::ClientToServer)
        .iter()
        .map(|t| wsreplay::protocol::label_of_json(&serde_json::from_str(t).unwrap()))
        .collect();
    assert_eq!(sent, ["chat", "heartbeat"]);
    let end = run
        .records
        .iter()
        .find_map(|r| match r {
            Record::End(e) if route_of(&run, e.conn) == "frontend" => Some(e.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(end.how, EndHow::Eof);
    assert_eq!(
        end.error.as_deref(),
        Some("fault injected: frontend:disconnect-after=2")
    );
    assert!(!run.records.iter().any(
        |r| matches!(r, Record::Close(c) if c.dir == Dir::ClientToServer && route_of(&run, c.conn) == "frontend")
    ));
}

#[tokio::test]
async fn a_fault_that_could_never_be_injected_is_refused() {
    let p = project();
    for (fault, error) in [
        (
            "data:drop",
            "--fault \"data:drop\": route data is neither replayed (--target) nor mocked (--mock)",
        ),
        ("nlp:explode", "unknown action \"explode\""),
        (
            "frontend:drop:nosuchkind",
            "--fault \"frontend:drop:nosuchkind\": KIND `nosuchkind` never occurs on route frontend in the direction the fault acts on (kinds: (text), chat, heartbeat)",
        ),
        // A mock sends responses: a request kind never passes through its injector.
        (
            "nlp:drop:nlp_query",
            "KIND `nlp_query` never occurs on route nlp in the direction the fault acts on (kinds: nlp_query_response)",
        ),
    ] {
        let args = [
            "replay",
            "recordings/checkout.jsonl",
            "--target",
            "frontend=ws://127.0.0.1:1",
            "--mock",
            "nlp=127.0.0.1:0",
            "--fault",
            fault,
        ];
        let out = wsreplay(p.path(), &args, false).await;
        assert_eq!(out.status.code(), Some(2), "{fault}: {}", text(&out));
        assert!(text(&out).contains(error), "{}", text(&out));
    }
}

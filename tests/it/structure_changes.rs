//! Every kind of structure change a new build can make is caught and named: the demo
//! backend is changed with a `Mutator` (as a new build would change it), the recorded
//! session is replayed against it, and its structure is compared with the snapshot.

use std::time::Duration;

use serde_json::{json, Map, Value};
use wsreplay::demo::agent::AgentKind;
use wsreplay::demo::backend::{Mutator, Outgoing};
use wsreplay::recording::Recording;
use wsreplay::structure::diff::compare;
use wsreplay::structure::Observation;

use crate::support::*;

/// The summary lines (`route: kind: change`) of replaying `rec` against a backend
/// changed by `mutate`.
async fn changes(
    rec: &Recording,
    mutate: impl Fn(Outgoing, &mut Value) -> bool + Send + Sync + 'static,
) -> Vec<String> {
    let fast = |c: &mut wsreplay::replay::ReplayConfig| c.step_timeout = Duration::from_millis(300);
    let (_, run) = replay_demo(rec, fast, vec![], Some(Mutator::new(mutate))).await;
    let baseline = Observation::of(rec);
    let hints = baseline.hints();
    let routes: Vec<String> = ["data", "frontend", "nlp", "viz"]
        .map(String::from)
        .to_vec();
    compare(
        &baseline.render(&hints),
        &Observation::of(&run).render(&hints),
        &routes,
    )
    .into_iter()
    .flat_map(|r| {
        r.summary
            .into_iter()
            .map(move |s| format!("{}: {s}", r.route))
    })
    .collect()
}

/// Applies `f` to frontend messages of type `kind`.
fn on(
    kind: &'static str,
    f: impl Fn(&mut Map<String, Value>) + Send + Sync + 'static,
) -> impl Fn(Outgoing, &mut Value) -> bool + Send + Sync {
    move |to, v| {
        if to == Outgoing::Frontend && v["type"] == kind {
            f(v.as_object_mut().unwrap());
        }
        true
    }
}

fn payload(m: &mut Map<String, Value>) -> &mut Map<String, Value> {
    m.get_mut("payload").and_then(Value::as_object_mut).unwrap()
}

async fn assert_caught(
    mutate: impl Fn(Outgoing, &mut Value) -> bool + Send + Sync + 'static,
    expected: &str,
) {
    let (rec, _) = record_demo(1, 2).await;
    let found = changes(&rec, mutate).await;
    assert!(
        found.iter().any(|l| l == expected),
        "expected {expected:?} among:\n{}",
        found.join("\n")
    );
}

#[tokio::test]
async fn an_unchanged_build_shows_no_change() {
    let (rec, _) = record_demo(2, 2).await;
    assert_eq!(changes(&rec, |_, _| true).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_renamed_field() {
    let rename = on("agent_started", |m| {
        let p = payload(m);
        let v = p.remove("status").unwrap();
        p.insert("state".into(), v);
    });
    assert_caught(
        rename,
        "frontend: agent_started (server→client): `payload.status` renamed to `payload.state`",
    )
    .await;
}

#[tokio::test]
async fn a_field_moved_into_a_sub_object() {
    let moved = on("agent_completed", |m| {
        let p = payload(m);
        let v = p.remove("duration_ms").unwrap();
        p["result"]
            .as_object_mut()
            .unwrap()
            .insert("duration_ms".into(), v);
    });
    assert_caught(moved, "frontend: agent_completed (server→client): `payload.duration_ms` moved to `payload.result.duration_ms`").await;
}

#[tokio::test]
async fn a_removed_field() {
    let removed = on("progress_update", |m| {
        payload(m).remove("message");
    });
    assert_caught(
        removed,
        "frontend: progress_update (server→client): removed `payload.message`",
    )
    .await;
}

#[tokio::test]
async fn an_added_field() {
    let added = on("heartbeat_response", |m| {
        m.insert("server_version".into(), json!("2.1.0"));
    });
    assert_caught(
        added,
        "frontend: heartbeat_response (server→client): new top-level server_version",
    )
    .await;
}

#[tokio::test]
async fn a_number_that_became_a_string() {
    let stringly = on("progress_update", |m| {
        let p = payload(m);
        let n = p["progress"].as_f64().unwrap();
        p.insert("progress".into(), json!(format!("{n}")));
    });
    assert_caught(
        stringly,
        "frontend: progress_update (server→client): `payload.progress` float → string",
    )
    .await;
}

#[tokio::test]
async fn a_float_that_became_an_integer() {
    let rounded = on("tool_completed", |m| {
        let p = payload(m);
        let n = p["duration_ms"].as_f64().unwrap();
        p.insert("duration_ms".into(), json!(n.round() as i64));
    });
    assert_caught(
        rounded,
        "frontend: tool_completed (server→client): `payload.duration_ms` float → integer",
    )
    .await;
}

#[tokio::test]
async fn a_timestamp_format_change() {
    let zulu = on("heartbeat_response", |m| {
        m.insert("timestamp".into(), json!("2026-11-23T07:08:54Z"));
    });
    assert_caught(
        zulu,
        "frontend: heartbeat_response (server→client): `timestamp` string: ISO-8601 timestamp (fraction, ±hh:mm) → string: ISO-8601 timestamp (Z)",
    )
    .await;
}

#[tokio::test]
async fn an_event_type_no_longer_sent() {
    let dropped =
        |to: Outgoing, v: &mut Value| !(to == Outgoing::Frontend && v["type"] == "progress_update");
    let (rec, _) = record_demo(1, 2).await;
    let found = changes(&rec, dropped).await;
    let gone = found.iter().find(|l| {
        l.starts_with("frontend: progress_update (server→client): no longer sent (was ×")
    });
    assert!(gone.is_some(), "{}", found.join("\n"));
    assert!(
        found
            .iter()
            .any(|l| l.starts_with("frontend: conversation sequences changed")),
        "{}",
        found.join("\n")
    );
}

#[tokio::test]
async fn a_changed_error_envelope() {
    let envelope = on("error", |m| {
        let e = m["error"].as_object_mut().unwrap();
        let v = e.remove("message").unwrap();
        e.insert("detail".into(), v);
    });
    assert_caught(
        envelope,
        "frontend: error (server→client): `error.message` renamed to `error.detail`",
    )
    .await;
}

#[tokio::test]
async fn a_changed_request_on_the_agent_hop() {
    let request = |to: Outgoing, v: &mut Value| {
        if to == Outgoing::Agent(AgentKind::Nlp) {
            let m = v.as_object_mut().unwrap();
            let text = m.remove("text").unwrap();
            m.insert("query".into(), text);
        }
        true
    };
    assert_caught(
        request,
        "nlp: nlp_query (client→server): `text` renamed to `query`",
    )
    .await;
}

#[tokio::test]
async fn a_final_event_sent_before_the_last_tool_result_is_named() {
    // The build holds each conversation's last tool result (the chart's) back and
    // sends it after the conversation's agent_completed.
    let held: std::sync::Mutex<std::collections::HashMap<String, Value>> = Default::default();
    let reorder = Mutator::expand(move |to, v| {
        let run = v["payload"]["run_id"].as_str().unwrap_or("").to_string();
        let mut held = held.lock().unwrap();
        match (to, v["type"].as_str()) {
            (Outgoing::Frontend, Some("tool_completed"))
                if v["payload"]["tool_name"] == "chart_generator" =>
            {
                held.insert(run, v);
                Vec::new()
            }
            (Outgoing::Frontend, Some("agent_completed")) => {
                std::iter::once(v).chain(held.remove(&run)).collect()
            }
            _ => vec![v],
        }
    });
    let (rec, _) = record_demo(1, 3).await;
    let fast = |c: &mut wsreplay::replay::ReplayConfig| c.step_timeout = Duration::from_millis(300);
    let (_, run) = replay_demo(&rec, fast, vec![], Some(reorder)).await;
    let baseline = Observation::of(&rec);
    let hints = baseline.hints();
    let old = baseline.render(&hints);
    let affected: u64 = old.routes["frontend"]
        .sequences
        .iter()
        .filter(|(s, _)| s.contains("s2c tool_completed → s2c agent_completed"))
        .map(|(_, n)| n)
        .sum();
    assert!(affected > 0, "the demo's chats call tools");
    let routes = ["frontend".to_string()];
    let summary = compare(&old, &Observation::of(&run).render(&hints), &routes)
        .remove(0)
        .summary;
    let s = if affected == 1 { "" } else { "s" };
    let expected = format!(
        "conversation sequences changed: `agent_completed` now before `tool_completed` ({affected} conversation{s})"
    );
    assert!(
        summary.contains(&expected),
        "expected {expected:?} among:\n{}",
        summary.join("\n")
    );
}

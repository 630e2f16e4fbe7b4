//! Free text is text (issue 21): a build whose prose varies from run to run (progress
//! messages, thoughts, answers that mention a region, a model or a version) passes the
//! gate every time; a build that turns a free-text field into a number or an object
//! still fails, naming the field.

use std::sync::Mutex;

use serde_json::{json, Value};
use wsreplay::demo::backend::{Mutator, Outgoing};
use wsreplay::demo::protocol::SeededRng;
use wsreplay::Verdict;

use crate::support::{check_checkout, differences, seed};

/// The demo's free-text fields (at any depth), in messages to the frontend and to the
/// agents.
const FREE_TEXT: [&str; 5] = ["message", "thought", "answer", "title", "sql"];

/// Words and tokens a varying text may end in.
const TAIL: [&str; 12] = [
    "in eu-west-1",
    "via gpt-4",
    "at step-2",
    "for v1-3",
    "in room:7",
    "on us-east-2",
    "region ap-south-1",
    "thread_12",
    "msg_4f3a9c2b",
    "again",
    "with a much longer explanation of what happened",
    "done.",
];

/// Rewrites every free-text string of a message (at any depth) with `f`.
fn rewrite(value: &mut Value, f: &mut dyn FnMut(&str) -> Value) {
    match value {
        Value::Object(fields) => {
            for (key, v) in fields.iter_mut() {
                match v {
                    Value::String(s) if FREE_TEXT.contains(&key.as_str()) => *v = f(s),
                    _ => rewrite(v, f),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite(v, f)),
        _ => {}
    }
}

/// A build whose free text gains 1-3 random trailing words and tokens per message.
fn chatty(seed: u64) -> Mutator {
    let rng = Mutex::new(SeededRng::from_parts(&[&seed.to_string()]));
    Mutator::new(move |_, v| {
        let mut rng = rng.lock().unwrap();
        rewrite(v, &mut |s| {
            let n = rng.int_range(1, 3) as usize;
            let words = rng.sample(&TAIL, n);
            json!(format!("{s} {}", words.join(" ")))
        });
        true
    })
}

#[tokio::test]
async fn varying_free_text_passes_twenty_checks_in_a_row() {
    let seed = seed();
    for run in 0..20 {
        let seed = seed.wrapping_add(run);
        let outcome = check_checkout(|c| c.mutate = Some(chatty(seed))).await;
        assert_eq!(
            outcome.verdict(),
            Verdict::Same,
            "run {run} (WSREPLAY_TEST_SEED={seed}):\n{}",
            outcome.report()
        );
    }
}

/// The summary lines of a check against a build whose progress messages are `to`.
async fn summary_when_text_becomes(to: Value) -> Vec<String> {
    let on_progress = Mutator::new(move |to_whom, v| {
        if to_whom == Outgoing::Frontend && v["type"] == "progress_update" {
            v["payload"]["message"] = to.clone();
        }
        true
    });
    differences(&check_checkout(|c| c.mutate = Some(on_progress)).await)
}

#[tokio::test]
async fn free_text_turned_into_a_number_or_an_object_fails_naming_the_field() {
    let number = summary_when_text_becomes(json!(42)).await;
    assert!(
        number
            .iter()
            .any(|l| l == "progress_update (server→client): `payload.message` string → integer"),
        "{number:#?}"
    );
    let object = summary_when_text_becomes(json!({"text": "step 1 in eu-west-1"})).await;
    assert!(
        object
            .iter()
            .any(|l| l.starts_with("progress_update (server→client): ")
                && l.contains("`payload.message` string → object")),
        "{object:#?}"
    );
}

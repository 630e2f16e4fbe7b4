//! Which ids a mock's reply must carry: the live request's, where the recorded
//! request had its own.
//!
//! Every id-like value of the recorded request (the value of an id-named key, or a
//! protocol correlation id such as a JSON-RPC `id` of any type or a Socket.IO ack id)
//! that differs in the live request at the same place is replaced in the replies,
//! wherever an id is; every string of four or more characters the recorded request
//! shares with its responses is replaced wherever it is a whole string; and each
//! `[[correlate]]` pair sets its response path to the live request's value.

use std::collections::{HashMap, HashSet};

use super::table::{pointer, RecordedMessage, RecordedResponse};
use crate::replay::correlate::IdPair;
use crate::replay::rewrite::{is_id_key, leaves, Edits, Leaf};

/// What to change in the responses to `recorded` so they answer `live`.
pub fn edits(
    recorded: &RecordedMessage,
    live: &RecordedMessage,
    responses: &[RecordedResponse],
    pairs: &[&IdPair],
) -> Edits {
    let mut edits = Edits::default();
    let (Some(rec_text), Some(live_text)) = (recorded.body.as_text(), live.body.as_text()) else {
        return edits;
    };
    let answered: HashSet<String> = responses
        .iter()
        .filter_map(|r| r.message.body.as_text())
        .flat_map(leaves)
        .filter(|l| l.string)
        .map(|l| l.text)
        .collect();
    let live_leaves: HashMap<String, Leaf> = leaves(live_text)
        .into_iter()
        .map(|l| (l.indexed.clone(), l))
        .collect();
    for old in leaves(rec_text) {
        let Some(new) = live_leaves.get(&old.indexed) else {
            continue;
        };
        if new.json() == old.json() {
            continue;
        }
        if old.key.as_deref().is_some_and(is_id_key) {
            edits.ids.insert(old.text.clone(), new.json());
        }
        if old.string && new.string && old.text.len() >= 4 && answered.contains(&old.text) {
            edits.strings.insert(old.text, new.text.clone());
        }
    }
    for (old, new) in recorded.correlations.iter().zip(&live.correlations) {
        if old != new {
            let json = match serde_json::from_str::<serde_json::Number>(new) {
                Ok(_) => new.clone(),
                Err(_) => serde_json::to_string(new).unwrap_or_default(),
            };
            edits.ids.entry(old.clone()).or_insert(json);
        }
    }
    if let Some(json) = &live.json {
        for pair in pairs {
            if let Some(value) = json.pointer(&pointer(&pair.request)) {
                edits.paths.push((pair.response.clone(), value.to_string()));
            }
        }
    }
    edits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str, correlations: &[&str]) -> RecordedMessage {
        let body = crate::recording::Body::Text(text.into());
        RecordedMessage {
            op: crate::recording::Opcode::TEXT,
            json: serde_json::from_str(text).ok(),
            body,
            label: "x".into(),
            correlations: correlations.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn response(text: &str) -> RecordedResponse {
        RecordedResponse {
            position: 0,
            delay_us: 0,
            message: message(text, &[]),
        }
    }

    #[test]
    fn ids_echoed_by_responses_are_carried_over() {
        let recorded = message(
            r#"{"type":"sql_query","message_id":"msg_old1","sql":"SELECT 1"}"#,
            &[],
        );
        let live = message(
            r#"{"type":"sql_query","message_id":"msg_new2","sql":"SELECT 1"}"#,
            &[],
        );
        let resp =
            r#"{"type":"sql_query_response","response_to":"msg_old1","data":{"sql":"SELECT 1"}}"#;
        let e = edits(&recorded, &live, &[response(resp)], &[]);
        assert_eq!(
            e.apply(resp, None).unwrap(),
            r#"{"type":"sql_query_response","response_to":"msg_new2","data":{"sql":"SELECT 1"}}"#
        );
    }

    #[test]
    fn numeric_ids_batches_and_protocol_correlations() {
        let recorded = message(
            r#"[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","id":2,"method":"b"}]"#,
            &["1", "2"],
        );
        let live = message(
            r#"[{"jsonrpc":"2.0","id":1001,"method":"a"},{"jsonrpc":"2.0","id":1002,"method":"b"}]"#,
            &["1001", "1002"],
        );
        let resp = r#"[{"jsonrpc":"2.0","id":2,"result":{"n":1}},{"jsonrpc":"2.0","id":1,"result":{"n":2}}]"#;
        let e = edits(&recorded, &live, &[response(resp)], &[]);
        assert_eq!(
            e.apply(resp, None).unwrap(),
            r#"[{"jsonrpc":"2.0","id":1002,"result":{"n":1}},{"jsonrpc":"2.0","id":1001,"result":{"n":2}}]"#
        );
        // A Socket.IO ack id lives in the framing.
        let e = edits(
            &message(r#"421["ask",{"q":1}]"#, &["1"]),
            &message(r#"427["ask",{"q":1}]"#, &["7"]),
            &[],
            &[],
        );
        use crate::protocol::Protocol;
        let io = crate::protocol::socketio::SocketIo;
        for (recorded, live) in [
            (r#"431[{"a":1}]"#, r#"437[{"a":1}]"#),
            (r#"43/chat,1[{"a":1}]"#, r#"43/chat,7[{"a":1}]"#),
            (
                r#"461-/chat,1[{"_placeholder":true,"num":0}]"#,
                r#"461-/chat,7[{"_placeholder":true,"num":0}]"#,
            ),
        ] {
            assert_eq!(e.apply(recorded, io.framing_id(recorded)).unwrap(), live);
        }
        assert_eq!(io.framing_id(r#"42["x"]"#), None);
    }

    #[test]
    fn explicit_pairs_set_a_path() {
        let pair = IdPair {
            route: "r".into(),
            request: "req.n".into(),
            response: "re.n".into(),
        };
        let e = edits(
            &message(r#"{"req":{"n":1}}"#, &[]),
            &message(r#"{"req":{"n":7}}"#, &[]),
            &[],
            &[&pair],
        );
        assert_eq!(
            e.apply(r#"{"re":{"n":1}}"#, None).unwrap(),
            r#"{"re":{"n":7}}"#
        );
    }
}

//! Answering a live upgrade as the recorded server answered it.
//!
//! The status (a recorded `403` is refused again with `403`), the response headers that
//! are the server's own (cookies, with their redacted placeholders, and custom headers;
//! not the handshake's mechanics, which the WebSocket library sets), and the negotiated
//! subprotocol: the recorded choice when the client offers it, else the closest choice
//! the recorded server made on this route among those offered. A client offered
//! nothing the recording chose, or offered nothing where the recorded server chose a
//! subprotocol: it is answered without one, and that is reported, since such a client
//! usually drops the connection at once.

use super::matcher::Upgrade;
use super::table::MockTable;
use crate::recording::Open;

/// How to answer an upgrade.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// `101`, or the recorded refusal.
    pub status: u16,
    /// The subprotocol to confirm.
    pub subprotocol: Option<String>,
    /// Recorded response headers to send again.
    pub headers: Vec<(String, String)>,
    /// Why the answer is not what the client asked for, if it is not.
    pub problem: Option<String>,
}

/// Headers of the handshake's own mechanics: set by the WebSocket library, or not
/// negotiable with it (permessage-deflate).
const MECHANICS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-accept",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
    "sec-websocket-version",
    "content-length",
    "transfer-encoding",
    "date",
    "keep-alive",
];

/// The answer to `upgrade` from the recorded connection `open` of `table`'s route.
pub fn answer(open: &Open, upgrade: &Upgrade, table: &MockTable) -> Answer {
    let headers = open
        .response_headers
        .iter()
        .filter(|(n, _)| !MECHANICS.contains(&n.to_ascii_lowercase().as_str()))
        .cloned()
        .collect();
    let recorded = open.response_header("sec-websocket-protocol");
    let offered = |p: &str| upgrade.offered.iter().any(|o| o == p);
    let (subprotocol, problem) = match recorded {
        Some(p) if offered(p) => (Some(p.to_string()), None),
        Some(p) => {
            let closest = table
                .conns
                .iter()
                .filter_map(|c| c.open.response_header("sec-websocket-protocol"))
                .find(|q| offered(q));
            let problem = match (closest, upgrade.offered.is_empty()) {
                (Some(q), _) => format!(
                    "the client offered {}, not `{p}` which the recorded server chose on this connection; answered with `{q}`, chosen on another",
                    list(&upgrade.offered)
                ),
                (None, true) => format!(
                    "the client offered no subprotocol, but the recorded server chose `{p}`; answered without one"
                ),
                (None, false) => format!(
                    "the client offered {}, none of which the recorded server ever chose (it chose `{p}`); answered without a subprotocol",
                    list(&upgrade.offered)
                ),
            };
            (closest.map(str::to_string), Some(problem))
        }
        None => (None, None),
    };
    Answer {
        status: open.status,
        subprotocol,
        headers,
        problem,
    }
}

fn list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::mock::table::RecordedConn;

    fn open(status: u16, protocol: Option<&str>) -> Open {
        let mut headers = vec![
            ("Upgrade".to_string(), "websocket".to_string()),
            (
                "Set-Cookie".to_string(),
                "sid=redacted-0123456789ab".to_string(),
            ),
        ];
        if let Some(p) = protocol {
            headers.push(("Sec-WebSocket-Protocol".into(), p.into()));
        }
        Open {
            status,
            response_headers: headers,
            ..Open::accepted("r", 1, "/")
        }
    }

    fn table(opens: &[Open]) -> MockTable {
        MockTable {
            conns: opens
                .iter()
                .map(|o| RecordedConn {
                    open: o.clone(),
                    greetings: vec![],
                    requests: vec![],
                    close: None,
                })
                .collect(),
            protocol: None,
        }
    }

    fn offer(protocols: &[&str]) -> Upgrade {
        Upgrade {
            offered: protocols.iter().map(|p| p.to_string()).collect(),
            ..Upgrade::default()
        }
    }

    #[test]
    fn the_recorded_choice_is_confirmed_when_offered() {
        let o = open(101, Some("graphql-transport-ws"));
        let a = answer(
            &o,
            &offer(&["graphql-transport-ws"]),
            &table(std::slice::from_ref(&o)),
        );
        assert_eq!(a.subprotocol.as_deref(), Some("graphql-transport-ws"));
        assert_eq!(a.problem, None);
        assert_eq!(
            a.headers,
            [(
                "Set-Cookie".to_string(),
                "sid=redacted-0123456789ab".to_string()
            )]
        );
    }

    #[test]
    fn another_offer_gets_the_closest_recorded_choice_or_a_problem() {
        let stomp12 = open(101, Some("v12.stomp"));
        let stomp11 = open(101, Some("v11.stomp"));
        let t = table(&[stomp12.clone(), stomp11]);
        let a = answer(&stomp12, &offer(&["v11.stomp", "v10.stomp"]), &t);
        assert_eq!(a.subprotocol.as_deref(), Some("v11.stomp"));
        assert!(a.problem.unwrap().contains("answered with `v11.stomp`"));
        let a = answer(&stomp12, &offer(&["mqtt"]), &t);
        assert_eq!(a.subprotocol, None);
        assert!(a.problem.unwrap().contains("none of which"));
        let a = answer(&stomp12, &offer(&[]), &t);
        assert!(a.problem.unwrap().contains("offered no subprotocol"));
    }

    #[test]
    fn a_refusal_is_refused_again() {
        let o = open(403, None);
        assert_eq!(
            answer(&o, &offer(&[]), &table(std::slice::from_ref(&o))).status,
            403
        );
    }
}

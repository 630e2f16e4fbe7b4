//! GraphQL over WebSocket: `graphql-transport-ws` (the graphql-ws library) and the
//! legacy `subscriptions-transport-ws` (subprotocol `graphql-ws`). Every message is
//! `{type, id?, payload?}`: the kind is `type`, and `id` ties `next`/`data`/`complete`/
//! `error` to the `subscribe`/`start` of their operation, so concurrent operations on
//! one connection are separate conversations.

use super::plain_json::Convention;
use super::{Decoder, Protocol};

/// `graphql-transport-ws` and `graphql-ws`.
#[derive(Clone, Copy, Debug)]
pub struct GraphqlWs;

const CONVENTION: Convention = Convention {
    discriminators: &["type"],
    correlation: &["id"],
    anywhere: false,
};

impl Protocol for GraphqlWs {
    fn name(&self) -> &'static str {
        "graphql-ws"
    }

    fn decoder(&self) -> Box<dyn Decoder> {
        Box::new(CONVENTION)
    }

    fn is_discriminator(&self, path: &str) -> bool {
        path == "type"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::decode_all;

    #[test]
    fn operations_are_correlated_by_id() {
        let events = decode_all(
            &GraphqlWs,
            &[
                ("c2s", r#"{"type":"connection_init"}"#),
                ("s2c", r#"{"type":"connection_ack"}"#),
                (
                    "c2s",
                    r#"{"id":"1","type":"subscribe","payload":{"query":"subscription { a }"}}"#,
                ),
                (
                    "c2s",
                    r#"{"id":"2","type":"subscribe","payload":{"query":"{ b }"}}"#,
                ),
                (
                    "s2c",
                    r#"{"id":"2","type":"next","payload":{"data":{"b":1}}}"#,
                ),
                (
                    "s2c",
                    r#"{"id":"1","type":"next","payload":{"data":{"a":1}}}"#,
                ),
                ("s2c", r#"{"id":"2","type":"complete"}"#),
            ],
        );
        assert_eq!(
            events,
            [
                ("connection_init".into(), None),
                ("connection_ack".into(), None),
                ("subscribe".into(), Some("1".into())),
                ("subscribe".into(), Some("2".into())),
                ("next".into(), Some("2".into())),
                ("next".into(), Some("1".into())),
                ("complete".into(), Some("2".into())),
            ]
        );
    }
}

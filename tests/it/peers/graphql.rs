//! A GraphQL market served by async-graphql over `graphql-transport-ws` (its own
//! protocol implementation, `async_graphql::http::WebSocket`, on a tokio-tungstenite
//! socket), and a client speaking that protocol frame by frame.
//!
//! The schema: a query `market { name open }`, a subscription `ticks(symbol, count)` of
//! typed `{ symbol n price }` items and a subscription `trades(symbol, count)` of JSON
//! objects `{symbol, n, price}`; each item comes a few milliseconds after the last, at
//! a pace of its own per symbol, so concurrent subscriptions interleave.
//! [`Market::with_price_key`] starts a "new build" whose trades carry their price under
//! another key.

use std::net::SocketAddr;
use std::time::Duration;

use async_graphql::http::{WebSocket, WebSocketProtocols, WsMessage};
use async_graphql::{EmptyMutation, Json, Object, Schema, SimpleObject, Subscription};
use futures_util::{SinkExt, Stream, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::Request;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::Listening;
use crate::support::{first_subprotocol, guard};

const SUBPROTOCOL: &str = "graphql-transport-ws";

struct Query;

#[derive(SimpleObject)]
struct MarketInfo {
    name: String,
    open: bool,
}

#[Object]
impl Query {
    async fn market(&self) -> MarketInfo {
        MarketInfo {
            name: "demo".into(),
            open: true,
        }
    }
}

#[derive(SimpleObject)]
struct Tick {
    symbol: String,
    n: i32,
    price: f64,
}

struct Feeds {
    price_key: &'static str,
}

/// `count` items `0..count` of `symbol`, each `item(n)` a pause after the last (the
/// pause depends on the symbol, so feeds of different symbols interleave).
fn feed<T>(symbol: &str, count: i32, item: impl Fn(i32) -> T) -> impl Stream<Item = T> {
    let pause = Duration::from_millis(2 + symbol.bytes().map(u64::from).sum::<u64>() % 5);
    futures_util::stream::iter(0..count).then(move |n| {
        let next = item(n);
        async move {
            tokio::time::sleep(pause).await;
            next
        }
    })
}

#[Subscription]
impl Feeds {
    async fn ticks(&self, symbol: String, count: i32) -> impl Stream<Item = Tick> {
        feed(&symbol.clone(), count, move |n| Tick {
            symbol: symbol.clone(),
            n,
            price: 100.0 + f64::from(n),
        })
    }

    async fn trades(&self, symbol: String, count: i32) -> impl Stream<Item = Json<Value>> {
        let key = self.price_key;
        feed(&symbol.clone(), count, move |n| {
            let mut trade = json!({"symbol": symbol, "n": n});
            trade[key] = json!(50 + n);
            Json(trade)
        })
    }
}

type MarketSchema = Schema<Query, EmptyMutation, Feeds>;

/// The GraphQL server.
pub struct Market;

impl Market {
    /// The server as it was recorded: a trade's price is `price`.
    pub async fn start() -> Listening {
        Self::with_price_key("price").await
    }

    /// The server whose trades carry their price under `price_key`.
    pub async fn with_price_key(price_key: &'static str) -> Listening {
        let schema = Schema::new(Query, EmptyMutation, Feeds { price_key });
        Listening::start(move |stream| serve(stream, schema.clone())).await
    }
}

/// One connection: the upgrade accepts the subprotocol offered (the client offers
/// `graphql-transport-ws`), then async-graphql reads the client's frames and writes its
/// own.
async fn serve(stream: TcpStream, schema: MarketSchema) {
    // The callback's error type is tungstenite's, not ours to shrink.
    #[allow(clippy::result_large_err)]
    let choose = |request: &Request, response| Ok(first_subprotocol(request, response));
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, choose).await else {
        return;
    };
    let (mut sink, frames) = ws.split();
    let input = frames.filter_map(|frame| {
        std::future::ready(match frame {
            Ok(Message::Text(text)) => Some(text.as_bytes().to_vec()),
            Ok(Message::Binary(bytes)) => Some(bytes.to_vec()),
            _ => None,
        })
    });
    let mut output = WebSocket::new(schema, input, WebSocketProtocols::GraphQLWS);
    while let Some(message) = output.next().await {
        let frame = match message {
            WsMessage::Text(text) => Message::text(text),
            WsMessage::Close(code, reason) => Message::Close(Some(CloseFrame {
                code: code.into(),
                reason: reason.into(),
            })),
        };
        if sink.send(frame).await.is_err() {
            return;
        }
    }
}

/// The session the tests record: on one connection, three concurrent subscriptions
/// (ticks of A and B, trades of C, four items each) and a query; returns when every
/// operation completed, with the `next` payloads received per operation id.
pub async fn market_session(addr: SocketAddr) -> std::collections::BTreeMap<String, Vec<Value>> {
    let mut request = format!("ws://{addr}/graphql")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", SUBPROTOCOL.parse().unwrap());
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers()["Sec-WebSocket-Protocol"],
        SUBPROTOCOL,
        "async-graphql chose the protocol"
    );
    let send = |value: Value| Message::text(value.to_string());
    ws.send(send(json!({"type": "connection_init"})))
        .await
        .unwrap();
    let operations = [
        (
            "1",
            "subscription { ticks(symbol: \"A\", count: 4) { symbol n price } }",
        ),
        (
            "2",
            "subscription { ticks(symbol: \"B\", count: 4) { symbol n price } }",
        ),
        ("3", "subscription { trades(symbol: \"C\", count: 4) }"),
        ("4", "{ market { name open } }"),
    ];
    let mut received = std::collections::BTreeMap::<String, Vec<Value>>::new();
    let mut open = operations.len();
    while open > 0 {
        let frame = guard(ws.next()).await.unwrap().unwrap();
        let message: Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
        match message["type"].as_str().unwrap() {
            "connection_ack" => {
                for (id, query) in operations {
                    let subscribe =
                        json!({"id": id, "type": "subscribe", "payload": {"query": query}});
                    ws.send(send(subscribe)).await.unwrap();
                }
            }
            "next" => {
                let id = message["id"].as_str().unwrap().to_string();
                received
                    .entry(id)
                    .or_default()
                    .push(message["payload"].clone());
            }
            "complete" => open -= 1,
            other => panic!("unexpected {other}: {message}"),
        }
    }
    ws.close(None).await.unwrap();
    received
}

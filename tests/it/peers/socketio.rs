//! A Socket.IO chat room served by socketioxide over hyper, and its users, rust_socketio
//! clients forced onto the WebSocket transport (`EIO=4`).
//!
//! The room speaks four events: `join` `{room, user}` (everyone in the room, the joiner
//! too, gets `joined` `{room, user}`), `chat` `{room, text}` (broadcast to the room as
//! `chat` `{room, user, text}`), `members` `{room}` with an acknowledgement (answered
//! `{room, members}` in join order) and `leave` `{room}` (the room, the leaver too, gets
//! `left` `{room, user}`). [`ChatRoom::with_text_key`] starts a "new build" that sends a
//! chat's text under another key.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use hyper_util::rt::TokioIo;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Event, Payload, TransportType};
use serde_json::{json, Value};
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::socket::Sid;
use socketioxide::SocketIo;
use tokio::sync::mpsc;

use super::Listening;
use crate::support::guard;

/// Who is in which room, in join order: `(room, socket, user)`.
type Members = Arc<Mutex<Vec<(String, Sid, String)>>>;

/// The chat-room server.
pub struct ChatRoom;

impl ChatRoom {
    /// The room as it was recorded: a chat's text is sent as `text`.
    pub async fn start() -> Listening {
        Self::with_text_key("text").await
    }

    /// The room whose broadcast `chat` carries the text under `text_key`.
    pub async fn with_text_key(text_key: &'static str) -> Listening {
        let (svc, io) = SocketIo::new_svc();
        let members = Members::default();
        io.ns("/", move |s: SocketRef| {
            let members = members.clone();
            async move { serve(s, members, text_key) }
        });
        Listening::start(move |stream| {
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc.clone())
                .with_upgrades();
            async move {
                let _ = connection.await;
            }
        })
        .await
    }
}

fn field(data: &Value, key: &str) -> String {
    data[key].as_str().unwrap_or_default().to_string()
}

/// One connected socket's handlers.
fn serve(s: SocketRef, members: Members, text_key: &'static str) {
    let joined = members.clone();
    s.on(
        "join",
        move |s: SocketRef, Data(d): Data<Value>| async move {
            let (room, user) = (field(&d, "room"), field(&d, "user"));
            s.join(room.clone());
            joined
                .lock()
                .unwrap()
                .push((room.clone(), s.id, user.clone()));
            tell_room(&s, "joined", json!({"room": room, "user": user})).await;
        },
    );
    let speakers = members.clone();
    s.on(
        "chat",
        move |s: SocketRef, Data(d): Data<Value>| async move {
            let mut said = sender(&speakers, &s, &d);
            said[text_key] = d["text"].clone();
            tell_room(&s, "chat", said).await;
        },
    );
    let listed = members.clone();
    s.on(
        "members",
        move |ack: AckSender, Data(d): Data<Value>| async move {
            let room = field(&d, "room");
            let names: Vec<String> = listed
                .lock()
                .unwrap()
                .iter()
                .filter(|(r, _, _)| *r == room)
                .map(|(_, _, user)| user.clone())
                .collect();
            let _ = ack.send(&json!({"room": room, "members": names}));
        },
    );
    let leaving = members.clone();
    s.on(
        "leave",
        move |s: SocketRef, Data(d): Data<Value>| async move {
            let left = sender(&leaving, &s, &d);
            tell_room(&s, "left", left.clone()).await;
            s.leave(field(&left, "room"));
            leaving
                .lock()
                .unwrap()
                .retain(|(r, sid, _)| !(*r == left["room"] && *sid == s.id));
        },
    );
    s.on_disconnect(move |s: SocketRef| async move {
        members.lock().unwrap().retain(|(_, sid, _)| *sid != s.id);
    });
}

/// `{room, user}`: the room an event names and the user who sent it there.
fn sender(members: &Members, s: &SocketRef, data: &Value) -> Value {
    let room = field(data, "room");
    let members = members.lock().unwrap();
    let found = members
        .iter()
        .find(|(r, sid, _)| *r == room && *sid == s.id);
    let user = found.map(|(_, _, user)| user.clone()).unwrap_or_default();
    json!({"room": room, "user": user})
}

/// Sends `event` to everyone in the room `body` names, the sender too.
async fn tell_room(s: &SocketRef, event: &str, body: Value) {
    let _ = s.within(field(&body, "room")).emit(event, &body).await;
}

/// A chat user: a rust_socketio client whose received events queue up in order.
pub struct ChatUser {
    client: Client,
    events: mpsc::UnboundedReceiver<(String, Value)>,
}

/// An event's arguments: the one argument, or the array of them.
fn arguments(payload: Payload) -> Value {
    match payload {
        Payload::Text(mut args) if args.len() == 1 => args.remove(0),
        Payload::Text(args) => Value::Array(args),
        _ => panic!("the chat room sends JSON only"),
    }
}

impl ChatUser {
    /// Connects to a chat room (or a recorder in front of one) at `addr`, and waits
    /// until the server accepted the namespace (as Socket.IO clients do before they
    /// emit: socketioxide closes a connection whose events come before that).
    pub async fn connect(addr: SocketAddr) -> ChatUser {
        let (tx, events) = mpsc::unbounded_channel();
        let (connected_tx, mut connected) = mpsc::unbounded_channel();
        let client = ClientBuilder::new(format!("http://{addr}"))
            .transport_type(TransportType::Websocket)
            .reconnect(false)
            .on(Event::Connect, move |_, _| {
                let _ = connected_tx.send(());
                async {}.boxed()
            })
            .on_any(move |event, payload, _| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send((event.as_str().to_string(), arguments(payload)));
                }
                .boxed()
            })
            .connect()
            .await
            .unwrap();
        guard(connected.recv()).await.unwrap();
        ChatUser { client, events }
    }

    pub async fn emit(&self, event: &str, data: Value) {
        self.client.emit(event, data).await.unwrap();
    }

    /// Emits `event` asking for an acknowledgement, and waits for it.
    pub async fn ask(&self, event: &str, data: Value) -> Value {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let answered = move |payload, _| {
            let tx = tx.clone();
            async move {
                // rust_socketio hands an acknowledgement's arguments over as one array.
                let answer = match arguments(payload) {
                    Value::Array(mut args) if args.len() == 1 => args.remove(0),
                    args => args,
                };
                let _ = tx.send(answer);
            }
            .boxed()
        };
        let timeout = Duration::from_secs(30);
        self.client
            .emit_with_ack(event, data, timeout, answered)
            .await
            .unwrap();
        guard(rx.recv()).await.unwrap()
    }

    /// Waits for the next event, which must be `event`; its argument.
    pub async fn expect(&mut self, event: &str) -> Value {
        let (name, data) = guard(self.events.recv()).await.unwrap();
        assert_eq!(name, event, "{data}");
        data
    }

    pub async fn disconnect(self) {
        self.client.disconnect().await.unwrap();
    }
}

//! Client WebSockets at `/client/hubs/{hub}?access_token=…` with the JSON subprotocols
//! (azure-contracts §2.4): the token's `sub`, `role` and `webpubsub.group` claims (and the
//! connect handler's answer) say who the client is, what it may do and which groups it starts
//! in. Frames: joinGroup, leaveGroup, sendToGroup (noEcho), event (to the event handler),
//! sequenceAck, ping; each acked when it carries an `ackId`. A malformed frame closes the
//! connection with 1007.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::Utc;
use data_encoding::BASE64;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::roles::{self, Action};
use super::upstream::Caller;
use super::{Connection, Hub, OUTBOUND_QUEUE, client_token};

const JSON: &str = "json.webpubsub.azure.v1";
const RELIABLE: &str = "json.reliable.webpubsub.azure.v1";
/// Close code for a frame the protocol can't read.
const INVALID_FRAME: u16 = 1007;

/// Who a connection is, settled before the upgrade.
struct Identity {
    connection_id: String,
    user_id: Option<String>,
    roles: Vec<String>,
    groups: Vec<String>,
    subprotocol: &'static str,
}

pub async fn connect(
    State(hub): State<Arc<Hub>>,
    Path(hub_name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !hub_name.eq_ignore_ascii_case(&hub.name) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let claims = query
        .get("access_token")
        .and_then(|token| client_token::verify(token, &hub.client_key));
    let Some(claims) = claims else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let offered: Vec<String> = headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|protocol| protocol.trim().to_owned())
        .collect();
    let Some(subprotocol) = [RELIABLE, JSON]
        .into_iter()
        .find(|protocol| offered.iter().any(|offer| offer == protocol))
    else {
        return (
            StatusCode::BAD_REQUEST,
            "Offer json.webpubsub.azure.v1 or json.reliable.webpubsub.azure.v1.",
        )
            .into_response();
    };
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut identity = Identity {
        connection_id: Uuid::new_v4().simple().to_string(),
        user_id: claims["sub"].as_str().map(str::to_owned),
        roles: strings(&claims["role"]),
        groups: strings(&claims["webpubsub.group"]),
        subprotocol,
    };
    let caller = Caller {
        connection_id: &identity.connection_id,
        user_id: identity.user_id.as_deref(),
        subprotocol: Some(subprotocol),
    };
    let request = json!({
        "claims": claims,
        "query": query.iter().filter(|(key, _)| *key != "access_token").map(|(k, v)| (k.clone(), json!([v]))).collect::<serde_json::Map<_, _>>(),
        "headers": {},
        "subprotocols": offered,
        "clientCertificates": [],
    });
    match hub.upstream.connect(&caller, &request).await {
        Err(status) => return status.into_response(),
        Ok(answer) => {
            if answer.user_id.is_some() {
                identity.user_id = answer.user_id;
            }
            identity.roles.extend(answer.roles);
            identity.groups.extend(answer.groups);
        }
    }
    upgrade
        .protocols([subprotocol])
        .on_upgrade(move |socket| run(hub, socket, identity))
}

async fn run(hub: Arc<Hub>, socket: WebSocket, identity: Identity) {
    let (mut sink, mut stream) = socket.split();
    let (outbound, mut queue) = mpsc::channel::<Message>(OUTBOUND_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(message) = queue.recv().await {
            let closing = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || closing {
                return;
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    });
    let id = identity.connection_id.clone();
    let reliable = identity.subprotocol == RELIABLE;
    let mut connected = json!({"type": "system", "event": "connected",
                               "userId": identity.user_id, "connectionId": id});
    if reliable {
        connected["reconnectionToken"] = Uuid::new_v4().simple().to_string().into();
    }
    let _ = outbound.try_send(Message::Text(connected.to_string().into()));
    {
        let mut registry = hub.registry();
        registry.connections.insert(
            id.clone(),
            Connection {
                user_id: identity.user_id.clone(),
                granted: HashSet::new(),
                groups: HashSet::new(),
                reliable,
                next_sequence: 0,
                outbound: outbound.clone(),
            },
        );
        for group in &identity.groups {
            registry.join(&id, group);
        }
    }
    let caller = Caller {
        connection_id: &id,
        user_id: identity.user_id.as_deref(),
        subprotocol: Some(identity.subprotocol),
    };
    hub.upstream.notify(&caller, "connected", &json!({})).await;

    let mut seen_acks = RecentAcks::default();
    let mut reason = String::new();
    while let Some(Ok(message)) = stream.next().await {
        let frame = match message {
            Message::Text(text) => serde_json::from_str::<Value>(&text).ok(),
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Binary(_) => None,
        };
        let Some(frame) = frame.filter(Value::is_object) else {
            reason = "invalid frame".into();
            let _ = outbound.try_send(Message::Close(Some(CloseFrame {
                code: INVALID_FRAME,
                reason: "invalid frame".into(),
            })));
            break;
        };
        handle(&hub, &caller, &identity, &outbound, &mut seen_acks, &frame).await;
    }
    drop(outbound);
    hub.registry().remove(&id);
    hub.upstream
        .notify(&caller, "disconnected", &json!({ "reason": reason }))
        .await;
    let _ = writer.await;
}

async fn handle(
    hub: &Hub,
    caller: &Caller<'_>,
    identity: &Identity,
    outbound: &mpsc::Sender<Message>,
    seen_acks: &mut RecentAcks,
    frame: &Value,
) {
    let ack_id = frame["ackId"].as_u64();
    if let Some(ack_id) = ack_id
        && !seen_acks.first_time(ack_id)
    {
        ack(
            outbound,
            Some(ack_id),
            Err(("Duplicate", "The ackId was used before.")),
        );
        return;
    }
    let group = frame["group"].as_str().unwrap_or_default();
    let allowed = |action: Action| {
        roles::allows(&identity.roles, action, group)
            || hub
                .registry()
                .connections
                .get(caller.connection_id)
                .is_some_and(|connection| {
                    connection
                        .granted
                        .contains(&(action.permission().to_owned(), group.to_owned()))
                })
    };
    let forbidden = Err(("Forbidden", "The connection lacks the permission."));
    match frame["type"].as_str().unwrap_or_default() {
        kind @ ("joinGroup" | "leaveGroup") => {
            if group.is_empty() || !allowed(Action::JoinLeave) {
                return ack(outbound, ack_id, forbidden);
            }
            let mut registry = hub.registry();
            if kind == "joinGroup" {
                registry.join(caller.connection_id, group);
            } else {
                registry.leave(caller.connection_id, group);
            }
            drop(registry);
            ack(outbound, ack_id, Ok(()));
        }
        "sendToGroup" => {
            if group.is_empty() || !allowed(Action::Send) {
                return ack(outbound, ack_id, forbidden);
            }
            let message = json!({"type": "message", "from": "group", "group": group,
                                 "dataType": frame["dataType"].as_str().unwrap_or("json"),
                                 "data": frame["data"], "fromUserId": identity.user_id});
            let members = hub.registry().in_group(group);
            let excluded = if frame["noEcho"].as_bool() == Some(true) {
                vec![caller.connection_id.to_owned()]
            } else {
                Vec::new()
            };
            deliver(hub, &members, &excluded, &message).await;
            ack(outbound, ack_id, Ok(()));
        }
        "event" => {
            let event = frame["event"].as_str().unwrap_or("message");
            let (content_type, body) = encode(frame);
            match hub
                .upstream
                .user_event(caller, event, content_type, body)
                .await
            {
                Ok(answer) => {
                    if let Some((content_type, body)) = answer {
                        let (data_type, data) = decode(&content_type, &body);
                        let reply = json!({"type": "message", "from": "server", "dataType": data_type, "data": data});
                        deliver(hub, &[caller.connection_id.to_owned()], &[], &reply).await;
                    }
                    ack(outbound, ack_id, Ok(()));
                }
                Err(()) => ack(
                    outbound,
                    ack_id,
                    Err(("InternalServerError", "The event handler failed.")),
                ),
            }
        }
        "ping" => {
            let _ = outbound.try_send(Message::Text(json!({"type": "pong"}).to_string().into()));
        }
        // sequenceAck needs no answer here (no recovery buffer); newer frame types are ignored.
        _ => {}
    }
}

/// The ackIds a connection used lately, to answer a resent frame with `Duplicate`. Bounded, so
/// a long-lived connection does not grow without end.
#[derive(Default)]
struct RecentAcks {
    order: VecDeque<u64>,
    seen: HashSet<u64>,
}

impl RecentAcks {
    const REMEMBERED: usize = 1024;

    fn first_time(&mut self, ack_id: u64) -> bool {
        if !self.seen.insert(ack_id) {
            return false;
        }
        self.order.push_back(ack_id);
        if self.order.len() > Self::REMEMBERED
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        true
    }
}

fn ack(outbound: &mpsc::Sender<Message>, ack_id: Option<u64>, result: Result<(), (&str, &str)>) {
    let Some(ack_id) = ack_id else { return };
    let frame = match result {
        Ok(()) => json!({"type": "ack", "ackId": ack_id, "success": true}),
        Err((name, message)) => json!({"type": "ack", "ackId": ack_id, "success": false,
                                        "error": {"name": name, "message": message}}),
    };
    let _ = outbound.try_send(Message::Text(frame.to_string().into()));
}

/// An event frame's data as an HTTP body.
fn encode(frame: &Value) -> (&'static str, Bytes) {
    match frame["dataType"].as_str().unwrap_or("json") {
        "text" => (
            "text/plain",
            Bytes::from(frame["data"].as_str().unwrap_or_default().to_owned()),
        ),
        "binary" | "protobuf" => (
            "application/octet-stream",
            Bytes::from(
                BASE64
                    .decode(frame["data"].as_str().unwrap_or_default().as_bytes())
                    .unwrap_or_default(),
            ),
        ),
        _ => ("application/json", Bytes::from(frame["data"].to_string())),
    }
}

/// An HTTP body as a frame's `dataType` and `data`.
fn decode(content_type: &str, body: &Bytes) -> (&'static str, Value) {
    if content_type.starts_with("application/json")
        && let Ok(data) = serde_json::from_slice(body)
    {
        return ("json", data);
    }
    if content_type.starts_with("text/") {
        return (
            "text",
            Value::String(String::from_utf8_lossy(body).into_owned()),
        );
    }
    ("binary", Value::String(BASE64.encode(body)))
}

/// Queues `frame` for `targets`, closing clients that have fallen too far behind.
pub async fn deliver(hub: &Hub, targets: &[String], excluded: &[String], frame: &Value) {
    let stalled = hub.registry().deliver(targets, excluded, frame);
    for id in stalled {
        close(hub, &id, "the client is not reading its messages").await;
    }
}

/// Tells the client why and closes it (its reader then reports the disconnect upstream).
pub async fn close(hub: &Hub, connection_id: &str, reason: &str) {
    if let Some(connection) = hub.registry().remove(connection_id) {
        let notice = json!({"type": "system", "event": "disconnected", "message": reason});
        let _ = connection
            .outbound
            .try_send(Message::Text(notice.to_string().into()));
        let _ = connection.outbound.try_send(Message::Close(None));
    }
}

/// A client token, as `:generateToken` hands out.
pub fn token(
    hub: &Hub,
    user_id: Option<&str>,
    roles: &[String],
    groups: &[String],
    ttl_seconds: i64,
) -> String {
    let now = Utc::now().timestamp();
    let mut claims = json!({"aud": format!("http://localhost/client/hubs/{}", hub.name),
                            "iat": now, "exp": now + ttl_seconds,
                            "role": roles, "webpubsub.group": groups});
    if let Some(user_id) = user_id {
        claims["sub"] = user_id.into();
    }
    client_token::sign(&claims, &hub.client_key)
}

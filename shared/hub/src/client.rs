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
use futures::stream::SplitStream;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::roles::{self, Action};
use super::upstream::Caller;
use super::{
    Connection, Hub, OUTBOUND_QUEUE, RECOVERY_WINDOW, Recovery, UNACKED_LIMIT, client_token,
};

const JSON: &str = "json.webpubsub.azure.v1";
const RELIABLE: &str = "json.reliable.webpubsub.azure.v1";
/// Close code for a frame the protocol can't read.
const INVALID_FRAME: u16 = 1007;
/// Close code for a recovery of a connection the hub no longer holds: the client must start a
/// new connection.
const SESSION_GONE: u16 = 1008;

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
    if let (Some(id), Some(token)) = (
        query.get("awps_connection_id"),
        query.get("awps_reconnection_token"),
    ) {
        if !offered_subprotocols(&headers)
            .iter()
            .any(|offer| offer == RELIABLE)
        {
            return (
                StatusCode::BAD_REQUEST,
                "Recovery needs json.reliable.webpubsub.azure.v1.",
            )
                .into_response();
        }
        let (id, token) = (id.clone(), token.clone());
        return upgrade
            .protocols([RELIABLE])
            .on_upgrade(move |socket| resume(hub, socket, id, token));
    }
    let claims = query
        .get("access_token")
        .and_then(|token| client_token::verify(token, &hub.client_key));
    let Some(claims) = claims else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let offered = offered_subprotocols(&headers);
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
    let mut identity = Identity::from_claims(&claims, subprotocol);
    let caller = identity.caller();
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

fn offered_subprotocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|protocol| protocol.trim().to_owned())
        .collect()
}

impl Identity {
    /// A new connection of the token's user, with its roles and starting groups.
    fn from_claims(claims: &Value, subprotocol: &'static str) -> Self {
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
        Identity {
            connection_id: Uuid::new_v4().simple().to_string(),
            user_id: claims["sub"].as_str().map(str::to_owned),
            roles: strings(&claims["role"]),
            groups: strings(&claims["webpubsub.group"]),
            subprotocol,
        }
    }

    fn caller(&self) -> Caller<'_> {
        Caller {
            connection_id: &self.connection_id,
            user_id: self.user_id.as_deref(),
            subprotocol: Some(self.subprotocol),
        }
    }
}

/// A connection's life: registered and announced, its frames handled in order, then ended (or,
/// for a reliable connection whose socket dropped, kept for its client to resume).
async fn run(hub: Arc<Hub>, socket: WebSocket, identity: Identity) {
    let (outbound, stream, writer) = open(socket, OUTBOUND_QUEUE);
    register(&hub, &identity, &outbound);
    hub.upstream
        .notify(&identity.caller(), "connected", &json!({}))
        .await;
    let ending = serve(&hub, &identity, &outbound, stream).await;
    drop(outbound);
    end_socket(&hub, &identity, 0, ending).await;
    let _ = writer.await;
}

/// A reliable client back on a new socket: the same connection id, groups and rights, and the
/// messages it has not acknowledged, in order, before anything new. An unknown connection or a
/// wrong token is closed with 1008, which tells the client to start afresh.
async fn resume(hub: Arc<Hub>, socket: WebSocket, connection_id: String, token: String) {
    // Room for everything it has not acknowledged, then the usual queue.
    let (outbound, stream, writer) = open(socket, UNACKED_LIMIT + OUTBOUND_QUEUE);
    let resumed = {
        let mut registry = hub.registry();
        match registry.connections.get_mut(&connection_id) {
            Some(connection)
                if connection
                    .recovery
                    .as_ref()
                    .is_some_and(|recovery| recovery.token == token) =>
            {
                let recovery = connection.recovery.as_ref().expect("checked above");
                let connected = json!({"type": "system", "event": "connected",
                                       "userId": connection.user_id, "connectionId": connection_id,
                                       "reconnectionToken": recovery.token});
                let _ = outbound.try_send(Message::Text(connected.to_string().into()));
                for (_, text) in &recovery.unacked {
                    let _ = outbound.try_send(Message::Text(text.clone()));
                }
                connection.outbound = Some(outbound.clone());
                connection.socket += 1;
                Some((
                    Identity {
                        connection_id: connection_id.clone(),
                        user_id: connection.user_id.clone(),
                        roles: connection.roles.clone(),
                        groups: Vec::new(),
                        subprotocol: RELIABLE,
                    },
                    connection.socket,
                ))
            }
            _ => None,
        }
    };
    let Some((identity, socket)) = resumed else {
        let _ = outbound.try_send(Message::Close(Some(CloseFrame {
            code: SESSION_GONE,
            reason: "the connection cannot be recovered".into(),
        })));
        drop(outbound);
        let _ = writer.await;
        return;
    };
    let ending = serve(&hub, &identity, &outbound, stream).await;
    drop(outbound);
    end_socket(&hub, &identity, socket, ending).await;
    let _ = writer.await;
}

/// How a socket ended.
#[derive(PartialEq, Eq)]
enum Ending {
    /// The client closed it.
    Closed,
    /// The hub closed it: a frame it could not read.
    InvalidFrame,
    /// It dropped without a close frame: a reliable client may come back.
    Dropped,
}

/// Splits the socket: its outbound queue, with a task writing the queue in order, and its reader.
fn open(
    socket: WebSocket,
    queue_length: usize,
) -> (
    mpsc::Sender<Message>,
    SplitStream<WebSocket>,
    JoinHandle<()>,
) {
    let (mut sink, stream) = socket.split();
    let (outbound, mut queue) = mpsc::channel::<Message>(queue_length);
    let writer = tokio::spawn(async move {
        while let Some(message) = queue.recv().await {
            let closing = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || closing {
                return;
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    });
    (outbound, stream, writer)
}

/// Handles the socket's frames in order until it ends.
async fn serve(
    hub: &Hub,
    identity: &Identity,
    outbound: &mpsc::Sender<Message>,
    mut stream: SplitStream<WebSocket>,
) -> Ending {
    let session = Session {
        hub,
        identity,
        outbound,
    };
    let mut seen_acks = RecentAcks::default();
    while let Some(Ok(message)) = stream.next().await {
        let frame = match message {
            Message::Text(text) => serde_json::from_str::<Value>(&text).ok(),
            Message::Close(_) => return Ending::Closed,
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Binary(_) => None,
        };
        let Some(frame) = frame.filter(Value::is_object) else {
            let _ = outbound.try_send(Message::Close(Some(CloseFrame {
                code: INVALID_FRAME,
                reason: "invalid frame".into(),
            })));
            return Ending::InvalidFrame;
        };
        session.handle(&mut seen_acks, &frame).await;
    }
    Ending::Dropped
}

/// After socket number `socket` of a connection ended: a dropped reliable connection waits
/// [`RECOVERY_WINDOW`] for its client; otherwise the connection ends and the event handler hears
/// of it. A socket a newer one has replaced changes nothing.
async fn end_socket(hub: &Arc<Hub>, identity: &Identity, socket: u64, ending: Ending) {
    let id = &identity.connection_id;
    {
        let mut registry = hub.registry();
        match registry.connections.get_mut(id) {
            Some(connection) if connection.socket != socket => return,
            Some(connection) if ending == Ending::Dropped && connection.recovery.is_some() => {
                connection.outbound = None;
                tokio::spawn(expire(hub.clone(), id.clone(), socket));
                return;
            }
            Some(_) => {
                registry.remove(id);
            }
            // Closed by the hub (REST, or a client not reading): reported here all the same.
            None => {}
        }
    }
    let reason = match ending {
        Ending::InvalidFrame => "invalid frame",
        Ending::Closed | Ending::Dropped => "",
    };
    hub.upstream
        .notify(
            &identity.caller(),
            "disconnected",
            &json!({ "reason": reason }),
        )
        .await;
}

/// Ends a dropped reliable connection its client did not resume in time.
async fn expire(hub: Arc<Hub>, connection_id: String, socket: u64) {
    tokio::time::sleep(RECOVERY_WINDOW).await;
    let expired = {
        let mut registry = hub.registry();
        let waiting = registry
            .connections
            .get(&connection_id)
            .is_some_and(|connection| connection.socket == socket && connection.outbound.is_none());
        waiting.then(|| registry.remove(&connection_id)).flatten()
    };
    if let Some(connection) = expired {
        report_detached_end(
            &hub,
            &connection_id,
            &connection,
            "the client did not reconnect",
        )
        .await;
    }
}

/// Tells the event handler a connection without a socket has ended.
async fn report_detached_end(
    hub: &Hub,
    connection_id: &str,
    connection: &Connection,
    reason: &str,
) {
    let caller = Caller {
        connection_id,
        user_id: connection.user_id.as_deref(),
        subprotocol: Some(RELIABLE),
    };
    hub.upstream
        .notify(&caller, "disconnected", &json!({ "reason": reason }))
        .await;
}

/// Sends the `connected` message and enters the connection and its starting groups.
fn register(hub: &Hub, identity: &Identity, outbound: &mpsc::Sender<Message>) {
    let id = &identity.connection_id;
    let recovery = (identity.subprotocol == RELIABLE).then(|| Recovery {
        token: Uuid::new_v4().simple().to_string(),
        next_sequence: 0,
        unacked: VecDeque::new(),
    });
    let mut connected = json!({"type": "system", "event": "connected",
                               "userId": identity.user_id, "connectionId": id});
    if let Some(recovery) = &recovery {
        connected["reconnectionToken"] = recovery.token.clone().into();
    }
    let _ = outbound.try_send(Message::Text(connected.to_string().into()));
    let mut registry = hub.registry();
    registry.connections.insert(
        id.clone(),
        Connection {
            user_id: identity.user_id.clone(),
            roles: identity.roles.clone(),
            granted: HashSet::new(),
            groups: HashSet::new(),
            recovery,
            outbound: Some(outbound.clone()),
            socket: 0,
        },
    );
    for group in &identity.groups {
        registry.join(id, group);
    }
}

/// A failed frame's ack: the error's name and message.
type Refusal = (&'static str, &'static str);

const FORBIDDEN: Refusal = ("Forbidden", "The connection lacks the permission.");

/// What handling one connection's frames needs.
struct Session<'a> {
    hub: &'a Hub,
    identity: &'a Identity,
    outbound: &'a mpsc::Sender<Message>,
}

impl Session<'_> {
    /// Handles one frame and acks it when it carries an `ackId` (a resent one: `Duplicate`).
    async fn handle(&self, seen_acks: &mut RecentAcks, frame: &Value) {
        let ack_id = frame["ackId"].as_u64();
        if let Some(ack_id) = ack_id
            && !seen_acks.first_time(ack_id)
        {
            return ack(
                self.outbound,
                Some(ack_id),
                Err(("Duplicate", "The ackId was used before.")),
            );
        }
        let group = frame["group"].as_str().unwrap_or_default();
        let result = match frame["type"].as_str().unwrap_or_default() {
            "joinGroup" => self.join_or_leave(group, true),
            "leaveGroup" => self.join_or_leave(group, false),
            "sendToGroup" => self.send_to_group(group, frame).await,
            "event" => self.user_event(frame).await,
            "ping" => {
                let pong = json!({"type": "pong"}).to_string();
                let _ = self.outbound.try_send(Message::Text(pong.into()));
                return;
            }
            "sequenceAck" => {
                let acked = frame["sequenceId"].as_u64().unwrap_or_default();
                let mut registry = self.hub.registry();
                if let Some(recovery) = registry
                    .connections
                    .get_mut(&self.identity.connection_id)
                    .and_then(|connection| connection.recovery.as_mut())
                {
                    recovery.acknowledge(acked);
                }
                return;
            }
            // Newer frame types are ignored.
            _ => return,
        };
        ack(self.outbound, ack_id, result);
    }

    /// Whether the connection may do `action` on `group`: by its roles, or a permission granted
    /// to it through the REST API.
    fn allowed(&self, action: Action, group: &str) -> bool {
        roles::allows(&self.identity.roles, action, group)
            || self
                .hub
                .registry()
                .connections
                .get(&self.identity.connection_id)
                .is_some_and(|connection| {
                    connection
                        .granted
                        .contains(&(action.permission().to_owned(), group.to_owned()))
                })
    }

    fn join_or_leave(&self, group: &str, join: bool) -> Result<(), Refusal> {
        if group.is_empty() || !self.allowed(Action::JoinLeave, group) {
            return Err(FORBIDDEN);
        }
        let mut registry = self.hub.registry();
        if join {
            registry.join(&self.identity.connection_id, group);
        } else {
            registry.leave(&self.identity.connection_id, group);
        }
        Ok(())
    }

    async fn send_to_group(&self, group: &str, frame: &Value) -> Result<(), Refusal> {
        if group.is_empty() || !self.allowed(Action::Send, group) {
            return Err(FORBIDDEN);
        }
        let message = json!({"type": "message", "from": "group", "group": group,
                             "dataType": frame["dataType"].as_str().unwrap_or("json"),
                             "data": frame["data"], "fromUserId": self.identity.user_id});
        let members = self.hub.registry().in_group(group);
        let excluded = if frame["noEcho"].as_bool() == Some(true) {
            vec![self.identity.connection_id.clone()]
        } else {
            Vec::new()
        };
        deliver(self.hub, &members, &excluded, &message).await;
        Ok(())
    }

    /// Forwards a user event upstream; the handler's answer, if any, comes back to this client.
    async fn user_event(&self, frame: &Value) -> Result<(), Refusal> {
        let event = frame["event"].as_str().unwrap_or("message");
        let (content_type, body) = encode(frame);
        let answer = self
            .hub
            .upstream
            .user_event(&self.identity.caller(), event, content_type, body)
            .await
            .map_err(|()| ("InternalServerError", "The event handler failed."))?;
        if let Some((content_type, body)) = answer {
            let (data_type, data) = decode(&content_type, &body);
            let reply =
                json!({"type": "message", "from": "server", "dataType": data_type, "data": data});
            deliver(
                self.hub,
                std::slice::from_ref(&self.identity.connection_id),
                &[],
                &reply,
            )
            .await;
        }
        Ok(())
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

fn ack(outbound: &mpsc::Sender<Message>, ack_id: Option<u64>, result: Result<(), Refusal>) {
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

/// Tells the client why and closes it (its reader then reports the disconnect upstream; for a
/// dropped reliable connection waiting for its client, this does).
pub async fn close(hub: &Hub, connection_id: &str, reason: &str) {
    let Some(connection) = hub.registry().remove(connection_id) else {
        return;
    };
    match &connection.outbound {
        Some(outbound) => {
            let notice = json!({"type": "system", "event": "disconnected", "message": reason});
            let _ = outbound.try_send(Message::Text(notice.to_string().into()));
            let _ = outbound.try_send(Message::Close(None));
        }
        None => report_detached_end(hub, connection_id, &connection, reason).await,
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

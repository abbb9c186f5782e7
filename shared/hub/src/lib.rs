//! A Web PubSub-compatible hub, the local default of architecture.md: the handler serves it on
//! its own port when no Azure Web PubSub is configured. It runs as Bicep deploys the service,
//! with local auth off (azure-contracts §2): the data-plane REST paths take Entra bearer tokens
//! (from the local OpenID issuer, checked like any Entra token) and hand out client tokens only
//! through `:generateToken` (`rest`); client WebSockets speak the `json.webpubsub.azure.v1` and
//! `json.reliable.webpubsub.azure.v1` subprotocols with token roles (`client`, `roles`); and
//! CloudEvents go to the event handler with the service identity's bearer token after the
//! abuse-protection handshake (`upstream`). So the backend's own client code runs unchanged
//! against it and against Azure.
//!
//! A reliable connection whose socket drops keeps its groups and the messages its client has not
//! acknowledged for [`RECOVERY_WINDOW`]; the client reconnects with `awps_connection_id` and
//! `awps_reconnection_token` and gets them again in order (`client`).
//!
//! Not implemented (not used by CodeConnect): OData `filter` on sends, `ce-connectionState`.

mod client;
mod client_token;
mod rest;
mod roles;
mod upstream;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::extract::ws::{Message, Utf8Bytes};
use axum::routing::{any, get};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use uuid::Uuid;

use azure_clients::entra::{LocalIssuer, TokenRules, TokenValidator};
use azure_clients::pubsub::PubSubEndpoint;

pub use client_token::sign as sign_client_token;

/// Frames queued for one client; a client this far behind is disconnected, so a slow reader
/// costs bounded memory.
const OUTBOUND_QUEUE: usize = 256;
/// Messages a reliable connection may leave unacknowledged; past it the hub ends the session.
const UNACKED_LIMIT: usize = 1024;
/// How long a dropped reliable connection waits for its client to reconnect (the protocol's
/// clients retry for a minute).
const RECOVERY_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
/// The resource the REST API's bearer tokens are for (scope `https://webpubsub.azure.com/.default`).
pub const REST_AUDIENCE: &str = "https://webpubsub.azure.com";
/// What the local hub's event handler asks its tokens for: a dedicated App ID URI, as
/// `realtimeEventsTokenResource` is in Bicep.
pub const LOCAL_EVENTS_AUDIENCE: &str = "api://codeconnect-local-realtime-events";

pub struct HubConfig {
    pub hub: String,
    /// The key client access tokens are signed with (the service's own; never the app's).
    pub client_key: String,
    /// Who may call the REST API: rules for Entra bearer tokens; none: nobody (clients only).
    pub rest_callers: Option<TokenRules>,
    /// Where CloudEvents go and how they authenticate; none: connections are accepted as is.
    pub event_handler: Option<EventHandler>,
}

/// The hub's event handler with managed-identity auth, as `eventHandlers[].auth` in Bicep.
pub struct EventHandler {
    /// `…/api/realtime/events`.
    pub url: String,
    /// `auth.managedIdentity.resource`: the audience of the tokens it sends.
    pub resource: String,
    /// Issues the service identity's tokens.
    pub issuer: Arc<LocalIssuer>,
    /// The service identity's object id (Bicep's `webPubSubPrincipalId`).
    pub principal_id: String,
}

/// A started local hub and the issuer standing in for Entra beside it.
pub struct LocalRealtime {
    /// How the app reaches the hub: exactly the shape Azure's service has.
    pub service: PubSubEndpoint,
    pub issuer: Arc<LocalIssuer>,
}

/// Starts the local OpenID issuer and binds the hub on `port` (0: any free port), calling
/// `event_handler` with the hub identity's tokens; returns how the app reaches both.
pub async fn spawn_local(
    port: u16,
    hub: &str,
    event_handler: String,
) -> anyhow::Result<LocalRealtime> {
    let issuer = LocalIssuer::spawn().await?;
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let endpoint = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
    let service_principal = Uuid::new_v4().to_string();
    let config = HubConfig {
        hub: hub.to_owned(),
        client_key: data_encoding::BASE64.encode(&rand::random::<[u8; 32]>()),
        rest_callers: Some(issuer.rules(REST_AUDIENCE, issuer.app_principal_id())),
        event_handler: Some(EventHandler {
            url: event_handler,
            resource: LOCAL_EVENTS_AUDIENCE.to_owned(),
            issuer: issuer.clone(),
            principal_id: service_principal.clone(),
        }),
    };
    tokio::spawn(async move {
        if let Err(error) = serve(listener, config).await {
            tracing::error!(error = %error, "the local Web PubSub hub stopped");
        }
    });
    Ok(LocalRealtime {
        service: PubSubEndpoint {
            endpoint,
            identity: issuer.app_identity(),
            events: issuer.rules(LOCAL_EVENTS_AUDIENCE, &service_principal),
        },
        issuer,
    })
}

/// Serves the hub on `listener` until the process ends.
pub async fn serve(listener: TcpListener, config: HubConfig) -> std::io::Result<()> {
    let origin = listener.local_addr()?.ip().to_string();
    axum::serve(listener, router(Arc::new(Hub::new(config, origin)))).await
}

fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        // Web PubSub's operations are literal segments such as `:send` (see `rest`).
        .without_v07_checks()
        .route("/client/hubs/{hub}", get(client::connect))
        .route("/api/health", any(rest::health))
        .nest("/api/hubs/{hub}", rest::routes(hub.clone()))
        .with_state(hub)
}

struct Hub {
    client_key: String,
    rest_callers: Option<TokenValidator>,
    name: String,
    upstream: upstream::Upstream,
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    connections: HashMap<String, Connection>,
    groups: HashMap<String, HashSet<String>>,
}

struct Connection {
    user_id: Option<String>,
    roles: Vec<String>,
    /// Permissions granted over REST: (permission, group).
    granted: HashSet<(String, String)>,
    groups: HashSet<String>,
    /// With the reliable subprotocol: what a reconnecting client gets back.
    recovery: Option<Recovery>,
    /// The socket's queue; none while a dropped reliable connection waits for its client.
    outbound: Option<mpsc::Sender<Message>>,
    /// Counts the sockets the connection has had, so a socket that ends late cannot detach or
    /// end its successor's session.
    socket: u64,
}

/// A reliable connection's session state.
struct Recovery {
    token: String,
    next_sequence: u64,
    /// Messages sent but not yet acknowledged with `sequenceAck`, oldest first.
    unacked: VecDeque<(u64, Utf8Bytes)>,
}

impl Recovery {
    fn acknowledge(&mut self, sequence_id: u64) {
        while self
            .unacked
            .front()
            .is_some_and(|(sent, _)| *sent <= sequence_id)
        {
            self.unacked.pop_front();
        }
    }
}

impl Hub {
    /// `origin`: the host the hub calls itself in `WebHook-Request-Origin`.
    fn new(config: HubConfig, origin: String) -> Self {
        Self {
            upstream: upstream::Upstream::new(config.event_handler, &config.hub, origin),
            client_key: config.client_key,
            rest_callers: config.rest_callers.map(TokenValidator::new),
            name: config.hub,
            registry: Mutex::default(),
        }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Registry {
    fn join(&mut self, connection_id: &str, group: &str) -> bool {
        let Some(connection) = self.connections.get_mut(connection_id) else {
            return false;
        };
        connection.groups.insert(group.to_owned());
        self.groups
            .entry(group.to_owned())
            .or_default()
            .insert(connection_id.to_owned());
        true
    }

    fn leave(&mut self, connection_id: &str, group: &str) {
        if let Some(connection) = self.connections.get_mut(connection_id) {
            connection.groups.remove(group);
        }
        if let Some(members) = self.groups.get_mut(group) {
            members.remove(connection_id);
            if members.is_empty() {
                self.groups.remove(group);
            }
        }
    }

    fn remove(&mut self, connection_id: &str) -> Option<Connection> {
        let connection = self.connections.remove(connection_id)?;
        for group in &connection.groups {
            if let Some(members) = self.groups.get_mut(group) {
                members.remove(connection_id);
                if members.is_empty() {
                    self.groups.remove(group);
                }
            }
        }
        Some(connection)
    }

    fn of_user(&self, user_id: &str) -> Vec<String> {
        self.connections
            .iter()
            .filter(|(_, connection)| connection.user_id.as_deref() == Some(user_id))
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn in_group(&self, group: &str) -> Vec<String> {
        self.groups
            .get(group)
            .map(|members| members.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Queues `frame` for each of `targets` (minus `excluded`); returns the clients that had
    /// fallen too far behind, for the caller to close.
    fn deliver(&mut self, targets: &[String], excluded: &[String], frame: &Value) -> Vec<String> {
        let mut stalled = Vec::new();
        let plain = Utf8Bytes::from(frame.to_string());
        for id in targets.iter().filter(|id| !excluded.contains(id)) {
            let Some(connection) = self.connections.get_mut(id) else {
                continue;
            };
            let text = match &mut connection.recovery {
                None => plain.clone(),
                Some(recovery) if recovery.unacked.len() >= UNACKED_LIMIT => {
                    stalled.push(id.clone());
                    continue;
                }
                Some(recovery) => {
                    recovery.next_sequence += 1;
                    let mut frame = frame.clone();
                    frame["sequenceId"] = recovery.next_sequence.into();
                    let text = Utf8Bytes::from(frame.to_string());
                    recovery
                        .unacked
                        .push_back((recovery.next_sequence, text.clone()));
                    text
                }
            };
            if let Some(outbound) = &connection.outbound
                && outbound.try_send(Message::Text(text)).is_err()
            {
                stalled.push(id.clone());
            }
        }
        stalled
    }
}

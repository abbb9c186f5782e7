//! A Web PubSub-compatible hub, the local default of architecture.md: the handler serves it on
//! its own port when no Azure Web PubSub is configured. It speaks the same wire protocol as the
//! service (azure-contracts §2): the data-plane REST paths with access-key JWTs (`rest`), client
//! WebSockets with the `json.webpubsub.azure.v1` and `json.reliable.webpubsub.azure.v1`
//! subprotocols and token roles (`client`, `roles`), and CloudEvents upstream calls with
//! `ce-signature` after the abuse-protection handshake (`upstream`). So the backend's own client
//! code runs unchanged against it and against Azure.
//!
//! Not implemented (not used by CodeConnect): OData `filter` on sends, reliable-protocol
//! recovery of a dropped connection (a reconnect is a new connection), `ce-connectionState`.

mod client;
mod rest;
mod roles;
mod upstream;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::extract::ws::Message;
use axum::routing::{any, get};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::config::{PubSubService, Secret};

/// Frames queued for one client; a client this far behind is disconnected, so a slow reader
/// costs bounded memory.
const OUTBOUND_QUEUE: usize = 256;

pub struct HubConfig {
    /// The access key that signs REST and client tokens (and upstream event signatures).
    pub key: String,
    pub hub: String,
    /// Where CloudEvents go (`…/api/realtime/events`); none: connections are accepted as is.
    pub event_handler: Option<String>,
}

/// Binds the hub on `port` (0: any free port) with a key drawn at random, serves it in the
/// background, and returns the service settings that reach it.
pub async fn spawn_local(
    port: u16,
    hub: &str,
    event_handler: String,
) -> anyhow::Result<PubSubService> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let endpoint = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
    let key = data_encoding::BASE64.encode(&rand::random::<[u8; 32]>());
    let config = HubConfig {
        key: key.clone(),
        hub: hub.to_owned(),
        event_handler: Some(event_handler),
    };
    tokio::spawn(async move {
        if let Err(error) = serve(listener, config).await {
            tracing::error!(error = %error, "the local Web PubSub hub stopped");
        }
    });
    Ok(PubSubService::AccessKey {
        endpoint,
        key: Secret::new(key.clone()),
        event_keys: vec![Secret::new(key)],
    })
}

/// Serves the hub on `listener` until the process ends.
pub async fn serve(listener: TcpListener, config: HubConfig) -> std::io::Result<()> {
    axum::serve(listener, router(Arc::new(Hub::new(config)))).await
}

fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/client/hubs/{hub}", get(client::connect))
        .route("/api/health", any(rest::health))
        .route("/api/hubs/{hub}/{*rest}", any(rest::dispatch))
        .with_state(hub)
}

struct Hub {
    key: String,
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
    /// Permissions granted over REST: (permission, group).
    granted: HashSet<(String, String)>,
    groups: HashSet<String>,
    reliable: bool,
    next_sequence: u64,
    outbound: mpsc::Sender<Message>,
}

impl Hub {
    fn new(config: HubConfig) -> Self {
        Self {
            upstream: upstream::Upstream::new(config.event_handler, &config.hub, &config.key),
            key: config.key,
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
        for id in targets.iter().filter(|id| !excluded.contains(id)) {
            let Some(connection) = self.connections.get_mut(id) else {
                continue;
            };
            let mut frame = frame.clone();
            if connection.reliable {
                connection.next_sequence += 1;
                frame["sequenceId"] = connection.next_sequence.into();
            }
            if connection
                .outbound
                .try_send(Message::Text(frame.to_string().into()))
                .is_err()
            {
                stalled.push(id.clone());
            }
        }
        stalled
    }
}

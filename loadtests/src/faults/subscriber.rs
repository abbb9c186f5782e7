//! A class's mentor listening to the chat on a reliable Web PubSub connection, as Microsoft's
//! client SDK does: every message's `sequenceId` acknowledged, and when the socket drops (the
//! hub fault drops it on purpose), a reconnect with the connection id and reconnection token,
//! after which the hub sends what was not acknowledged. Logs what arrived and any gap.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::realtime::{self, RELIABLE, Socket};
use crate::seed::Class;

/// How long a dropped listener keeps trying to resume (the protocol's minute).
const RESUME_FOR: Duration = Duration::from_secs(60);
/// How long the listener keeps reading after the load stops, for late deliveries.
const DRAIN: Duration = Duration::from_secs(3);

/// What a listener saw.
pub struct Log {
    /// Chat message ids in the order received (a repeat would show twice).
    pub received: Vec<Uuid>,
    /// Sequence numbers that never arrived, and ones that arrived twice.
    pub gaps: u64,
    pub repeats: u64,
    pub resumed: u64,
    pub errors: Vec<String>,
}

pub struct Subscriber {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Log>,
}

/// The connection to resume: where, which, and its token.
struct Session {
    endpoint: String,
    connection_id: String,
    token: String,
}

impl Subscriber {
    /// Connects `class`'s mentor and subscribes it to the chat; `drops` says when to drop the socket.
    pub async fn start(
        client: &reqwest::Client,
        base: &str,
        class: &Class,
        drops: watch::Receiver<u64>,
    ) -> Result<Self, String> {
        let (socket, connected, endpoint) =
            realtime::connect_with(client, base, &class.mentor_token, RELIABLE).await?;
        let session = Session {
            endpoint,
            connection_id: connected["connectionId"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            token: connected["reconnectionToken"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        };
        let path = format!("/api/bookings/{}/messages/subscribe", class.booking_id);
        realtime::enter(
            client,
            base,
            &class.mentor_token,
            &path,
            &session.connection_id,
        )
        .await?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(listen(socket, session, drops, stopped));
        Ok(Subscriber { stop, task })
    }

    pub async fn stop(self) -> Log {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_else(|_| Log {
            received: Vec::new(),
            gaps: 0,
            repeats: 0,
            resumed: 0,
            errors: vec!["the listener panicked".into()],
        })
    }
}

async fn listen(
    mut socket: Socket,
    session: Session,
    mut drops: watch::Receiver<u64>,
    mut stopped: oneshot::Receiver<()>,
) -> Log {
    let mut log = Log {
        received: Vec::new(),
        gaps: 0,
        repeats: 0,
        resumed: 0,
        errors: Vec::new(),
    };
    let mut last_sequence = 0;
    let mut draining = None;
    loop {
        let wait = draining.map_or(Duration::from_secs(3600), |until: tokio::time::Instant| {
            until.saturating_duration_since(tokio::time::Instant::now())
        });
        // Whether the socket is gone: closed by the hub or the network, or dropped on purpose.
        let lost = tokio::select! {
            frame = realtime::next_frame(&mut socket, wait) => match frame {
                Some(frame) => {
                    if let Some(ack) = receive(&frame, &mut last_sequence, &mut log) {
                        let _ = realtime::send(&mut socket, &ack).await;
                    }
                    false
                }
                None if draining.is_some() => break,
                None => true,
            },
            changed = drops.changed(), if draining.is_none() => changed.is_ok(),
            _ = &mut stopped, if draining.is_none() => {
                draining = Some(tokio::time::Instant::now() + DRAIN);
                false
            }
        };
        if lost {
            // Closed first, so the hub sees the drop before the reconnect.
            drop(socket);
            match resume(&session).await {
                Ok(resumed) => {
                    socket = resumed;
                    log.resumed += 1;
                }
                Err(error) => {
                    log.errors.push(error);
                    break;
                }
            }
        }
    }
    log
}

/// Records a frame; the `sequenceAck` to send for it, if it carries a sequence number.
fn receive(frame: &Value, last_sequence: &mut u64, log: &mut Log) -> Option<Value> {
    if let Some(sequence) = frame["sequenceId"].as_u64() {
        if sequence <= *last_sequence {
            log.repeats += 1;
            return Some(json!({"type": "sequenceAck", "sequenceId": *last_sequence}));
        }
        log.gaps += sequence - *last_sequence - 1;
        *last_sequence = sequence;
    }
    if frame["data"]["type"] == "chat.message"
        && let Some(id) = frame["data"]["message"]["messageId"]
            .as_str()
            .and_then(|id| id.parse().ok())
    {
        log.received.push(id);
    }
    frame["sequenceId"]
        .as_u64()
        .map(|sequence| json!({"type": "sequenceAck", "sequenceId": sequence}))
}

/// Reconnects to the same connection, retrying for [`RESUME_FOR`]; 1008 means it is gone.
async fn resume(session: &Session) -> Result<Socket, String> {
    let url = format!(
        "{}?awps_connection_id={}&awps_reconnection_token={}",
        session.endpoint, session.connection_id, session.token
    );
    let started = tokio::time::Instant::now();
    loop {
        match realtime::open(&url, RELIABLE).await {
            Ok(mut socket) => {
                return match realtime::next_frame(&mut socket, Duration::from_secs(10)).await {
                    Some(connected) if connected["event"] == "connected" => Ok(socket),
                    _ => Err("the hub refused to resume the connection".into()),
                };
            }
            Err(error) if started.elapsed() > RESUME_FOR => {
                return Err(format!("could not reconnect for a minute: {error}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

//! Phase 6: video classes in progress. For each class both participants negotiate, connect to
//! Web PubSub and join (`POST /api/bookings/{id}/video/join`) before the clock starts; then the
//! student sends an offer to the class group and the mentor's client answers it, as WebRTC
//! signalling does. One counted request is one offer → answer round trip: two deliveries
//! through Web PubSub, each to the other participant only (`noEcho`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinHandle;

use super::{StepResult, Target, VirtualUser, prepare_all};
use crate::realtime::{self, Socket};

/// How long an answer may take before it counts as lost.
const ANSWER_WAIT: Duration = Duration::from_secs(5);

pub struct User {
    socket: Socket,
    group: String,
    offers: u64,
    /// The mentor's client, answering offers until the phase ends.
    answerer: JoinHandle<()>,
}

impl Drop for User {
    fn drop(&mut self) {
        self.answerer.abort();
    }
}

/// One user (a class, driven from the student's side) per seeded class in progress.
pub async fn users(target: &Arc<Target>) -> Vec<Result<User, String>> {
    let classes = target.data.classes.len().min(target.connections / 2).max(1);
    prepare_all(classes, |k| {
        let target = target.clone();
        async move { join_class(&target, k).await }
    })
    .await
}

async fn join_class(target: &Target, k: usize) -> Result<User, String> {
    let Target {
        client, base, data, ..
    } = target;
    let class = &data.classes[k];
    let path = format!("/api/bookings/{}/video/join", class.booking_id);
    let student_token = &data.student_tokens[k];
    let (socket, connection) = realtime::connect(client, base, student_token).await?;
    let joined = realtime::enter(client, base, student_token, &path, &connection).await?;
    let (mut mentor, mentor_connection) =
        realtime::connect(client, base, &class.mentor_token).await?;
    realtime::enter(client, base, &class.mentor_token, &path, &mentor_connection).await?;
    let group = joined["group"]
        .as_str()
        .ok_or("join without group")?
        .to_owned();
    let answer_group = group.clone();
    let answerer = tokio::spawn(async move {
        while let Some(frame) = realtime::next_frame(&mut mentor, Duration::from_secs(3600)).await {
            if frame["from"] == "group" && frame["data"]["kind"] == "offer" {
                let answer = json!({"type": "sendToGroup", "group": answer_group, "noEcho": true,
                    "data": {"kind": "answer", "n": frame["data"]["n"], "sdp": "v=0 answer"}});
                if realtime::send(&mut mentor, &answer).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(User {
        socket,
        group,
        offers: 0,
        answerer,
    })
}

impl VirtualUser for User {
    async fn step(&mut self) -> StepResult {
        self.offers += 1;
        let n = self.offers;
        let offer = json!({"type": "sendToGroup", "group": self.group, "noEcho": true,
            "data": {"kind": "offer", "n": n, "sdp": "v=0 offer"}});
        realtime::send(&mut self.socket, &offer).await?;
        let deadline = tokio::time::Instant::now() + ANSWER_WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(frame) = realtime::next_frame(&mut self.socket, left).await else {
                return Err("answer not delivered in 5 s".into());
            };
            if frame["from"] == "group" && frame["data"]["kind"] == "answer" {
                if frame["data"]["n"] == n {
                    return Ok(None);
                }
                return Err("answer to another offer".into());
            }
        }
    }
}

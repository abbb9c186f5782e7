//! Phase 7: chat during classes. Both participants of every class in progress connect to Web
//! PubSub and subscribe to the class chat; each posts (`POST /api/bookings/{id}/messages`) and
//! the step ends when the other participant's client receives the message. Posts are paced at
//! the product's limit of 20 messages a minute per person and chat, so a 429 is an error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use super::{StepResult, Target, VirtualUser, expect_status, prepare_all};
use crate::realtime;

/// Time between one person's posts: just over 60 s / 20.
const BETWEEN_POSTS: Duration = Duration::from_millis(3100);
const DELIVERY_WAIT: Duration = Duration::from_secs(5);

/// Messages posted and not yet seen by the other participant, by clientMessageId.
type Awaited = Arc<Mutex<HashMap<String, oneshot::Sender<()>>>>;

pub struct User {
    target: Arc<Target>,
    booking_id: Uuid,
    token: String,
    next_post: Instant,
    posts: u64,
    awaited: Awaited,
    /// This participant's client, reporting the other participant's messages as delivered.
    listener: JoinHandle<()>,
}

impl Drop for User {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Two users (student and mentor) per class in progress.
pub async fn users(target: &Arc<Target>) -> Vec<Result<User, String>> {
    let classes = target.data.classes.len().min(target.connections / 2).max(1);
    let awaited: Awaited = Arc::default();
    prepare_all(classes * 2, |index| {
        let target = target.clone();
        let awaited = awaited.clone();
        async move { subscribe(target, index % classes, index >= classes, awaited).await }
    })
    .await
}

async fn subscribe(
    target: Arc<Target>,
    k: usize,
    as_mentor: bool,
    awaited: Awaited,
) -> Result<User, String> {
    let class = &target.data.classes[k];
    let (token, me) = if as_mentor {
        (class.mentor_token.clone(), class.mentor_id)
    } else {
        (
            target.data.student_tokens[k].clone(),
            target.data.student_ids[k],
        )
    };
    let (mut socket, connection) = realtime::connect(&target.client, &target.base, &token).await?;
    let path = format!("/api/bookings/{}/messages/subscribe", class.booking_id);
    realtime::enter(&target.client, &target.base, &token, &path, &connection).await?;
    let listener_awaited = awaited.clone();
    let listener = tokio::spawn(async move {
        let me = me.to_string();
        while let Some(frame) = realtime::next_frame(&mut socket, Duration::from_secs(3600)).await {
            let message = &frame["data"]["message"];
            if frame["data"]["type"] != "chat.message" || message["senderId"] == me.as_str() {
                continue;
            }
            let id = message["clientMessageId"].as_str().unwrap_or_default();
            let waiter = listener_awaited.lock().expect("awaited").remove(id);
            if let Some(waiter) = waiter {
                let _ = waiter.send(());
            }
        }
    });
    // Spread the first posts over one interval instead of all at once.
    let offset = BETWEEN_POSTS.mul_f64(rand::random::<f64>());
    Ok(User {
        booking_id: class.booking_id,
        target,
        token,
        next_post: Instant::now() + offset,
        posts: 0,
        awaited,
        listener,
    })
}

impl VirtualUser for User {
    async fn think(&mut self) {
        tokio::time::sleep_until(self.next_post).await;
        self.next_post = Instant::now() + BETWEEN_POSTS;
    }

    async fn step(&mut self) -> StepResult {
        self.posts += 1;
        let client_message_id = Uuid::new_v4().to_string();
        let (delivered, delivery) = oneshot::channel();
        self.awaited
            .lock()
            .expect("awaited")
            .insert(client_message_id.clone(), delivered);
        let posted = expect_status(
            self.target
                .client
                .post(format!(
                    "{}/api/bookings/{}/messages",
                    self.target.base, self.booking_id
                ))
                .bearer_auth(&self.token)
                .json(&json!({"message": format!("message {}", self.posts),
                              "clientMessageId": client_message_id}))
                .send()
                .await,
            reqwest::StatusCode::CREATED,
        );
        let result = match posted {
            Err(kind) => Err(kind),
            Ok(_) => match tokio::time::timeout(DELIVERY_WAIT, delivery).await {
                Ok(Ok(())) => Ok(None),
                _ => Err("not delivered in 5 s".into()),
            },
        };
        self.awaited
            .lock()
            .expect("awaited")
            .remove(&client_message_id);
        result
    }
}

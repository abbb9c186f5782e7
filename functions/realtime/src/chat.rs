//! Chat per booking (product-spec §5): participants only; sending from the booking's creation
//! until 180 days after the class, reading until 270 days after. A message is stored first and
//! then fanned out to the group `booking.{id}.chat`; a failed fan-out never loses it (clients
//! fetch history). A client's retry with the same `clientMessageId` returns the stored message
//! instead of storing it twice, and does not count against the 20-per-minute limit, which is
//! shared across instances through the cache.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use platform::auth::CurrentUser;
use platform::pagination::{Page, PageQuery, TimeCursor};
use platform::validation::Validator;
use platform::{AppState, Error, Json, Path, Query, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::connections;
use crate::participants::{self, Booking};

const SEND_DAYS_AFTER_CLASS: i64 = 180;
const READ_DAYS_AFTER_CLASS: i64 = 270;
const MESSAGES_PER_MINUTE: u64 = 20;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewMessage {
    /// 1 to 4000 characters.
    message: String,
    /// The client's own id for this message (1 to 100 characters); a retry sends the same one.
    client_message_id: String,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    message_id: Uuid,
    booking_id: Uuid,
    sender_id: Uuid,
    #[sqlx(rename = "body")]
    message: String,
    client_message_id: String,
    created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadUpTo {
    /// The newest message the reader has seen.
    up_to: Uuid,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subscribe {
    /// The caller's Web PubSub connection (from `/api/realtime/negotiate`).
    connection_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Subscribed {
    /// Pushes `{"type": "chat.message", "message": …}` arrive through this group.
    group: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Unread {
    unread: i64,
}

const MESSAGE_COLUMNS: &str =
    "message_id, booking_id, sender_id, body, client_message_id, created_at";

/// Send a chat message
///
/// A participant of the class sends a message: stored first, then pushed to the class chat
/// group. Send a `clientMessageId`; a retry with the same id returns the stored message (200).
/// Open until 7 days after the class, 20 messages a minute per person.
#[utoipa::path(
    post, path = "/bookings/{booking_id}/messages", tag = "chat",
    security(("session" = [])),
    params(("booking_id" = Uuid, Path)),
    request_body = NewMessage,
    responses(
        (status = 201, description = "Stored (and fanned out)", body = MessageView),
        (status = 200, description = "Already stored under this clientMessageId", body = MessageView),
        (status = 403, description = "NOT_A_PARTICIPANT; CHAT_CLOSED: more than 180 days after the class, or the booking was cancelled or expired unpaid (its chat stays readable)"),
        (status = 404, description = "BOOKING_NOT_FOUND"),
        (status = 422, description = "VALIDATION_FAILED"),
        (status = 429, description = "CHAT_RATE_LIMITED")
    )
)]
pub async fn post_message(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(booking_id): Path<Uuid>,
    Json(request): Json<NewMessage>,
) -> Result<(StatusCode, Json<MessageView>)> {
    let mut validator = Validator::new();
    validator
        .length(&request.message, "message", 1, 4000)
        .check(
            !request.message.trim().is_empty(),
            "message",
            "must not be blank",
        )
        .length(&request.client_message_id, "clientMessageId", 1, 100);
    validator.finish()?;
    let booking = participants::booking_of(&state, booking_id, user.user_id).await?;
    open_for(&booking, SEND_DAYS_AFTER_CLASS, "Sending")?;
    if booking.status.is_called_off() {
        return Err(Error::forbidden(
            "CHAT_CLOSED",
            "This class was called off: its chat can still be read but takes no new messages.",
        ));
    }
    if let Some(existing) = find_retry(&state, &booking, user.user_id, &request).await? {
        return Ok((StatusCode::OK, Json(existing)));
    }
    let counter = state
        .cache
        .increment(
            &format!("chat-rate:{booking_id}:{}", user.user_id),
            Duration::from_secs(60),
        )
        .await;
    if counter.count > MESSAGES_PER_MINUTE {
        return Err(Error::rate_limited(
            "CHAT_RATE_LIMITED",
            "At most 20 messages a minute in one chat.",
            Utc::now() + counter.resets_in,
        ));
    }
    let inserted: Option<MessageView> = sqlx::query_as(&format!(
        r#"INSERT INTO chat_messages (message_id, booking_id, sender_id, body, client_message_id)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (booking_id, sender_id, client_message_id) DO NOTHING
           RETURNING {MESSAGE_COLUMNS}"#
    ))
    .bind(Uuid::new_v4())
    .bind(booking_id)
    .bind(user.user_id)
    .bind(&request.message)
    .bind(&request.client_message_id)
    .fetch_optional(&state.db)
    .await?;
    let Some(message) = inserted else {
        // A concurrent retry stored it first.
        let existing = find_retry(&state, &booking, user.user_id, &request).await?;
        return existing
            .map(|message| (StatusCode::OK, Json(message)))
            .ok_or_else(|| anyhow::anyhow!("chat message vanished after a conflict").into());
    };
    state
        .pubsub
        .push(
            &chat_group(booking_id),
            &json!({"type": "chat.message", "message": message}),
        )
        .await;
    Ok((StatusCode::CREATED, Json(message)))
}

/// Receive a class's chat
///
/// Adds the caller's Web PubSub connection (from `connected`) to the class chat group, so new
/// messages arrive as `chat.message`.
#[utoipa::path(
    post, path = "/bookings/{booking_id}/messages/subscribe", tag = "chat",
    security(("session" = [])),
    params(("booking_id" = Uuid, Path)),
    request_body = Subscribe,
    responses(
        (status = 200, description = "The connection receives this chat's new messages", body = Subscribed),
        (status = 403, description = "NOT_A_PARTICIPANT, CONNECTION_NOT_YOURS, CHAT_CLOSED")
    )
)]
pub async fn subscribe(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(booking_id): Path<Uuid>,
    Json(request): Json<Subscribe>,
) -> Result<Json<Subscribed>> {
    let booking = participants::booking_of(&state, booking_id, user.user_id).await?;
    open_for(&booking, READ_DAYS_AFTER_CLASS, "Reading")?;
    if !connections::owns(&state, user.user_id, &request.connection_id).await? {
        return Err(connections::not_yours());
    }
    let group = chat_group(booking_id);
    state
        .pubsub
        .add_connection_to_group(&group, &request.connection_id)
        .await?;
    Ok(Json(Subscribed { group }))
}

/// A class's chat history
///
/// Oldest first, a page at a time, for the participants.
#[utoipa::path(
    get, path = "/bookings/{booking_id}/messages", tag = "chat",
    security(("session" = [])),
    params(("booking_id" = Uuid, Path), PageQuery),
    responses(
        (status = 200, description = "Oldest first", body = Page<MessageView>),
        (status = 403, description = "NOT_A_PARTICIPANT, CHAT_CLOSED"),
        (status = 404, description = "BOOKING_NOT_FOUND")
    )
)]
pub async fn list_messages(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(booking_id): Path<Uuid>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<MessageView>>> {
    let limit = page.limit()?;
    let cursor = page.cursor::<TimeCursor>()?;
    let booking = participants::booking_of(&state, booking_id, user.user_id).await?;
    open_for(&booking, READ_DAYS_AFTER_CLASS, "Reading")?;
    let rows: Vec<MessageView> = sqlx::query_as(&format!(
        r#"SELECT {MESSAGE_COLUMNS} FROM chat_messages
           WHERE booking_id = $1
             AND ($2::timestamptz IS NULL OR (created_at, message_id) > ($2, $3))
           ORDER BY created_at, message_id
           LIMIT $4"#
    ))
    .bind(booking_id)
    .bind(cursor.map(|c| c.time))
    .bind(cursor.map(|c| c.id))
    .bind(i64::from(limit) + 1)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(Page::from_rows(rows, limit, |message| TimeCursor {
        time: message.created_at,
        id: message.message_id,
    })))
}

/// Unread chat messages
///
/// How many of the other participant's messages the caller has not read.
#[utoipa::path(
    get, path = "/bookings/{booking_id}/messages/unread", tag = "chat",
    security(("session" = [])),
    params(("booking_id" = Uuid, Path)),
    responses((status = 200, body = Unread), (status = 403, description = "NOT_A_PARTICIPANT"))
)]
pub async fn unread(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(booking_id): Path<Uuid>,
) -> Result<Json<Unread>> {
    participants::booking_of(&state, booking_id, user.user_id).await?;
    Ok(Json(count_unread(&state, booking_id, user.user_id).await?))
}

/// Mark chat messages read
///
/// Everything up to and including the given message.
#[utoipa::path(
    post, path = "/bookings/{booking_id}/messages/read", tag = "chat", operation_id = "mark_messages_read",
    security(("session" = [])),
    params(("booking_id" = Uuid, Path)),
    request_body = ReadUpTo,
    responses((status = 200, description = "What is still unread", body = Unread), (status = 404, description = "MESSAGE_NOT_FOUND"))
)]
pub async fn mark_read(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(booking_id): Path<Uuid>,
    Json(request): Json<ReadUpTo>,
) -> Result<Json<Unread>> {
    participants::booking_of(&state, booking_id, user.user_id).await?;
    // Reading never moves backwards: a late, older mark leaves a newer one in place.
    let marked = sqlx::query(
        r#"INSERT INTO chat_reads (booking_id, user_id, read_up_to)
           SELECT $1, $2, created_at FROM chat_messages WHERE booking_id = $1 AND message_id = $3
           ON CONFLICT (booking_id, user_id) DO UPDATE
           SET read_up_to = greatest(chat_reads.read_up_to, EXCLUDED.read_up_to)"#,
    )
    .bind(booking_id)
    .bind(user.user_id)
    .bind(request.up_to)
    .execute(&state.db)
    .await?;
    if marked.rows_affected() == 0 {
        return Err(Error::not_found(
            "MESSAGE_NOT_FOUND",
            "No such message in this chat.",
        ));
    }
    Ok(Json(count_unread(&state, booking_id, user.user_id).await?))
}

async fn count_unread(state: &AppState, booking_id: Uuid, user_id: Uuid) -> Result<Unread> {
    let unread = sqlx::query_scalar(
        r#"SELECT count(*) FROM chat_messages m
           WHERE m.booking_id = $1 AND m.sender_id <> $2
             AND m.created_at > coalesce(
                 (SELECT read_up_to FROM chat_reads WHERE booking_id = $1 AND user_id = $2),
                 '-infinity')"#,
    )
    .bind(booking_id)
    .bind(user_id)
    .fetch_one(&state.db)
    .await?;
    Ok(Unread { unread })
}

async fn find_retry(
    state: &AppState,
    booking: &Booking,
    sender_id: Uuid,
    request: &NewMessage,
) -> Result<Option<MessageView>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE booking_id = $1 AND sender_id = $2 AND client_message_id = $3"
    ))
    .bind(booking.booking_id)
    .bind(sender_id)
    .bind(&request.client_message_id)
    .fetch_optional(&state.db)
    .await?)
}

/// 403 `CHAT_CLOSED` more than `days` after the class.
fn open_for(booking: &Booking, days: i64, what: &str) -> Result<()> {
    if Utc::now() > booking.ends_at + chrono::Duration::days(days) {
        return Err(Error::forbidden(
            "CHAT_CLOSED",
            format!("{what} this chat ended {days} days after the class."),
        ));
    }
    Ok(())
}

/// The group a booking's chat is pushed to; participants' connections join it.
pub fn chat_group(booking_id: Uuid) -> String {
    format!("booking.{booking_id}.chat")
}

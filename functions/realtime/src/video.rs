//! Video classes (product-spec §6): a participant joins from 15 minutes before the start until 5
//! minutes after the scheduled end of a confirmed class. Joining records the participant (the
//! mentor's first join is what the no-show rule looks for), gives the caller's connection join
//! and send rights on the class's group `booking.{id}.video` only, tells the group who joined,
//! and returns ICE servers with time-limited TURN credentials. Offers, answers and candidates
//! then go client to client through the group.

use axum::extract::State;
use axum::http::StatusCode;
use azure_clients::pubsub::Permission;
use chrono::{DateTime, Duration, Utc};
use data_encoding::BASE64;
use domain::booking_status::BookingStatus;
use hmac::{Hmac, Mac};
use platform::auth::CurrentUser;
use platform::config::ExposeSecret;
use platform::config::TurnConfig;
use platform::validation::Validator;
use platform::{AppState, Error, Json, Path, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha1::Sha1;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::connections;
use crate::participants;

const OPENS_BEFORE_START: Duration = Duration::minutes(15);
const CLOSES_AFTER_END: Duration = Duration::minutes(5);
/// TURN credentials outlive the class's end by this much (for a late reconnect).
const TURN_GRACE: Duration = Duration::hours(1);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinRequest {
    /// The caller's Web PubSub connection (from `/api/realtime/negotiate`).
    connection_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Joined {
    group: String,
    ice_servers: Vec<IceServer>,
    fallback_meeting_link: Option<String>,
    joined_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IceServer {
    urls: Vec<String>,
    username: String,
    credential: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct FallbackLink {
    /// An https meeting link, or null to clear it.
    url: Option<String>,
}

/// Join a class's video
///
/// Adds the caller's connection to the class video group (offer, answer and ICE go through it)
/// from 15 minutes before the start to 5 minutes after the end of a confirmed class, with STUN
/// and TURN servers (time-limited TURN credentials).
#[utoipa::path(
    post, path = "/bookings/{booking_id}/video/join", tag = "video",
    security(("session" = [])),
    params(("booking_id" = Uuid, Path)),
    request_body = JoinRequest,
    responses(
        (status = 200, body = Joined),
        (status = 403, description = "NOT_A_PARTICIPANT, CONNECTION_NOT_YOURS"),
        (status = 404, description = "BOOKING_NOT_FOUND"),
        (status = 409, description = "VIDEO_WINDOW_CLOSED")
    )
)]
pub async fn join(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(booking_id): Path<Uuid>,
    Json(request): Json<JoinRequest>,
) -> Result<Json<Joined>> {
    Validator::new()
        .length(&request.connection_id, "connectionId", 1, 200)
        .finish()?;
    let booking = participants::booking_of(&state, booking_id, user.user_id).await?;
    let now = Utc::now();
    let open = booking.status == BookingStatus::Confirmed
        && now >= booking.scheduled_at - OPENS_BEFORE_START
        && now <= booking.ends_at + CLOSES_AFTER_END;
    if !open {
        return Err(Error::conflict(
            "VIDEO_WINDOW_CLOSED",
            "A confirmed class opens 15 minutes before its start and closes 5 minutes after its end.",
        ));
    }
    if !connections::owns(&state, user.user_id, &request.connection_id).await? {
        return Err(connections::not_yours());
    }
    let mut transaction = state.db.begin().await?;
    let joined_at: DateTime<Utc> = sqlx::query_scalar(
        r#"INSERT INTO video_joins (booking_id, user_id, connection_id) VALUES ($1, $2, $3)
           ON CONFLICT (booking_id, user_id) DO UPDATE
           SET last_joined_at = now(), joins = video_joins.joins + 1, connection_id = EXCLUDED.connection_id
           RETURNING first_joined_at"#,
    )
    .bind(booking_id)
    .bind(user.user_id)
    .bind(&request.connection_id)
    .fetch_one(&mut *transaction)
    .await?;
    if user.user_id == booking.mentor_id {
        sqlx::query(
            "UPDATE bookings SET mentor_joined_at = coalesce(mentor_joined_at, now()) WHERE booking_id = $1",
        )
        .bind(booking_id)
        .execute(&mut *transaction)
        .await?;
    }
    let fallback_meeting_link: Option<String> =
        sqlx::query_scalar("SELECT fallback_meeting_link FROM bookings WHERE booking_id = $1")
            .bind(booking_id)
            .fetch_one(&mut *transaction)
            .await?;
    transaction.commit().await?;

    let group = video_group(booking_id);
    state
        .pubsub
        .add_connection_to_group(&group, &request.connection_id)
        .await?;
    state
        .pubsub
        .grant_permission(Permission::SendToGroup, &request.connection_id, &group)
        .await?;
    state
        .pubsub
        .push(
            &group,
            &json!({"type": "presence", "event": "user-joined", "userId": user.user_id,
                    "role": if user.user_id == booking.mentor_id { "mentor" } else { "student" }}),
        )
        .await;
    let ice_servers = state
        .config
        .turn
        .as_ref()
        .map(|turn| {
            vec![turn_credentials(
                turn,
                user.user_id,
                booking.ends_at + TURN_GRACE,
            )]
        })
        .unwrap_or_default();
    Ok(Json(Joined {
        group,
        ice_servers,
        fallback_meeting_link,
        joined_at,
    }))
}

/// Set a fallback meeting link
///
/// The class's mentor gives an external meeting link for when video fails; both participants
/// see it.
#[utoipa::path(
    put, path = "/bookings/{booking_id}/video/fallback-link", tag = "video",
    security(("session" = [])),
    params(("booking_id" = Uuid, Path)),
    request_body = FallbackLink,
    responses((status = 204), (status = 403, description = "NOT_THE_MENTOR"), (status = 422, description = "VALIDATION_FAILED"))
)]
pub async fn set_fallback_link(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(booking_id): Path<Uuid>,
    Json(request): Json<FallbackLink>,
) -> Result<StatusCode> {
    if let Some(url) = &request.url {
        Validator::new()
            .check(
                url.starts_with("https://")
                    && url.len() <= 500
                    && url.len() > "https://".len()
                    && !url.contains(char::is_whitespace),
                "url",
                "must be an https link of at most 500 characters",
            )
            .finish()?;
    }
    let booking = participants::booking_of(&state, booking_id, user.user_id).await?;
    if booking.mentor_id != user.user_id {
        return Err(Error::forbidden(
            "NOT_THE_MENTOR",
            "Only the class's mentor sets its meeting link.",
        ));
    }
    sqlx::query(
        "UPDATE bookings SET fallback_meeting_link = $2, updated_at = now() WHERE booking_id = $1",
    )
    .bind(booking_id)
    .bind(&request.url)
    .execute(&state.db)
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A connection closed: if it was in a class, tell the class its participant left.
pub async fn left(state: &AppState, connection_id: &str) -> Result<()> {
    let classes: Vec<(Uuid, Uuid)> =
        sqlx::query_as("SELECT booking_id, user_id FROM video_joins WHERE connection_id = $1")
            .bind(connection_id)
            .fetch_all(&state.db)
            .await?;
    for (booking_id, user_id) in classes {
        state
            .pubsub
            .push(
                &video_group(booking_id),
                &json!({"type": "presence", "event": "user-left", "userId": user_id}),
            )
            .await;
    }
    Ok(())
}

pub fn video_group(booking_id: Uuid) -> String {
    format!("booking.{booking_id}.video")
}

/// TURN REST credentials (the shared-secret scheme coturn implements): the username carries the
/// expiry, the password is its HMAC-SHA1 under the shared secret.
fn turn_credentials(turn: &TurnConfig, user_id: Uuid, valid_until: DateTime<Utc>) -> IceServer {
    let username = format!("{}:{user_id}", valid_until.timestamp());
    let mut mac = Hmac::<Sha1>::new_from_slice(turn.shared_secret.expose_secret().as_bytes())
        .expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    IceServer {
        urls: turn.urls.clone(),
        username,
        credential: BASE64.encode(&mac.finalize().into_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::config::Secret;

    #[test]
    fn turn_credentials_follow_the_rest_scheme() {
        let turn = TurnConfig {
            urls: vec!["turn:turn.example:3478".into()],
            shared_secret: Secret::from("north"),
        };
        let user = Uuid::nil();
        let until = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let server = turn_credentials(&turn, user, until);
        assert_eq!(server.username, format!("1800000000:{user}"));
        // HMAC-SHA1("north", username), base64, as coturn's use-auth-secret computes it
        // (checked with Python's hmac module).
        assert_eq!(server.credential, "nx9S4t4Znx4HKOoWxCi7ETgPk6k=");
    }
}

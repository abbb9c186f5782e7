//! The class recording's parts: the booking's mentor sends part `n` (`video/webm`, at most 100 MB)
//! straight to blob storage as block `part-NNN` of the recording's one block blob, from 15
//! minutes before the class until 15 minutes after it:
//! `POST /api/bookings/{id}/recording/parts/{n}/upload` hands out the Put Block URL, and
//! `POST .../parts/{n}/complete` checks the block arrived and records it. The `recordings` timer
//! commits the blocks in part order after the class. Sending part `n` again replaces its block,
//! so retries are idempotent and parts may arrive in any order.

use std::time::Duration as StdDuration;

use axum::extract::State;
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use domain::booking_status::BookingStatus;
use domain::uploads::{UploadRules, UploadTarget, WEBM, recording_blob_name};
use platform::auth::CurrentUser;
use platform::telemetry::metrics::metrics;
use platform::{AppState, Error, Json, Path, Result};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Uploads open this long before the class starts and stay open this long after it ends.
const UPLOAD_MARGIN: Duration = Duration::minutes(15);
/// How long a part's write URL works.
const PART_URL_TTL: StdDuration = StdDuration::from_secs(15 * 60);
const PART: UploadRules = UploadRules {
    types: &[WEBM],
    max_bytes: 100 * 1024 * 1024,
};

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartView {
    booking_id: Uuid,
    part_number: i32,
    size_bytes: i64,
    uploaded_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Class {
    mentor_id: Uuid,
    status: BookingStatus,
    scheduled_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    merged: bool,
}

/// Begin a recording part
///
/// The class's mentor gets a URL to send part `n` of the recording straight to storage (a Put
/// Block); parts may arrive in any order and be sent again.
#[utoipa::path(
    post, path = "/bookings/{booking_id}/recording/parts/{part_number}/upload", tag = "recordings",
    security(("session" = [])),
    params(("booking_id" = Uuid, Path), ("part_number" = i32, Path, description = "1 to 999")),
    responses(
        (status = 200, description = "PUT the part's bytes to `url` (a Put Block request), then complete the part", body = UploadTarget),
        (status = 400, description = "INVALID_PART_NUMBER"),
        (status = 403, description = "NOT_THE_MENTOR"),
        (status = 404, description = "BOOKING_NOT_FOUND"),
        (status = 409, description = "RECORDING_WINDOW_CLOSED, RECORDING_ALREADY_MERGED")
    )
)]
pub async fn start_part(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((booking_id, part_number)): Path<(Uuid, i32)>,
) -> Result<Json<UploadTarget>> {
    check_mentor_in_window(&state, &user, booking_id, part_number).await?;
    let target = UploadTarget::put_block(
        state.blobs.as_ref(),
        &state.config.blob.recordings_container,
        &recording_blob_name(booking_id),
        &block_id(part_number),
        PART_URL_TTL,
        PART.max_bytes,
    )
    .await?;
    Ok(Json(target))
}

/// Complete a recording part
///
/// Checks that storage has the block and records the part. After the class the recordings timer
/// assembles the parts in order into one WebM file.
#[utoipa::path(
    post, path = "/bookings/{booking_id}/recording/parts/{part_number}/complete", tag = "recordings",
    security(("session" = [])),
    params(("booking_id" = Uuid, Path), ("part_number" = i32, Path, description = "1 to 999")),
    responses(
        (status = 200, body = PartView),
        (status = 400, description = "INVALID_PART_NUMBER, EMPTY_BODY"),
        (status = 403, description = "NOT_THE_MENTOR"),
        (status = 404, description = "BOOKING_NOT_FOUND"),
        (status = 409, description = "UPLOAD_INCOMPLETE (no block for this part arrived), RECORDING_WINDOW_CLOSED, RECORDING_ALREADY_MERGED"),
        (status = 413, description = "PAYLOAD_TOO_LARGE (send the part again, smaller)")
    )
)]
pub async fn complete_part(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((booking_id, part_number)): Path<(Uuid, i32)>,
) -> Result<Json<PartView>> {
    check_mentor_in_window(&state, &user, booking_id, part_number).await?;
    let id = block_id(part_number);
    let block = state
        .blobs
        .blocks(
            &state.config.blob.recordings_container,
            &recording_blob_name(booking_id),
        )
        .await?
        .into_iter()
        .find(|block| !block.committed && block.id == id)
        .ok_or_else(|| {
            Error::conflict(
                "UPLOAD_INCOMPLETE",
                "No block for this part has arrived: send it to the upload URL first.",
            )
        })?;
    PART.check_size(block.size)?;
    let size_bytes = i64::try_from(block.size).unwrap_or(i64::MAX);
    let uploaded_at: DateTime<Utc> = sqlx::query_scalar(
        r#"INSERT INTO recording_parts (booking_id, part_number, size_bytes)
           VALUES ($1, $2, $3)
           ON CONFLICT (booking_id, part_number) DO UPDATE
           SET size_bytes = EXCLUDED.size_bytes, uploaded_at = now()
           RETURNING uploaded_at"#,
    )
    .bind(booking_id)
    .bind(part_number)
    .bind(size_bytes)
    .fetch_one(&state.db)
    .await?;
    metrics().upload("recording-part", block.size);
    Ok(Json(PartView {
        booking_id,
        part_number,
        size_bytes,
        uploaded_at,
    }))
}

/// Part numbers run from 1 to 999; only the class's mentor sends parts, around the class's
/// time, before the recording is committed.
async fn check_mentor_in_window(
    state: &AppState,
    user: &CurrentUser,
    booking_id: Uuid,
    part_number: i32,
) -> Result<()> {
    if !(1..=999).contains(&part_number) {
        return Err(Error::bad_request(
            "INVALID_PART_NUMBER",
            "Part numbers run from 1 to 999.",
        ));
    }
    let class: Class = sqlx::query_as(
        r#"SELECT b.mentor_id, b.status, b.scheduled_at, b.ends_at,
                  EXISTS (SELECT 1 FROM recordings r WHERE r.booking_id = b.booking_id) AS merged
           FROM bookings b WHERE b.booking_id = $1"#,
    )
    .bind(booking_id)
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| Error::not_found("BOOKING_NOT_FOUND", "No such booking."))?;
    if class.mentor_id != user.user_id {
        return Err(Error::forbidden(
            "NOT_THE_MENTOR",
            "Only the class's mentor uploads its recording.",
        ));
    }
    check_window(&class, Utc::now())
}

/// Uploads are for classes that take place, around their time, before the merge.
fn check_window(class: &Class, now: DateTime<Utc>) -> Result<()> {
    let takes_place = class.status.takes_place();
    let in_time = now >= class.scheduled_at - UPLOAD_MARGIN && now <= class.ends_at + UPLOAD_MARGIN;
    if class.merged {
        return Err(Error::conflict(
            "RECORDING_ALREADY_MERGED",
            "This class's recording is already complete.",
        ));
    }
    if !(takes_place && in_time) {
        return Err(Error::conflict(
            "RECORDING_WINDOW_CLOSED",
            "Recordings are uploaded from 15 minutes before a confirmed class until 15 minutes after it.",
        ));
    }
    Ok(())
}

/// Part `n`'s block id: `part-NNN` (ids of one blob must all have one length).
pub fn block_id(part_number: i32) -> Bytes {
    Bytes::from(format!("part-{part_number:03}"))
}

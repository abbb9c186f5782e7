//! `PUT /api/bookings/{id}/recording/parts/{n}`: the booking's mentor uploads part `n` of the
//! class recording (`video/webm`, at most 100 MB), streamed to blob storage, from 15 minutes
//! before the class until 15 minutes after it. Parts have fixed blob names, so sending part `n`
//! again replaces it: retries are idempotent.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use shared::auth::CurrentUser;
use shared::blob::upload::{FileType, UploadRules, WEBM};
use shared::{AppState, Error, Json, Path, Result};
use utoipa::ToSchema;
use uuid::Uuid;

/// Uploads open this long before the class starts and stay open this long after it ends.
const UPLOAD_MARGIN: Duration = Duration::minutes(15);
const MAX_PART_BYTES: u64 = 100 * 1024 * 1024;

/// Part 1 starts the WebM stream (EBML header); later parts continue it and have no header.
const FIRST_PART: UploadRules = UploadRules {
    types: &[WEBM],
    max_bytes: MAX_PART_BYTES,
};
const LATER_PART: UploadRules = UploadRules {
    types: &[FileType {
        content_type: "video/webm",
        matches: |_| true,
    }],
    max_bytes: MAX_PART_BYTES,
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
    status: String,
    scheduled_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    merged: bool,
}

#[utoipa::path(
    put, path = "/bookings/{booking_id}/recording/parts/{part_number}", tag = "recordings",
    security(("session" = [])),
    params(("booking_id" = Uuid, Path), ("part_number" = i32, Path, description = "1 to 999")),
    request_body(content = Vec<u8>, description = "A piece of the WebM stream", content_type = "video/webm"),
    responses(
        (status = 200, body = PartView),
        (status = 400, description = "INVALID_PART_NUMBER, EMPTY_BODY, UPLOAD_INTERRUPTED"),
        (status = 403, description = "NOT_THE_MENTOR"),
        (status = 404, description = "BOOKING_NOT_FOUND"),
        (status = 409, description = "RECORDING_WINDOW_CLOSED, RECORDING_ALREADY_MERGED"),
        (status = 413, description = "PAYLOAD_TOO_LARGE"),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE, CONTENT_TYPE_MISMATCH")
    )
)]
pub async fn upload_part(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((booking_id, part_number)): Path<(Uuid, i32)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<PartView>> {
    if !(1..=999).contains(&part_number) {
        return Err(Error::bad_request(
            "INVALID_PART_NUMBER",
            "Part numbers run from 1 to 999.",
        ));
    }
    let class = load_class(&state, booking_id).await?;
    if class.mentor_id != user.user_id {
        return Err(Error::forbidden(
            "NOT_THE_MENTOR",
            "Only the class's mentor uploads its recording.",
        ));
    }
    check_window(&class, Utc::now())?;
    let rules = if part_number == 1 {
        &FIRST_PART
    } else {
        &LATER_PART
    };
    let container = &state.config.blob.recordings_container;
    let blob_name = part_blob_name(booking_id, part_number);
    let stored = rules
        .store(state.blobs.as_ref(), container, &blob_name, &headers, body)
        .await?;
    let part: (DateTime<Utc>,) = sqlx::query_as(
        r#"INSERT INTO recording_parts (booking_id, part_number, blob_name, size_bytes)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (booking_id, part_number) DO UPDATE
           SET size_bytes = EXCLUDED.size_bytes, uploaded_at = now()
           RETURNING uploaded_at"#,
    )
    .bind(booking_id)
    .bind(part_number)
    .bind(&blob_name)
    .bind(i64::try_from(stored.size).unwrap_or(i64::MAX))
    .fetch_one(&state.db)
    .await?;
    Ok(Json(PartView {
        booking_id,
        part_number,
        size_bytes: i64::try_from(stored.size).unwrap_or(i64::MAX),
        uploaded_at: part.0,
    }))
}

async fn load_class(state: &AppState, booking_id: Uuid) -> Result<Class> {
    sqlx::query_as(
        r#"SELECT b.mentor_id, b.status, b.scheduled_at, b.ends_at,
                  EXISTS (SELECT 1 FROM recordings r WHERE r.booking_id = b.booking_id) AS merged
           FROM bookings b WHERE b.booking_id = $1"#,
    )
    .bind(booking_id)
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| Error::not_found("BOOKING_NOT_FOUND", "No such booking."))
}

/// Uploads are for classes that take place, around their time, before the merge.
fn check_window(class: &Class, now: DateTime<Utc>) -> Result<()> {
    let takes_place = matches!(class.status.as_str(), "confirmed" | "completed");
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

/// Zero-padded, so part names sort in part order.
pub fn part_blob_name(booking_id: Uuid, part_number: i32) -> String {
    format!("bookings/{booking_id}/parts/{part_number:03}.webm")
}

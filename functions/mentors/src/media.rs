//! A mentor's photo and intro video (product-spec §2): uploaded as the raw request body, streamed
//! to blob storage, pending until an admin approves them. One of each per mentor: a new upload
//! replaces the old one (and waits for approval again). Media leaves only through short-lived
//! read URLs, never through this app.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use shared::auth::MentorUser;
use shared::blob::upload::{JPEG, MP4, PNG, Stored, UploadRules, WEBM, WEBP};
use shared::media::{MEDIA_COLUMNS, MediaKind, MediaRow, MediaView, media_view};
use shared::{AppState, Error, Json, Path, Result};
use uuid::Uuid;

use crate::profile;

const PHOTO: UploadRules = UploadRules {
    types: &[JPEG, PNG, WEBP],
    max_bytes: 5 * 1024 * 1024,
};
const INTRO_VIDEO: UploadRules = UploadRules {
    types: &[MP4, WEBM],
    max_bytes: 100 * 1024 * 1024,
};

fn rules(kind: MediaKind) -> &'static UploadRules {
    match kind {
        MediaKind::Photo => &PHOTO,
        MediaKind::IntroVideo => &INTRO_VIDEO,
    }
}

#[utoipa::path(
    put, path = "/mentors/me/media/{kind}", tag = "mentors",
    security(("session" = [])),
    params(("kind" = MediaKind, Path, description = "`photo` (JPEG, PNG or WebP, at most 5 MB) or `intro-video` (MP4 or WebM, at most 100 MB)")),
    request_body(content = Vec<u8>, description = "The file itself, with its Content-Type", content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Stored, pending approval", body = MediaView),
        (status = 400, description = "EMPTY_BODY, UPLOAD_INTERRUPTED"),
        (status = 403, description = "FORBIDDEN_ROLE"),
        (status = 413, description = "PAYLOAD_TOO_LARGE"),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE, CONTENT_TYPE_MISMATCH")
    )
)]
pub async fn upload_media(
    State(state): State<AppState>,
    MentorUser(mentor): MentorUser,
    Path(kind): Path<MediaKind>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<MediaView>> {
    let container = &state.config.blob.media_container;
    let blob_name = format!("mentors/{}/{}", mentor.user_id, Uuid::new_v4());
    let stored = rules(kind)
        .store(state.blobs.as_ref(), container, &blob_name, &headers, body)
        .await?;
    let saved = save(&state, mentor.user_id, kind, &blob_name, &stored).await;
    let (row, replaced) = match saved {
        Ok(saved) => saved,
        Err(error) => {
            discard(&state, &blob_name).await;
            return Err(error);
        }
    };
    if let Some(replaced) = replaced {
        discard(&state, &replaced).await;
    }
    profile::changed(&state).await;
    Ok(Json(media_view(&state, row).await?))
}

/// Records the upload as the mentor's `kind`, pending review, under a new id (so an admin's
/// decision about the old file cannot land on the new one); returns the row and the blob it
/// replaced. Uploads of one mentor are serialised on the user row, so a replaced blob is never
/// missed.
async fn save(
    state: &AppState,
    mentor_id: Uuid,
    kind: MediaKind,
    blob_name: &str,
    stored: &Stored,
) -> Result<(MediaRow, Option<String>)> {
    let mut transaction = state.db.begin().await?;
    sqlx::query("SELECT 1 FROM users WHERE user_id = $1 FOR NO KEY UPDATE")
        .bind(mentor_id)
        .execute(&mut *transaction)
        .await?;
    let replaced: Option<String> =
        sqlx::query_scalar("SELECT blob_name FROM mentor_media WHERE mentor_id = $1 AND kind = $2")
            .bind(mentor_id)
            .bind(kind)
            .fetch_optional(&mut *transaction)
            .await?;
    let row: MediaRow = sqlx::query_as(&format!(
        r#"INSERT INTO mentor_media (mentor_media_id, mentor_id, kind, blob_name, content_type, size_bytes)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (mentor_id, kind) DO UPDATE
           SET mentor_media_id = EXCLUDED.mentor_media_id, blob_name = EXCLUDED.blob_name, content_type = EXCLUDED.content_type,
               size_bytes = EXCLUDED.size_bytes, status = 'pending', rejection_reason = NULL,
               created_at = now(), reviewed_at = NULL
           RETURNING {MEDIA_COLUMNS}"#
    ))
    .bind(Uuid::new_v4())
    .bind(mentor_id)
    .bind(kind)
    .bind(blob_name)
    .bind(stored.content_type)
    .bind(i64::try_from(stored.size).unwrap_or(i64::MAX))
    .fetch_one(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok((row, replaced))
}

#[utoipa::path(
    get, path = "/mentors/me/media", tag = "mentors",
    security(("session" = [])),
    responses((status = 200, body = Vec<MediaView>), (status = 403, description = "FORBIDDEN_ROLE"))
)]
pub async fn my_media(
    State(state): State<AppState>,
    MentorUser(mentor): MentorUser,
) -> Result<Json<Vec<MediaView>>> {
    let rows: Vec<MediaRow> = sqlx::query_as(&format!(
        "SELECT {MEDIA_COLUMNS} FROM mentor_media WHERE mentor_id = $1 ORDER BY kind"
    ))
    .bind(mentor.user_id)
    .fetch_all(&state.db)
    .await?;
    let mut views = Vec::with_capacity(rows.len());
    for row in rows {
        views.push(media_view(&state, row).await?);
    }
    Ok(Json(views))
}

#[utoipa::path(
    delete, path = "/mentors/me/media/{kind}", tag = "mentors",
    security(("session" = [])),
    params(("kind" = MediaKind, Path)),
    responses((status = 204), (status = 404, description = "MEDIA_NOT_FOUND"))
)]
pub async fn delete_media(
    State(state): State<AppState>,
    MentorUser(mentor): MentorUser,
    Path(kind): Path<MediaKind>,
) -> Result<StatusCode> {
    let deleted: Option<String> = sqlx::query_scalar(
        "DELETE FROM mentor_media WHERE mentor_id = $1 AND kind = $2 RETURNING blob_name",
    )
    .bind(mentor.user_id)
    .bind(kind)
    .fetch_optional(&state.db)
    .await?;
    let blob_name =
        deleted.ok_or_else(|| Error::not_found("MEDIA_NOT_FOUND", "Nothing uploaded yet."))?;
    discard(&state, &blob_name).await;
    profile::changed(&state).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a blob no row points at any more. A failure leaves an orphan, not a broken
/// profile, so it is logged rather than returned.
async fn discard(state: &AppState, blob_name: &str) {
    let container = &state.config.blob.media_container;
    if let Err(error) = state.blobs.delete(container, blob_name).await {
        tracing::warn!(blob = blob_name, error = ?error, "could not delete a media blob");
    }
}

//! Media uploads in two calls around the client's own `PUT` to blob storage:
//! `POST /api/mentors/me/media/{kind}/uploads` checks what the mentor says they will send and
//! answers with a write URL for one new blob; `POST .../uploads/{uploadId}/complete` checks the
//! stored blob (size, type, magic bytes) and only then records it as the mentor's media.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use domain::media::{MEDIA_COLUMNS, MediaKind, MediaRow, MediaView, media_view};
use domain::uploads::{JPEG, MP4, PNG, UploadRules, UploadTarget, WEBM, WEBP};
use platform::auth::MentorUser;
use platform::telemetry::metrics::metrics;
use platform::{AppState, Error, Json, Path, Result};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::discard;
use crate::profile;

/// How long a write URL works: enough for 100 MB over a slow uplink.
const UPLOAD_URL_TTL: Duration = Duration::from_secs(60 * 60);

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

/// What the mentor is about to send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartUpload {
    #[schema(example = "image/png")]
    content_type: String,
    #[schema(example = 348_211)]
    size_bytes: u64,
}

/// A media upload begun: send the file as `target` says, then complete the upload.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MediaUpload {
    upload_id: Uuid,
    kind: MediaKind,
    target: UploadTarget,
}

#[derive(sqlx::FromRow)]
struct Pending {
    blob_name: String,
    content_type: String,
}

/// Begin a photo or video upload
///
/// Declare the content type and size; the answer is a write URL for exactly one new blob (valid
/// for an hour) with the method and headers to send. PUT the file there, straight to storage,
/// then complete the upload.
#[utoipa::path(
    post, path = "/mentors/me/media/{kind}/uploads", tag = "mentors",
    security(("session" = [])),
    params(("kind" = MediaKind, Path, description = "`photo` (JPEG, PNG or WebP, at most 5 MB) or `intro-video` (MP4 or WebM, at most 100 MB)")),
    request_body = StartUpload,
    responses(
        (status = 201, description = "PUT the file to `target.url` with `target.headers`, then complete the upload", body = MediaUpload),
        (status = 400, description = "EMPTY_BODY, VALIDATION_FAILED"),
        (status = 403, description = "FORBIDDEN_ROLE"),
        (status = 413, description = "PAYLOAD_TOO_LARGE"),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE")
    )
)]
pub async fn start_upload(
    State(state): State<AppState>,
    MentorUser(mentor): MentorUser,
    Path(kind): Path<MediaKind>,
    Json(request): Json<StartUpload>,
) -> Result<(StatusCode, Json<MediaUpload>)> {
    let rules = rules(kind);
    let file_type = rules.check_declared(&request.content_type, request.size_bytes)?;
    let upload_id = Uuid::new_v4();
    let blob_name = format!("mentors/{}/{upload_id}", mentor.user_id);
    let target = UploadTarget::put_blob(
        state.blobs.as_ref(),
        &state.config.blob.media_container,
        &blob_name,
        file_type.content_type,
        UPLOAD_URL_TTL,
        rules.max_bytes,
    )
    .await?;
    sqlx::query(
        r#"INSERT INTO media_uploads (upload_id, mentor_id, kind, blob_name, content_type, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6)"#,
    )
    .bind(upload_id)
    .bind(mentor.user_id)
    .bind(kind)
    .bind(&blob_name)
    .bind(file_type.content_type)
    .bind(target.expires_at)
    .execute(&state.db)
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(MediaUpload {
            upload_id,
            kind,
            target,
        }),
    ))
}

/// Complete a photo or video upload
///
/// Checks what storage received (size, content type, first bytes) and records it for admin
/// review, replacing the previous file of this kind. A refused file is deleted and nothing is
/// recorded.
#[utoipa::path(
    post, path = "/mentors/me/media/{kind}/uploads/{upload_id}/complete", tag = "mentors",
    security(("session" = [])),
    params(("kind" = MediaKind, Path), ("upload_id" = Uuid, Path)),
    responses(
        (status = 200, description = "Stored, pending approval; it replaces the previous file of this kind", body = MediaView),
        (status = 400, description = "EMPTY_BODY (the upload is over; begin again)"),
        (status = 403, description = "FORBIDDEN_ROLE"),
        (status = 404, description = "UPLOAD_NOT_FOUND (also once completed or refused)"),
        (status = 409, description = "UPLOAD_INCOMPLETE: nothing has arrived at the URL yet"),
        (status = 413, description = "PAYLOAD_TOO_LARGE (the upload is over; begin again)"),
        (status = 415, description = "CONTENT_TYPE_MISMATCH (the upload is over; begin again)")
    )
)]
pub async fn complete_upload(
    State(state): State<AppState>,
    MentorUser(mentor): MentorUser,
    Path((kind, upload_id)): Path<(MediaKind, Uuid)>,
) -> Result<Json<MediaView>> {
    let pending: Pending = sqlx::query_as(
        r#"SELECT blob_name, content_type FROM media_uploads
           WHERE upload_id = $1 AND mentor_id = $2 AND kind = $3"#,
    )
    .bind(upload_id)
    .bind(mentor.user_id)
    .bind(kind)
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(not_found)?;
    let rules = rules(kind);
    let file_type = rules.file_type(&pending.content_type)?;
    let container = &state.config.blob.media_container;
    let verified = rules
        .verify(
            state.blobs.as_ref(),
            container,
            &pending.blob_name,
            file_type,
        )
        .await;
    let size = match verified {
        Ok(size) => size,
        Err(refusal) => {
            let deleted = matches!(
                refusal.code(),
                Some("EMPTY_BODY" | "PAYLOAD_TOO_LARGE" | "CONTENT_TYPE_MISMATCH")
            );
            if deleted {
                // `verify` deleted the refused blob; the upload is over. (Nothing arrived yet,
                // or storage failed: the upload stays, to complete or to be swept.)
                sqlx::query("DELETE FROM media_uploads WHERE upload_id = $1")
                    .bind(upload_id)
                    .execute(&state.db)
                    .await?;
            }
            return Err(refusal);
        }
    };
    let (row, replaced) = save(&state, mentor.user_id, kind, upload_id, size).await?;
    let kind_name = match kind {
        MediaKind::Photo => "photo",
        MediaKind::IntroVideo => "intro-video",
    };
    metrics().upload(kind_name, size);
    if let Some(replaced) = replaced {
        discard(&state, &replaced).await;
    }
    profile::changed(&state).await;
    Ok(Json(media_view(&state, row).await?))
}

/// Turns the upload into the mentor's `kind`, pending review, under a new id (so an admin's
/// decision about the old file cannot land on the new one); returns the row and the blob it
/// replaced. Uploads of one mentor are serialised on the user row, so a replaced blob is never
/// missed, and taking the upload's row makes a second completion of it find nothing.
async fn save(
    state: &AppState,
    mentor_id: Uuid,
    kind: MediaKind,
    upload_id: Uuid,
    size: u64,
) -> Result<(MediaRow, Option<String>)> {
    let mut transaction = state.db.begin().await?;
    sqlx::query("SELECT 1 FROM users WHERE user_id = $1 FOR NO KEY UPDATE")
        .bind(mentor_id)
        .execute(&mut *transaction)
        .await?;
    let taken: Pending = sqlx::query_as(
        "DELETE FROM media_uploads WHERE upload_id = $1 RETURNING blob_name, content_type",
    )
    .bind(upload_id)
    .fetch_optional(&mut *transaction)
    .await?
    .ok_or_else(not_found)?;
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
    .bind(&taken.blob_name)
    .bind(&taken.content_type)
    .bind(i64::try_from(size).unwrap_or(i64::MAX))
    .fetch_one(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok((row, replaced))
}

fn not_found() -> Error {
    Error::not_found(
        "UPLOAD_NOT_FOUND",
        "No such upload in progress: it was completed, refused or never begun.",
    )
}

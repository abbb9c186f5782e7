//! A mentor's photo and intro video (product-spec §2), pending until an admin approves them. One
//! of each per mentor: a completed upload replaces the old file (and waits for approval again).
//! Files go straight between clients and blob storage ([`upload`]); this app hands out the URLs
//! and checks what arrived.

mod cleanup;
mod upload;

use axum::extract::State;
use axum::http::StatusCode;
use domain::media::{MEDIA_COLUMNS, MediaKind, MediaRow, MediaView, media_view};
use platform::auth::MentorUser;
use platform::{AppState, Error, Json, Path, Result};

use crate::profile;

pub use cleanup::TIMER;
pub use upload::{__path_complete_upload, __path_start_upload, complete_upload, start_upload};

/// My photo and intro video
///
/// The mentor's files with their review status, rejection reason and read URLs.
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

/// Remove my photo or intro video
///
/// Deletes the file and its row; the public profile no longer shows it.
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
        let error = format!("{error:#}");
        tracing::warn!(blob = blob_name, error, "could not delete a media blob");
    }
}

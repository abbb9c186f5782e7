//! The media review queue: mentors' photos and intro videos, oldest first, each with a read URL
//! to look at it; approve, or reject with a reason (the mentor is told in the app and by email).
//! Every decision can change who appears in Find Mentors, so it retires the mentor list.

use axum::extract::State;
use domain::media::{MEDIA_COLUMNS, MediaRow, MediaStatus, MediaView, media_view};
use domain::notifications::{self, Notice};
use platform::auth::AdminUser;
use platform::cache::MENTOR_LIST;
use platform::pagination::{Page, PageQuery, TimeCursor};
use platform::validation::Validator;
use platform::{AppState, Error, Json, Path, Query, Result};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MediaFilter {
    /// `pending` (default), `approved` or `rejected`.
    #[serde(default)]
    status: MediaStatus,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MediaRejection {
    reason: String,
}

/// The media review queue
///
/// Admin only. Mentor photos and intro videos by review status (`pending` by default), each
/// with a read URL to look at it.
#[utoipa::path(
    get, path = "/admin/media", tag = "admin",
    security(("session" = [])),
    params(MediaFilter, PageQuery),
    responses((status = 200, body = Page<MediaView>), (status = 403, description = "FORBIDDEN_ROLE"))
)]
pub async fn media_queue(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(filter): Query<MediaFilter>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<MediaView>>> {
    let limit = page.limit()?;
    let cursor = page.cursor::<TimeCursor>()?;
    let rows: Vec<MediaRow> = sqlx::query_as(&format!(
        r#"SELECT {MEDIA_COLUMNS} FROM mentor_media
           WHERE status = $1
             AND ($2::timestamptz IS NULL OR (created_at, mentor_media_id) > ($2, $3))
           ORDER BY created_at, mentor_media_id
           LIMIT $4"#
    ))
    .bind(filter.status)
    .bind(cursor.map(|c| c.time))
    .bind(cursor.map(|c| c.id))
    .bind(i64::from(limit) + 1)
    .fetch_all(&state.db)
    .await?;
    let page = Page::from_rows(rows, limit, |row| TimeCursor {
        time: row.created_at,
        id: row.mentor_media_id,
    });
    let mut items = Vec::with_capacity(page.items.len());
    for row in page.items {
        items.push(media_view(&state, row).await?);
    }
    Ok(Json(Page {
        items,
        next_cursor: page.next_cursor,
    }))
}

/// Approve a photo or video
///
/// Admin only. An approved photo or intro video is shown on the mentor's public profile.
#[utoipa::path(
    post, path = "/admin/media/{media_id}/approve", tag = "admin",
    security(("session" = [])),
    params(("media_id" = Uuid, Path)),
    responses((status = 200, body = MediaView), (status = 404, description = "MEDIA_NOT_FOUND"))
)]
pub async fn approve_media(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(media_id): Path<Uuid>,
) -> Result<Json<MediaView>> {
    decide(&state, media_id, MediaStatus::Approved, None).await
}

/// Reject a photo or video
///
/// Admin only. The file stays hidden from students; the mentor sees the reason in their media
/// list and can upload another.
#[utoipa::path(
    post, path = "/admin/media/{media_id}/reject", tag = "admin",
    security(("session" = [])),
    params(("media_id" = Uuid, Path)),
    request_body = MediaRejection,
    responses((status = 200, body = MediaView), (status = 404, description = "MEDIA_NOT_FOUND"), (status = 422, description = "VALIDATION_FAILED"))
)]
pub async fn reject_media(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(media_id): Path<Uuid>,
    Json(request): Json<MediaRejection>,
) -> Result<Json<MediaView>> {
    Validator::new()
        .length(&request.reason, "reason", 1, 1000)
        .finish()?;
    decide(
        &state,
        media_id,
        MediaStatus::Rejected,
        Some(request.reason.trim()),
    )
    .await
}

async fn decide(
    state: &AppState,
    media_id: Uuid,
    status: MediaStatus,
    reason: Option<&str>,
) -> Result<Json<MediaView>> {
    let mut transaction = state.db.begin().await?;
    let row: Option<MediaRow> = sqlx::query_as(&format!(
        r#"UPDATE mentor_media SET status = $2, rejection_reason = $3, reviewed_at = now()
           WHERE mentor_media_id = $1
           RETURNING {MEDIA_COLUMNS}"#
    ))
    .bind(media_id)
    .bind(status)
    .bind(reason)
    .fetch_optional(&mut *transaction)
    .await?;
    let row = row.ok_or_else(|| {
        Error::not_found(
            "MEDIA_NOT_FOUND",
            "No such media; the mentor may have replaced it since.",
        )
    })?;
    let what = match row.kind {
        domain::media::MediaKind::Photo => "photo",
        domain::media::MediaKind::IntroVideo => "intro video",
    };
    let (title, body, email_category) = match reason {
        None => (
            format!("Your {what} is approved"),
            format!("Your {what} is approved and shows on your profile."),
            None,
        ),
        Some(reason) => (
            format!("Your {what} was not approved"),
            format!("Your {what} was not approved. Reason: {reason}. Please upload a new one."),
            Some("media_review"),
        ),
    };
    notifications::notify(
        &mut transaction,
        &Notice {
            user_id: row.mentor_id,
            kind: "media_reviewed",
            title: &title,
            body: &body,
            booking_id: None,
            email_category,
        },
    )
    .await?;
    transaction.commit().await?;
    state.cache.bump_generation(MENTOR_LIST).await;
    Ok(Json(media_view(state, row).await?))
}

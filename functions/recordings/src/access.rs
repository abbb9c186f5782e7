//! Who may watch a recording: the class's student and mentor, and admins. A demo recording stays
//! locked for the student until they have completed a regular class with that mentor. Watching is
//! through a 60-minute read URL to the blob, never through this app.

use std::time::Duration;

use axum::extract::State;
use chrono::{DateTime, Utc};
use platform::auth::CurrentUser;
use platform::pagination::{Page, PageQuery, TimeCursor};
use platform::{AppState, Error, Json, Path, Query, Result};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

const URL_TTL: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordingView {
    recording_id: Uuid,
    booking_id: Uuid,
    mentor_id: Uuid,
    student_id: Uuid,
    subject: String,
    /// `demo` or `regular`.
    session_type: String,
    scheduled_at: DateTime<Utc>,
    size_bytes: i64,
    part_count: i32,
    /// True when the viewer may not watch it yet (a demo, for a student without a completed
    /// regular class with this mentor).
    locked: bool,
    #[serde(skip)]
    blob_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordingUrl {
    url: String,
    expires_at: DateTime<Utc>,
}

/// Ready recordings with the viewer's lock; `$1` is the viewer. Filter with `$2` (the viewer's
/// role) so each sees only their classes and admins see all.
const RECORDINGS: &str = r#"
    SELECT r.recording_id, b.booking_id, b.mentor_id, b.student_id, b.subject, b.session_type,
           b.scheduled_at, r.size_bytes, r.part_count, r.blob_name,
           (b.student_id = $1 AND b.session_type = 'demo' AND NOT EXISTS (
               SELECT 1 FROM bookings c
               WHERE c.student_id = b.student_id AND c.mentor_id = b.mentor_id
                 AND c.session_type = 'regular' AND c.status = 'completed')) AS locked
    FROM recordings r JOIN bookings b USING (booking_id)
    WHERE r.status = 'ready'
      AND ($2::text = 'admin' OR b.student_id = $1 OR b.mentor_id = $1)"#;

/// My class recordings
///
/// The caller's class recordings, newest class first (admins: all), a page at a time.
#[utoipa::path(
    get, path = "/recordings", tag = "recordings",
    security(("session" = [])),
    params(PageQuery),
    responses((status = 200, description = "The viewer's class recordings, newest class first (admins: all)", body = Page<RecordingView>))
)]
pub async fn list_recordings(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<RecordingView>>> {
    let limit = page.limit()?;
    let cursor = page.cursor::<TimeCursor>()?;
    let rows: Vec<RecordingView> = sqlx::query_as(&format!(
        r#"{RECORDINGS}
           AND ($3::timestamptz IS NULL OR (b.scheduled_at, r.recording_id) < ($3, $4))
           ORDER BY b.scheduled_at DESC, r.recording_id DESC
           LIMIT $5"#
    ))
    .bind(user.user_id)
    .bind(user.role)
    .bind(cursor.map(|c| c.time))
    .bind(cursor.map(|c| c.id))
    .bind(i64::from(limit) + 1)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(Page::from_rows(rows, limit, |recording| TimeCursor {
        time: recording.scheduled_at,
        id: recording.recording_id,
    })))
}

/// Watch a recording
///
/// A read URL valid for 60 minutes, for the class's participants and admins. A demo's recording
/// stays locked for the student until they complete a regular class with that mentor (`403
/// RECORDING_LOCKED`).
#[utoipa::path(
    get, path = "/recordings/{recording_id}/url", tag = "recordings",
    security(("session" = [])),
    params(("recording_id" = Uuid, Path)),
    responses(
        (status = 200, body = RecordingUrl),
        (status = 403, description = "RECORDING_LOCKED"),
        (status = 404, description = "RECORDING_NOT_FOUND (also for people who were not in the class)")
    )
)]
pub async fn recording_url(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(recording_id): Path<Uuid>,
) -> Result<Json<RecordingUrl>> {
    let recording: Option<RecordingView> =
        sqlx::query_as(&format!("{RECORDINGS} AND r.recording_id = $3"))
            .bind(user.user_id)
            .bind(user.role)
            .bind(recording_id)
            .fetch_optional(&state.db)
            .await?;
    let recording = recording
        .ok_or_else(|| Error::not_found("RECORDING_NOT_FOUND", "No such recording of yours."))?;
    if recording.locked {
        return Err(Error::forbidden(
            "RECORDING_LOCKED",
            "Demo recordings unlock after your first completed regular class with this mentor.",
        ));
    }
    let expires_at = Utc::now() + URL_TTL;
    let url = state
        .blobs
        .read_url(
            &state.config.blob.recordings_container,
            &recording.blob_name,
            URL_TTL,
        )
        .await?;
    Ok(Json(RecordingUrl { url, expires_at }))
}

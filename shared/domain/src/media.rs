//! Mentor media rows (photo, intro video) as clients see them: status, review, and a fresh
//! short-lived read URL. Uploads live in the mentors group, the review queue in admin.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use platform::{AppState, Result};

/// How long a read URL handed to a browser works.
pub const MEDIA_URL_TTL: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "kebab-case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum MediaKind {
    Photo,
    IntroVideo,
}

/// Where an uploaded file stands in the admin's review.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum MediaStatus {
    #[default]
    Pending,
    Approved,
    Rejected,
}

/// One uploaded file and where it stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MediaView {
    media_id: Uuid,
    mentor_id: Uuid,
    kind: MediaKind,
    status: MediaStatus,
    rejection_reason: Option<String>,
    content_type: String,
    size_bytes: i64,
    uploaded_at: DateTime<Utc>,
    reviewed_at: Option<DateTime<Utc>>,
    /// Read URL, valid until `urlExpiresAt`.
    url: String,
    url_expires_at: DateTime<Utc>,
}

/// A `mentor_media` row; `media_view` adds its read URL.
#[derive(Debug, sqlx::FromRow)]
pub struct MediaRow {
    pub mentor_media_id: Uuid,
    pub mentor_id: Uuid,
    pub kind: MediaKind,
    pub blob_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub status: MediaStatus,
    pub rejection_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub reviewed_at: Option<DateTime<Utc>>,
}

pub const MEDIA_COLUMNS: &str = "mentor_media_id, mentor_id, kind, blob_name, content_type, \
     size_bytes, status, rejection_reason, created_at, reviewed_at";

/// The row as clients see it, with a fresh read URL.
pub async fn media_view(state: &AppState, row: MediaRow) -> Result<MediaView> {
    let url_expires_at = Utc::now() + MEDIA_URL_TTL;
    let url = read_url(state, &row.blob_name, MEDIA_URL_TTL).await?;
    Ok(MediaView {
        media_id: row.mentor_media_id,
        mentor_id: row.mentor_id,
        kind: row.kind,
        status: row.status,
        rejection_reason: row.rejection_reason,
        content_type: row.content_type,
        size_bytes: row.size_bytes,
        uploaded_at: row.created_at,
        reviewed_at: row.reviewed_at,
        url,
        url_expires_at,
    })
}

/// A read URL for a media blob.
pub async fn read_url(state: &AppState, blob_name: &str, ttl: Duration) -> Result<String> {
    state
        .blobs
        .read_url(&state.config.blob.media_container, blob_name, ttl)
        .await
        .map_err(Into::into)
}

//! The e-mail outbox as the admin sees it: what was queued for whom and how delivery went,
//! newest first. Bodies stay out (they carry password reset codes).

use axum::extract::State;
use chrono::{DateTime, Utc};
use platform::auth::{self, AdminUser};
use platform::outbox::OutboxStatus;
use platform::pagination::{Page, PageQuery, TimeCursor};
use platform::{AppState, Json, Query, Result};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxFilter {
    /// Only e-mails to this address.
    recipient: Option<String>,
    status: Option<OutboxStatus>,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEmail {
    email_outbox_id: Uuid,
    recipient: String,
    subject: String,
    /// The SendGrid category, e.g. `booking` or `password_reset`.
    category: String,
    status: OutboxStatus,
    attempts: i32,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    next_attempt_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
}

/// The e-mail outbox
///
/// Admin only. Every e-mail the platform queued, newest first, optionally for one recipient or
/// in one status (`pending`, `sent`, `failed`), with attempts and the last delivery error.
/// Bodies are never shown (they carry reset codes).
#[utoipa::path(
    get, path = "/admin/outbox", tag = "admin",
    security(("session" = [])),
    params(OutboxFilter, PageQuery),
    responses((status = 200, description = "Newest first", body = Page<OutboxEmail>), (status = 403, description = "FORBIDDEN_ROLE"))
)]
pub async fn list_outbox(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(filter): Query<OutboxFilter>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<OutboxEmail>>> {
    let limit = page.limit()?;
    let cursor = page.cursor::<TimeCursor>()?;
    let rows: Vec<OutboxEmail> = sqlx::query_as(
        r#"SELECT email_outbox_id, recipient, subject, category, status, attempts, last_error,
                  created_at, next_attempt_at, sent_at
           FROM email_outbox
           WHERE ($1::text IS NULL OR recipient = $1)
             AND ($2::text IS NULL OR status = $2)
             AND ($3::timestamptz IS NULL OR (created_at, email_outbox_id) < ($3, $4))
           ORDER BY created_at DESC, email_outbox_id DESC
           LIMIT $5"#,
    )
    .bind(filter.recipient.as_deref().map(auth::normalize_email))
    .bind(filter.status)
    .bind(cursor.map(|c| c.time))
    .bind(cursor.map(|c| c.id))
    .bind(i64::from(limit) + 1)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(Page::from_rows(rows, limit, |email| TimeCursor {
        time: email.created_at,
        id: email.email_outbox_id,
    })))
}

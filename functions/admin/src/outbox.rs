//! The e-mail outbox as the admin sees it: what was queued for whom and how delivery went,
//! newest first, and a retry for an e-mail that failed for good. Bodies stay out (they carry
//! password reset codes).

use axum::extract::State;
use chrono::{DateTime, Utc};
use platform::auth::{self, AdminUser};
use platform::outbox::OutboxStatus;
use platform::pagination::{Page, PageQuery, TimeCursor};
use platform::{AppState, Error, Json, Path, Query, Result};
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

/// The columns behind [`OutboxEmail`].
const COLUMNS: &str = "email_outbox_id, recipient, subject, category, status, attempts, \
     last_error, created_at, next_attempt_at, sent_at";

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
    let rows: Vec<OutboxEmail> = sqlx::query_as(&format!(
        r#"SELECT {COLUMNS}
           FROM email_outbox
           WHERE ($1::text IS NULL OR recipient = $1)
             AND ($2::text IS NULL OR status = $2)
             AND ($3::timestamptz IS NULL OR (created_at, email_outbox_id) < ($3, $4))
           ORDER BY created_at DESC, email_outbox_id DESC
           LIMIT $5"#
    ))
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

/// Retry a failed e-mail
///
/// Admin only. Puts an e-mail that failed for good back in the queue: pending, its attempts
/// reset, due at once (the outbox timer sends it on its next run).
#[utoipa::path(
    post, path = "/admin/outbox/{email_outbox_id}/retry", tag = "admin",
    security(("session" = [])),
    params(("email_outbox_id" = Uuid, Path)),
    responses(
        (status = 200, description = "Queued again", body = OutboxEmail),
        (status = 403, description = "FORBIDDEN_ROLE"),
        (status = 404, description = "EMAIL_NOT_FOUND"),
        (status = 409, description = "EMAIL_NOT_FAILED: pending or sent e-mails are not retried")
    )
)]
pub async fn retry_email(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(email_outbox_id): Path<Uuid>,
) -> Result<Json<OutboxEmail>> {
    let retried: Option<OutboxEmail> = sqlx::query_as(&format!(
        r#"UPDATE email_outbox
           SET status = 'pending', attempts = 0, last_error = NULL, next_attempt_at = now()
           WHERE email_outbox_id = $1 AND status = 'failed'
           RETURNING {COLUMNS}"#
    ))
    .bind(email_outbox_id)
    .fetch_optional(&state.db)
    .await?;
    if let Some(email) = retried {
        return Ok(Json(email));
    }
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM email_outbox WHERE email_outbox_id = $1)")
            .bind(email_outbox_id)
            .fetch_one(&state.db)
            .await?;
    Err(if exists {
        Error::conflict(
            "EMAIL_NOT_FAILED",
            "Only an e-mail that failed for good can be retried.",
        )
    } else {
        Error::not_found("EMAIL_NOT_FOUND", "No such e-mail.")
    })
}

//! The email outbox: emails are written in the same transaction as the event that causes them,
//! and a sender delivers them later with retries. Nothing is sent inline with a request.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::Result;

/// Where an outbox email stands: `pending` until sent, or failed for good after its attempts.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    sqlx::Type,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum OutboxStatus {
    Pending,
    Sent,
    Failed,
}

#[derive(Debug, Clone)]
pub struct Email {
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    /// Groups emails for delivery statistics (SendGrid category), e.g. `password_reset`.
    pub category: &'static str,
}

/// Queues `email` on the caller's connection, so it commits or rolls back with the caller's work.
pub async fn enqueue_email(connection: &mut PgConnection, email: &Email) -> Result<()> {
    sqlx::query(
        r#"INSERT INTO email_outbox (email_outbox_id, recipient, subject, body_text, category)
           VALUES ($1, $2, $3, $4, $5)"#,
    )
    .bind(Uuid::new_v4())
    .bind(&email.recipient)
    .bind(&email.subject)
    .bind(&email.body_text)
    .bind(email.category)
    .execute(connection)
    .await?;
    Ok(())
}

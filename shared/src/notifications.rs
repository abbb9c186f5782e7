//! In-app notifications with their email, written in the caller's transaction (the outbox
//! pattern): an event and its notices commit together or not at all.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::Result;
use crate::outbox::{self, Email};

/// One notice to one user: shown in the app and, with `email_category`, emailed too.
#[derive(Debug, Clone)]
pub struct Notice<'a> {
    pub user_id: Uuid,
    /// Stable machine name, e.g. `booking_confirmed`.
    pub kind: &'static str,
    pub title: &'a str,
    pub body: &'a str,
    pub booking_id: Option<Uuid>,
    /// Also email the notice under this SendGrid category.
    pub email_category: Option<&'static str>,
}

/// Records `notice` (and its email) on the caller's connection.
pub async fn notify(connection: &mut PgConnection, notice: &Notice<'_>) -> Result<()> {
    let recipient: Option<String> = sqlx::query_scalar(
        r#"INSERT INTO notifications (notification_id, user_id, kind, title, body, booking_id)
           VALUES ($1, $2, $3, $4, $5, $6)
           RETURNING (SELECT email FROM users WHERE user_id = $2)"#,
    )
    .bind(Uuid::new_v4())
    .bind(notice.user_id)
    .bind(notice.kind)
    .bind(notice.title)
    .bind(notice.body)
    .bind(notice.booking_id)
    .fetch_one(&mut *connection)
    .await?;
    if let (Some(category), Some(recipient)) = (notice.email_category, recipient) {
        outbox::enqueue_email(
            connection,
            &Email {
                recipient,
                subject: notice.title.to_owned(),
                body_text: notice.body.to_owned(),
                category,
            },
        )
        .await?;
    }
    Ok(())
}

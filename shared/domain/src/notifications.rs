//! In-app notifications with their email, written in the caller's transaction (the outbox
//! pattern): an event and its notices commit together or not at all.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use platform::error::Result;
use platform::outbox::{self, Email};

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

/// Tells both people of a booking that their class is confirmed (in-app and email), in one
/// text whether it was confirmed at booking (a demo, a package credit) or by its payment.
pub async fn class_confirmed(connection: &mut PgConnection, booking_id: Uuid) -> Result<()> {
    let people: Vec<(Uuid, String, String, DateTime<Utc>)> = sqlx::query_as(
        r#"SELECT p.user_id, o.first_name || ' ' || o.last_name, b.subject, b.scheduled_at
           FROM bookings b
           CROSS JOIN LATERAL (VALUES (b.student_id, b.mentor_id), (b.mentor_id, b.student_id))
                AS p (user_id, other_id)
           JOIN users o ON o.user_id = p.other_id
           WHERE b.booking_id = $1"#,
    )
    .bind(booking_id)
    .fetch_all(&mut *connection)
    .await?;
    for (user_id, other, subject, scheduled_at) in people {
        let when = scheduled_at.format("%Y-%m-%d %H:%M UTC");
        let body = format!("{subject} with {other} on {when} is confirmed.");
        notify(
            connection,
            &Notice {
                user_id,
                kind: "booking_confirmed",
                title: "Class confirmed",
                body: &body,
                booking_id: Some(booking_id),
                email_category: Some("booking"),
            },
        )
        .await?;
    }
    Ok(())
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

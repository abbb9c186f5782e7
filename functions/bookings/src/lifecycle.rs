//! The `booking-lifecycle` timer (every minute): lapsed holds expire; a confirmed class whose
//! mentor has not joined 15 minutes after the start becomes a no-show (full refund); a confirmed
//! class that has ended with its mentor present completes. Each transition is one conditional
//! UPDATE, so overlapping runs move every booking exactly once, and a late run catches up on
//! everything due.

use chrono::Duration;
use domain::notifications::{self, Notice};
use platform::invocation::{TimerFunction, TimerInfo};
use platform::{AppState, Result};
use uuid::Uuid;

use crate::packages;
use crate::reviews::refresh_mentor_figures;

pub const TIMER: TimerFunction = TimerFunction {
    name: "booking-lifecycle",
    run: |state, info| Box::pin(run(state, info)),
};

const NO_SHOW_AFTER: Duration = Duration::minutes(15);

async fn run(state: AppState, info: TimerInfo) -> Result<Vec<String>> {
    let expired = expire_lapsed_holds(&state).await?;
    let no_shows = mark_no_shows(&state).await?;
    let completed = complete_ended_classes(&state).await?;
    let people: Vec<Uuid> = [&expired, &no_shows, &completed]
        .into_iter()
        .flatten()
        .flat_map(|(student, mentor)| [*student, *mentor])
        .collect();
    domain::booking_changes::announce(&state, &people).await;

    let mut logs = vec![format!(
        "expired {} holds, {} no-shows, completed {}",
        expired.len(),
        no_shows.len(),
        completed.len()
    )];
    if info.is_past_due {
        logs.push("ran late (past due); caught up".into());
    }
    Ok(logs)
}

/// (student, mentor) of each booking a step moved.
type Moved = Vec<(Uuid, Uuid)>;

/// Pending payments whose hold has lapsed expire.
async fn expire_lapsed_holds(state: &AppState) -> Result<Moved> {
    Ok(sqlx::query_as(
        r#"UPDATE bookings SET status = 'expired', updated_at = now()
           WHERE status = 'pending_payment' AND hold_expires_at <= now()
           RETURNING student_id, mentor_id"#,
    )
    .fetch_all(&state.db)
    .await?)
}

/// Confirmed classes the mentor has not joined within `NO_SHOW_AFTER` become no-shows: refunded
/// in full (money or the package credit), and the student told.
async fn mark_no_shows(state: &AppState) -> Result<Moved> {
    let mut transaction = state.db.begin().await?;
    let no_shows: Vec<(Uuid, Uuid, Uuid, String)> = sqlx::query_as(
        r#"UPDATE bookings
           SET status = 'no_show', refund_percent = 100,
               refund_amount = CASE WHEN charged_in_money THEN class_fee ELSE 0 END,
               updated_at = now()
           WHERE status = 'confirmed' AND mentor_joined_at IS NULL AND scheduled_at + $1 <= now()
           RETURNING booking_id, student_id, mentor_id, subject"#,
    )
    .bind(NO_SHOW_AFTER)
    .fetch_all(&mut *transaction)
    .await?;
    for (booking_id, student_id, _, subject) in &no_shows {
        packages::return_credit(&mut transaction, *booking_id).await?;
        let body =
            format!("Your mentor did not join the {subject} class; it will be refunded in full.");
        notifications::notify(
            &mut transaction,
            &Notice {
                user_id: *student_id,
                kind: "mentor_no_show",
                title: "Class missed by the mentor",
                body: &body,
                booking_id: Some(*booking_id),
                email_category: Some("booking"),
            },
        )
        .await?;
    }
    transaction.commit().await?;
    Ok(no_shows
        .into_iter()
        .map(|(_, student, mentor, _)| (student, mentor))
        .collect())
}

/// Confirmed classes that have ended with their mentor present complete, and their mentors'
/// figures are refreshed.
async fn complete_ended_classes(state: &AppState) -> Result<Moved> {
    let mut transaction = state.db.begin().await?;
    let completed: Moved = sqlx::query_as(
        r#"UPDATE bookings SET status = 'completed', completed_at = now(), updated_at = now()
           WHERE status = 'confirmed' AND mentor_joined_at IS NOT NULL AND ends_at <= now()
           RETURNING student_id, mentor_id"#,
    )
    .fetch_all(&mut *transaction)
    .await?;
    for (_, mentor_id) in &completed {
        refresh_mentor_figures(&mut transaction, Some(*mentor_id)).await?;
    }
    transaction.commit().await?;
    Ok(completed)
}

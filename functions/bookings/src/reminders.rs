//! The `reminders` timer (every 5 minutes): a reminder a day ahead (for classes more than an
//! hour away) and an hour ahead of each confirmed class, to both people, each exactly once.
//! Claiming a reminder is the same UPDATE that marks it sent, in the transaction that writes the
//! notices, so overlapping runs can't both send it.

use chrono::{DateTime, Duration, Utc};
use domain::notifications::{self, Notice};
use platform::AppState;
use platform::Result;
use platform::invocation::{TimerFunction, TimerInfo};
use uuid::Uuid;

pub const TIMER: TimerFunction = TimerFunction {
    name: "reminders",
    run: |state, info| Box::pin(run(state, info)),
};

async fn run(state: AppState, info: TimerInfo) -> Result<Vec<String>> {
    let day = send(
        &state,
        "reminder_24h_sent_at",
        Duration::hours(1),
        Duration::hours(24),
    )
    .await?;
    let hour = send(
        &state,
        "reminder_1h_sent_at",
        Duration::zero(),
        Duration::hours(1),
    )
    .await?;
    let mut logs = vec![format!(
        "sent {day} day-ahead and {hour} hour-ahead reminders"
    )];
    if info.is_past_due {
        logs.push("ran late (past due); caught up".into());
    }
    Ok(logs)
}

/// Claims and sends every reminder of one kind for classes starting between `after` and
/// `within` from now; returns how many classes were reminded.
async fn send(
    state: &AppState,
    sent_column: &str,
    after: Duration,
    within: Duration,
) -> Result<usize> {
    let mut transaction = state.db.begin().await?;
    let due: Vec<(Uuid, Uuid, Uuid, String, DateTime<Utc>)> = sqlx::query_as(&format!(
        r#"UPDATE bookings SET {sent_column} = now()
           WHERE status = 'confirmed' AND {sent_column} IS NULL
             AND scheduled_at > now() + $1 AND scheduled_at <= now() + $2
           RETURNING booking_id, student_id, mentor_id, subject, scheduled_at"#
    ))
    .bind(after)
    .bind(within)
    .fetch_all(&mut *transaction)
    .await?;
    for (booking_id, student_id, mentor_id, subject, scheduled_at) in &due {
        let body = format!(
            "Your {subject} class starts at {}.",
            scheduled_at.format("%Y-%m-%d %H:%M UTC")
        );
        for user_id in [*student_id, *mentor_id] {
            notifications::notify(
                &mut transaction,
                &Notice {
                    user_id,
                    kind: "class_reminder",
                    title: "Upcoming class",
                    body: &body,
                    booking_id: Some(*booking_id),
                    email_category: Some("reminder"),
                },
            )
            .await?;
        }
    }
    transaction.commit().await?;
    Ok(due.len())
}

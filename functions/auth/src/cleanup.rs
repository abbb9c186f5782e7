//! The `auth-cleanup` timer: deletes sessions that ended over a day ago and expired reset codes.
//! Plain deletes, so two overlapping runs are harmless.

use platform::AppState;
use platform::invocation::{TimerFunction, TimerInfo};

pub const TIMER: TimerFunction = TimerFunction {
    name: "auth-cleanup",
    run: |state, info| Box::pin(run(state, info)),
};

async fn run(state: AppState, info: TimerInfo) -> platform::Result<Vec<String>> {
    let sessions = sqlx::query(
        r#"DELETE FROM sessions
           WHERE expires_at < now() - interval '1 day' OR revoked_at < now() - interval '1 day'"#,
    )
    .execute(&state.db)
    .await?
    .rows_affected();
    let codes = sqlx::query("DELETE FROM password_reset_codes WHERE expires_at < now()")
        .execute(&state.db)
        .await?
        .rows_affected();
    let mut logs = vec![
        format!("deleted {sessions} ended sessions"),
        format!("deleted {codes} expired password reset codes"),
    ];
    if info.is_past_due {
        logs.push("ran late (past due); caught up".into());
    }
    Ok(logs)
}

//! A student's dashboard: upcoming and past classes, hours learned and money spent, per mentor.

use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Utc};
use domain::schedule::SessionType;
use platform::auth::StudentUser;
use platform::{AppState, Result};
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StudentDashboard {
    /// Confirmed or awaiting payment, starting later.
    upcoming_classes: i64,
    completed_classes: i64,
    cancelled_classes: i64,
    /// Length of the completed classes.
    minutes_learned: i64,
    /// `minutesLearned` in hours, to two places.
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "12.25")]
    hours_learned: Decimal,
    /// Payments that succeeded less the refunds that did.
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "1500.00")]
    money_spent: Decimal,
    next_class: Option<NextClass>,
    /// One row per mentor the student has booked, most completed classes first.
    by_mentor: Vec<MentorTally>,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NextClass {
    booking_id: Uuid,
    mentor_id: Uuid,
    mentor_name: String,
    subject: String,
    session_type: SessionType,
    scheduled_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MentorTally {
    mentor_id: Uuid,
    mentor_name: String,
    upcoming_classes: i64,
    completed_classes: i64,
    cancelled_classes: i64,
    minutes_learned: i64,
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "1200.00")]
    money_spent: Decimal,
    last_class_at: Option<DateTime<Utc>>,
}

/// The student's dashboard
///
/// Students only. Classes to come and taken, time learned and money spent (payments less
/// refunds), in all and per mentor, and the next class. Up to a minute old.
#[utoipa::path(
    get, path = "/dashboards/student", tag = "dashboards",
    security(("session" = [])),
    responses((status = 200, body = StudentDashboard), (status = 401, description = "UNAUTHENTICATED"), (status = 403, description = "FORBIDDEN_ROLE"))
)]
pub async fn student_dashboard(
    State(state): State<AppState>,
    StudentUser(student): StudentUser,
) -> Result<Response> {
    let key = format!("dashboards:student:{}", student.user_id);
    crate::cached(&state, &key, || load(&state, student.user_id)).await
}

async fn load(state: &AppState, student_id: Uuid) -> Result<StudentDashboard> {
    // The student's bookings by mentor (bookings_student_time_idx), with what each mentor was
    // paid for through the ledger (payment_orders_student_idx).
    let by_mentor: Vec<MentorTally> = sqlx::query_as(
        r#"WITH classes AS (
               SELECT mentor_id,
                      count(*) FILTER (WHERE status IN ('pending_payment', 'confirmed') AND scheduled_at > now()) AS upcoming_classes,
                      count(*) FILTER (WHERE status = 'completed') AS completed_classes,
                      count(*) FILTER (WHERE status = 'cancelled') AS cancelled_classes,
                      coalesce(sum(extract(epoch FROM ends_at - scheduled_at)::bigint / 60)
                               FILTER (WHERE status = 'completed'), 0)::bigint AS minutes_learned,
                      max(scheduled_at) FILTER (WHERE status = 'completed') AS last_class_at
               FROM bookings WHERE student_id = $1
               GROUP BY mentor_id),
           spent AS (
               SELECT coalesce(b.mentor_id, p.mentor_id) AS mentor_id,
                      sum(CASE t.kind WHEN 'payment' THEN t.amount ELSE -t.amount END) AS money_spent
               FROM payment_orders o
               JOIN payment_transactions t ON t.payment_order_id = o.payment_order_id
               LEFT JOIN bookings b ON b.booking_id = o.booking_id
               LEFT JOIN packages p ON p.package_id = o.package_id
               WHERE o.student_id = $1 AND t.status = 'succeeded' AND t.kind IN ('payment', 'refund')
               GROUP BY 1)
           SELECT c.mentor_id, m.first_name || ' ' || m.last_name AS mentor_name,
                  c.upcoming_classes, c.completed_classes, c.cancelled_classes, c.minutes_learned,
                  coalesce(s.money_spent, 0) AS money_spent, c.last_class_at
           FROM classes c
           JOIN users m ON m.user_id = c.mentor_id
           LEFT JOIN spent s ON s.mentor_id = c.mentor_id
           ORDER BY c.completed_classes DESC, mentor_name, c.mentor_id"#,
    )
    .bind(student_id)
    .fetch_all(&state.read_db)
    .await?;
    let next_class: Option<NextClass> = sqlx::query_as(
        r#"SELECT b.booking_id, b.mentor_id, m.first_name || ' ' || m.last_name AS mentor_name,
                  b.subject, b.session_type, b.scheduled_at
           FROM bookings b JOIN users m ON m.user_id = b.mentor_id
           WHERE b.student_id = $1 AND b.status IN ('pending_payment', 'confirmed') AND b.scheduled_at > now()
           ORDER BY b.scheduled_at LIMIT 1"#,
    )
    .bind(student_id)
    .fetch_optional(&state.read_db)
    .await?;

    let sum = |field: fn(&MentorTally) -> i64| by_mentor.iter().map(field).sum::<i64>();
    let minutes_learned = sum(|row| row.minutes_learned);
    Ok(StudentDashboard {
        upcoming_classes: sum(|row| row.upcoming_classes),
        completed_classes: sum(|row| row.completed_classes),
        cancelled_classes: sum(|row| row.cancelled_classes),
        minutes_learned,
        hours_learned: (Decimal::from(minutes_learned) / Decimal::from(60)).round_dp(2),
        money_spent: by_mentor.iter().map(|row| row.money_spent).sum(),
        next_class,
        by_mentor,
    })
}

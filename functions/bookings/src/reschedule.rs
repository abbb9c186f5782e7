//! `POST /api/bookings/{id}/reschedule`: by either participant, at least 6 hours before the
//! class, at most 3 times per booking, to a time that passes every booking rule; the payment
//! stays with the booking.

use axum::extract::State;
use chrono::{DateTime, Utc};
use domain::booking_status::BookingStatus;
use domain::notifications::{self, Notice};
use platform::auth::CurrentUser;
use platform::{AppState, Error, Json, Path, Result};
use serde::Deserialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::policy::{self, unprocessable};
use crate::view::{self, BookingView};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RescheduleBooking {
    /// A start the mentor's availability lists (as for a new booking).
    scheduled_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Movable {
    student_id: Uuid,
    mentor_id: Uuid,
    status: BookingStatus,
    scheduled_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    reschedule_count: i32,
}

/// Move a class
///
/// Moves the class to another start the mentor's availability offers (on its 15-minute grid),
/// at least 6 hours before the current start; either participant, at most 3 times per booking.
#[utoipa::path(
    post, path = "/bookings/{booking_id}/reschedule", tag = "bookings",
    security(("session" = [])),
    params(("booking_id" = Uuid, Path)),
    request_body = RescheduleBooking,
    responses(
        (status = 200, body = BookingView),
        (status = 404, description = "BOOKING_NOT_FOUND"),
        (status = 409, description = "RESCHEDULE_TOO_LATE, RESCHEDULE_LIMIT, BOOKING_NOT_RESCHEDULABLE, SLOT_TAKEN, STUDENT_CONFLICT, LIMIT_*"),
        (status = 422, description = "TOO_SOON, TOO_FAR, OUTSIDE_AVAILABILITY, START_OFF_GRID, SAME_TIME"),
    )
)]
pub async fn reschedule_booking(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(booking_id): Path<Uuid>,
    Json(request): Json<RescheduleBooking>,
) -> Result<Json<BookingView>> {
    let settings = policy::settings(&state).await?;
    let now = Utc::now();
    let mut transaction = state.db.begin().await?;
    let booking = load_locked(&mut transaction, booking_id).await?;
    if user.user_id != booking.student_id && user.user_id != booking.mentor_id {
        return Err(view::not_found());
    }
    check_movable(&booking, request.scheduled_at, now)?;
    let duration = booking.ends_at - booking.scheduled_at;
    let mentor = policy::load_mentor(&mut transaction, booking.mentor_id).await?;
    policy::check_time(
        &mut transaction,
        &mentor,
        request.scheduled_at,
        duration,
        now,
    )
    .await?;
    policy::check_limits(
        &mut transaction,
        booking.student_id,
        mentor.time_zone,
        request.scheduled_at,
        Some(booking_id),
        &settings,
    )
    .await?;
    let moved = sqlx::query(
        r#"UPDATE bookings SET scheduled_at = $2, ends_at = $3, blocked_until = $4,
                  reminder_24h_sent_at = NULL, reminder_1h_sent_at = NULL,
                  reschedule_count = reschedule_count + 1, updated_at = now()
           WHERE booking_id = $1"#,
    )
    .bind(booking_id)
    .bind(request.scheduled_at)
    .bind(request.scheduled_at + duration)
    .bind(request.scheduled_at + duration + settings.buffer)
    .execute(&mut *transaction)
    .await;
    policy::overlap_errors(moved)?;

    let rescheduled = view::load(&mut *transaction, booking_id).await?;
    notify_the_other(&mut transaction, &booking, &rescheduled, user.user_id).await?;
    transaction.commit().await?;
    domain::booking_changes::announce(&state, &[booking.student_id, booking.mentor_id]).await;
    Ok(Json(rescheduled))
}

/// The booking, its two people locked (as creation locks them) and its row locked.
async fn load_locked(connection: &mut PgConnection, booking_id: Uuid) -> Result<Movable> {
    let (student_id, mentor_id): (Uuid, Uuid) =
        sqlx::query_as("SELECT student_id, mentor_id FROM bookings WHERE booking_id = $1")
            .bind(booking_id)
            .fetch_optional(&mut *connection)
            .await?
            .ok_or_else(view::not_found)?;
    policy::lock_people(&mut *connection, &[student_id, mentor_id]).await?;
    Ok(sqlx::query_as(
        "SELECT student_id, mentor_id, status, scheduled_at, ends_at, reschedule_count FROM bookings WHERE booking_id = $1 FOR UPDATE",
    )
    .bind(booking_id)
    .fetch_one(connection)
    .await?)
}

/// An active booking, more than the cutoff ahead, moved to another time.
fn check_movable(booking: &Movable, to: DateTime<Utc>, now: DateTime<Utc>) -> Result<()> {
    if !booking.status.is_active() {
        return Err(Error::conflict(
            "BOOKING_NOT_RESCHEDULABLE",
            format!("A {} booking can't be moved.", booking.status.as_str()),
        ));
    }
    if booking.scheduled_at - now < policy::RESCHEDULE_CUTOFF {
        return Err(Error::conflict(
            "RESCHEDULE_TOO_LATE",
            "Classes can be moved up to 6 hours before they start.",
        ));
    }
    if booking.reschedule_count >= policy::MAX_RESCHEDULES {
        return Err(Error::conflict(
            "RESCHEDULE_LIMIT",
            format!(
                "This class was moved {} times already; cancel it and book again instead.",
                policy::MAX_RESCHEDULES
            ),
        ));
    }
    if to == booking.scheduled_at {
        return Err(unprocessable(
            "SAME_TIME",
            "The class is already at that time.",
        ));
    }
    Ok(())
}

/// Tells the participant who did not move the class where it went.
async fn notify_the_other(
    connection: &mut PgConnection,
    booking: &Movable,
    rescheduled: &BookingView,
    mover: Uuid,
) -> Result<()> {
    let body = format!(
        "{} moved from {} to {}.",
        rescheduled.subject,
        booking.scheduled_at.format("%Y-%m-%d %H:%M UTC"),
        rescheduled.scheduled_at.format("%Y-%m-%d %H:%M UTC")
    );
    let other = if mover == booking.student_id {
        booking.mentor_id
    } else {
        booking.student_id
    };
    notifications::notify(
        connection,
        &Notice {
            user_id: other,
            kind: "booking_rescheduled",
            title: "Class rescheduled",
            body: &body,
            booking_id: Some(rescheduled.booking_id),
            email_category: Some("booking"),
        },
    )
    .await
}

//! Who may use a booking's chat and video: its student and its mentor, nobody else.

use chrono::{DateTime, Utc};
use domain::booking_status::BookingStatus;
use platform::{AppState, Error, Result};
use uuid::Uuid;

#[derive(Debug, sqlx::FromRow)]
pub struct Booking {
    pub booking_id: Uuid,
    pub student_id: Uuid,
    pub mentor_id: Uuid,
    pub status: BookingStatus,
    pub scheduled_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// The booking, if `user_id` takes part in it: 404 `BOOKING_NOT_FOUND` when there is no such
/// booking, 403 `NOT_A_PARTICIPANT` for anyone else.
pub async fn booking_of(state: &AppState, booking_id: Uuid, user_id: Uuid) -> Result<Booking> {
    let booking: Booking = sqlx::query_as(
        "SELECT booking_id, student_id, mentor_id, status, scheduled_at, ends_at FROM bookings WHERE booking_id = $1",
    )
    .bind(booking_id)
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| Error::not_found("BOOKING_NOT_FOUND", "No such booking."))?;
    if user_id != booking.student_id && user_id != booking.mentor_id {
        return Err(Error::forbidden(
            "NOT_A_PARTICIPANT",
            "Only the booking's student and mentor take part in it.",
        ));
    }
    Ok(booking)
}

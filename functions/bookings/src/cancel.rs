//! `POST /api/bookings/{id}/cancel`: the one cancellation policy, applied by whoever cancels.

use axum::extract::State;
use chrono::{DateTime, Utc};
use domain::booking_status::BookingStatus;
use domain::fees;
use domain::notifications::{self, Notice};
use platform::auth::{CurrentUser, Role};
use platform::validation::Validator;
use platform::{AppState, Error, Json, Path, Result};
use rust_decimal::Decimal;
use serde::Deserialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::packages;
use crate::policy::{self, Canceller};
use crate::view::{self, BookingView};

#[derive(Debug, Deserialize, ToSchema)]
pub struct CancelBooking {
    reason: String,
}

#[derive(sqlx::FromRow)]
struct Cancellable {
    student_id: Uuid,
    mentor_id: Uuid,
    status: BookingStatus,
    charged_in_money: bool,
    scheduled_at: DateTime<Utc>,
    class_fee: Decimal,
}

/// Cancel a class
///
/// Either participant, before the class starts. A paid class is refunded by the cancellation
/// policy (the answer carries `refundPercent` and `refundAmount`; the gateway refund follows);
/// a package class gets its credit back.
#[utoipa::path(
    post, path = "/bookings/{booking_id}/cancel", tag = "bookings",
    security(("session" = [])),
    params(("booking_id" = Uuid, Path)),
    request_body = CancelBooking,
    responses(
        (status = 200, body = BookingView, description = "Cancelled, with refundPercent and refundAmount"),
        (status = 404, description = "BOOKING_NOT_FOUND"),
        (status = 409, description = "BOOKING_NOT_CANCELLABLE"),
    )
)]
pub async fn cancel_booking(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(booking_id): Path<Uuid>,
    Json(request): Json<CancelBooking>,
) -> Result<Json<BookingView>> {
    Validator::new()
        .length(&request.reason, "reason", 1, 1000)
        .finish()?;
    let reason = request.reason.trim();
    let mut transaction = state.db.begin().await?;
    let booking: Cancellable = sqlx::query_as(
        r#"SELECT student_id, mentor_id, status, charged_in_money, scheduled_at, class_fee
           FROM bookings WHERE booking_id = $1 FOR UPDATE"#,
    )
    .bind(booking_id)
    .fetch_optional(&mut *transaction)
    .await?
    .ok_or_else(view::not_found)?;
    let canceller = canceller(&user, &booking)?;
    if !booking.status.is_active() {
        return Err(Error::conflict(
            "BOOKING_NOT_CANCELLABLE",
            format!("A {} booking can't be cancelled.", booking.status.as_str()),
        ));
    }

    let percent = policy::refund_percent(canceller, booking.scheduled_at - Utc::now());
    // Only a paid class is refunded in money; a package class gets its credit back instead.
    let paid = booking.status == BookingStatus::Confirmed && booking.charged_in_money;
    let refund_amount = if paid {
        fees::percent_of(booking.class_fee, percent)
    } else {
        Decimal::ZERO
    };
    if percent == 100 {
        packages::return_credit(&mut transaction, booking_id).await?;
    }
    sqlx::query(
        r#"UPDATE bookings SET status = 'cancelled', cancelled_by = $2, cancel_reason = $3, cancelled_at = now(),
                  refund_percent = $4, refund_amount = $5, updated_at = now()
           WHERE booking_id = $1"#,
    )
    .bind(booking_id)
    .bind(user.user_id)
    .bind(reason)
    .bind(percent as i32)
    .bind(refund_amount)
    .execute(&mut *transaction)
    .await?;

    let cancelled = view::load(&mut *transaction, booking_id).await?;
    notify_the_others(&mut transaction, &booking, &cancelled, user.user_id, reason).await?;
    transaction.commit().await?;
    domain::booking_changes::announce(&state, &[booking.student_id, booking.mentor_id]).await;
    Ok(Json(cancelled))
}

/// Who is cancelling, for the refund policy; 404 for anyone but the two people and admins.
fn canceller(user: &CurrentUser, booking: &Cancellable) -> Result<Canceller> {
    if user.role == Role::Admin {
        Ok(Canceller::Admin)
    } else if user.user_id == booking.student_id {
        Ok(Canceller::Student)
    } else if user.user_id == booking.mentor_id {
        Ok(Canceller::Mentor)
    } else {
        Err(view::not_found())
    }
}

/// Tells each participant who did not cancel, with the reason.
async fn notify_the_others(
    connection: &mut PgConnection,
    booking: &Cancellable,
    cancelled: &BookingView,
    canceller: Uuid,
    reason: &str,
) -> Result<()> {
    let when = cancelled.scheduled_at.format("%Y-%m-%d %H:%M UTC");
    let body = format!("{} on {when} was cancelled: {reason}", cancelled.subject);
    for party in [booking.student_id, booking.mentor_id]
        .into_iter()
        .filter(|party| *party != canceller)
    {
        notifications::notify(
            &mut *connection,
            &Notice {
                user_id: party,
                kind: "booking_cancelled",
                title: "Class cancelled",
                body: &body,
                booking_id: Some(cancelled.booking_id),
                email_category: Some("booking"),
            },
        )
        .await?;
    }
    Ok(())
}

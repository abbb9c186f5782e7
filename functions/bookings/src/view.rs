//! The booking as participants see it.

use chrono::{DateTime, Utc};
use domain::booking_status::BookingStatus;
use platform::auth::{CurrentUser, Role};
use platform::{Error, Result};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgExecutor;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "bookingId": "3e9b7c1a-5d2f-4a8e-b6c0-1f2e3d4c5b6a",
    "studentId": "5b1f6a8e-2a57-4c3e-9a61-0f1d8c2b7e44", "studentName": "Asha Rao",
    "mentorId": "8c0d2f4e-6b1a-4f3d-9e25-7a6b5c4d3e21", "mentorName": "Vikram Iyer",
    "subject": "Physics", "sessionType": "regular", "status": "pending_payment",
    "scheduledAt": "2026-12-10T10:00:00Z", "endsAt": "2026-12-10T10:55:00Z",
    "holdExpiresAt": "2026-12-07T09:40:00Z", "notes": "Rotational motion, chapter 7",
    "classFee": "500.00", "platformFee": "75.00", "gst": "13.50", "mentorPayout": "411.50",
    "packageId": null, "cancelledBy": null, "cancelReason": null, "refundPercent": null,
    "refundAmount": null, "rescheduleCount": 0, "createdAt": "2026-12-07T09:30:00Z"
}))]
pub struct BookingView {
    pub booking_id: Uuid,
    pub student_id: Uuid,
    pub student_name: String,
    pub mentor_id: Uuid,
    pub mentor_name: String,
    pub subject: String,
    /// `demo` or `regular`.
    pub session_type: String,
    /// `pending_payment`, `confirmed`, `completed`, `cancelled`, `expired` or `no_show`.
    pub status: BookingStatus,
    pub scheduled_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Until when an unpaid booking holds its slot.
    pub hold_expires_at: Option<DateTime<Utc>>,
    pub notes: Option<String>,
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "500.00")]
    pub class_fee: Decimal,
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "75.00")]
    pub platform_fee: Decimal,
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "13.50")]
    pub gst: Decimal,
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "411.50")]
    pub mentor_payout: Decimal,
    pub package_id: Option<Uuid>,
    pub cancelled_by: Option<Uuid>,
    pub cancel_reason: Option<String>,
    pub refund_percent: Option<i32>,
    #[serde(serialize_with = "domain::money::two_places_option")]
    #[schema(value_type = Option<String>)]
    pub refund_amount: Option<Decimal>,
    /// Times the class was moved; at most 3 (`RESCHEDULE_LIMIT` after that).
    pub reschedule_count: i32,
    pub created_at: DateTime<Utc>,
}

/// `FROM bookings b` joined with both people's names; append `WHERE`.
pub const SELECT_VIEW: &str = r#"SELECT b.booking_id, b.student_id, s.first_name || ' ' || s.last_name AS student_name,
       b.mentor_id, m.first_name || ' ' || m.last_name AS mentor_name, b.subject, b.session_type,
       b.status, b.scheduled_at, b.ends_at, b.hold_expires_at, b.notes, b.class_fee, b.platform_fee,
       b.gst, b.mentor_payout, b.package_id, b.cancelled_by, b.cancel_reason, b.refund_percent,
       b.refund_amount, b.reschedule_count, b.created_at
FROM bookings b JOIN users s ON s.user_id = b.student_id JOIN users m ON m.user_id = b.mentor_id"#;

pub async fn load(executor: impl PgExecutor<'_>, booking_id: Uuid) -> Result<BookingView> {
    sqlx::query_as(&format!("{SELECT_VIEW} WHERE b.booking_id = $1"))
        .bind(booking_id)
        .fetch_optional(executor)
        .await?
        .ok_or_else(not_found)
}

/// The booking if `user` takes part in it or is an admin; 404 otherwise (its existence is not
/// revealed to others).
pub async fn load_for(
    executor: impl PgExecutor<'_>,
    booking_id: Uuid,
    user: &CurrentUser,
) -> Result<BookingView> {
    let booking = load(executor, booking_id).await?;
    let allowed = user.role == Role::Admin
        || booking.student_id == user.user_id
        || booking.mentor_id == user.user_id;
    if allowed {
        Ok(booking)
    } else {
        Err(not_found())
    }
}

pub fn not_found() -> Error {
    Error::not_found("BOOKING_NOT_FOUND", "No such booking of yours.")
}

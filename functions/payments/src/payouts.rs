//! Mentor payouts: a class's payout becomes eligible 24 hours after it completes; admins list
//! what is due and record each payout once (to the mentor's UPI id, outside the platform);
//! mentors see theirs, paid and pending.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use domain::fees::PAYOUT_DUE as DUE;
use platform::auth::{AdminUser, MentorUser};
use platform::error::ConstraintExt;
use platform::validation::Validator;
use platform::{AppState, Error, Json, Path, Query, Result};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DuePayout {
    booking_id: Uuid,
    mentor_id: Uuid,
    mentor_name: String,
    upi_id: Option<String>,
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String)]
    amount: Decimal,
    completed_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MarkPaid {
    /// The UPI transaction reference.
    reference: String,
}

/// Payouts due to mentors
///
/// Admin only. Paid classes completed at least 24 hours ago whose payout is not yet recorded,
/// with the mentor's net amount.
#[utoipa::path(
    get, path = "/admin/payouts", tag = "admin",
    security(("session" = [])),
    responses((status = 200, body = Vec<DuePayout>))
)]
pub async fn due_payouts(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Json<Vec<DuePayout>>> {
    let payouts = sqlx::query_as(&format!(
        r#"SELECT b.booking_id, b.mentor_id, m.first_name || ' ' || m.last_name AS mentor_name, p.upi_id,
                  b.mentor_payout AS amount, b.completed_at
           FROM bookings b JOIN users m ON m.user_id = b.mentor_id JOIN mentor_profiles p ON p.user_id = b.mentor_id
           WHERE {DUE}
             AND NOT EXISTS (SELECT 1 FROM payment_transactions t WHERE t.kind = 'payout' AND t.booking_id = b.booking_id)
           ORDER BY b.completed_at
           LIMIT 500"#
    ))
    .fetch_all(&state.db)
    .await?;
    Ok(Json(payouts))
}

/// Record a payout
///
/// Admin only. Records that the mentor was paid for the class, with the UPI transaction
/// reference.
#[utoipa::path(
    post, path = "/admin/payouts/{booking_id}/paid", tag = "admin",
    security(("session" = [])),
    params(("booking_id" = Uuid, Path)),
    request_body = MarkPaid,
    responses((status = 204, description = "Recorded"), (status = 409, description = "PAYOUT_NOT_DUE, PAYOUT_RECORDED"))
)]
pub async fn mark_paid(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(booking_id): Path<Uuid>,
    Json(request): Json<MarkPaid>,
) -> Result<StatusCode> {
    Validator::new()
        .length(&request.reference, "reference", 1, 100)
        .finish()?;
    let recorded = sqlx::query(&format!(
        r#"INSERT INTO payment_transactions (payment_transaction_id, kind, gateway_reference, booking_id, mentor_id, amount, status)
           SELECT $1, 'payout', $3, b.booking_id, b.mentor_id, b.mentor_payout, 'succeeded'
           FROM bookings b WHERE b.booking_id = $2 AND {DUE}"#
    ))
    .bind(Uuid::new_v4())
    .bind(booking_id)
    .bind(request.reference.trim())
    .execute(&state.db)
    .await
    .on_constraint("payment_transactions_one_payout", || {
        Error::conflict("PAYOUT_RECORDED", "This class's payout is already recorded.")
    })?;
    if recorded.rows_affected() == 0 {
        return Err(Error::conflict(
            "PAYOUT_NOT_DUE",
            "This class's payout is not due (not completed 24 hours ago, or nothing to pay).",
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PayoutStatus {
    /// Recorded payouts, newest first.
    #[default]
    Paid,
    /// Completed paid classes whose payout is not recorded yet, soonest due first.
    Pending,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PayoutFilter {
    /// `paid` (the default) or `pending`.
    #[param(inline)]
    status: Option<PayoutStatus>,
}

/// One class's payout, paid or pending.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MentorPayout {
    booking_id: Uuid,
    subject: String,
    scheduled_at: DateTime<Utc>,
    /// The mentor's net for the class.
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String)]
    amount: Decimal,
    /// 24 hours after the class completed.
    due_at: DateTime<Utc>,
    paid_at: Option<DateTime<Utc>>,
    /// The UPI transaction reference the admin recorded.
    reference: Option<String>,
}

/// My payouts
///
/// The signed-in mentor's payouts: recorded ones (`status=paid`, the default, newest first,
/// with the UPI reference) or those still to come (`status=pending`: completed paid classes,
/// each due 24 hours after it completed). At most the latest 200.
#[utoipa::path(
    get, path = "/mentors/me/payouts", tag = "mentors",
    security(("session" = [])),
    params(PayoutFilter),
    responses((status = 200, body = Vec<MentorPayout>), (status = 403, description = "FORBIDDEN_ROLE"))
)]
pub async fn my_payouts(
    State(state): State<AppState>,
    MentorUser(mentor): MentorUser,
    Query(filter): Query<PayoutFilter>,
) -> Result<Json<Vec<MentorPayout>>> {
    let query = match filter.status.unwrap_or_default() {
        PayoutStatus::Paid => {
            r#"SELECT b.booking_id, b.subject, b.scheduled_at, t.amount,
                      b.completed_at + interval '24 hours' AS due_at, t.created_at AS paid_at,
                      t.gateway_reference AS reference
               FROM payment_transactions t JOIN bookings b ON b.booking_id = t.booking_id
               WHERE t.kind = 'payout' AND t.mentor_id = $1
               ORDER BY t.created_at DESC LIMIT 200"#
        }
        PayoutStatus::Pending => {
            r#"SELECT b.booking_id, b.subject, b.scheduled_at, b.mentor_payout AS amount,
                      b.completed_at + interval '24 hours' AS due_at, NULL::timestamptz AS paid_at,
                      NULL::text AS reference
               FROM bookings b
               WHERE b.mentor_id = $1 AND b.status = 'completed' AND b.mentor_payout > 0
                 AND NOT EXISTS (SELECT 1 FROM payment_transactions t
                                 WHERE t.kind = 'payout' AND t.booking_id = b.booking_id)
               ORDER BY b.completed_at LIMIT 200"#
        }
    };
    let payouts = sqlx::query_as(query)
        .bind(mentor.user_id)
        .fetch_all(&state.db)
        .await?;
    Ok(Json(payouts))
}

//! Mentor payouts: a class's payout becomes eligible 24 hours after it completes; admins list
//! what is due and record each payout once (to the mentor's UPI id, outside the platform).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use platform::auth::AdminUser;
use platform::error::ConstraintExt;
use platform::validation::Validator;
use platform::{AppState, Error, Json, Path, Result};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
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

/// A class whose payout has come due (paid or not).
const DUE: &str = "b.status = 'completed' AND b.completed_at <= now() - interval '24 hours' AND b.mentor_payout > 0";

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

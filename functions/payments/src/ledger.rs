//! The ledger as the admin sees it: every payment, refund and payout, newest first, filtered by
//! kind, status, booking and time, a page at a time.

use axum::extract::State;
use chrono::{DateTime, Utc};
use platform::auth::AdminUser;
use platform::pagination::{Page, PageQuery, TimeCursor};
use platform::{AppState, Json, Query, Result};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum EntryKind {
    Payment,
    Refund,
    Payout,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum EntryStatus {
    Pending,
    Succeeded,
    Failed,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct LedgerFilter {
    #[param(inline)]
    kind: Option<EntryKind>,
    #[param(inline)]
    status: Option<EntryStatus>,
    booking_id: Option<Uuid>,
    /// Entries recorded at or after this time.
    from: Option<DateTime<Utc>>,
    /// Entries recorded before this time.
    to: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    payment_transaction_id: Uuid,
    #[schema(inline)]
    kind: EntryKind,
    /// `razorpay` or `stripe`; none for a payout (paid outside the platform).
    gateway: Option<String>,
    /// The gateway's payment or refund id, or the payout's UPI reference.
    gateway_reference: Option<String>,
    booking_id: Option<Uuid>,
    package_id: Option<Uuid>,
    mentor_id: Option<Uuid>,
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String)]
    amount: Decimal,
    currency: String,
    #[schema(inline)]
    status: EntryStatus,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
}

/// The ledger
///
/// Admin only. Payments, refunds and payouts, newest first, narrowed by kind, status, booking
/// and the time recorded (`from` inclusive, `to` exclusive), a page at a time.
#[utoipa::path(
    get, path = "/admin/ledger", tag = "admin",
    security(("session" = [])),
    params(LedgerFilter, PageQuery),
    responses((status = 200, description = "Newest first", body = Page<LedgerEntry>), (status = 403, description = "FORBIDDEN_ROLE"))
)]
pub async fn ledger(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(filter): Query<LedgerFilter>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<LedgerEntry>>> {
    let limit = page.limit()?;
    let cursor = page.cursor::<TimeCursor>()?;
    let rows: Vec<LedgerEntry> = sqlx::query_as(
        r#"SELECT payment_transaction_id, kind, gateway, gateway_reference, booking_id, package_id,
                  mentor_id, amount, currency, status, last_error, created_at
           FROM payment_transactions
           WHERE ($1::text IS NULL OR kind = $1)
             AND ($2::text IS NULL OR status = $2)
             AND ($3::uuid IS NULL OR booking_id = $3)
             AND ($4::timestamptz IS NULL OR created_at >= $4)
             AND ($5::timestamptz IS NULL OR created_at < $5)
             AND ($6::timestamptz IS NULL OR (created_at, payment_transaction_id) < ($6, $7))
           ORDER BY created_at DESC, payment_transaction_id DESC
           LIMIT $8"#,
    )
    .bind(filter.kind)
    .bind(filter.status)
    .bind(filter.booking_id)
    .bind(filter.from)
    .bind(filter.to)
    .bind(cursor.map(|c| c.time))
    .bind(cursor.map(|c| c.id))
    .bind(i64::from(limit) + 1)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(Page::from_rows(rows, limit, |entry| TimeCursor {
        time: entry.created_at,
        id: entry.payment_transaction_id,
    })))
}

//! A mentor's dashboard: earnings by month, payouts, classes by status, students, and the rating
//! and reviews over time.

use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Utc};
use platform::auth::MentorUser;
use platform::{AppState, Result};
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{ByStatus, COUNT_BY_STATUS};

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MentorDashboard {
    /// Completed paid classes by the month (UTC) they took place, newest first, 24 at most.
    earnings_by_month: Vec<MonthEarnings>,
    payouts: PayoutSummary,
    classes_by_status: ByStatus,
    /// Students with a confirmed or completed class.
    distinct_students: i64,
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "4.50")]
    rating: Decimal,
    review_count: i32,
    /// Reviews by the month (UTC) they were written, newest first, 12 at most.
    reviews_by_month: Vec<MonthReviews>,
}

/// A month's completed paid classes: the fee split snapshotted on each, and how much of the
/// mentor's net is paid out.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonthEarnings {
    /// `YYYY-MM`.
    month: String,
    classes: i64,
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "1000.00")]
    gross: Decimal,
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "150.00")]
    platform_fee: Decimal,
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "27.00")]
    gst: Decimal,
    /// The mentor's payouts for these classes: gross less platform fee and GST.
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "823.00")]
    net: Decimal,
    /// The part of `net` already paid out (the ledger's payout rows for these classes).
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "411.50")]
    paid_out: Decimal,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayoutSummary {
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "823.00")]
    paid_total: Decimal,
    paid_count: i64,
    last_paid_at: Option<DateTime<Utc>>,
    /// Completed paid classes not yet paid out.
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "411.50")]
    pending_total: Decimal,
    pending_count: i64,
    /// The part of `pendingTotal` already due: classes completed 24 hours ago or more.
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "411.50")]
    due_total: Decimal,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonthReviews {
    /// `YYYY-MM`.
    month: String,
    reviews: i64,
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "4.50")]
    average_rating: Decimal,
}

#[derive(sqlx::FromRow)]
struct Classes {
    #[sqlx(flatten)]
    by_status: ByStatus,
    distinct_students: i64,
    rating: Decimal,
    review_count: i32,
}

/// The mentor's dashboard
///
/// Mentors only. Earnings by month (gross, platform fee, GST, net and what is paid out),
/// payouts paid and pending, classes by status, distinct students, and the rating with reviews
/// by month. Up to a minute old.
#[utoipa::path(
    get, path = "/dashboards/mentor", tag = "dashboards",
    security(("session" = [])),
    responses((status = 200, body = MentorDashboard), (status = 401, description = "UNAUTHENTICATED"), (status = 403, description = "FORBIDDEN_ROLE"))
)]
pub async fn mentor_dashboard(
    State(state): State<AppState>,
    MentorUser(mentor): MentorUser,
) -> Result<Response> {
    let key = format!("dashboards:mentor:{}", mentor.user_id);
    crate::cached(&state, &key, || load(&state, mentor.user_id)).await
}

/// A completed class the mentor earns from, with its payout row if recorded.
const EARNING_CLASSES: &str = "bookings b
    LEFT JOIN payment_transactions t
           ON t.kind = 'payout' AND t.booking_id = b.booking_id AND t.status = 'succeeded'
    WHERE b.mentor_id = $1 AND b.status = 'completed' AND b.mentor_payout > 0";

async fn load(state: &AppState, mentor_id: Uuid) -> Result<MentorDashboard> {
    let db = &state.read_db;
    let classes: Classes = sqlx::query_as(&format!(
        r#"SELECT {COUNT_BY_STATUS},
                  count(DISTINCT student_id) FILTER (WHERE status IN ('confirmed', 'completed')) AS distinct_students,
                  (SELECT rating FROM mentor_profiles WHERE user_id = $1) AS rating,
                  (SELECT review_count FROM mentor_profiles WHERE user_id = $1) AS review_count
           FROM bookings WHERE mentor_id = $1"#
    ))
    .bind(mentor_id)
    .fetch_one(db)
    .await?;
    let earnings_by_month: Vec<MonthEarnings> = sqlx::query_as(&format!(
        r#"SELECT to_char(date_trunc('month', b.scheduled_at AT TIME ZONE 'UTC'), 'YYYY-MM') AS month,
                  count(*) AS classes, sum(b.class_fee) AS gross, sum(b.platform_fee) AS platform_fee,
                  sum(b.gst) AS gst, sum(b.mentor_payout) AS net,
                  coalesce(sum(t.amount), 0) AS paid_out
           FROM {EARNING_CLASSES}
           GROUP BY 1 ORDER BY 1 DESC LIMIT 24"#
    ))
    .bind(mentor_id)
    .fetch_all(db)
    .await?;
    let payouts: PayoutSummary = sqlx::query_as(&format!(
        r#"SELECT coalesce(sum(t.amount), 0) AS paid_total, count(t.payment_transaction_id) AS paid_count,
                  max(t.created_at) AS last_paid_at,
                  coalesce(sum(b.mentor_payout) FILTER (WHERE t.payment_transaction_id IS NULL), 0) AS pending_total,
                  count(*) FILTER (WHERE t.payment_transaction_id IS NULL) AS pending_count,
                  coalesce(sum(b.mentor_payout) FILTER (WHERE t.payment_transaction_id IS NULL
                                                          AND b.completed_at <= now() - interval '24 hours'), 0) AS due_total
           FROM {EARNING_CLASSES}"#
    ))
    .bind(mentor_id)
    .fetch_one(db)
    .await?;
    let reviews_by_month: Vec<MonthReviews> = sqlx::query_as(
        r#"SELECT to_char(date_trunc('month', created_at AT TIME ZONE 'UTC'), 'YYYY-MM') AS month,
                  count(*) AS reviews, round(avg(rating), 2) AS average_rating
           FROM reviews WHERE mentor_id = $1
           GROUP BY 1 ORDER BY 1 DESC LIMIT 12"#,
    )
    .bind(mentor_id)
    .fetch_all(db)
    .await?;
    Ok(MentorDashboard {
        earnings_by_month,
        payouts,
        classes_by_status: classes.by_status,
        distinct_students: classes.distinct_students,
        rating: classes.rating,
        review_count: classes.review_count,
        reviews_by_month,
    })
}

//! The admin's dashboard: money, bookings, signups and mentors by day, week or month.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Datelike, Duration, Months, NaiveDateTime, Utc};
use domain::fees::PAYOUT_DUE;
use platform::auth::AdminUser;
use platform::validation::Validator;
use platform::{AppState, Query, Result};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{ByStatus, COUNT_BY_STATUS};

/// Buckets one answer may hold: a year of days.
const MAX_BUCKETS: usize = 366;

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    #[default]
    Day,
    /// ISO weeks, from Monday.
    Week,
    Month,
}

impl Period {
    fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }

    /// The start (UTC) of the bucket holding `at`.
    fn start_of(self, at: NaiveDateTime) -> NaiveDateTime {
        let date = at.date();
        let first = match self {
            Self::Day => date,
            Self::Week => date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
            Self::Month => date.with_day(1).unwrap_or(date),
        };
        first.and_time(chrono::NaiveTime::MIN)
    }

    fn next(self, start: NaiveDateTime) -> NaiveDateTime {
        match self {
            Self::Day => start + Duration::days(1),
            Self::Week => start + Duration::weeks(1),
            Self::Month => start + Months::new(1),
        }
    }

    /// How far back an answer reaches when `from` is not given.
    fn default_span(self, to: NaiveDateTime) -> NaiveDateTime {
        match self {
            Self::Day => to - Duration::days(30),
            Self::Week => to - Duration::weeks(12),
            Self::Month => to - Months::new(12),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DashboardRange {
    /// `day` (the default), `week` or `month`, in UTC.
    #[param(inline)]
    period: Option<Period>,
    /// Start of the range, rounded down to its bucket's start; default 30 days, 12 weeks or
    /// 12 months before `to`.
    from: Option<DateTime<Utc>>,
    /// End of the range (exclusive); default the end of the current bucket.
    to: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminDashboard {
    #[schema(inline)]
    period: Period,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// One per period in the range, oldest first, empty ones included.
    buckets: Vec<Bucket>,
    /// Mentor payouts due now (classes completed 24 hours ago or more) and not yet paid.
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "823.00")]
    payouts_due: Decimal,
    payouts_due_count: i64,
}

/// One period's figures. Bookings count by their class's start; money moved (payments,
/// refunds, payouts) by when the ledger recorded it; signups by when the account was made.
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    start: DateTime<Utc>,
    /// Class fees of the confirmed and completed classes.
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "5000.00")]
    gross_bookings: Decimal,
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "750.00")]
    platform_fee: Decimal,
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "135.00")]
    gst: Decimal,
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "5000.00")]
    payments_received: Decimal,
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "500.00")]
    refunds: Decimal,
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String, example = "4115.00")]
    payouts_paid: Decimal,
    bookings_by_status: ByStatus,
    student_signups: i64,
    mentor_signups: i64,
    /// Mentors with a confirmed or completed class.
    active_mentors: i64,
    /// Cancelled out of the classes that were booked for good (confirmed, completed,
    /// cancelled, no-show); none without such classes.
    cancellation_rate: Option<f64>,
    /// No-shows out of the classes that were due to happen (completed or no-show).
    no_show_rate: Option<f64>,
}

#[derive(sqlx::FromRow)]
struct Classes {
    bucket: NaiveDateTime,
    #[sqlx(flatten)]
    by_status: ByStatus,
    gross_bookings: Decimal,
    platform_fee: Decimal,
    gst: Decimal,
    active_mentors: i64,
}

#[derive(sqlx::FromRow)]
struct Money {
    bucket: NaiveDateTime,
    payments_received: Decimal,
    refunds: Decimal,
    payouts_paid: Decimal,
}

#[derive(sqlx::FromRow)]
struct Signups {
    bucket: NaiveDateTime,
    student_signups: i64,
    mentor_signups: i64,
}

/// The admin's dashboard
///
/// Admin only. By day, week or month (UTC): gross bookings, platform fee and GST, payments,
/// refunds and payouts paid, bookings by status, signups, active mentors, and the cancellation
/// and no-show rates; with the payouts due now. Up to a minute old.
#[utoipa::path(
    get, path = "/admin/dashboard", tag = "admin",
    security(("session" = [])),
    params(DashboardRange),
    responses(
        (status = 200, body = AdminDashboard),
        (status = 400, description = "INVALID_QUERY"),
        (status = 403, description = "FORBIDDEN_ROLE"),
        (status = 422, description = "VALIDATION_FAILED: `from` not before `to`, or more than 366 periods"),
    )
)]
pub async fn admin_dashboard(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(range): Query<DashboardRange>,
) -> Result<Response> {
    let period = range.period.unwrap_or_default();
    let to = range.to.map_or_else(
        || period.next(period.start_of(Utc::now().naive_utc())),
        |to| to.naive_utc(),
    );
    let from = period.start_of(
        range
            .from
            .map_or_else(|| period.default_span(to), |from| from.naive_utc()),
    );
    let starts = bucket_starts(period, from, to);
    Validator::new()
        .check(from < to, "from", "must be before to")
        .check(
            starts.len() <= MAX_BUCKETS,
            "to",
            "at most 366 periods at a time",
        )
        .finish()?;
    let key = format!(
        "dashboards:admin:{}:{}:{}",
        period.as_str(),
        from.and_utc().timestamp_micros(),
        to.and_utc().timestamp_micros()
    );
    crate::cached(&state, &key, || load(&state, period, from, to, starts)).await
}

/// The start of every bucket from `from` (a bucket start) up to `to`, at most one past the cap.
fn bucket_starts(period: Period, from: NaiveDateTime, to: NaiveDateTime) -> Vec<NaiveDateTime> {
    let mut starts = Vec::new();
    let mut start = from;
    while start < to && starts.len() <= MAX_BUCKETS {
        starts.push(start);
        start = period.next(start);
    }
    starts
}

async fn load(
    state: &AppState,
    period: Period,
    from: NaiveDateTime,
    to: NaiveDateTime,
    starts: Vec<NaiveDateTime>,
) -> Result<AdminDashboard> {
    let db = &state.read_db;
    let range = Range {
        db,
        period,
        from: from.and_utc(),
        to: to.and_utc(),
    };
    // Bookings by their class's start (bookings_scheduled_idx).
    let classes: Vec<Classes> = range.rows(&format!(
        r#"SELECT date_trunc($1, scheduled_at AT TIME ZONE 'UTC') AS bucket, {COUNT_BY_STATUS},
                  coalesce(sum(class_fee) FILTER (WHERE status IN ('confirmed', 'completed')), 0) AS gross_bookings,
                  coalesce(sum(platform_fee) FILTER (WHERE status IN ('confirmed', 'completed')), 0) AS platform_fee,
                  coalesce(sum(gst) FILTER (WHERE status IN ('confirmed', 'completed')), 0) AS gst,
                  count(DISTINCT mentor_id) FILTER (WHERE status IN ('confirmed', 'completed')) AS active_mentors
           FROM bookings WHERE scheduled_at >= $2 AND scheduled_at < $3
           GROUP BY 1"#
    ))
    .await?;
    // Money that moved, by when the ledger recorded it (payment_transactions_created_idx).
    let money: Vec<Money> = range
        .rows(
            r#"SELECT date_trunc($1, created_at AT TIME ZONE 'UTC') AS bucket,
                  coalesce(sum(amount) FILTER (WHERE kind = 'payment'), 0) AS payments_received,
                  coalesce(sum(amount) FILTER (WHERE kind = 'refund'), 0) AS refunds,
                  coalesce(sum(amount) FILTER (WHERE kind = 'payout'), 0) AS payouts_paid
           FROM payment_transactions
           WHERE status = 'succeeded' AND created_at >= $2 AND created_at < $3
           GROUP BY 1"#,
        )
        .await?;
    // Accounts by when they were made (users_role_created_idx).
    let signups: Vec<Signups> = range
        .rows(
            r#"SELECT date_trunc($1, created_at AT TIME ZONE 'UTC') AS bucket,
                  count(*) FILTER (WHERE role = 'student') AS student_signups,
                  count(*) FILTER (WHERE role = 'mentor') AS mentor_signups
           FROM users
           WHERE role IN ('student', 'mentor') AND created_at >= $2 AND created_at < $3
           GROUP BY 1"#,
        )
        .await?;
    let (payouts_due, payouts_due_count): (Decimal, i64) = sqlx::query_as(&format!(
        r#"SELECT coalesce(sum(b.mentor_payout), 0), count(*) FROM bookings b
           WHERE {PAYOUT_DUE}
             AND NOT EXISTS (SELECT 1 FROM payment_transactions t WHERE t.kind = 'payout' AND t.booking_id = b.booking_id)"#
    ))
    .fetch_one(db)
    .await?;

    let mut buckets: BTreeMap<NaiveDateTime, Bucket> = starts
        .into_iter()
        .map(|start| {
            let bucket = Bucket {
                start: start.and_utc(),
                ..Bucket::default()
            };
            (start, bucket)
        })
        .collect();
    for row in classes {
        if let Some(bucket) = buckets.get_mut(&row.bucket) {
            let counts = &row.by_status;
            bucket.cancellation_rate = rate(
                counts.cancelled,
                counts.confirmed + counts.completed + counts.cancelled + counts.no_show,
            );
            bucket.no_show_rate = rate(counts.no_show, counts.completed + counts.no_show);
            bucket.gross_bookings = row.gross_bookings;
            bucket.platform_fee = row.platform_fee;
            bucket.gst = row.gst;
            bucket.active_mentors = row.active_mentors;
            bucket.bookings_by_status = row.by_status;
        }
    }
    for row in money {
        if let Some(bucket) = buckets.get_mut(&row.bucket) {
            bucket.payments_received = row.payments_received;
            bucket.refunds = row.refunds;
            bucket.payouts_paid = row.payouts_paid;
        }
    }
    for row in signups {
        if let Some(bucket) = buckets.get_mut(&row.bucket) {
            bucket.student_signups = row.student_signups;
            bucket.mentor_signups = row.mentor_signups;
        }
    }
    Ok(AdminDashboard {
        period,
        from: from.and_utc(),
        to: to.and_utc(),
        buckets: buckets.into_values().collect(),
        payouts_due,
        payouts_due_count,
    })
}

/// The range's bounds as a query's parameters: `$1` the period, `$2` and `$3` from and to.
struct Range<'a> {
    db: &'a sqlx::PgPool,
    period: Period,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl Range<'_> {
    /// The rows of `sql` (grouped by `date_trunc($1, …)` over `[$2, $3)`) for this range.
    async fn rows<T>(&self, sql: &str) -> sqlx::Result<Vec<T>>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        sqlx::query_as(sql)
            .bind(self.period.as_str())
            .bind(self.from)
            .bind(self.to)
            .fetch_all(self.db)
            .await
    }
}

/// `part / whole` to four places, or none when `whole` is 0.
fn rate(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn at(date: &str) -> NaiveDateTime {
        NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .unwrap()
            .and_hms_opt(13, 30, 0)
            .unwrap()
    }

    #[test]
    fn buckets_start_at_midnight_monday_and_the_first_of_the_month() {
        // 2026-12-09 is a Wednesday.
        assert_eq!(
            Period::Day.start_of(at("2026-12-09")).to_string(),
            "2026-12-09 00:00:00"
        );
        assert_eq!(
            Period::Week.start_of(at("2026-12-09")).to_string(),
            "2026-12-07 00:00:00"
        );
        assert_eq!(
            Period::Month.start_of(at("2026-12-09")).to_string(),
            "2026-12-01 00:00:00"
        );
        let months = bucket_starts(
            Period::Month,
            Period::Month.start_of(at("2026-11-20")),
            at("2027-02-01"),
        );
        let months: Vec<String> = months
            .iter()
            .map(|start| start.date().to_string())
            .collect();
        assert_eq!(
            months,
            ["2026-11-01", "2026-12-01", "2027-01-01", "2027-02-01"]
        );
    }

    #[test]
    fn a_rate_is_rounded_to_four_places_and_absent_without_classes() {
        assert_eq!(rate(1, 3), Some(0.3333));
        assert_eq!(rate(0, 5), Some(0.0));
        assert_eq!(rate(0, 0), None);
    }
}

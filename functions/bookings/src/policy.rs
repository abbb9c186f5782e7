//! The booking rules shared by create, reschedule and package classes, and the one
//! cancellation policy. Each broken rule has its own error code.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use domain::platform_settings::{self, BookingLimits, PaymentConfig};
use domain::schedule::{self, Placement, WeeklySlot};
use platform::error::ConstraintExt;
use platform::{AppState, Error, Result};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

pub const MIN_LEAD: Duration = Duration::hours(1);
pub const MAX_AHEAD: Duration = Duration::days(60);
pub const HOLD: Duration = Duration::minutes(10);
pub const RESCHEDULE_CUTOFF: Duration = Duration::hours(6);
/// Times one booking may be moved, by either participant together: enough for real changes of
/// plan, not for holding a mentor's week hostage.
pub const MAX_RESCHEDULES: i32 = 3;
/// Statuses that hold time and count toward the student's limits.
pub const COUNTED_STATUSES: &str = "('pending_payment', 'confirmed', 'completed', 'no_show')";

/// Admin-configurable numbers (booking-limits and payment-config).
#[derive(Debug, Clone)]
pub struct BookingSettings {
    pub daily_limit: i64,
    pub weekly_limit: Option<i64>,
    pub monthly_limit: i64,
    pub max_active_packages: i64,
    pub buffer: Duration,
    pub platform_fee_percent: Decimal,
    pub gst_percent: Decimal,
}

pub async fn settings(state: &AppState) -> Result<BookingSettings> {
    let limits = platform_settings::load::<BookingLimits>(state).await?;
    let payment = platform_settings::load::<PaymentConfig>(state).await?;
    Ok(BookingSettings {
        daily_limit: limits.daily_limit,
        weekly_limit: limits.weekly_limit_enabled.then_some(limits.weekly_limit),
        monthly_limit: limits.monthly_limit,
        max_active_packages: limits.max_active_packages,
        buffer: Duration::minutes(limits.buffer_minutes),
        platform_fee_percent: payment.platform_fee_percent,
        gst_percent: payment.gst_percent,
    })
}

/// Who cancels decides the refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canceller {
    Student,
    Mentor,
    Admin,
}

/// The single cancellation policy: a student cancelling ≥ 24 h ahead gets 100 %, 12-24 h 50 %,
/// later nothing; a mentor or admin cancelling (or a mentor no-show) refunds 100 %.
pub fn refund_percent(canceller: Canceller, until_start: Duration) -> u32 {
    match canceller {
        Canceller::Mentor | Canceller::Admin => 100,
        Canceller::Student if until_start >= Duration::hours(24) => 100,
        Canceller::Student if until_start >= Duration::hours(12) => 50,
        Canceller::Student => 0,
    }
}

/// A bookable mentor, as the rules need it.
#[derive(Debug, Clone)]
pub struct Mentor {
    pub mentor_id: Uuid,
    pub time_zone: Tz,
    pub has_upi: bool,
    pub demo_enabled: bool,
    pub package_discount_percent: i32,
}

/// An active, approved mentor, or 404 `MENTOR_NOT_FOUND`.
pub async fn load_mentor(connection: &mut PgConnection, mentor_id: Uuid) -> Result<Mentor> {
    let row: Option<(String, bool, bool, i32)> = sqlx::query_as(
        r#"SELECT p.time_zone, p.upi_id IS NOT NULL, p.demo_enabled, p.package_discount_percent
           FROM users u JOIN mentor_profiles p USING (user_id)
           WHERE u.user_id = $1 AND u.role = 'mentor' AND u.is_active AND u.approval_status = 'approved'"#,
    )
    .bind(mentor_id)
    .fetch_optional(connection)
    .await?;
    let (time_zone, has_upi, demo_enabled, package_discount_percent) =
        row.ok_or_else(|| Error::not_found("MENTOR_NOT_FOUND", "No such mentor."))?;
    Ok(Mentor {
        mentor_id,
        time_zone: time_zone.parse().unwrap_or(chrono_tz::Asia::Kolkata),
        has_upi,
        demo_enabled,
        package_discount_percent,
    })
}

/// The fee of `subject` with this mentor, or 422 `SUBJECT_NOT_OFFERED`.
pub async fn subject_fee(
    connection: &mut PgConnection,
    mentor_id: Uuid,
    subject: &str,
) -> Result<(String, Decimal)> {
    sqlx::query_as("SELECT subject, class_fee FROM teacher_subjects WHERE mentor_id = $1 AND lower(subject) = lower($2)")
        .bind(mentor_id)
        .bind(subject.trim())
        .fetch_optional(connection)
        .await?
        .ok_or_else(|| {
            Error::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "SUBJECT_NOT_OFFERED",
                "This mentor does not teach that subject.",
            )
        })
}

/// Lead time, horizon and the mentor's weekly slots.
pub async fn check_time(
    connection: &mut PgConnection,
    mentor: &Mentor,
    start: DateTime<Utc>,
    duration: Duration,
    now: DateTime<Utc>,
) -> Result<()> {
    if start < now + MIN_LEAD {
        return Err(unprocessable(
            "TOO_SOON",
            "Classes start at least 1 hour from now.",
        ));
    }
    if start > now + MAX_AHEAD {
        return Err(unprocessable(
            "TOO_FAR",
            "Classes can be booked at most 60 days ahead.",
        ));
    }
    // Share-lock the slots so a concurrent slot edit can't strand this booking.
    let rows: Vec<(i32, i32, i32)> = sqlx::query_as(
        "SELECT day_of_week, start_minute, end_minute FROM time_slots WHERE mentor_id = $1 AND NOT is_blocked FOR SHARE",
    )
    .bind(mentor.mentor_id)
    .fetch_all(connection)
    .await?;
    let slots: Vec<WeeklySlot> = rows
        .into_iter()
        .map(|(day, start, end)| WeeklySlot {
            day_of_week: day as u32,
            start_minute: start as u32,
            end_minute: end as u32,
        })
        .collect();
    match schedule::placement(start, duration, mentor.time_zone, &slots) {
        Placement::Offered => Ok(()),
        Placement::Outside => Err(unprocessable(
            "OUTSIDE_AVAILABILITY",
            "The whole class must lie inside one of the mentor's available slots.",
        )),
        Placement::OffGrid => Err(unprocessable(
            "START_OFF_GRID",
            "Classes start on the 15-minute grid of the mentor's slot, at a start the \
             availability lists.",
        )),
    }
}

/// The student's daily, weekly (when enabled) and monthly limits, counted in the mentor's time
/// zone around `start`, not counting `excluding` (a booking being rescheduled).
pub async fn check_limits(
    connection: &mut PgConnection,
    student_id: Uuid,
    zone: Tz,
    start: DateTime<Utc>,
    excluding: Option<Uuid>,
    settings: &BookingSettings,
) -> Result<()> {
    let (day, week, month): (i64, i64, i64) = sqlx::query_as(&format!(
        r#"SELECT
               count(*) FILTER (WHERE date_trunc('day', scheduled_at AT TIME ZONE $2) = date_trunc('day', $3 AT TIME ZONE $2)),
               count(*) FILTER (WHERE date_trunc('week', scheduled_at AT TIME ZONE $2) = date_trunc('week', $3 AT TIME ZONE $2)),
               count(*) FILTER (WHERE date_trunc('month', scheduled_at AT TIME ZONE $2) = date_trunc('month', $3 AT TIME ZONE $2))
           FROM bookings
           WHERE student_id = $1 AND status IN {COUNTED_STATUSES} AND booking_id IS DISTINCT FROM $4"#
    ))
    .bind(student_id)
    .bind(zone.name())
    .bind(start)
    .bind(excluding)
    .fetch_one(connection)
    .await?;
    if day >= settings.daily_limit {
        return Err(limit("LIMIT_DAILY", "day", settings.daily_limit));
    }
    if let Some(weekly) = settings.weekly_limit
        && week >= weekly
    {
        return Err(limit("LIMIT_WEEKLY", "week", weekly));
    }
    if month >= settings.monthly_limit {
        return Err(limit(
            "LIMIT_MONTHLY",
            "calendar month",
            settings.monthly_limit,
        ));
    }
    Ok(())
}

/// Serialises the bookings of these people for the transaction: a student's limits are counted
/// and then written, and racers for one mentor's slot queue here instead of deadlocking in the
/// overlap constraints' checks. Locks are taken in id order, so two writers never wait on each
/// other.
pub async fn lock_people(connection: &mut PgConnection, people: &[Uuid]) -> Result<()> {
    let mut people = people.to_vec();
    people.sort_unstable();
    people.dedup();
    for person in people {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))")
            .bind(person)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// Lapsed holds of these people stop holding time before new bookings are checked.
pub async fn expire_lapsed_holds(
    connection: &mut PgConnection,
    mentor_id: Uuid,
    student_id: Uuid,
) -> Result<()> {
    sqlx::query(
        r#"UPDATE bookings SET status = 'expired', updated_at = now()
           WHERE status = 'pending_payment' AND hold_expires_at <= now()
             AND (mentor_id = $1 OR student_id = $2)"#,
    )
    .bind(mentor_id)
    .bind(student_id)
    .execute(connection)
    .await?;
    Ok(())
}

/// Maps the overlap constraints of a booking write to their codes.
pub fn overlap_errors<T>(result: std::result::Result<T, sqlx::Error>) -> Result<T> {
    result
        .on_constraint("bookings_mentor_no_overlap", || {
            Error::conflict("SLOT_TAKEN", "The mentor is already booked at that time.")
        })
        .on_constraint("bookings_student_no_overlap", || {
            Error::conflict("STUDENT_CONFLICT", "You already have a class at that time.")
        })
        .on_constraint("bookings_one_demo_per_pair", || {
            Error::conflict(
                "DEMO_ALREADY_BOOKED",
                "You have already had a demo with this mentor.",
            )
        })
}

pub fn unprocessable(code: &'static str, detail: &str) -> Error {
    Error::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, code, detail)
}

fn limit(code: &'static str, period: &str, limit: i64) -> Error {
    Error::conflict(code, format!("At most {limit} classes per {period}.")).with("limit", limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refund_policy_at_its_edges() {
        let hours = Duration::hours;
        let cases = [
            (Canceller::Student, hours(48), 100),
            (Canceller::Student, hours(24), 100),
            (Canceller::Student, hours(24) - Duration::seconds(1), 50),
            (Canceller::Student, hours(12), 50),
            (Canceller::Student, hours(12) - Duration::seconds(1), 0),
            (Canceller::Student, hours(-1), 0),
            (Canceller::Mentor, hours(1), 100),
            (Canceller::Admin, hours(-2), 100),
        ];
        for (canceller, until_start, expected) in cases {
            assert_eq!(
                refund_percent(canceller, until_start),
                expected,
                "{canceller:?} {until_start:?}"
            );
        }
    }
}

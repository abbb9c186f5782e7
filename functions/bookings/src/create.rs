//! `POST /api/bookings`: one transaction that checks every rule, snapshots the fee split and
//! inserts; the exclusion constraints settle races between instances.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use domain::booking_status::BookingStatus;
use domain::fees::{self, FeeSplit};
use domain::notifications;
use domain::package_status::PackageStatus;
use domain::schedule::SessionType;
use platform::auth::StudentUser;
use platform::validation::Validator;
use platform::{AppState, Error, Json, Result};
use rust_decimal::Decimal;
use serde::Deserialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::policy::{self, BookingSettings, Mentor, unprocessable};
use crate::view::{self, BookingView};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "mentorId": "8c0d2f4e-6b1a-4f3d-9e25-7a6b5c4d3e21", "subject": "Physics",
    "sessionType": "regular", "scheduledAt": "2026-12-10T10:00:00Z",
    "notes": "Rotational motion, chapter 7", "idempotencyKey": "b7e3c1f2-booking-1"
}))]
pub struct CreateBooking {
    mentor_id: Uuid,
    subject: String,
    session_type: SessionType,
    /// A start `GET /api/mentors/{id}/availability` lists: at least 1 hour and at most 60 days
    /// ahead, on the 15-minute grid of a mentor's slot that holds the whole class.
    scheduled_at: DateTime<Utc>,
    notes: Option<String>,
    /// Book a class from this active package (uses one credit; confirmed at once).
    package_id: Option<Uuid>,
    /// The same key from the same student returns the same booking.
    idempotency_key: String,
}

/// A booking request, from the bookings or the packages route.
pub struct NewBooking {
    pub mentor_id: Uuid,
    pub subject: String,
    pub session_type: SessionType,
    pub scheduled_at: DateTime<Utc>,
    pub notes: Option<String>,
    pub package_id: Option<Uuid>,
    pub idempotency_key: String,
}

/// Book a class
///
/// The student books a start the mentor's availability offers. A free demo is confirmed at
/// once; a paid class holds the slot until it is paid. Send an `idempotencyKey`: a retry with
/// the same key returns the same booking. Two students racing for one slot: one wins, the other
/// gets `409 SLOT_TAKEN`.
#[utoipa::path(
    post, path = "/bookings", tag = "bookings",
    security(("session" = [])),
    request_body = CreateBooking,
    responses(
        (status = 201, body = BookingView, description = "Created (or the earlier booking with this idempotency key)"),
        (status = 404, description = "MENTOR_NOT_FOUND, PACKAGE_NOT_FOUND"),
        (status = 409, description = "SLOT_TAKEN, STUDENT_CONFLICT, DEMO_ALREADY_BOOKED, LIMIT_DAILY, LIMIT_WEEKLY, LIMIT_MONTHLY, PACKAGE_EXHAUSTED"),
        (status = 422, description = "TOO_SOON, TOO_FAR, OUTSIDE_AVAILABILITY, START_OFF_GRID, SUBJECT_NOT_OFFERED, DEMO_NOT_OFFERED, MENTOR_PAYMENT_MISSING, VALIDATION_FAILED"),
    )
)]
pub async fn create_booking(
    State(state): State<AppState>,
    StudentUser(student): StudentUser,
    Json(request): Json<CreateBooking>,
) -> Result<(StatusCode, Json<BookingView>)> {
    let booking = create(
        &state,
        student.user_id,
        NewBooking {
            mentor_id: request.mentor_id,
            subject: request.subject,
            session_type: request.session_type,
            scheduled_at: request.scheduled_at,
            notes: request.notes,
            package_id: request.package_id,
            idempotency_key: request.idempotency_key,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(booking)))
}

/// Creates a booking for `student_id`: load the people under their locks, decide the terms by
/// every rule, insert (the exclusion constraints settle races), notify after commit.
pub async fn create(
    state: &AppState,
    student_id: Uuid,
    request: NewBooking,
) -> Result<BookingView> {
    validate(&request)?;
    if let Some(existing) = earlier_booking(
        &mut *state.db.acquire().await?,
        student_id,
        &request.idempotency_key,
    )
    .await?
    {
        return Ok(existing);
    }
    let settings = policy::settings(state).await?;

    let mut transaction = state.db.begin().await?;
    policy::lock_people(&mut transaction, &[student_id, request.mentor_id]).await?;
    // A concurrent request with the same key may have committed while we waited for the lock.
    if let Some(existing) =
        earlier_booking(&mut transaction, student_id, &request.idempotency_key).await?
    {
        return Ok(existing);
    }
    policy::expire_lapsed_holds(&mut transaction, request.mentor_id, student_id).await?;
    let mentor = policy::load_mentor(&mut transaction, request.mentor_id).await?;
    let terms = decide(&mut transaction, &settings, student_id, &mentor, &request).await?;
    let booking_id = insert(&mut transaction, student_id, &request, &terms).await?;
    if terms.status == BookingStatus::Confirmed {
        notifications::class_confirmed(&mut transaction, booking_id).await?;
    }
    let booking = view::load(&mut *transaction, booking_id).await?;
    transaction.commit().await?;
    domain::booking_changes::announce(state, &[student_id, mentor.mentor_id]).await;
    Ok(booking)
}

/// What the rules decide for a new booking.
struct Terms {
    mentor_id: Uuid,
    /// The subject as the mentor names it.
    subject: String,
    status: BookingStatus,
    hold_expires_at: Option<DateTime<Utc>>,
    ends_at: DateTime<Utc>,
    /// The end plus the buffer: what the exclusion constraints keep free.
    blocked_until: DateTime<Utc>,
    split: FeeSplit,
}

/// Checks every rule for `request` and prices it: a demo is free and confirmed, a package class
/// costs a credit and is confirmed, any other class waits for payment under a hold.
async fn decide(
    connection: &mut PgConnection,
    settings: &BookingSettings,
    student_id: Uuid,
    mentor: &Mentor,
    request: &NewBooking,
) -> Result<Terms> {
    if !mentor.has_upi {
        return Err(unprocessable(
            "MENTOR_PAYMENT_MISSING",
            "This mentor can't take bookings until they add a UPI id.",
        ));
    }
    let (subject, class_fee) =
        policy::subject_fee(&mut *connection, mentor.mentor_id, &request.subject).await?;
    if request.session_type == SessionType::Demo {
        check_demo(&mut *connection, student_id, mentor, request).await?;
    }
    let now = Utc::now();
    let duration = request.session_type.duration();
    policy::check_time(
        &mut *connection,
        mentor,
        request.scheduled_at,
        duration,
        now,
    )
    .await?;
    policy::check_limits(
        &mut *connection,
        student_id,
        mentor.time_zone,
        request.scheduled_at,
        None,
        settings,
    )
    .await?;
    let with_fees = |fee| fees::split(fee, settings.platform_fee_percent, settings.gst_percent);
    let (status, hold_expires_at, split) = match (request.session_type, request.package_id) {
        (SessionType::Demo, _) => (BookingStatus::Confirmed, None, with_fees(Decimal::ZERO)),
        (SessionType::Regular, Some(package_id)) => {
            let per_class = use_package_credit(
                connection,
                package_id,
                student_id,
                mentor.mentor_id,
                &subject,
            )
            .await?;
            (BookingStatus::Confirmed, None, with_fees(per_class))
        }
        (SessionType::Regular, None) => (
            BookingStatus::PendingPayment,
            Some(now + policy::HOLD),
            with_fees(class_fee),
        ),
    };
    Ok(Terms {
        mentor_id: mentor.mentor_id,
        subject,
        status,
        hold_expires_at,
        ends_at: request.scheduled_at + duration,
        blocked_until: request.scheduled_at + duration + settings.buffer,
        split,
    })
}

/// A demo needs a mentor who offers demos, no package, and no earlier demo with this mentor.
async fn check_demo(
    connection: &mut PgConnection,
    student_id: Uuid,
    mentor: &Mentor,
    request: &NewBooking,
) -> Result<()> {
    if !mentor.demo_enabled {
        return Err(unprocessable(
            "DEMO_NOT_OFFERED",
            "This mentor does not offer demo classes.",
        ));
    }
    if request.package_id.is_some() {
        return Err(unprocessable(
            "PACKAGE_NOT_FOR_DEMO",
            "Package credits are for regular classes.",
        ));
    }
    ensure_first_demo(connection, student_id, mentor.mentor_id).await
}

/// Inserts the booking; 409 `SLOT_TAKEN` or `STUDENT_CONFLICT` when another one overlaps.
async fn insert(
    connection: &mut PgConnection,
    student_id: Uuid,
    request: &NewBooking,
    terms: &Terms,
) -> Result<Uuid> {
    let booking_id = Uuid::new_v4();
    let inserted = sqlx::query(
        r#"INSERT INTO bookings (booking_id, student_id, mentor_id, subject, session_type, status, scheduled_at,
                                 ends_at, blocked_until, hold_expires_at, notes, class_fee, platform_fee, gst,
                                 mentor_payout, idempotency_key, package_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"#,
    )
    .bind(booking_id)
    .bind(student_id)
    .bind(terms.mentor_id)
    .bind(&terms.subject)
    .bind(request.session_type)
    .bind(terms.status)
    .bind(request.scheduled_at)
    .bind(terms.ends_at)
    .bind(terms.blocked_until)
    .bind(terms.hold_expires_at)
    .bind(request.notes.as_deref().map(str::trim))
    .bind(terms.split.class_fee)
    .bind(terms.split.platform_fee)
    .bind(terms.split.gst)
    .bind(terms.split.mentor_payout)
    .bind(&request.idempotency_key)
    .bind(request.package_id)
    .execute(connection)
    .await;
    policy::overlap_errors(inserted)?;
    Ok(booking_id)
}

fn validate(request: &NewBooking) -> Result<()> {
    let mut validator = Validator::new();
    validator
        .length(&request.idempotency_key, "idempotencyKey", 1, 100)
        .length(&request.subject, "subject", 1, 100);
    if let Some(notes) = &request.notes {
        validator.check(
            notes.chars().count() <= 1000,
            "notes",
            "at most 1000 characters",
        );
    }
    validator.finish()
}

async fn earlier_booking(
    connection: &mut PgConnection,
    student_id: Uuid,
    key: &str,
) -> Result<Option<BookingView>> {
    let booking_id: Option<Uuid> = sqlx::query_scalar(
        "SELECT booking_id FROM bookings WHERE student_id = $1 AND idempotency_key = $2",
    )
    .bind(student_id)
    .bind(key)
    .fetch_optional(&mut *connection)
    .await?;
    match booking_id {
        Some(booking_id) => Ok(Some(view::load(connection, booking_id).await?)),
        None => Ok(None),
    }
}

async fn ensure_first_demo(
    connection: &mut PgConnection,
    student_id: Uuid,
    mentor_id: Uuid,
) -> Result<()> {
    let had_demo: bool = sqlx::query_scalar(
        r#"SELECT EXISTS (SELECT 1 FROM bookings WHERE student_id = $1 AND mentor_id = $2
               AND session_type = 'demo' AND status NOT IN ('cancelled', 'expired'))"#,
    )
    .bind(student_id)
    .bind(mentor_id)
    .fetch_one(connection)
    .await?;
    if had_demo {
        return Err(Error::conflict(
            "DEMO_ALREADY_BOOKED",
            "You have already had a demo with this mentor.",
        ));
    }
    Ok(())
}

/// Takes one credit from the student's active package for this mentor and subject, returning
/// the per-class price (the package price over its classes).
async fn use_package_credit(
    connection: &mut PgConnection,
    package_id: Uuid,
    student_id: Uuid,
    mentor_id: Uuid,
    subject: &str,
) -> Result<Decimal> {
    let package: Option<(PackageStatus, Uuid, String, i32, Decimal, i32)> = sqlx::query_as(
        "SELECT status, mentor_id, subject, credits_remaining, price, credits_total FROM packages WHERE package_id = $1 AND student_id = $2 FOR UPDATE",
    )
    .bind(package_id)
    .bind(student_id)
    .fetch_optional(&mut *connection)
    .await?;
    let Some((status, package_mentor, package_subject, remaining, price, total)) = package else {
        return Err(Error::not_found(
            "PACKAGE_NOT_FOUND",
            "No such package of yours.",
        ));
    };
    if package_mentor != mentor_id || !package_subject.eq_ignore_ascii_case(subject) {
        return Err(unprocessable(
            "PACKAGE_MISMATCH",
            "This package is for another mentor or subject.",
        ));
    }
    if status != PackageStatus::Active || remaining == 0 {
        return Err(Error::conflict(
            "PACKAGE_EXHAUSTED",
            "This package has no credits left to use.",
        ));
    }
    sqlx::query(
        r#"UPDATE packages SET credits_remaining = credits_remaining - 1,
                  status = CASE WHEN credits_remaining = 1 THEN 'exhausted' ELSE status END, updated_at = now()
           WHERE package_id = $1"#,
    )
    .bind(package_id)
    .execute(connection)
    .await?;
    Ok((price / Decimal::from(total)).round_dp(2))
}

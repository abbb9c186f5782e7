//! Packages: six regular classes with one mentor and subject at 6 × the class fee less the
//! mentor's package discount. Buying needs a completed class with that mentor and fewer than the
//! maximum active packages; a package is usable once paid (payments activate it).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use domain::package_status::PackageStatus;
use domain::schedule::SessionType;
use platform::auth::StudentUser;
use platform::{AppState, Error, Json, Path, Result};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::create::{self, NewBooking};
use crate::policy;
use crate::view::BookingView;

const CLASSES_PER_PACKAGE: i32 = 6;

/// Gives the package class `booking_id` its credit back (a full refund of a class paid with a
/// credit); nothing for a booking without a package.
pub async fn return_credit(connection: &mut PgConnection, booking_id: Uuid) -> Result<()> {
    sqlx::query(
        r#"UPDATE packages SET credits_remaining = credits_remaining + 1,
                  status = CASE WHEN status = 'exhausted' THEN 'active' ELSE status END, updated_at = now()
           WHERE package_id = (SELECT package_id FROM bookings WHERE booking_id = $1)"#,
    )
    .bind(booking_id)
    .execute(connection)
    .await?;
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuyPackage {
    mentor_id: Uuid,
    subject: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleClass {
    scheduled_at: DateTime<Utc>,
    notes: Option<String>,
    idempotency_key: String,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PackageView {
    package_id: Uuid,
    mentor_id: Uuid,
    subject: String,
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String)]
    class_fee: Decimal,
    discount_percent: i32,
    #[serde(serialize_with = "domain::money::two_places")]
    #[schema(value_type = String)]
    price: Decimal,
    credits_total: i32,
    credits_remaining: i32,
    /// `pending_payment`, `active`, `exhausted`, `cancelled` or `expired`.
    status: PackageStatus,
    created_at: DateTime<Utc>,
}

const PACKAGE_COLUMNS: &str = "package_id, mentor_id, subject, class_fee, discount_percent, price, \
     credits_total, credits_remaining, status, created_at";

/// Buy a package of classes
///
/// Six regular classes with one mentor and subject at six times the class fee less the mentor's
/// package discount. Needs a completed class with that mentor; usable once paid.
#[utoipa::path(
    post, path = "/packages", tag = "packages",
    security(("session" = [])),
    request_body = BuyPackage,
    responses(
        (status = 201, body = PackageView, description = "Awaiting payment"),
        (status = 409, description = "PACKAGE_PREREQUISITE, PACKAGE_LIMIT"),
        (status = 404, description = "MENTOR_NOT_FOUND"),
        (status = 422, description = "SUBJECT_NOT_OFFERED"),
    )
)]
pub async fn buy_package(
    State(state): State<AppState>,
    StudentUser(student): StudentUser,
    Json(request): Json<BuyPackage>,
) -> Result<(StatusCode, Json<PackageView>)> {
    let settings = policy::settings(&state).await?;
    let mut transaction = state.db.begin().await?;
    policy::lock_people(&mut transaction, &[student.user_id]).await?;
    let mentor = policy::load_mentor(&mut transaction, request.mentor_id).await?;
    let (subject, class_fee) =
        policy::subject_fee(&mut transaction, mentor.mentor_id, &request.subject).await?;
    let (completed, active): (bool, i64) = sqlx::query_as(
        r#"SELECT EXISTS (SELECT 1 FROM bookings WHERE student_id = $1 AND mentor_id = $2 AND status = 'completed'),
                  (SELECT count(*) FROM packages WHERE student_id = $1 AND status IN ('pending_payment', 'active'))"#,
    )
    .bind(student.user_id)
    .bind(mentor.mentor_id)
    .fetch_one(&mut *transaction)
    .await?;
    if !completed {
        return Err(Error::conflict(
            "PACKAGE_PREREQUISITE",
            "Complete a class with this mentor before buying a package.",
        ));
    }
    if active >= settings.max_active_packages {
        return Err(Error::conflict(
            "PACKAGE_LIMIT",
            format!("At most {} active packages.", settings.max_active_packages),
        ));
    }
    let discount = mentor.package_discount_percent;
    let price = domain::fees::percent_of(
        class_fee * Decimal::from(CLASSES_PER_PACKAGE),
        (100 - discount) as u32,
    );
    let package: PackageView = sqlx::query_as(&format!(
        r#"INSERT INTO packages (package_id, student_id, mentor_id, subject, class_fee, discount_percent, price,
                                 credits_total, credits_remaining)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING {PACKAGE_COLUMNS}"#
    ))
    .bind(Uuid::new_v4())
    .bind(student.user_id)
    .bind(mentor.mentor_id)
    .bind(subject)
    .bind(class_fee)
    .bind(discount)
    .bind(price)
    .bind(CLASSES_PER_PACKAGE)
    .fetch_one(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok((StatusCode::CREATED, Json(package)))
}

/// My packages
///
/// The student's packages with their credits left.
#[utoipa::path(
    get, path = "/packages", tag = "packages",
    security(("session" = [])),
    responses((status = 200, body = Vec<PackageView>))
)]
pub async fn list_packages(
    State(state): State<AppState>,
    StudentUser(student): StudentUser,
) -> Result<Json<Vec<PackageView>>> {
    let packages = sqlx::query_as(&format!(
        "SELECT {PACKAGE_COLUMNS} FROM packages WHERE student_id = $1 ORDER BY created_at DESC"
    ))
    .bind(student.user_id)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(packages))
}

/// Book a class from a package
///
/// Uses one credit; the class is confirmed at once. The booking rules of `POST /api/bookings`
/// apply.
#[utoipa::path(
    post, path = "/packages/{package_id}/classes", tag = "packages",
    security(("session" = [])),
    params(("package_id" = Uuid, Path)),
    request_body = ScheduleClass,
    responses(
        (status = 201, body = BookingView, description = "A confirmed class using one credit"),
        (status = 404, description = "PACKAGE_NOT_FOUND"),
        (status = 409, description = "PACKAGE_EXHAUSTED and every booking conflict"),
    )
)]
pub async fn schedule_package_class(
    State(state): State<AppState>,
    StudentUser(student): StudentUser,
    Path(package_id): Path<Uuid>,
    Json(request): Json<ScheduleClass>,
) -> Result<(StatusCode, Json<BookingView>)> {
    let package: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT mentor_id, subject FROM packages WHERE package_id = $1 AND student_id = $2",
    )
    .bind(package_id)
    .bind(student.user_id)
    .fetch_optional(&state.db)
    .await?;
    let (mentor_id, subject) = package
        .ok_or_else(|| Error::not_found("PACKAGE_NOT_FOUND", "No such package of yours."))?;
    let booking = create::create(
        &state,
        student.user_id,
        NewBooking {
            mentor_id,
            subject,
            session_type: SessionType::Regular,
            scheduled_at: request.scheduled_at,
            notes: request.notes,
            package_id: Some(package_id),
            idempotency_key: request.idempotency_key,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(booking)))
}

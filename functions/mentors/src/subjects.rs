//! Bookable subjects: what a mentor teaches, with years of experience and a flat class fee.

use axum::extract::State;
use axum::http::StatusCode;
use platform::auth::MentorUser;
use platform::error::ConstraintExt;
use platform::validation::Validator;
use platform::{AppState, Error, Json, Path, Result};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::profile::changed;

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubjectView {
    subject_id: Uuid,
    subject: String,
    experience_years: i32,
    #[schema(value_type = String, example = "500.00")]
    #[serde(serialize_with = "domain::money::two_places")]
    class_fee: Decimal,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubjectInput {
    subject: String,
    experience_years: i32,
    /// Flat fee per class, a decimal string with up to 2 places; default "500.00".
    #[schema(value_type = Option<String>, example = "500.00")]
    class_fee: Option<Decimal>,
}

const MAX_FEE: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

/// My subjects
///
/// The subjects the mentor teaches with experience and class fee.
#[utoipa::path(
    get, path = "/mentors/me/subjects", tag = "mentors",
    security(("session" = [])),
    responses((status = 200, body = Vec<SubjectView>))
)]
pub async fn list_subjects(
    State(state): State<AppState>,
    MentorUser(mentor): MentorUser,
) -> Result<Json<Vec<SubjectView>>> {
    let subjects = sqlx::query_as(
        r#"SELECT teacher_subject_id AS subject_id, subject, experience_years, class_fee
           FROM teacher_subjects WHERE mentor_id = $1 ORDER BY lower(subject)"#,
    )
    .bind(mentor.user_id)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(subjects))
}

/// Add a subject
///
/// A subject with years of experience and the class fee; each subject once.
#[utoipa::path(
    post, path = "/mentors/me/subjects", tag = "mentors",
    security(("session" = [])),
    request_body = SubjectInput,
    responses((status = 201, body = SubjectView), (status = 409, description = "SUBJECT_EXISTS"), (status = 422, description = "VALIDATION_FAILED"))
)]
pub async fn add_subject(
    State(state): State<AppState>,
    MentorUser(mentor): MentorUser,
    Json(request): Json<SubjectInput>,
) -> Result<(StatusCode, Json<SubjectView>)> {
    let fee = validate(&request)?;
    let subject: SubjectView = sqlx::query_as(
        r#"INSERT INTO teacher_subjects (teacher_subject_id, mentor_id, subject, experience_years, class_fee)
           VALUES ($1, $2, $3, $4, $5)
           RETURNING teacher_subject_id AS subject_id, subject, experience_years, class_fee"#,
    )
    .bind(Uuid::new_v4())
    .bind(mentor.user_id)
    .bind(request.subject.trim())
    .bind(request.experience_years)
    .bind(fee)
    .fetch_one(&state.db)
    .await
    .on_constraint("teacher_subjects_mentor_subject_key", duplicate)?;
    changed(&state).await;
    Ok((StatusCode::CREATED, Json(subject)))
}

/// Change a subject
///
/// New experience or fee; classes already booked keep their price.
#[utoipa::path(
    put, path = "/mentors/me/subjects/{subject_id}", tag = "mentors",
    security(("session" = [])),
    params(("subject_id" = Uuid, Path)),
    request_body = SubjectInput,
    responses((status = 200, body = SubjectView), (status = 404, description = "SUBJECT_NOT_FOUND"), (status = 409, description = "SUBJECT_EXISTS"))
)]
pub async fn update_subject(
    State(state): State<AppState>,
    MentorUser(mentor): MentorUser,
    Path(subject_id): Path<Uuid>,
    Json(request): Json<SubjectInput>,
) -> Result<Json<SubjectView>> {
    let fee = validate(&request)?;
    let subject: Option<SubjectView> = sqlx::query_as(
        r#"UPDATE teacher_subjects SET subject = $3, experience_years = $4, class_fee = $5, updated_at = now()
           WHERE teacher_subject_id = $1 AND mentor_id = $2
           RETURNING teacher_subject_id AS subject_id, subject, experience_years, class_fee"#,
    )
    .bind(subject_id)
    .bind(mentor.user_id)
    .bind(request.subject.trim())
    .bind(request.experience_years)
    .bind(fee)
    .fetch_optional(&state.db)
    .await
    .on_constraint("teacher_subjects_mentor_subject_key", duplicate)?;
    let subject = subject.ok_or_else(not_found)?;
    changed(&state).await;
    Ok(Json(subject))
}

/// Delete a subject
///
/// Students can no longer book it; booked classes stay.
#[utoipa::path(
    delete, path = "/mentors/me/subjects/{subject_id}", tag = "mentors",
    security(("session" = [])),
    params(("subject_id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "SUBJECT_NOT_FOUND"))
)]
pub async fn delete_subject(
    State(state): State<AppState>,
    MentorUser(mentor): MentorUser,
    Path(subject_id): Path<Uuid>,
) -> Result<StatusCode> {
    let deleted = sqlx::query(
        "DELETE FROM teacher_subjects WHERE teacher_subject_id = $1 AND mentor_id = $2",
    )
    .bind(subject_id)
    .bind(mentor.user_id)
    .execute(&state.db)
    .await?;
    if deleted.rows_affected() == 0 {
        return Err(not_found());
    }
    changed(&state).await;
    Ok(StatusCode::NO_CONTENT)
}

fn validate(request: &SubjectInput) -> Result<Decimal> {
    let fee = request.class_fee.unwrap_or(Decimal::new(50000, 2));
    Validator::new()
        .length(&request.subject, "subject", 1, 100)
        .check(
            (0..=60).contains(&request.experience_years),
            "experienceYears",
            "must be between 0 and 60",
        )
        .check(
            fee > Decimal::ZERO && fee <= MAX_FEE,
            "classFee",
            "must be more than 0 and at most 1000000",
        )
        .check(fee.scale() <= 2, "classFee", "at most 2 decimal places")
        .finish()?;
    Ok(fee)
}

fn duplicate() -> Error {
    Error::conflict("SUBJECT_EXISTS", "You already offer this subject.")
}

fn not_found() -> Error {
    Error::not_found("SUBJECT_NOT_FOUND", "No such subject of yours.")
}

//! Mentor self-service: profile, UPI id, demo toggle, package discount, profile completion.

use axum::extract::State;
use domain::credentials::{self, Qualification, Specialty};
use domain::users::ApprovalStatus;
use platform::auth::MentorUser;
use platform::cache::MENTOR_LIST;
use platform::validation::{Validator, is_upi_id};
use platform::{AppState, Error, Json, Result};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::visibility;

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MentorProfile {
    mentor_id: Uuid,
    first_name: String,
    last_name: String,
    country: Option<String>,
    title: Option<String>,
    description: Option<String>,
    /// As the mentor last saved them.
    #[schema(value_type = Vec<Qualification>)]
    qualifications: Value,
    #[schema(value_type = Vec<Specialty>)]
    specialties: Value,
    time_zone: String,
    upi_id: Option<String>,
    demo_enabled: bool,
    package_discount_percent: i32,
    #[schema(value_type = String, example = "4.50")]
    #[serde(serialize_with = "domain::money::two_places")]
    rating: Decimal,
    review_count: i32,
    student_count: i32,
    approval_status: ApprovalStatus,
    is_active: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateProfile {
    first_name: String,
    last_name: String,
    country: Option<String>,
    title: Option<String>,
    description: Option<String>,
    /// IANA time zone, e.g. `Asia/Kolkata`; weekly slots are read in it.
    time_zone: String,
    #[serde(default)]
    qualifications: Vec<Qualification>,
    #[serde(default)]
    specialties: Vec<Specialty>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateUpi {
    /// A UPI virtual payment address, `name@bank`.
    upi_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateDemo {
    enabled: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdatePackageDiscount {
    /// 0 to 50.
    percent: i32,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileCompletion {
    has_subjects: bool,
    has_time_slots: bool,
    has_upi_id: bool,
    media_approved: bool,
    /// Whether the mentor appears in Find Mentors.
    is_complete: bool,
}

const PROFILE_COLUMNS: &str = "u.user_id AS mentor_id, u.first_name, u.last_name, u.country, \
     p.title, p.description, p.qualifications, p.specialties, p.time_zone, p.upi_id, \
     p.demo_enabled, p.package_discount_percent, p.rating, p.review_count, p.student_count, \
     u.approval_status, u.is_active";

/// My mentor profile
///
/// Everything the mentor has set: names, time zone, title, description, qualifications,
/// specialties, UPI id, demo and package settings.
#[utoipa::path(
    get, path = "/mentors/me/profile", tag = "mentors",
    security(("session" = [])),
    responses((status = 200, body = MentorProfile), (status = 403, description = "FORBIDDEN_ROLE"))
)]
pub async fn my_profile(
    State(state): State<AppState>,
    MentorUser(mentor): MentorUser,
) -> Result<Json<MentorProfile>> {
    Ok(Json(load(&state, mentor.user_id).await?))
}

/// Update my profile
///
/// Replaces the profile fields given; the public profile follows at once.
#[utoipa::path(
    put, path = "/mentors/me/profile", tag = "mentors",
    security(("session" = [])),
    request_body = UpdateProfile,
    responses((status = 200, body = MentorProfile), (status = 422, description = "VALIDATION_FAILED"))
)]
pub async fn update_profile(
    State(state): State<AppState>,
    MentorUser(mentor): MentorUser,
    Json(request): Json<UpdateProfile>,
) -> Result<Json<MentorProfile>> {
    let mut validator = Validator::new();
    validator
        .length(&request.first_name, "firstName", 1, 100)
        .length(&request.last_name, "lastName", 1, 100)
        .check(
            request.time_zone.parse::<chrono_tz::Tz>().is_ok(),
            "timeZone",
            "must be an IANA time zone such as Asia/Kolkata",
        );
    if let Some(country) = &request.country {
        validator.length(country, "country", 2, 100);
    }
    if let Some(title) = &request.title {
        validator.length(title, "title", 1, 200);
    }
    if let Some(description) = &request.description {
        validator.check(
            description.chars().count() <= 5000,
            "description",
            "at most 5000 characters",
        );
    }
    credentials::validate(
        &mut validator,
        &request.qualifications,
        &request.specialties,
    );
    validator.finish()?;

    let mut transaction = state.db.begin().await?;
    sqlx::query("UPDATE users SET first_name = $2, last_name = $3, country = $4, updated_at = now() WHERE user_id = $1")
        .bind(mentor.user_id)
        .bind(request.first_name.trim())
        .bind(request.last_name.trim())
        .bind(request.country.as_deref().map(str::trim))
        .execute(&mut *transaction)
        .await?;
    sqlx::query(
        r#"INSERT INTO mentor_profiles (user_id, title, description, time_zone, qualifications, specialties)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (user_id) DO UPDATE
           SET title = EXCLUDED.title, description = EXCLUDED.description, time_zone = EXCLUDED.time_zone,
               qualifications = EXCLUDED.qualifications, specialties = EXCLUDED.specialties, updated_at = now()"#,
    )
    .bind(mentor.user_id)
    .bind(request.title.as_deref().map(str::trim))
    .bind(request.description.as_deref())
    .bind(&request.time_zone)
    .bind(sqlx::types::Json(&request.qualifications))
    .bind(sqlx::types::Json(&request.specialties))
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    changed(&state).await;
    Ok(Json(load(&state, mentor.user_id).await?))
}

/// Set my UPI id
///
/// Where payouts go. Needed before students can book paid classes.
#[utoipa::path(
    put, path = "/mentors/me/upi", tag = "mentors",
    security(("session" = [])),
    request_body = UpdateUpi,
    responses((status = 200, body = MentorProfile), (status = 422, description = "VALIDATION_FAILED"))
)]
pub async fn update_upi(
    State(state): State<AppState>,
    MentorUser(mentor): MentorUser,
    Json(request): Json<UpdateUpi>,
) -> Result<Json<MentorProfile>> {
    let upi_id = request.upi_id.trim();
    Validator::new()
        .check(
            is_upi_id(upi_id),
            "upiId",
            "must be a UPI id such as name@bank",
        )
        .finish()?;
    set_column(&state, mentor.user_id, "upi_id = $2", upi_id).await
}

/// Turn free demos on or off
///
/// With demos on, each student can book one free 40-minute demo with this mentor.
#[utoipa::path(
    put, path = "/mentors/me/demo", tag = "mentors",
    security(("session" = [])),
    request_body = UpdateDemo,
    responses((status = 200, body = MentorProfile))
)]
pub async fn update_demo(
    State(state): State<AppState>,
    MentorUser(mentor): MentorUser,
    Json(request): Json<UpdateDemo>,
) -> Result<Json<MentorProfile>> {
    set_column(&state, mentor.user_id, "demo_enabled = $2", request.enabled).await
}

/// Set my package discount
///
/// The percentage off the class fee for classes bought as a package.
#[utoipa::path(
    put, path = "/mentors/me/package-discount", tag = "mentors",
    security(("session" = [])),
    request_body = UpdatePackageDiscount,
    responses((status = 200, body = MentorProfile), (status = 422, description = "VALIDATION_FAILED"))
)]
pub async fn update_package_discount(
    State(state): State<AppState>,
    MentorUser(mentor): MentorUser,
    Json(request): Json<UpdatePackageDiscount>,
) -> Result<Json<MentorProfile>> {
    Validator::new()
        .check(
            (0..=50).contains(&request.percent),
            "percent",
            "must be between 0 and 50",
        )
        .finish()?;
    set_column(
        &state,
        mentor.user_id,
        "package_discount_percent = $2",
        request.percent,
    )
    .await
}

/// What my profile still needs
///
/// Whether the mentor has subjects, weekly slots, a UPI id and approved media, and whether the
/// profile is listed in Find Mentors.
#[utoipa::path(
    get, path = "/mentors/me/profile-completion", tag = "mentors",
    security(("session" = [])),
    responses((status = 200, body = ProfileCompletion))
)]
pub async fn profile_completion(
    State(state): State<AppState>,
    MentorUser(mentor): MentorUser,
) -> Result<Json<ProfileCompletion>> {
    let media_required = visibility::media_approval_required(&state).await?;
    let completion: ProfileCompletion = sqlx::query_as(&format!(
        r#"SELECT EXISTS (SELECT 1 FROM teacher_subjects s WHERE s.mentor_id = u.user_id) AS has_subjects,
                  EXISTS (SELECT 1 FROM time_slots t WHERE t.mentor_id = u.user_id AND NOT t.is_blocked) AS has_time_slots,
                  p.upi_id IS NOT NULL AS has_upi_id,
                  EXISTS (SELECT 1 FROM mentor_media m WHERE m.mentor_id = u.user_id AND m.status = 'approved') AS media_approved,
                  ({visible}) AS is_complete
           FROM users u JOIN mentor_profiles p USING (user_id)
           WHERE u.user_id = $2"#,
        visible = visibility::VISIBLE_MENTOR
    ))
    .bind(media_required)
    .bind(mentor.user_id)
    .fetch_one(&state.db)
    .await?;
    Ok(Json(completion))
}

/// Retires every cached page of the mentor list.
pub async fn changed(state: &AppState) {
    state.cache.bump_generation(MENTOR_LIST).await;
}

async fn load(state: &AppState, mentor_id: Uuid) -> Result<MentorProfile> {
    sqlx::query_as(&format!(
        "SELECT {PROFILE_COLUMNS} FROM users u JOIN mentor_profiles p USING (user_id) WHERE u.user_id = $1"
    ))
    .bind(mentor_id)
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| Error::not_found("MENTOR_NOT_FOUND", "No such mentor."))
}

async fn set_column<T>(
    state: &AppState,
    mentor_id: Uuid,
    assignment: &str,
    value: T,
) -> Result<Json<MentorProfile>>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
{
    sqlx::query(&format!(
        "UPDATE mentor_profiles SET {assignment}, updated_at = now() WHERE user_id = $1"
    ))
    .bind(mentor_id)
    .bind(value)
    .execute(&state.db)
    .await?;
    changed(state).await;
    Ok(Json(load(state, mentor_id).await?))
}

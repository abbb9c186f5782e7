//! `POST /api/auth/signup`: students are signed in at once; mentors wait for approval.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::credentials::{self, Qualification, Specialty};
use domain::users::{self, ApprovalStatus, NewUser, UserView};
use platform::auth::{self, Role, password};
use platform::validation::Validator;
use platform::{AppState, Error, Json, Result};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::AnyOfBuilder;
use utoipa::openapi::{Ref, RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::login;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "email": "asha@example.com", "password": "Correct-Horse1", "firstName": "Asha",
    "lastName": "Rao", "role": "student", "country": "India"
}))]
pub struct Signup {
    email: String,
    password: String,
    first_name: String,
    last_name: String,
    /// `student` or `mentor`; admins are created by an admin or the bootstrap command.
    role: Role,
    country: Option<String>,
    #[serde(default)]
    qualifications: Vec<Qualification>,
    #[serde(default)]
    specialties: Vec<Specialty>,
}

/// A mentor's account, which can't sign in until approved.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MentorSignedUp {
    user: UserView,
}

/// A student's session (as login grants it), or a mentor's pending account.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum SignedUp {
    Student(login::SessionGranted),
    Mentor(MentorSignedUp),
}

/// `anyOf`, not the `oneOf` a derived schema would be: a session also has the pending account's
/// one required member, `user`, so it would match both.
impl PartialSchema for SignedUp {
    fn schema() -> RefOr<Schema> {
        AnyOfBuilder::new()
            .item(Ref::from_schema_name(login::SessionGranted::name()))
            .item(Ref::from_schema_name(MentorSignedUp::name()))
            .description(Some(
                "A student's session (as login grants it), or a mentor's pending account.",
            ))
            .into()
    }
}

impl ToSchema for SignedUp {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((
            login::SessionGranted::name().into(),
            login::SessionGranted::schema(),
        ));
        <login::SessionGranted as ToSchema>::schemas(schemas);
        schemas.push((MentorSignedUp::name().into(), MentorSignedUp::schema()));
        <MentorSignedUp as ToSchema>::schemas(schemas);
    }
}

/// Sign up
///
/// A student is signed in at once (a session, as login). A mentor gives qualifications and
/// specialties and waits for an admin's approval; until then they can't sign in.
#[utoipa::path(
    post, path = "/auth/signup", tag = "auth",
    request_body = Signup,
    responses(
        (status = 201, description = "Student: a session (as login). Mentor: the pending account.", body = SignedUp),
        (status = 403, description = "ROLE_NOT_ALLOWED"),
        (status = 409, description = "EMAIL_TAKEN"),
        (status = 422, description = "VALIDATION_FAILED"),
        (status = 429, description = "RATE_LIMITED"),
        (status = 503, description = "BUSY: no password hashing thread free within 2 s; retry after Retry-After"),
    )
)]
pub async fn signup(
    State(state): State<AppState>,
    Json(request): Json<Signup>,
) -> Result<Response> {
    if request.role == Role::Admin {
        return Err(Error::forbidden(
            "ROLE_NOT_ALLOWED",
            "Sign up as a student or a mentor; admins are created by an admin.",
        ));
    }
    validate(&request)?;
    let email = auth::normalize_email(&request.email);
    let password_hash = password::hash(request.password.clone()).await?;
    let is_mentor = request.role == Role::Mentor;
    let approval_status = if is_mentor {
        ApprovalStatus::Pending
    } else {
        ApprovalStatus::Approved
    };

    let mut transaction = state.db.begin().await?;
    let user_id = users::insert(
        &mut transaction,
        &NewUser {
            email: &email,
            password_hash: &password_hash,
            first_name: &request.first_name,
            last_name: &request.last_name,
            role: request.role,
            country: request.country.as_deref(),
            approval_status,
        },
    )
    .await?;
    if is_mentor {
        sqlx::query("INSERT INTO mentor_profiles (user_id, qualifications, specialties) VALUES ($1, $2, $3)")
            .bind(user_id)
            .bind(sqlx::types::Json(&request.qualifications))
            .bind(sqlx::types::Json(&request.specialties))
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    // A login attempted before the account existed may have cached nothing, but be sure.
    state
        .cache
        .invalidate(&[auth::user_by_email_key(&email)], auth::USER_BY_EMAIL_TTL)
        .await;

    let response = if is_mentor {
        let user = users::find(&state.db, user_id).await?;
        (
            StatusCode::CREATED,
            Json(SignedUp::Mentor(MentorSignedUp { user })),
        )
            .into_response()
    } else {
        let (cookie, granted) = login::issue_session(&state, user_id, request.role).await?;
        (
            StatusCode::CREATED,
            cookie,
            Json(SignedUp::Student(granted)),
        )
            .into_response()
    };
    Ok(response)
}

fn validate(request: &Signup) -> Result<()> {
    let mut validator = Validator::new();
    validator
        .email(&request.email, "email")
        .length(&request.first_name, "firstName", 1, 100)
        .length(&request.last_name, "lastName", 1, 100);
    if let Some(weakness) = password::weakness(&request.password) {
        validator.check(false, "password", weakness);
    }
    if let Some(country) = &request.country {
        validator.length(country, "country", 2, 100);
    }
    credentials::validate(
        &mut validator,
        &request.qualifications,
        &request.specialties,
    );
    if request.role == Role::Mentor {
        validator.check(
            !request.specialties.is_empty(),
            "specialties",
            "mentors list at least one subject they teach",
        );
    }
    validator.finish()
}

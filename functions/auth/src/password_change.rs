//! `POST /api/auth/password`: change the password; every other session ends at once.

use axum::extract::State;
use axum::http::StatusCode;
use platform::auth::{self, CurrentUser, password, session};
use platform::validation::Validator;
use platform::{AppState, Error, Json, Result};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangePassword {
    current_password: String,
    new_password: String,
}

/// Change the password
///
/// Needs the current password. Every other session of the account ends; this one stays.
#[utoipa::path(
    post, path = "/auth/password", tag = "auth",
    security(("session" = [])),
    request_body = ChangePassword,
    responses(
        (status = 204, description = "Changed; other sessions are revoked"),
        (status = 401, description = "INVALID_CREDENTIALS (current password wrong)"),
        (status = 422, description = "VALIDATION_FAILED"),
        (status = 503, description = "BUSY: no password hashing thread free within 2 s; retry after Retry-After"),
    )
)]
pub async fn change_password(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(request): Json<ChangePassword>,
) -> Result<StatusCode> {
    let mut validator = Validator::new();
    if let Some(weakness) = password::weakness(&request.new_password) {
        validator.check(false, "newPassword", weakness);
    }
    validator.finish()?;

    let (current_hash, email): (String, String) =
        sqlx::query_as("SELECT password_hash, email FROM users WHERE user_id = $1")
            .bind(user.user_id)
            .fetch_one(&state.db)
            .await?;
    if !password::verify(request.current_password, Some(current_hash))
        .await?
        .matches
    {
        return Err(Error::unauthorized(
            "INVALID_CREDENTIALS",
            "The current password is incorrect.",
        ));
    }
    let new_hash = password::hash(request.new_password).await?;

    let mut transaction = state.db.begin().await?;
    sqlx::query(
        "UPDATE users SET password_hash = $2, password_changed_at = now(), updated_at = now() WHERE user_id = $1",
    )
    .bind(user.user_id)
    .bind(&new_hash)
    .execute(&mut *transaction)
    .await?;
    let revoked =
        session::revoke_all(&mut transaction, user.user_id, Some(user.session_id)).await?;
    transaction.commit().await?;

    session::forget(&state, revoked).await;
    state
        .cache
        .invalidate(&[auth::user_by_email_key(&email)], auth::USER_BY_EMAIL_TTL)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

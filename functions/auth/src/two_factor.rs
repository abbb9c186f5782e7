//! `POST /api/auth/2fa/setup` and `/verify`: TOTP enrolment, with a full session or with the
//! enrolment token a mentor's first login returns.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use platform::auth::session::{self, Session, SessionKind};
use platform::auth::{self, bearer_token};
use platform::{AppState, Error, Json, Result};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{login, totp};

/// A caller allowed to enrol: a signed-in user, or a mentor holding an enrolment token.
pub struct Enroller(Session);

impl FromRequestParts<AppState> for Enroller {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)
            .ok_or_else(|| Error::unauthorized("UNAUTHENTICATED", "Sign in to continue."))?;
        let accepted = [SessionKind::Session, SessionKind::TotpEnrollment];
        Ok(Enroller(session::resolve(state, &token, &accepted).await?))
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TotpSetup {
    /// Base32 secret, for manual entry in an authenticator app.
    secret: String,
    otpauth_url: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct VerifyTotp {
    code: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TwoFactorEnabled {
    two_factor_enabled: bool,
}

/// Start 2FA enrolment
///
/// A new TOTP secret and its `otpauth://` URL for an authenticator app. With a mentor's
/// enrolment token (from login) or a session.
#[utoipa::path(
    post, path = "/auth/2fa/setup", tag = "auth",
    security(("session" = [])),
    responses(
        (status = 200, body = TotpSetup),
        (status = 409, description = "TOTP_ALREADY_ENABLED"),
    )
)]
pub async fn setup(
    State(state): State<AppState>,
    Enroller(caller): Enroller,
) -> Result<Json<TotpSetup>> {
    let (email, enabled): (String, bool) =
        sqlx::query_as("SELECT email, totp_secret IS NOT NULL FROM users WHERE user_id = $1")
            .bind(caller.user_id)
            .fetch_one(&state.db)
            .await?;
    if enabled {
        return Err(Error::conflict(
            "TOTP_ALREADY_ENABLED",
            "Two-factor sign-in is already on.",
        ));
    }
    let secret = totp::generate_secret();
    sqlx::query("UPDATE users SET totp_pending_secret = $2, updated_at = now() WHERE user_id = $1")
        .bind(caller.user_id)
        .bind(&secret)
        .execute(&state.db)
        .await?;
    Ok(Json(TotpSetup {
        otpauth_url: totp::otpauth_url(&secret, &email),
        secret,
    }))
}

/// Confirm 2FA enrolment
///
/// A code from the authenticator app turns 2FA on. With an enrolment token the answer is a
/// session, as login's.
#[utoipa::path(
    post, path = "/auth/2fa/verify", tag = "auth",
    security(("session" = [])),
    request_body = VerifyTotp,
    responses(
        (status = 200, description = "With an enrolment token: a session (as login); otherwise `twoFactorEnabled`", body = TwoFactorEnabled),
        (status = 401, description = "INVALID_TOTP"),
        (status = 409, description = "TOTP_SETUP_NOT_STARTED"),
    )
)]
pub async fn verify(
    State(state): State<AppState>,
    Enroller(caller): Enroller,
    Json(request): Json<VerifyTotp>,
) -> Result<Response> {
    let (email, pending): (String, Option<String>) =
        sqlx::query_as("SELECT email, totp_pending_secret FROM users WHERE user_id = $1")
            .bind(caller.user_id)
            .fetch_one(&state.db)
            .await?;
    let Some(pending) = pending else {
        return Err(Error::conflict(
            "TOTP_SETUP_NOT_STARTED",
            "Start with /api/auth/2fa/setup.",
        ));
    };
    let Some(step) = totp::matching_step(&pending, &request.code, Utc::now().timestamp()) else {
        return Err(Error::unauthorized(
            "INVALID_TOTP",
            "The authentication code is incorrect.",
        ));
    };
    let enabled = sqlx::query(
        r#"UPDATE users SET totp_secret = totp_pending_secret, totp_pending_secret = NULL,
                  totp_last_step = $3, updated_at = now()
           WHERE user_id = $1 AND totp_pending_secret = $2"#,
    )
    .bind(caller.user_id)
    .bind(&pending)
    .bind(step)
    .execute(&state.db)
    .await?;
    if enabled.rows_affected() == 0 {
        return Err(Error::conflict(
            "TOTP_SETUP_NOT_STARTED",
            "The setup changed meanwhile; start again with /api/auth/2fa/setup.",
        ));
    }
    state
        .cache
        .invalidate(&[auth::user_by_email_key(&email)], auth::USER_BY_EMAIL_TTL)
        .await;

    match caller.kind {
        SessionKind::TotpEnrollment => {
            login::grant_session(&state, caller.user_id, caller.role).await
        }
        SessionKind::Session => Ok(Json(TwoFactorEnabled {
            two_factor_enabled: true,
        })
        .into_response()),
    }
}

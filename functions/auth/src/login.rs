//! `POST /api/auth/login`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::users::{self, ApprovalStatus, UserView};
use platform::auth::session::{self, SessionKind};
use platform::auth::{self, Role, USER_BY_EMAIL_TTL, password};
use platform::client_ip::ClientIp;
use platform::{AppState, Error, Json, Result};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{cookie, lockout, totp};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"email": "asha@example.com", "password": "Correct-Horse1"}))]
pub struct Login {
    email: String,
    password: String,
    totp_code: Option<String>,
}

/// A new session, or what the client must do first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginOutcome {
    Session(SessionGranted),
    #[serde(rename_all = "camelCase")]
    TwoFactorRequired {
        #[serde(rename = "require2FA")]
        require_2fa: bool,
    },
    /// A mentor without 2FA: the token only works on `/api/auth/2fa/setup` and `/verify`.
    #[serde(rename_all = "camelCase")]
    TwoFactorSetupRequired {
        #[serde(rename = "require2FASetup")]
        require_2fa_setup: bool,
        enrollment_token: String,
        expires_at: DateTime<Utc>,
    },
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "sessionToken": "Jx3v…the token, sent as Authorization: Bearer",
    "expiresAt": "2026-12-14T09:30:00Z",
    "user": {
        "userId": "5b1f6a8e-2a57-4c3e-9a61-0f1d8c2b7e44", "email": "asha@example.com",
        "firstName": "Asha", "lastName": "Rao", "role": "student", "country": "India",
        "isActive": true, "approvalStatus": "approved", "twoFactorEnabled": false,
        "createdAt": "2026-12-07T09:30:00Z"
    }
}))]
pub struct SessionGranted {
    pub session_token: String,
    pub expires_at: DateTime<Utc>,
    pub user: UserView,
}

/// What a login needs to know about an account, cached by email.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
struct LoginAccount {
    user_id: Uuid,
    password_hash: String,
    role: Role,
    is_active: bool,
    approval_status: ApprovalStatus,
    rejection_reason: Option<String>,
    two_factor_enabled: bool,
}

/// Sign in
///
/// Email and password, plus `totpCode` when the account has 2FA on. Answers with a session
/// (token in the body and the session cookie), or `require2FA` when a code is needed, or, for a
/// mentor without 2FA, `require2FASetup` with an enrolment token for `/api/auth/2fa/setup`.
/// After 5 failures for one e-mail or 30 from one address within 15 minutes, sign-in is locked
/// for a while (`429 LOGIN_LOCKED` with `lockoutEndsAt`).
#[utoipa::path(
    post, path = "/auth/login", tag = "auth",
    request_body = Login,
    responses(
        (status = 200, description = "A session, or `require2FA` / `require2FASetup`", body = LoginOutcome),
        (status = 401, description = "INVALID_CREDENTIALS, INVALID_TOTP"),
        (status = 403, description = "ACCOUNT_INACTIVE, APPROVAL_PENDING, APPROVAL_REJECTED"),
        (status = 429, description = "LOGIN_LOCKED, with lockoutEndsAt; RATE_LIMITED"),
        (status = 503, description = "BUSY: no password hashing thread free within 2 s; retry after Retry-After"),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(request): Json<Login>,
) -> Result<Response> {
    let email = auth::normalize_email(&request.email);
    lockout::begin_attempt(&state, &email, ip).await?;

    let account = find_account(&state, &email).await?;
    let stored_hash = account
        .as_ref()
        .map(|account| account.password_hash.clone());
    let checked = match password::verify(request.password, stored_hash).await {
        Ok(checked) => checked,
        Err(unchecked) => {
            lockout::give_back(&state, &email).await;
            return Err(unchecked);
        }
    };
    let Some(account) = account.filter(|_| checked.matches) else {
        lockout::record_failure(&state, ip).await;
        return Err(Error::unauthorized(
            "INVALID_CREDENTIALS",
            "The email or password is incorrect.",
        ));
    };

    if let Some(rehashed) = checked.rehashed {
        store_rehashed(&state, &email, &account, rehashed).await;
    }
    if let Err(refusal) = ensure_may_sign_in(&account) {
        // The password was right: the refusal is about the account, not a guess.
        lockout::clear(&state, &email).await;
        return Err(refusal);
    }
    if account.two_factor_enabled {
        let Some(code) = request.totp_code.filter(|code| !code.trim().is_empty()) else {
            return Ok(Json(LoginOutcome::TwoFactorRequired { require_2fa: true }).into_response());
        };
        if !accept_totp(&state, account.user_id, &code).await? {
            lockout::record_failure(&state, ip).await;
            return Err(Error::unauthorized(
                "INVALID_TOTP",
                "The authentication code is incorrect.",
            ));
        }
    } else if account.role == Role::Mentor {
        lockout::clear(&state, &email).await;
        let enrollment = session::issue(
            &state,
            account.user_id,
            account.role,
            SessionKind::TotpEnrollment,
        )
        .await?;
        return Ok(Json(LoginOutcome::TwoFactorSetupRequired {
            require_2fa_setup: true,
            enrollment_token: enrollment.token,
            expires_at: enrollment.session.expires_at,
        })
        .into_response());
    }

    lockout::clear(&state, &email).await;
    grant_session(&state, account.user_id, account.role).await
}

/// Issues a full session and answers with it (body and cookie).
pub async fn grant_session(state: &AppState, user_id: Uuid, role: Role) -> Result<Response> {
    let (cookie, granted) = issue_session(state, user_id, role).await?;
    Ok((cookie, Json(LoginOutcome::Session(granted))).into_response())
}

/// Issues a full session: the cookie that carries it and the body that describes it.
pub async fn issue_session(
    state: &AppState,
    user_id: Uuid,
    role: Role,
) -> Result<(cookie::SetCookie, SessionGranted)> {
    let issued = session::issue(state, user_id, role, SessionKind::Session).await?;
    let user = users::find(&state.db, user_id).await?;
    let expires_at = issued.session.expires_at;
    let cookie = cookie::set(&issued.token, expires_at);
    let granted = SessionGranted {
        session_token: issued.token,
        expires_at,
        user,
    };
    Ok((cookie, granted))
}

async fn find_account(state: &AppState, email: &str) -> Result<Option<LoginAccount>> {
    let key = auth::user_by_email_key(email);
    if let Some(account) = state.cache.get::<LoginAccount>(&key).await {
        return Ok(Some(account));
    }
    let account: Option<LoginAccount> = sqlx::query_as(
        r#"SELECT user_id, password_hash, role, is_active, approval_status, rejection_reason,
                  totp_secret IS NOT NULL AS two_factor_enabled
           FROM users WHERE email = $1"#,
    )
    .bind(email)
    .fetch_optional(&state.db)
    .await?;
    if let Some(account) = &account {
        state.cache.fill(&key, account, USER_BY_EMAIL_TTL).await;
    }
    Ok(account)
}

/// Replaces a hash made with older parameters by the password hashed with today's, unless the
/// password changed meanwhile. The sign-in goes on if this fails: the old hash still verifies.
async fn store_rehashed(state: &AppState, email: &str, account: &LoginAccount, rehashed: String) {
    let stored = sqlx::query(
        "UPDATE users SET password_hash = $3, updated_at = now() WHERE user_id = $1 AND password_hash = $2",
    )
    .bind(account.user_id)
    .bind(&account.password_hash)
    .bind(rehashed)
    .execute(&state.db)
    .await;
    match stored {
        Ok(done) if done.rows_affected() == 0 => {}
        Ok(_) => {
            let key = auth::user_by_email_key(email);
            state.cache.invalidate(&[key], USER_BY_EMAIL_TTL).await;
        }
        Err(error) => {
            tracing::warn!(error = %Error::from(error), "could not store a password's new hash");
        }
    }
}

fn ensure_may_sign_in(account: &LoginAccount) -> Result<()> {
    if !account.is_active {
        return Err(Error::forbidden(
            "ACCOUNT_INACTIVE",
            "This account is deactivated.",
        ));
    }
    match account.approval_status {
        ApprovalStatus::Approved => Ok(()),
        ApprovalStatus::Pending => Err(Error::forbidden(
            "APPROVAL_PENDING",
            "Your mentor profile is waiting for approval.",
        )),
        ApprovalStatus::Rejected => Err(Error::forbidden(
            "APPROVAL_REJECTED",
            "Your mentor application was rejected.",
        )
        .with("reason", &account.rejection_reason)),
    }
}

/// Checks a TOTP code and records its time step, so the same code can't be used twice.
pub async fn accept_totp(state: &AppState, user_id: Uuid, code: &str) -> Result<bool> {
    let secret: Option<String> =
        sqlx::query_scalar("SELECT totp_secret FROM users WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&state.db)
            .await?
            .flatten();
    let Some(step) =
        secret.and_then(|secret| totp::matching_step(&secret, code, Utc::now().timestamp()))
    else {
        return Ok(false);
    };
    let recorded = sqlx::query(
        r#"UPDATE users SET totp_last_step = $2
           WHERE user_id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)"#,
    )
    .bind(user_id)
    .bind(step)
    .execute(&state.db)
    .await?;
    Ok(recorded.rows_affected() == 1)
}

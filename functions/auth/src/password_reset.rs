//! `POST /api/auth/password/forgot` and `/reset`: a 6-digit code by email, valid 15 minutes,
//! good for 5 attempts, stored as an HMAC under the server's `RESET_CODE_KEY` (a leaked table
//! can't be reversed by trying the million codes without the key).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use hmac::{Hmac, Mac};
use platform::auth::{self, password, session};
use platform::config::{ExposeSecret, Secret};
use platform::outbox::{self, Email};
use platform::validation::Validator;
use platform::{AppState, Error, Json, Result};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;
use uuid::Uuid;

const CODE_LIFETIME: chrono::Duration = chrono::Duration::minutes(15);
const MAX_ATTEMPTS: i32 = 5;
/// Codes one email may request per window, so the form can't be used to flood an inbox.
const MAX_REQUESTS: u64 = 3;
const REQUEST_WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Deserialize, ToSchema)]
pub struct ForgotPassword {
    email: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    message: &'static str,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResetPassword {
    email: String,
    code: String,
    new_password: String,
}

/// Ask for a password reset code
///
/// E-mails a reset code when the account exists. The answer is the same either way, so it
/// reveals no account.
#[utoipa::path(
    post, path = "/auth/password/forgot", tag = "auth",
    request_body = ForgotPassword,
    responses((status = 202, description = "Always, whether or not the account exists", body = Accepted))
)]
pub async fn forgot_password(
    State(state): State<AppState>,
    Json(request): Json<ForgotPassword>,
) -> Result<(StatusCode, Json<Accepted>)> {
    let email = auth::normalize_email(&request.email);
    let requests = state
        .cache
        .increment(&format!("password-forgot:{email}"), REQUEST_WINDOW)
        .await;
    if requests.count <= MAX_REQUESTS {
        send_code(&state, &email).await?;
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            message: "If an account exists for this email, a reset code is on its way.",
        }),
    ))
}

/// Reset the password with a code
///
/// The e-mailed code and a new password. A code allows a few attempts and expires; every
/// session of the account ends.
#[utoipa::path(
    post, path = "/auth/password/reset", tag = "auth",
    request_body = ResetPassword,
    responses(
        (status = 204, description = "Password replaced; every session is revoked"),
        (status = 400, description = "RESET_CODE_INVALID (with attemptsLeft when known)"),
        (status = 422, description = "VALIDATION_FAILED"),
        (status = 429, description = "RATE_LIMITED"),
        (status = 503, description = "BUSY: no password hashing thread free within 2 s; retry after Retry-After"),
    )
)]
pub async fn reset_password(
    State(state): State<AppState>,
    Json(request): Json<ResetPassword>,
) -> Result<StatusCode> {
    let mut validator = Validator::new();
    if let Some(weakness) = password::weakness(&request.new_password) {
        validator.check(false, "newPassword", weakness);
    }
    validator.finish()?;
    let email = auth::normalize_email(&request.email);

    // Spend one attempt atomically before comparing, so parallel guesses can't exceed the limit.
    let attempt: Option<(Uuid, Vec<u8>, i32)> = sqlx::query_as(
        r#"UPDATE password_reset_codes r SET attempts = r.attempts + 1
           FROM users u
           WHERE u.user_id = r.user_id AND u.email = $1 AND r.expires_at > now() AND r.attempts < $2
           RETURNING r.user_id, r.code_hash, r.attempts"#,
    )
    .bind(&email)
    .bind(MAX_ATTEMPTS)
    .fetch_optional(&state.db)
    .await?;
    let invalid = || {
        Error::bad_request(
            "RESET_CODE_INVALID",
            "The code is wrong, expired or used up; request a new one if needed.",
        )
    };
    let Some((user_id, code_hash, attempts)) = attempt else {
        return Err(invalid());
    };
    if code_mac(&state.config.reset_code_key, user_id, request.code.trim())
        .verify_slice(&code_hash)
        .is_err()
    {
        return Err(invalid().with("attemptsLeft", MAX_ATTEMPTS - attempts));
    }

    let new_hash = password::hash(request.new_password).await?;
    let mut transaction = state.db.begin().await?;
    let consumed =
        sqlx::query("DELETE FROM password_reset_codes WHERE user_id = $1 AND code_hash = $2")
            .bind(user_id)
            .bind(&code_hash)
            .execute(&mut *transaction)
            .await?;
    if consumed.rows_affected() == 0 {
        return Err(invalid());
    }
    sqlx::query(
        "UPDATE users SET password_hash = $2, password_changed_at = now(), updated_at = now() WHERE user_id = $1",
    )
    .bind(user_id)
    .bind(&new_hash)
    .execute(&mut *transaction)
    .await?;
    let revoked = session::revoke_all(&mut transaction, user_id, None).await?;
    transaction.commit().await?;

    session::forget(&state, revoked).await;
    state
        .cache
        .invalidate(&[auth::user_by_email_key(&email)], auth::USER_BY_EMAIL_TTL)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

async fn send_code(state: &AppState, email: &str) -> Result<()> {
    let user_id: Option<Uuid> =
        sqlx::query_scalar("SELECT user_id FROM users WHERE email = $1 AND is_active")
            .bind(email)
            .fetch_optional(&state.db)
            .await?;
    let Some(user_id) = user_id else {
        return Ok(());
    };
    let code = format!("{:06}", rand::random_range(0..1_000_000u32));
    let mut transaction = state.db.begin().await?;
    sqlx::query(
        r#"INSERT INTO password_reset_codes (user_id, code_hash, attempts, expires_at)
           VALUES ($1, $2, 0, $3)
           ON CONFLICT (user_id) DO UPDATE
           SET code_hash = EXCLUDED.code_hash, attempts = 0, expires_at = EXCLUDED.expires_at, created_at = now()"#,
    )
    .bind(user_id)
    .bind(
        code_mac(&state.config.reset_code_key, user_id, &code)
            .finalize()
            .into_bytes()
            .to_vec(),
    )
    .bind(Utc::now() + CODE_LIFETIME)
    .execute(&mut *transaction)
    .await?;
    outbox::enqueue_email(
        &mut transaction,
        &Email {
            recipient: email.to_owned(),
            subject: "Your CodeConnect password reset code".into(),
            body_text: format!(
                "Your password reset code is {code}. It expires in 15 minutes. \
                 If you did not ask to reset your password, ignore this email."
            ),
            category: "password_reset",
        },
    )
    .await?;
    transaction.commit().await?;
    Ok(())
}

/// `HMAC-SHA256(key, user_id ‖ code)`: keyed, so the stored value is useless without the key,
/// and bound to the user, so equal codes of two users differ. `verify_slice` on it compares in
/// constant time.
fn code_mac(key: &Secret, user_id: Uuid, code: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose_secret().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(user_id.as_bytes());
    mac.update(code.as_bytes());
    mac
}

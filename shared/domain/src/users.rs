//! The account as clients see it, shared by the auth and admin groups. It never carries password
//! hashes, TOTP secrets or tokens.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};
use utoipa::ToSchema;
use uuid::Uuid;

use platform::auth::Role;
use platform::error::{ConstraintExt, Error, Result};

/// The reserved domain of the smoke check's throwaway accounts (`handler smoke`): never
/// e-mailed (`.invalid`), removed with everything they made by `DELETE /api/admin/smoke-accounts`.
pub const SMOKE_CHECK_DOMAIN: &str = "smoke.codeconnect.invalid";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub user_id: Uuid,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
    pub country: Option<String>,
    pub is_active: bool,
    pub approval_status: ApprovalStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<String>,
    pub two_factor_enabled: bool,
    pub created_at: DateTime<Utc>,
}

/// The columns behind [`UserView`], for queries that select users (`FROM users u`).
pub const USER_VIEW_COLUMNS: &str = "u.user_id, u.email, u.first_name, u.last_name, u.role, \
     u.country, u.is_active, u.approval_status, u.rejection_reason, \
     (u.totp_secret IS NOT NULL) AS two_factor_enabled, u.created_at";

pub async fn find(executor: impl PgExecutor<'_>, user_id: Uuid) -> Result<UserView> {
    sqlx::query_as(&format!(
        "SELECT {USER_VIEW_COLUMNS} FROM users u WHERE u.user_id = $1"
    ))
    .bind(user_id)
    .fetch_optional(executor)
    .await?
    .ok_or_else(|| Error::not_found("USER_NOT_FOUND", "No such user."))
}

/// An account to create. `email` must already be normalised (`auth::normalize_email`).
#[derive(Debug)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub password_hash: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub role: Role,
    pub country: Option<&'a str>,
    pub approval_status: ApprovalStatus,
}

/// Inserts an account; a taken email is 409 `EMAIL_TAKEN`.
pub async fn insert(connection: &mut PgConnection, user: &NewUser<'_>) -> Result<Uuid> {
    let user_id = Uuid::new_v4();
    sqlx::query(
        r#"INSERT INTO users (user_id, email, password_hash, first_name, last_name, role, country, approval_status)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"#,
    )
    .bind(user_id)
    .bind(user.email)
    .bind(user.password_hash)
    .bind(user.first_name.trim())
    .bind(user.last_name.trim())
    .bind(user.role)
    .bind(user.country.map(str::trim))
    .bind(user.approval_status)
    .execute(connection)
    .await
    .on_constraint("users_email_key", || {
        Error::conflict("EMAIL_TAKEN", "An account with this email already exists.")
    })?;
    Ok(user_id)
}

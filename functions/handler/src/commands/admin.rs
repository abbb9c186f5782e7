//! `handler create-admin <email>`: the bootstrap for the first admin account.

use anyhow::{Context, bail};
use domain::users::{self, ApprovalStatus, NewUser};
use platform::auth::{self, Role, password};
use platform::config::DatabaseConfig;
use platform::config::ExposeSecret;
use platform::validation::is_plausible_email;
use sqlx::Connection;

/// Creates an admin over the direct database URL (this runs before anything is deployed).
pub async fn create_admin(
    database: &DatabaseConfig,
    email: &str,
    new_password: String,
) -> anyhow::Result<()> {
    if !is_plausible_email(email) {
        bail!("{email:?} is not a valid email address");
    }
    if let Some(weakness) = password::weakness(&new_password) {
        bail!("the password {weakness}");
    }
    let url = database.operator_url();
    let mut connection =
        sqlx::PgConnection::connect_with(&platform::db::connect_options(url.expose_secret())?)
            .await
            .context("connect to Postgres")?;
    let email = auth::normalize_email(email);
    let password_hash = password::hash(new_password)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    users::insert(
        &mut connection,
        &NewUser {
            email: &email,
            password_hash: &password_hash,
            first_name: "Platform",
            last_name: "Admin",
            role: Role::Admin,
            country: None,
            approval_status: ApprovalStatus::Approved,
        },
    )
    .await
    .map_err(|e| match e.code() {
        Some(code) => anyhow::anyhow!("{code}: {email} is already registered"),
        None => anyhow::anyhow!("{e:?}"),
    })?;
    Ok(())
}

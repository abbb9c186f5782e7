//! `handler grant-app-role <role>`: what the request pool's role may do, and no more: read and
//! write rows and use sequences in the schema, now and in tables later migrations add. Not
//! create, alter or drop anything: migrations run as the admin over the direct port. In Azure
//! the role is the managed identity's, created by an Entra admin first
//! (`pgaadauth_create_principal`, infra/README.md).

use anyhow::{Context, bail};
use sqlx::{Connection, PgConnection};

/// Grants `role` the app's privileges on the database `url` points at (run as its owner).
pub async fn grant_app_role(url: &str, role: &str) -> anyhow::Result<()> {
    if role.is_empty() || role.len() > 63 {
        bail!("a role name has 1 to 63 characters");
    }
    let role = format!("\"{}\"", role.replace('"', "\"\""));
    let mut connection = PgConnection::connect_with(&platform::db::connect_options(url)?)
        .await
        .context("connect to Postgres")?;
    let database: String = sqlx::query_scalar("SELECT quote_ident(current_database())")
        .fetch_one(&mut connection)
        .await?;
    let statements = [
        format!("GRANT CONNECT ON DATABASE {database} TO {role}"),
        format!("GRANT USAGE ON SCHEMA public TO {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"),
        format!(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"
        ),
        format!(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role}"
        ),
    ];
    let mut transaction = connection.begin().await?;
    for statement in &statements {
        sqlx::query(statement)
            .execute(&mut *transaction)
            .await
            .with_context(|| statement.clone())?;
    }
    transaction.commit().await?;
    Ok(())
}

//! Postgres access. The app pool talks to PgBouncer in transaction mode; migrations and admin
//! commands use the direct port, because sqlx's migrator holds a session advisory lock that a
//! transaction-mode pooler would not keep. With `DATABASE_AUTH=entra` the pool signs in with
//! the managed identity's token (`entra`).

pub mod entra;

use std::str::FromStr;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::config::ExposeSecret;
use crate::config::{DatabaseConfig, SignIn};
use crate::telemetry;

/// The schema, embedded at compile time from `shared/migrations`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Builds the request pool. It connects lazily, so the handler answers the host's readiness
/// probe at once even while Postgres is still warming up; with Entra auth it first fetches the
/// identity's token (from the host's local identity endpoint).
pub async fn pool(config: &DatabaseConfig) -> anyhow::Result<PgPool> {
    pool_for(config.url.expose_secret(), config).await
}

/// The pool for reads that may lag (`DATABASE_READ_URL`): the replica's own, built as the
/// request pool is, or `primary` itself when there is no other endpoint.
pub async fn read_pool(config: &DatabaseConfig, primary: &PgPool) -> anyhow::Result<PgPool> {
    match &config.read_url {
        Some(url) if url.expose_secret() != config.url.expose_secret() => {
            pool_for(url.expose_secret(), config).await
        }
        _ => Ok(primary.clone()),
    }
}

async fn pool_for(url: &str, config: &DatabaseConfig) -> anyhow::Result<PgPool> {
    let options = connect_options(url)?;
    let pool = PgPoolOptions::new()
        .max_connections(config.max_connections)
        .min_connections(0)
        .acquire_timeout(config.acquire_timeout)
        // Every acquire reports its wait, for the pool metric (`telemetry`).
        .acquire_time_level(log::LevelFilter::Debug)
        .connect_lazy_with(options.clone());
    if let SignIn::Entra(identity) = &config.auth {
        let credential = azure_clients::entra::credential(identity)?;
        entra::sign_in_with_tokens(&pool, options, credential).await;
    }
    Ok(pool)
}

/// Reports the pool's connections in use and idle at every metric export, for the process's
/// life (the one pool of a serving handler).
pub fn observe_pool(pool: &PgPool) {
    let in_use = pool.clone();
    telemetry::metrics::observe(
        "db.client.connection.count.used",
        "Database connections in use",
        move || u64::from(in_use.size()).saturating_sub(in_use.num_idle() as u64),
    );
    let idle = pool.clone();
    telemetry::metrics::observe(
        "db.client.connection.count.idle",
        "Database connections open and idle",
        move || idle.num_idle() as u64,
    );
}

/// Applies every pending migration over a direct (non-pooled) connection.
pub async fn migrate(direct_url: &str) -> anyhow::Result<()> {
    let mut connection = PgConnection::connect_with(&connect_options(direct_url)?)
        .await
        .context("connect to Postgres for migrations")?;
    MIGRATOR
        .run(&mut connection)
        .await
        .context("run migrations")?;
    connection
        .close()
        .await
        .context("close migration connection")?;
    Ok(())
}

/// Options shared by every connection. PgBouncer rejects the `extra_float_digits` startup
/// parameter sqlx sends by default, so it is not sent at all. Named prepared statements (sqlx's
/// default) need PgBouncer ≥ 1.21 with `max_prepared_statements` > 0.
pub fn connect_options(url: &str) -> anyhow::Result<PgConnectOptions> {
    Ok(PgConnectOptions::from_str(url)
        .context("parse Postgres URL")?
        .extra_float_digits(None)
        .application_name("codeconnect"))
}

//! The Azure Functions custom handler. With no command it serves, as the host starts it;
//! `handler --help` lists the operator commands.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use azure_clients::entra::{self, ManagedIdentity};
use clap::{Parser, Subcommand};
use platform::config::{Config, DatabaseConfig, ExposeSecret};
use platform::telemetry::Export;

/// jemalloc serves the many small allocations that thousands of concurrent requests make and
/// free across threads markedly faster than glibc's arenas, and (tuned in `.cargo/config.toml`)
/// at a lower peak. Measured by the load tests at 3,000 connections: +40% through the database
/// pool, +50% on cached discovery.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// CodeConnect's Azure Functions custom handler. Settings come from the environment (app
/// settings, or `local.settings.json` under `func start`).
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Answer the Functions host (the default)
    Serve,
    /// Apply database migrations over DATABASE_DIRECT_URL
    Migrate,
    /// Create an admin; the password comes from ADMIN_PASSWORD or standard input
    CreateAdmin { email: String },
    /// Grant the request pool's role (the managed identity's in Azure) what the app needs, over
    /// DATABASE_DIRECT_URL as the database's owner
    GrantAppRole { role: String },
    /// Insert demo accounts for a local run
    SeedDemo,
    /// Assemble the deployable function app folder
    Package { out_dir: PathBuf },
    /// Print the OpenAPI document /api/openapi.json serves (needs no settings)
    Openapi,
    /// Run the local Web PubSub hub alone, for several handler instances (needs no settings)
    Hub {
        /// Port of the hub's REST API and client WebSockets (0: any free port)
        #[arg(long, default_value_t = 7072)]
        port: u16,
        /// The hub's name (WEBPUBSUB_HUB)
        #[arg(long, default_value = "codeconnect")]
        hub: String,
        /// Where events go: a handler's, or its balancer's, `/api/realtime/events` URL
        #[arg(long)]
        event_handler: String,
        /// Where to write the handlers' settings, as `export` lines
        #[arg(long)]
        env_file: PathBuf,
    },
    /// Serve a running handler's answers to the listed paths from memory, behind the same
    /// request path (the load tests' discovery ceiling); settings as for serving
    Replay {
        /// The running handler to capture from, e.g. http://127.0.0.1:7071
        #[arg(long)]
        source: String,
        /// The paths (with their queries) to capture, one per line
        #[arg(long)]
        paths_file: PathBuf,
    },
    /// Check a deployment end to end with throwaway accounts it removes afterwards; the admin
    /// signs in with SMOKE_ADMIN_EMAIL, SMOKE_ADMIN_PASSWORD (and SMOKE_ADMIN_TOTP_SECRET with 2FA)
    Smoke {
        /// The app's URL, e.g. https://<app>.azurewebsites.net
        base_url: String,
        /// Seconds the checklist may take (the clean-up has 30 more)
        #[arg(long, default_value_t = 120)]
        deadline: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings()?).await,
        Command::Migrate => {
            let database = database_settings()?;
            let url = database.direct_url.as_ref().context(
                "DATABASE_DIRECT_URL is required for migrations (the direct Postgres port, not PgBouncer)",
            )?;
            platform::db::migrate(url.expose_secret()).await
        }
        Command::CreateAdmin { email } => {
            let database = database_settings()?;
            let password = match std::env::var("ADMIN_PASSWORD") {
                Ok(password) => password,
                Err(_) => read_line("admin password: ")?,
            };
            handler::commands::create_admin(&database, &email, password).await
        }
        Command::GrantAppRole { role } => {
            let database = database_settings()?;
            let url = database.direct_url.as_ref().context(
                "DATABASE_DIRECT_URL is required (the direct Postgres port, as the database's owner)",
            )?;
            handler::commands::grant_app_role(url.expose_secret(), &role).await
        }
        Command::SeedDemo => handler::commands::seed_demo(&database_settings()?).await,
        Command::Package { out_dir } => handler::commands::package(&out_dir),
        Command::Openapi => {
            let document = handler::openapi().to_pretty_json()? + "\n";
            std::io::Write::write_all(&mut std::io::stdout().lock(), document.as_bytes())
                .context("write the document to standard output")
        }
        Command::Hub {
            port,
            hub,
            event_handler,
            env_file,
        } => {
            platform::telemetry::init("info", None)?;
            handler::commands::hub(port, &hub, &event_handler, &env_file).await
        }
        Command::Smoke { base_url, deadline } => smoke(base_url, deadline).await,
        Command::Replay { source, paths_file } => {
            let config = settings()?;
            platform::telemetry::init(&config.log_filter, None)?;
            handler::commands::replay(config, &source, &paths_file).await
        }
    }
}

/// Runs the smoke check, one line per step on stdout; fails unless every step passed.
async fn smoke(base_url: String, deadline: u64) -> anyhow::Result<()> {
    let setting = |name: &str| std::env::var(name).with_context(|| format!("{name} is not set"));
    let options = handler::commands::SmokeOptions {
        base_url,
        admin_email: setting("SMOKE_ADMIN_EMAIL")?,
        admin_password: setting("SMOKE_ADMIN_PASSWORD")?.into(),
        admin_totp_secret: setting("SMOKE_ADMIN_TOTP_SECRET").ok().map(Into::into),
        deadline: std::time::Duration::from_secs(deadline),
    };
    let report = handler::commands::smoke(&options, &mut |step| println!("{step}")).await?;
    println!("{}", report.summary());
    anyhow::ensure!(report.passed(), "the smoke check failed");
    Ok(())
}

/// The settings from the environment.
fn settings() -> anyhow::Result<Config> {
    Ok(Config::from_env()?)
}

/// The database settings alone, for the operator commands, logging at `info`.
fn database_settings() -> anyhow::Result<DatabaseConfig> {
    let database = DatabaseConfig::from_env()?;
    platform::telemetry::init("info", None)?;
    Ok(database)
}

/// Serves until SIGTERM with logging as the settings ask and, with a connection string, traces
/// and metrics sent to Application Insights with the app's managed identity.
async fn serve(config: Config) -> anyhow::Result<()> {
    let export = match &config.telemetry {
        Some(telemetry) => Some(Export {
            connection_string: telemetry.connection_string.clone(),
            credential: entra::credential(&ManagedIdentity::Azure)?,
            metric_interval: telemetry.metric_interval,
            traces_per_second: telemetry.traces_per_second,
            http: platform::telemetry::upload_client(telemetry.ca_file.as_deref())?,
            runtime: tokio::runtime::Handle::current(),
        }),
        None => None,
    };
    let telemetry = platform::telemetry::init(&config.log_filter, export)?;
    let app = handler::build(config).await?;
    platform::db::observe_pool(&app.state().db);
    tracing::info!(port = app.port(), "handler listening");
    let served = app.run().await.context("serve");
    if let Some(telemetry) = telemetry {
        telemetry.shutdown().await;
    }
    served
}

fn read_line(prompt: &str) -> anyhow::Result<String> {
    eprint!("{prompt}");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

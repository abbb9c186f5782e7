//! The Azure Functions custom handler. `handler` serves; see `USAGE` for the other commands.

use platform::config::ExposeSecret;
use std::io::BufRead;
use std::path::Path;

use anyhow::{Context, bail};
use platform::config::Config;

/// jemalloc serves the many small allocations that thousands of concurrent requests make and
/// free across threads markedly faster than glibc's arenas, and (tuned in `.cargo/config.toml`)
/// at a lower peak. Measured by the load tests at 3,000 connections: +40% through the database
/// pool, +50% on cached discovery.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const USAGE: &str =
    "usage: handler [serve | migrate | create-admin <email> | seed-demo | package <dir>]
  serve          answer the Functions host (default)
  migrate        apply database migrations over DATABASE_DIRECT_URL
  create-admin   create an admin; the password comes from ADMIN_PASSWORD or standard input
  seed-demo      insert demo accounts for a local run
  package        assemble the deployable function app folder";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if let ["package", out_dir] = args.as_slice() {
        return handler::commands::package(Path::new(out_dir));
    }
    let config = Config::from_env()?;
    platform::telemetry::init(&config.log_filter);
    match args.as_slice() {
        [] | ["serve"] => serve(config).await,
        ["migrate"] => {
            let url = config.database.direct_url.as_ref().context(
                "DATABASE_DIRECT_URL is required for migrations (the direct Postgres port, not PgBouncer)",
            )?;
            platform::db::migrate(url.expose_secret()).await
        }
        ["create-admin", email] => {
            let password = match std::env::var("ADMIN_PASSWORD") {
                Ok(password) => password,
                Err(_) => read_line("admin password: ")?,
            };
            handler::commands::create_admin(&config, email, password).await
        }
        ["seed-demo"] => handler::commands::seed_demo(&config).await,
        _ => bail!("{USAGE}"),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = handler::build(config).await?;
    tracing::info!(port = app.port(), "handler listening");
    app.run().await.context("serve")
}

fn read_line(prompt: &str) -> anyhow::Result<String> {
    eprint!("{prompt}");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

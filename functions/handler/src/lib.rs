//! The one executable the Functions host starts. Wiring only: it builds the state once, merges
//! every group's router under `/api`, answers timer invocations at `POST /{functionName}`, and
//! offers the operator commands (migrate, create an admin, seed demo data, package).

pub mod commands;
mod cron;
pub mod docs;
mod document;
mod middleware;
mod rate_limits;
mod routes;
mod scheduler;
mod server;
mod timers;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use azure_clients::entra::LocalIssuer;
use azure_clients::pubsub::PubSubService;
use platform::AppState;
use platform::cache::Cache;
use platform::config::Config;
use platform::invocation::{FunctionDefinition, TimerFunction};
use tokio::net::TcpListener;

pub use routes::openapi;

/// Every Azure function the app defines, in deployment order.
pub fn functions() -> impl Iterator<Item = &'static FunctionDefinition> {
    [
        auth::FUNCTIONS,
        admin::FUNCTIONS,
        bookings::FUNCTIONS,
        dashboards::FUNCTIONS,
        health::FUNCTIONS,
        mentors::FUNCTIONS,
        notifications::FUNCTIONS,
        payments::FUNCTIONS,
        realtime::FUNCTIONS,
        recordings::FUNCTIONS,
        routes::FUNCTIONS,
    ]
    .into_iter()
    .flatten()
}

/// Every timer function's code.
pub fn timer_functions() -> impl Iterator<Item = &'static TimerFunction> {
    [
        auth::TIMERS,
        bookings::TIMERS,
        mentors::TIMERS,
        notifications::TIMERS,
        payments::TIMERS,
        recordings::TIMERS,
    ]
    .into_iter()
    .flatten()
}

/// A bound, ready-to-run handler.
pub struct App {
    listener: TcpListener,
    router: Router,
    state: AppState,
    local_issuer: Option<Arc<LocalIssuer>>,
}

/// Binds the port, starts the local Web PubSub hub (and the OpenID issuer it runs with) when no
/// Azure one is configured, and builds the state. Nothing here waits on Postgres, Redis or blob storage, so the host's readiness
/// probe succeeds as soon as the process starts.
pub async fn build(config: Config) -> anyhow::Result<App> {
    build_with(config, routes::router).await
}

/// [`build`] with the router `route` makes from the state (`handler replay` serves another).
pub async fn build_with(
    mut config: Config,
    route: impl FnOnce(AppState) -> Router,
) -> anyhow::Result<App> {
    let address = format!("{}:{}", config.bind_address, config.port);
    let listener = listen(&address).with_context(|| format!("bind {address}"))?;
    let mut local_issuer = None;
    if let Some(PubSubService::LocalHub { port }) = config.realtime.service {
        let events = format!(
            "http://127.0.0.1:{}/api/realtime/events",
            listener.local_addr()?.port()
        );
        let local = webpubsub_hub::spawn_local(port, &config.realtime.hub, events)
            .await
            .context("start the local Web PubSub hub")?;
        config.realtime.service = Some(PubSubService::Service(local.service));
        local_issuer = Some(local.issuer);
    }
    let db = platform::db::pool(&config.database).await?;
    let state = AppState {
        read_db: platform::db::read_pool(&config.database, &db).await?,
        db,
        cache: Cache::new(&config.cache)?,
        blobs: azure_clients::blob::from_config(&config.blob).context("blob storage")?,
        pubsub: azure_clients::pubsub::PubSub::new(&config.realtime).context("Web PubSub")?,
        config: Arc::new(config),
    };
    let router = route(state.clone());
    if state.config.timers_in_process {
        scheduler::start(&state).context("in-process timers")?;
    }
    Ok(App {
        listener,
        router,
        state,
        local_issuer,
    })
}

impl App {
    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The OpenID issuer standing in for Entra beside the local hub, when one was started.
    pub fn local_issuer(&self) -> Option<Arc<LocalIssuer>> {
        self.local_issuer.clone()
    }

    /// Serves until SIGTERM or Ctrl-C, then finishes in-flight requests.
    pub async fn run(self) -> std::io::Result<()> {
        server::serve(self.listener, self.router, shutdown_signal()).await
    }
}

/// Pending connections the kernel may queue. Tokio's default (1024) drops connection bursts
/// from thousands of clients (seen in the 3,000-connection load test).
const ACCEPT_BACKLOG: u32 = 4096;

fn listen(address: &str) -> std::io::Result<TcpListener> {
    let address: SocketAddr = address.parse().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not an IP address and port",
        )
    })?;
    let socket = match address {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Resolves at SIGTERM (what the host sends) or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
}

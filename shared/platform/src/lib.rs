//! What every endpoint group stands on: typed configuration (`config`), the one error type and
//! its problem+json mapping (`error`), the Postgres pool through PgBouncer and the migrations
//! (`db`), the cache, Redis with an in-process fallback (`cache`), request budgets shared across
//! instances (`rate_limit`), authentication and sessions (`auth`), extractors that refuse bad
//! input with a clear 4xx (`extract`, `validation`, `pagination`), the e-mail outbox and its
//! SendGrid delivery (`outbox`, `mailer`), the Azure Functions invocation types (`invocation`),
//! logs, traces and metrics (`telemetry`, and `outbound` from the Azure clients for traced calls
//! to other services), and the state every route receives (`state`).
//!
//! It holds no marketplace rule: fees, slots, booking states and notices live in `domain`, and a
//! rule one group alone uses stays in that group. Below it are only the Azure clients.

pub mod auth;
pub mod cache;
pub mod client_ip;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod http_cache;
pub mod invocation;
pub mod mailer;
pub mod outbox;
pub mod pagination;
pub mod rate_limit;
pub mod state;
pub mod telemetry;
pub mod validation;

pub use azure_clients::outbound;
pub use error::{Error, Result};
pub use extract::{Json, Path, Query};
pub use state::AppState;

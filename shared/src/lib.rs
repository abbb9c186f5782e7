//! The library every CodeConnect function crate stands on: typed configuration, the one error
//! type and its HTTP mapping, the Postgres pool (through PgBouncer) and migrations, the cache
//! (Redis with an in-process fallback), blob storage, authentication, the email outbox and the
//! Azure Functions invocation types; and the rules more than one group needs (fees, slot maths,
//! booking states, notices, platform settings). A rule one group alone uses stays in that group.

pub mod auth;
pub mod blob;
pub mod booking_changes;
pub mod booking_status;
pub mod cache;
pub mod client_ip;
pub mod config;
pub mod credentials;
pub mod db;
pub mod entra;
pub mod error;
pub mod extract;
pub mod fees;
pub mod invocation;
pub mod mailer;
pub mod media;
pub mod money;
pub mod notifications;
pub mod outbox;
pub mod pagination;
pub mod platform_settings;
pub mod pubsub;
pub mod schedule;
pub mod state;
pub mod telemetry;
pub mod users;
pub mod validation;

pub use error::{Error, Result};
pub use extract::{Json, Path, Query};
pub use state::AppState;

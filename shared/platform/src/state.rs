//! The state every route receives: cheap to clone (a pool and `Arc`s), built once by the handler.

use std::sync::Arc;

use sqlx::PgPool;

use crate::cache::Cache;
use crate::config::Config;
use azure_clients::blob::BlobStore;
use azure_clients::pubsub::PubSub;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: PgPool,
    /// Reads that may lag a little (the dashboards): the read replica's pool, or `db` itself.
    pub read_db: PgPool,
    pub cache: Cache,
    pub blobs: Arc<dyn BlobStore>,
    pub pubsub: PubSub,
}

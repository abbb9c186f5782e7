//! Liveness and readiness probes (product-spec §12): `GET /api/health` answers while the process
//! runs; `GET /api/health/ready` checks the backing services and answers 503 when one required
//! for serving is down. Degraded-but-serving states (Redis or Web PubSub down) are reported,
//! not failed.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use platform::cache::CacheHealth;
use platform::invocation::FunctionDefinition;
use platform::{AppState, Json};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub const FUNCTIONS: &[FunctionDefinition] = &[FunctionDefinition {
    name: "health",
    function_json: include_str!("../azure/health/function.json"),
}];

const POSTGRES_TIMEOUT: Duration = Duration::from_secs(3);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(ready))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Live {
    status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// `ready` or `unavailable`.
    status: &'static str,
    postgres: &'static str,
    /// `redis`, `inProcess` (none configured) or `redisDown` (serving from the fallback).
    #[schema(value_type = String)]
    cache: CacheHealth,
    /// Web PubSub: `up`, `down` (the API serves; pushes and video are degraded) or `off`.
    realtime: &'static str,
}

/// Liveness
///
/// 200 as soon as the handler runs; checks nothing else.
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, body = Live)))]
pub async fn live() -> Json<Live> {
    Json(Live { status: "ok" })
}

/// Readiness
///
/// Whether the app can serve: Postgres through the pool (503 when down), the cache (Redis, or
/// the in-process fallback when Redis is down) and Web PubSub.
#[utoipa::path(
    get, path = "/health/ready", tag = "health",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness))
)]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let postgres_check = tokio::time::timeout(
        POSTGRES_TIMEOUT,
        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.db),
    );
    let (postgres, cache, realtime) =
        tokio::join!(postgres_check, state.cache.health(), state.pubsub.health());
    let postgres_ok = matches!(postgres, Ok(Ok(1)));
    let readiness = Readiness {
        status: if postgres_ok { "ready" } else { "unavailable" },
        postgres: if postgres_ok { "up" } else { "down" },
        cache,
        realtime,
    };
    let status = if postgres_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}

//! Dashboards (`/api/dashboards/student`, `/api/dashboards/mentor`, `/api/admin/dashboard`):
//! each a few SQL aggregates on indexed columns, read from the read replica's pool
//! (`AppState::read_db`, the primary's when there is none) and cached for a minute, so a
//! dashboard open in many tabs costs the database one query set a minute.

mod admin;
mod mentor;
mod student;

use std::future::Future;
use std::time::Duration;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use platform::invocation::FunctionDefinition;
use platform::{AppState, Result};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub const FUNCTIONS: &[FunctionDefinition] = &[FunctionDefinition {
    name: "dashboards",
    function_json: include_str!("../azure/dashboards/function.json"),
}];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(student::student_dashboard))
        .routes(routes!(mentor::mentor_dashboard))
        .routes(routes!(admin::admin_dashboard))
}

/// Bookings counted by status.
#[derive(Debug, Default, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ByStatus {
    pending_payment: i64,
    confirmed: i64,
    completed: i64,
    cancelled: i64,
    expired: i64,
    no_show: i64,
}

/// The select list that counts the rows in scope by status, as [`ByStatus`].
const COUNT_BY_STATUS: &str =
    "count(*) FILTER (WHERE status = 'pending_payment') AS pending_payment,
    count(*) FILTER (WHERE status = 'confirmed') AS confirmed,
    count(*) FILTER (WHERE status = 'completed') AS completed,
    count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
    count(*) FILTER (WHERE status = 'expired') AS expired,
    count(*) FILTER (WHERE status = 'no_show') AS no_show";

/// How stale a dashboard may be: its figures move with classes and payments, not by the second.
const FRESHNESS: Duration = Duration::from_secs(60);

/// The dashboard cached under `key`, or the one `load` computes, as the JSON answer.
async fn cached<T, F, Fut>(state: &AppState, key: &str, load: F) -> Result<Response>
where
    T: Serialize,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let body = state
        .cache
        .get_or_fill_raw(key, FRESHNESS, || async {
            let dashboard = load().await?;
            Ok(serde_json::to_string(&dashboard).map_err(anyhow::Error::from)?)
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

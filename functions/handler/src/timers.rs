//! Timer invocations: the Functions host POSTs `/{functionName}` with the invocation JSON and
//! expects `200 application/json` `{Outputs, Logs, ReturnValue}`; any other status fails the
//! invocation (and it runs again at its next slot). `DefaultHttpWorkerService` logs "Outputs not
//! set" for an empty `Outputs` and "ReturnValue not set" for a null `ReturnValue` on every run,
//! so both carry the run's summary (a timer has no output binding, so the host applies neither).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use platform::invocation::{InvocationRequest, InvocationResponse};
use platform::{AppState, Error, Json, Path};
use serde_json::{Map, Value};

pub async fn invoke(
    State(state): State<AppState>,
    Path(function): Path<String>,
    Json(request): Json<InvocationRequest>,
) -> Response {
    let Some(timer) =
        crate::timer_functions().find(|timer| timer.name.eq_ignore_ascii_case(&function))
    else {
        return Error::not_found(
            "FUNCTION_NOT_FOUND",
            format!("No timer function named {function}."),
        )
        .into_response();
    };
    let Some(info) = request.timer_info() else {
        return Error::bad_request("INVALID_INVOCATION", "Data holds no timer binding.")
            .into_response();
    };
    match timer.run_traced(state, info).await {
        Ok(logs) => {
            let summary = Value::from(summary(timer.name, &logs));
            Json(InvocationResponse {
                outputs: Map::from_iter([("result".to_owned(), summary.clone())]),
                logs,
                return_value: summary,
            })
            .into_response()
        }
        Err(error) => {
            let mut response = error.into_response();
            if response.status().is_success() {
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            }
            response
        }
    }
}

/// One line saying what a run did: its log lines, or that it had nothing to do.
fn summary(function: &str, logs: &[String]) -> String {
    if logs.is_empty() {
        format!("{function}: nothing to do")
    } else {
        format!("{function}: {}", logs.join("; "))
    }
}

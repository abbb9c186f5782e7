//! The router: every group under `/api`, the OpenAPI document and its reference page, the timer
//! invocation endpoint, the local blob store's read URLs, and problem+json answers for unknown
//! paths and methods.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use platform::invocation::FunctionDefinition;
use platform::{AppState, Error};
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::rate_limits::{self, Limiter};
use crate::{docs, document, middleware, timers};

pub const FUNCTIONS: &[FunctionDefinition] = &[
    FunctionDefinition {
        name: "openapi",
        function_json: include_str!("../azure/openapi/function.json"),
    },
    FunctionDefinition {
        name: "docs",
        function_json: include_str!("../azure/docs/function.json"),
    },
];

pub fn router(state: AppState) -> Router {
    let (api, _) = api_parts();
    let document: Arc<str> = openapi_json().into();
    let api = api
        .route(
            "/api/openapi.json",
            get(move || {
                let document = document.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        document.to_string(),
                    )
                }
            }),
        )
        .merge(docs::router())
        .route("/{function}", post(timers::invoke))
        .route_layer(axum::middleware::from_fn_with_state(
            Limiter::new(state.clone()),
            rate_limits::limit,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    middleware::apply(api, &state.config)
}

/// A captured answer `handler replay` serves from memory.
pub struct Replayed {
    pub content_type: Option<HeaderValue>,
    pub cache_control: Option<HeaderValue>,
    pub etag: Option<HeaderValue>,
    pub body: Bytes,
}

/// The request path of [`router`] (request budgets, middleware) in front of answers from
/// memory: every GET under `/api` looked up by path and query in `responses`.
pub fn replay_router(state: AppState, responses: Arc<HashMap<String, Replayed>>) -> Router {
    let api = Router::new()
        .route(
            "/api/{*rest}",
            get(move |uri: Uri| {
                let responses = responses.clone();
                async move { replay(&responses, &uri) }
            }),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            Limiter::new(state.clone()),
            rate_limits::limit,
        ))
        .fallback(not_found)
        .with_state(state.clone());
    middleware::apply(api, &state.config)
}

fn replay(responses: &HashMap<String, Replayed>, uri: &Uri) -> Response {
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let Some(replayed) = responses.get(path) else {
        return Error::not_found("ROUTE_NOT_FOUND", "Not captured.").into_response();
    };
    let mut response = replayed.body.clone().into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, &replayed.content_type),
        (header::CACHE_CONTROL, &replayed.cache_control),
        (header::ETAG, &replayed.etag),
    ] {
        if let Some(value) = value {
            headers.insert(name, value.clone());
        }
    }
    response
}

/// The OpenAPI document of the whole API, generated from the route annotations.
pub fn openapi() -> OpenApi {
    api_parts().1
}

fn openapi_json() -> String {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| openapi().to_pretty_json().unwrap_or_default())
        .clone()
}

fn api_parts() -> (Router<AppState>, OpenApi) {
    let groups = OpenApiRouter::new()
        .merge(auth::router())
        .merge(admin::router())
        .merge(bookings::router())
        .merge(dashboards::router())
        .merge(health::router())
        .merge(mentors::router())
        .merge(notifications::router())
        .merge(payments::router())
        .merge(realtime::router())
        .merge(recordings::router());
    let (router, mut document) = OpenApiRouter::new().nest("/api", groups).split_for_parts();
    document::finish(&mut document);
    (router, document)
}

async fn not_found() -> Error {
    Error::not_found("ROUTE_NOT_FOUND", "No such endpoint.")
}

async fn method_not_allowed() -> impl IntoResponse {
    Error::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "This endpoint does not accept that method.",
    )
}

//! Cross-cutting layers: one tracing span per request, request ids, security headers, CORS,
//! body limits, conditional GETs for public responses and a panic guard that still answers
//! problem+json.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::{self as axum_middleware, Next};
use axum::response::{IntoResponse, Response};
use platform::config::Config;
use platform::http_cache;
use platform::telemetry::metrics::metrics;
use platform::{Error, client_ip};
use tower::ServiceBuilder;
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tracing::{Instrument, Span, field};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// JSON bodies are small; routes that take uploads raise their own limit.
const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const INVOCATION_ID: &str = "x-azure-functions-invocationid";

/// Wraps `router` in the request path. What needs the matched route (the span, the metrics) or
/// shapes the route's answer runs in one layer after routing; the rest wraps the router from
/// outside. Each `Router::layer` boxes a future per request and layer, so few layers keep a
/// request in flight small: at thousands of connections that is most of the handler's memory.
pub fn apply(router: Router, config: &Config) -> Router {
    let front_door_id: Option<Arc<str>> = config.front_door_id.as_deref().map(Arc::from);
    let routed = router.layer(axum_middleware::from_fn(move |request, next| {
        around_route(front_door_id.clone(), request, next)
    }));
    let outside = ServiceBuilder::new()
        .layer(CatchPanicLayer::custom(panic_response))
        .map_request(drop_unsafe_request_id)
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(DefaultBodyLimit::max(DEFAULT_BODY_LIMIT));
    let router = Router::new().fallback_service(outside.service(routed));
    match cors(&config.cors_allowed_origins) {
        Some(cors) => answer_only_preflights(router, cors),
        None => router,
    }
}

/// Everything between routing and the route: the request's span and its count by route, the
/// client's address behind Front Door, conditional GETs and the security headers.
async fn around_route(
    front_door_id: Option<Arc<str>>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let span = request_span(&request);
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    if let Some(client) = front_door_id
        .as_deref()
        .and_then(|id| client_ip::through_front_door(request.headers(), id))
    {
        request.extensions_mut().insert(client);
    }
    let over_https = forwarded_over_https(&request);
    let response = conditional_get(request, next)
        .instrument(span.clone())
        .await;
    let response = with_security_headers(response, over_https);
    let latency = started.elapsed();
    request_finished(&response, latency, &span);
    metrics().request(
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        &method,
        response.status().as_u16(),
        latency,
    );
    response
}

/// CORS answers every OPTIONS request itself; only genuine preflights (with
/// `Access-Control-Request-Method`) are its to answer. Other OPTIONS requests, such as Web
/// PubSub's abuse-protection check, reach the routes.
fn answer_only_preflights(router: Router, cors: CorsLayer) -> Router {
    let plain = router.clone();
    let browser = router.layer(cors);
    Router::new().fallback_service(tower::service_fn(move |request: Request| {
        let for_cors = request.method() != Method::OPTIONS
            || request
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        let service = if for_cors {
            browser.clone()
        } else {
            plain.clone()
        };
        service.oneshot(request)
    }))
}

/// The request's span: the server span of its trace, continuing the caller's (the host forwards
/// `traceparent`), named and shaped by OpenTelemetry's HTTP conventions.
fn request_span(request: &Request) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or("unmatched");
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let method = request.method().as_str();
    let scheme = match header("x-forwarded-proto").as_str() {
        "https" => "https",
        _ => "http",
    };
    let span = tracing::info_span!(
        "request",
        otel.kind = "server",
        otel.name = format!("{method} {route}"),
        otel.status_code = field::Empty,
        http.request.method = method,
        http.route = route,
        url.scheme = scheme,
        url.path = request.uri().path(),
        server.address = header(header::HOST.as_str()),
        faas.invocation_id = header(INVOCATION_ID),
        request_id = header(REQUEST_ID.as_str()),
        user_id = field::Empty,
        http.response.status_code = field::Empty,
        latency_ms = field::Empty,
    );
    // A malformed or absent `traceparent` starts a new trace.
    let _ = span.set_parent(platform::telemetry::remote_context(request.headers()));
    span
}

/// Ends the request's span with its status.
fn request_finished(response: &Response, latency: Duration, span: &Span) {
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    span.record("latency_ms", latency.as_millis() as u64);
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    span.in_scope(|| tracing::info!("request finished"));
}

/// A caller's own `X-Request-Id` is kept (and echoed) only when it is a short token; anything
/// else, markup or 20 KB included, is dropped and an id is minted instead.
fn drop_unsafe_request_id(mut request: Request) -> Request {
    let unsafe_id = request
        .headers()
        .get(&REQUEST_ID)
        .is_some_and(|id| !is_token_like(id.as_bytes()));
    if unsafe_id {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}

/// 1 to 128 letters, digits, `-`, `_`, `.` or `:` (UUIDs, trace ids, the host's ids).
fn is_token_like(id: &[u8]) -> bool {
    (1..=128).contains(&id.len())
        && id
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b':'))
}

/// A public response (`Cache-Control: public…`, set by its handler) carries a strong `ETag`:
/// its handler's (computed once per cached body) or else a hash of its body; a GET whose
/// `If-None-Match` names it gets 304 and no body. Everything else passes untouched (and is
/// `no-store`: `security_headers`).
async fn conditional_get(request: Request, next: Next) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let if_none_match = request.headers().get(header::IF_NONE_MATCH).cloned();
    let response = next.run(request).await;
    let public = response
        .headers()
        .get(header::CACHE_CONTROL)
        .is_some_and(|value| value.as_bytes().starts_with(b"public"));
    if response.status() != StatusCode::OK || !public {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let body = match parts.headers.get(header::ETAG) {
        Some(_) => body,
        None => {
            let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
                return Error::from(anyhow::anyhow!("reading a public response body"))
                    .into_response();
            };
            parts
                .headers
                .insert(header::ETAG, http_cache::strong_etag(&bytes));
            axum::body::Body::from(bytes)
        }
    };
    let unchanged = if_none_match.is_some_and(|tags| {
        parts
            .headers
            .get(header::ETAG)
            .is_some_and(|etag| http_cache::none_match_names(&tags, etag))
    });
    if unchanged {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(header::CONTENT_TYPE);
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, axum::body::Body::empty());
    }
    Response::from_parts(parts, body)
}

/// Whether the client came over HTTPS (Azure's front end says so in `X-Forwarded-Proto`).
fn forwarded_over_https(request: &Request) -> bool {
    request
        .headers()
        .get("x-forwarded-proto")
        .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// Safe defaults on every response; `no-store` unless a route chose its own caching, since most
/// responses are personal. HSTS only over HTTPS.
fn with_security_headers(mut response: Response, over_https: bool) -> Response {
    let headers = response.headers_mut();
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if over_https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
    response
}

/// Credentials are allowed only for the configured frontend origins; with none configured the
/// API is same-origin only.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .expose_headers([
                REQUEST_ID,
                header::RETRY_AFTER,
                HeaderName::from_static("ratelimit"),
                HeaderName::from_static("ratelimit-policy"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}

fn panic_response(_panic: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("request handler panicked");
    Error::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
        "An unexpected error occurred; it has been logged.",
    )
    .into_response()
}

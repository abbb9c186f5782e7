//! Outbound HTTP as dependency spans: every call to another service (Web PubSub, SendGrid,
//! Razorpay, Stripe) goes through [`send`], which traces it as an OpenTelemetry client span
//! under the caller's span, with the method, the URL without its query (which may hold a
//! signature), the peer and the status.

use tracing::{Instrument, field};

/// Sends `request` to `peer` (the service's name) inside a client span.
pub async fn send(
    request: reqwest::RequestBuilder,
    peer: &'static str,
) -> reqwest::Result<reqwest::Response> {
    let (client, request) = request.build_split();
    let request = request?;
    let url = request.url();
    let span = tracing::info_span!(
        "outbound",
        otel.kind = "client",
        otel.name = format!("{peer} {} {}", request.method(), url.path()),
        otel.status_code = field::Empty,
        peer.service = peer,
        http.request.method = request.method().as_str(),
        url.full = format!("{}{}", url.origin().ascii_serialization(), url.path()),
        server.address = url.host_str().unwrap_or(""),
        http.response.status_code = field::Empty,
    );
    let response = client.execute(request).instrument(span.clone()).await;
    match &response {
        Ok(answer) => {
            span.record("http.response.status_code", answer.status().as_u16());
            if answer.status().is_server_error() {
                span.record("otel.status_code", "ERROR");
            }
        }
        Err(_) => {
            span.record("otel.status_code", "ERROR");
        }
    }
    response
}

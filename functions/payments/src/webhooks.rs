//! Gateway webhooks: the signature over the raw body is checked first, each event is processed
//! at most once (by event id), and processing itself is idempotent besides.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use platform::config::ExposeSecret;
use platform::{AppState, Error, Json, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::gateways::{self, Gateway};
use crate::refunds;
use crate::settle;
use crate::signatures;

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAck {
    /// `processed`, `duplicate` or `ignored` (an event type we don't act on).
    status: &'static str,
}

#[derive(Debug, Deserialize)]
struct RazorpayEvent {
    event: String,
    #[serde(default)]
    payload: Value,
}

#[derive(Debug, Deserialize)]
struct StripeEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Value,
}

/// Razorpay webhook
///
/// For Razorpay only: events signed with the webhook secret (`X-Razorpay-Signature` over the
/// raw body). Payments settle exactly once, whichever of this and the client's verify arrives
/// first.
#[utoipa::path(
    post, path = "/payments/razorpay/webhook", tag = "payments",
    request_body(content = Object, description = "Razorpay event; `X-Razorpay-Signature` over the raw body"),
    responses((status = 200, body = WebhookAck), (status = 401, description = "SIGNATURE_INVALID"))
)]
pub async fn razorpay_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookAck>> {
    let config = gateways::razorpay(&state).await?;
    let signature = header(&headers, "x-razorpay-signature");
    if !signatures::razorpay_webhook_valid(config.webhook_secret.expose_secret(), &body, signature)
    {
        return Err(invalid_signature());
    }
    let event: RazorpayEvent = parse(&body)?;
    let event_id = header(&headers, "x-razorpay-event-id");
    let event_id = if event_id.is_empty() {
        data_encoding::HEXLOWER.encode(&sha256(&body))
    } else {
        event_id.to_owned()
    };
    once(
        &state,
        Gateway::Razorpay,
        &event_id,
        apply_razorpay(&state, &event),
    )
    .await
}

/// Acts on a Razorpay event: a captured payment settles, a failed one is recorded, a refund's
/// outcome is recorded; any other event is ignored.
async fn apply_razorpay(state: &AppState, event: &RazorpayEvent) -> Result<&'static str> {
    let payment = &event.payload["payment"]["entity"];
    match event.event.as_str() {
        "payment.captured" | "order.paid" => {
            let (Some(order_id), Some(payment_id)) =
                (payment["order_id"].as_str(), payment["id"].as_str())
            else {
                return Err(Error::bad_request(
                    "INVALID_BODY",
                    "payment entity lacks id or order_id",
                ));
            };
            settle::record_payment(state, Gateway::Razorpay, order_id, payment_id).await?;
        }
        "payment.failed" => {
            if let Some(order_id) = payment["order_id"].as_str() {
                settle::record_failure(state, Gateway::Razorpay, order_id).await?;
            }
        }
        "refund.processed" | "refund.failed" => {
            let refund = &event.payload["refund"]["entity"];
            let (Some(refund_id), Some(payment_id)) =
                (refund["id"].as_str(), refund["payment_id"].as_str())
            else {
                return Err(Error::bad_request(
                    "INVALID_BODY",
                    "refund entity lacks id or payment_id",
                ));
            };
            let amount = refund["amount"].as_i64().unwrap_or(0);
            let succeeded = event.event == "refund.processed";
            refunds::record_reported(
                state,
                Gateway::Razorpay,
                payment_id,
                refund_id,
                amount,
                succeeded,
            )
            .await?;
        }
        _ => return Ok("ignored"),
    }
    Ok("processed")
}

/// Stripe webhook
///
/// For Stripe only: events signed with the endpoint secret (`Stripe-Signature`, timestamp
/// checked). Payments and refunds settle exactly once.
#[utoipa::path(
    post, path = "/payments/stripe/webhook", tag = "payments",
    request_body(content = Object, description = "Stripe event; `Stripe-Signature` over `t.raw_body`"),
    responses((status = 200, body = WebhookAck), (status = 401, description = "SIGNATURE_INVALID"))
)]
pub async fn stripe_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookAck>> {
    let config = gateways::stripe(&state).await?;
    let signature = header(&headers, "stripe-signature");
    let now = chrono::Utc::now().timestamp();
    if !signatures::stripe_webhook_valid(
        config.webhook_secret.expose_secret(),
        &body,
        signature,
        now,
    ) {
        return Err(invalid_signature());
    }
    let event: StripeEvent = parse(&body)?;
    once(
        &state,
        Gateway::Stripe,
        &event.id,
        apply_stripe(&state, &event),
    )
    .await
}

/// Acts on a Stripe event: a succeeded intent settles, a failed one is recorded, a refund's
/// final outcome is recorded; any other event is ignored.
async fn apply_stripe(state: &AppState, event: &StripeEvent) -> Result<&'static str> {
    let object = &event.data["object"];
    let id = object["id"].as_str().unwrap_or_default();
    match event.kind.as_str() {
        "payment_intent.succeeded" => {
            settle::record_payment(state, Gateway::Stripe, id, id).await?;
        }
        "payment_intent.payment_failed" => {
            settle::record_failure(state, Gateway::Stripe, id).await?;
        }
        "refund.updated" | "refund.failed" => {
            let status = object["status"].as_str().unwrap_or_default();
            let payment_intent = object["payment_intent"].as_str().unwrap_or_default();
            if matches!(status, "succeeded" | "failed" | "canceled") {
                let amount = object["amount"].as_i64().unwrap_or(0);
                refunds::record_reported(
                    state,
                    Gateway::Stripe,
                    payment_intent,
                    id,
                    amount,
                    status == "succeeded",
                )
                .await?;
            }
        }
        _ => return Ok("ignored"),
    }
    Ok("processed")
}

/// Runs `apply` for an event not seen before and remembers it; a seen event is a duplicate.
async fn once(
    state: &AppState,
    gateway: Gateway,
    event_id: &str,
    apply: impl Future<Output = Result<&'static str>>,
) -> Result<Json<WebhookAck>> {
    if seen_before(state, gateway, event_id).await? {
        return Ok(Json(WebhookAck {
            status: "duplicate",
        }));
    }
    let status = apply.await?;
    remember(state, gateway, event_id).await?;
    Ok(Json(WebhookAck { status }))
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|error| Error::bad_request("MALFORMED_JSON", error.to_string()))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

fn invalid_signature() -> Error {
    Error::unauthorized("SIGNATURE_INVALID", "The webhook signature does not match.")
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

async fn seen_before(state: &AppState, gateway: Gateway, event_id: &str) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM webhook_events WHERE gateway = $1 AND event_id = $2)",
    )
    .bind(gateway.name())
    .bind(event_id)
    .fetch_one(&state.db)
    .await?)
}

/// Recorded after processing, so a delivery that failed half-way is processed again on retry.
async fn remember(state: &AppState, gateway: Gateway, event_id: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO webhook_events (gateway, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(gateway.name())
    .bind(event_id)
    .execute(&state.db)
    .await?;
    Ok(())
}

//! The two gateways' REST APIs: Razorpay (JSON, basic auth) and Stripe (form-encoded, bearer),
//! each with idempotency keys so retries never double-charge or double-refund.

use std::time::Duration;

use domain::platform_settings::{self, PaymentConfig};
use platform::config::ExposeSecret;
use platform::config::{RazorpayConfig, StripeConfig};
use platform::{AppState, Error, Result, outbound};
use serde::Deserialize;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gateway {
    Razorpay,
    Stripe,
}

impl Gateway {
    pub fn name(self) -> &'static str {
        match self {
            Gateway::Razorpay => "razorpay",
            Gateway::Stripe => "stripe",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "razorpay" => Some(Gateway::Razorpay),
            "stripe" => Some(Gateway::Stripe),
            _ => None,
        }
    }
}

/// Rupees to paise (the gateways' integer amounts).
pub fn to_paise(amount: rust_decimal::Decimal) -> i64 {
    use rust_decimal::prelude::ToPrimitive;
    (amount * rust_decimal::Decimal::ONE_HUNDRED)
        .round()
        .to_i64()
        .unwrap_or(0)
}

/// A gateway answered an error or could not be reached.
pub fn unavailable(gateway: Gateway, cause: impl std::fmt::Display) -> Error {
    tracing::warn!(gateway = gateway.name(), %cause, "payment gateway call failed");
    Error::new(
        axum::http::StatusCode::BAD_GATEWAY,
        "GATEWAY_UNAVAILABLE",
        format!(
            "{} is not answering; nothing was charged, try again shortly.",
            gateway.name()
        ),
    )
}

/// Sends a call to `gateway`, traced as a dependency; 502 when it cannot be reached.
async fn call(gateway: Gateway, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
    outbound::send(request, gateway.name())
        .await
        .map_err(|error| unavailable(gateway, error))
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .unwrap_or_default()
}

/// Razorpay's credentials, if it is configured and the admin has it enabled.
pub async fn razorpay(state: &AppState) -> Result<&RazorpayConfig> {
    let enabled = platform_settings::load::<PaymentConfig>(state)
        .await?
        .razorpay_enabled;
    let config = state.config.payments.razorpay.as_ref();
    config
        .filter(|_| enabled)
        .ok_or_else(|| disabled(Gateway::Razorpay))
}

/// Stripe's credentials, if it is configured and the admin has it enabled.
pub async fn stripe(state: &AppState) -> Result<&StripeConfig> {
    let enabled = platform_settings::load::<PaymentConfig>(state)
        .await?
        .stripe_enabled;
    let config = state.config.payments.stripe.as_ref();
    config
        .filter(|_| enabled)
        .ok_or_else(|| disabled(Gateway::Stripe))
}

pub fn disabled(gateway: Gateway) -> Error {
    Error::conflict(
        "GATEWAY_DISABLED",
        format!("Payments through {} are not available.", gateway.name()),
    )
}

#[derive(Debug, Deserialize)]
struct Created {
    id: String,
}

#[derive(Debug, Deserialize)]
pub struct StripeIntent {
    pub id: String,
    pub client_secret: String,
}

/// Creates a Razorpay order for `amount_paise`; returns its id.
pub async fn razorpay_order(
    config: &RazorpayConfig,
    amount_paise: i64,
    receipt: &str,
) -> Result<String> {
    let request = client()
        .post(format!("{}/v1/orders", config.base_url))
        .basic_auth(&config.key_id, Some(config.key_secret.expose_secret()))
        .json(
            &json!({"amount": amount_paise, "currency": "INR", "receipt": receipt,
                      "notes": {"receipt": receipt}, "partial_payment": false}),
        );
    let response = call(Gateway::Razorpay, request).await?;
    parse_created(Gateway::Razorpay, response).await
}

/// Refunds `amount_paise` of a captured Razorpay payment; returns the refund id.
pub async fn razorpay_refund(
    config: &RazorpayConfig,
    payment_id: &str,
    amount_paise: i64,
    idempotency_key: &str,
) -> Result<String> {
    let request = client()
        .post(format!(
            "{}/v1/payments/{payment_id}/refund",
            config.base_url
        ))
        .basic_auth(&config.key_id, Some(config.key_secret.expose_secret()))
        .header("X-Refund-Idempotency", idempotency_key)
        .json(&json!({"amount": amount_paise, "speed": "normal"}));
    let response = call(Gateway::Razorpay, request).await?;
    parse_created(Gateway::Razorpay, response).await
}

/// Creates a Stripe PaymentIntent for `amount_paise` INR.
pub async fn stripe_intent(
    config: &StripeConfig,
    amount_paise: i64,
    reference: &str,
    idempotency_key: &str,
) -> Result<StripeIntent> {
    let request = client()
        .post(format!("{}/v1/payment_intents", config.base_url))
        .bearer_auth(config.secret_key.expose_secret())
        .header("Idempotency-Key", idempotency_key)
        .form(&[
            ("amount", amount_paise.to_string()),
            ("currency", "inr".to_owned()),
            ("metadata[reference]", reference.to_owned()),
            ("automatic_payment_methods[enabled]", "true".to_owned()),
        ]);
    let response = call(Gateway::Stripe, request).await?;
    if !response.status().is_success() {
        return Err(unavailable(Gateway::Stripe, response.status()));
    }
    response
        .json()
        .await
        .map_err(|error| unavailable(Gateway::Stripe, error))
}

/// Refunds `amount_paise` of a Stripe PaymentIntent; returns the refund id.
pub async fn stripe_refund(
    config: &StripeConfig,
    intent_id: &str,
    amount_paise: i64,
    idempotency_key: &str,
) -> Result<String> {
    let request = client()
        .post(format!("{}/v1/refunds", config.base_url))
        .bearer_auth(config.secret_key.expose_secret())
        .header("Idempotency-Key", idempotency_key)
        .form(&[
            ("payment_intent", intent_id.to_owned()),
            ("amount", amount_paise.to_string()),
        ]);
    let response = call(Gateway::Stripe, request).await?;
    parse_created(Gateway::Stripe, response).await
}

async fn parse_created(gateway: Gateway, response: reqwest::Response) -> Result<String> {
    if !response.status().is_success() {
        return Err(unavailable(gateway, response.status()));
    }
    let created: Created = response
        .json()
        .await
        .map_err(|error| unavailable(gateway, error))?;
    Ok(created.id)
}

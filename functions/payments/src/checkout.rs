//! Checkout: a Razorpay order or a Stripe PaymentIntent for what the student owes (always the
//! server's amount), and Razorpay's checkout verification.

use axum::extract::State;
use domain::booking_status::BookingStatus;
use domain::package_status::PackageStatus;
use platform::auth::StudentUser;
use platform::config::ExposeSecret;
use platform::{AppState, Error, Json, Result};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::gateways::{self, Gateway};
use crate::settle::{self, Settlement};
use crate::signatures;

/// What to pay for: exactly one of the two.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayFor {
    booking_id: Option<Uuid>,
    package_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RazorpayOrder {
    order_id: String,
    /// In paise.
    amount: i64,
    currency: &'static str,
    key_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyRazorpay {
    order_id: String,
    payment_id: String,
    signature: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentResult {
    /// `confirmed` (now or earlier) or `refunded` (paid after the hold lapsed).
    status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StripeCheckout {
    client_secret: String,
    publishable_key: String,
    amount: i64,
    currency: &'static str,
}

struct Payable {
    booking_id: Option<Uuid>,
    package_id: Option<Uuid>,
    amount: Decimal,
    reference: String,
}

/// Start a Razorpay payment
///
/// Creates a Razorpay order for the student's booking or package; the answer has
/// what Razorpay Checkout needs. Nothing changes when Razorpay can't be reached.
#[utoipa::path(
    post, path = "/payments/razorpay/orders", tag = "payments",
    security(("session" = [])),
    request_body = PayFor,
    responses(
        (status = 200, body = RazorpayOrder),
        (status = 404, description = "BOOKING_NOT_FOUND, PACKAGE_NOT_FOUND"),
        (status = 409, description = "NOT_PAYABLE, GATEWAY_DISABLED"),
        (status = 502, description = "GATEWAY_UNAVAILABLE (nothing changes)"),
    )
)]
pub async fn razorpay_order(
    State(state): State<AppState>,
    StudentUser(student): StudentUser,
    Json(request): Json<PayFor>,
) -> Result<Json<RazorpayOrder>> {
    // Whose booking it is comes first: a stranger learns nothing from the gateway's state.
    let payable = payable(&state, student.user_id, &request).await?;
    let config = gateways::razorpay(&state).await?;
    let amount = gateways::to_paise(payable.amount);
    let order_id = gateways::razorpay_order(config, amount, &payable.reference).await?;
    store_order(
        &state,
        Gateway::Razorpay,
        &order_id,
        &payable,
        student.user_id,
        amount,
    )
    .await?;
    Ok(Json(RazorpayOrder {
        order_id,
        amount,
        currency: "INR",
        key_id: config.key_id.clone(),
    }))
}

/// Confirm a Razorpay payment
///
/// The signature Checkout returned, checked with the key secret; a valid one settles the
/// payment exactly once (the webhook may have done it first) and confirms the class.
#[utoipa::path(
    post, path = "/payments/razorpay/verify", tag = "payments",
    security(("session" = [])),
    request_body = VerifyRazorpay,
    responses(
        (status = 200, body = PaymentResult),
        (status = 400, description = "SIGNATURE_INVALID"),
        (status = 404, description = "ORDER_NOT_FOUND"),
    )
)]
pub async fn razorpay_verify(
    State(state): State<AppState>,
    StudentUser(student): StudentUser,
    Json(request): Json<VerifyRazorpay>,
) -> Result<Json<PaymentResult>> {
    let config = gateways::razorpay(&state).await?;
    // Verify against the order id we stored for this student, never one the client made up.
    let owned: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM payment_orders WHERE gateway = 'razorpay' AND gateway_order_id = $1 AND student_id = $2)",
    )
    .bind(&request.order_id)
    .bind(student.user_id)
    .fetch_one(&state.db)
    .await?;
    if !owned {
        return Err(Error::not_found(
            "ORDER_NOT_FOUND",
            "No such order of yours.",
        ));
    }
    if !signatures::razorpay_checkout_valid(
        config.key_secret.expose_secret(),
        &request.order_id,
        &request.payment_id,
        &request.signature,
    ) {
        return Err(Error::bad_request(
            "SIGNATURE_INVALID",
            "The payment signature does not match.",
        ));
    }
    let settlement = settle::record_payment(
        &state,
        Gateway::Razorpay,
        &request.order_id,
        &request.payment_id,
    )
    .await?;
    Ok(Json(PaymentResult {
        status: match settlement {
            Settlement::RefundedLate => "refunded",
            Settlement::Confirmed | Settlement::AlreadyRecorded | Settlement::UnknownOrder => {
                "confirmed"
            }
        },
    }))
}

/// Start a Stripe payment
///
/// Creates a Stripe PaymentIntent for the student's booking or package; the answer has
/// the client secret Stripe.js needs. The payment settles through the webhook.
#[utoipa::path(
    post, path = "/payments/stripe/intents", tag = "payments",
    security(("session" = [])),
    request_body = PayFor,
    responses(
        (status = 200, body = StripeCheckout),
        (status = 404, description = "BOOKING_NOT_FOUND, PACKAGE_NOT_FOUND"),
        (status = 409, description = "NOT_PAYABLE, GATEWAY_DISABLED"),
        (status = 502, description = "GATEWAY_UNAVAILABLE"),
    )
)]
pub async fn stripe_intent(
    State(state): State<AppState>,
    StudentUser(student): StudentUser,
    Json(request): Json<PayFor>,
) -> Result<Json<StripeCheckout>> {
    let payable = payable(&state, student.user_id, &request).await?;
    let config = gateways::stripe(&state).await?;
    let amount = gateways::to_paise(payable.amount);
    // One intent per thing and amount: a retried checkout gets the same intent back.
    let idempotency_key = format!("{}-{amount}", payable.reference);
    let intent =
        gateways::stripe_intent(config, amount, &payable.reference, &idempotency_key).await?;
    store_order(
        &state,
        Gateway::Stripe,
        &intent.id,
        &payable,
        student.user_id,
        amount,
    )
    .await?;
    Ok(Json(StripeCheckout {
        client_secret: intent.client_secret,
        publishable_key: config.publishable_key.clone(),
        amount,
        currency: "INR",
    }))
}

/// The caller's unpaid booking (still held) or package, with the server's amount.
async fn payable(state: &AppState, student_id: Uuid, request: &PayFor) -> Result<Payable> {
    match (request.booking_id, request.package_id) {
        (Some(booking_id), None) => {
            let row: Option<(BookingStatus, Option<chrono::DateTime<chrono::Utc>>, Decimal)> = sqlx::query_as(
                "SELECT status, hold_expires_at, class_fee FROM bookings WHERE booking_id = $1 AND student_id = $2",
            )
            .bind(booking_id)
            .bind(student_id)
            .fetch_optional(&state.db)
            .await?;
            let (status, hold, fee) = row.ok_or_else(|| {
                Error::not_found("BOOKING_NOT_FOUND", "No such booking of yours.")
            })?;
            if status != BookingStatus::PendingPayment
                || hold.is_none_or(|hold| hold <= chrono::Utc::now())
            {
                return Err(Error::conflict(
                    "NOT_PAYABLE",
                    "This booking is not waiting for payment (paid, cancelled or its hold lapsed).",
                ));
            }
            Ok(Payable {
                booking_id: Some(booking_id),
                package_id: None,
                amount: fee,
                reference: format!("bk_{}", booking_id.simple()),
            })
        }
        (None, Some(package_id)) => {
            let row: Option<(PackageStatus, Decimal)> = sqlx::query_as(
                "SELECT status, price FROM packages WHERE package_id = $1 AND student_id = $2",
            )
            .bind(package_id)
            .bind(student_id)
            .fetch_optional(&state.db)
            .await?;
            let (status, price) = row.ok_or_else(|| {
                Error::not_found("PACKAGE_NOT_FOUND", "No such package of yours.")
            })?;
            if status != PackageStatus::PendingPayment {
                return Err(Error::conflict(
                    "NOT_PAYABLE",
                    "This package is not waiting for payment.",
                ));
            }
            Ok(Payable {
                booking_id: None,
                package_id: Some(package_id),
                amount: price,
                reference: format!("pk_{}", package_id.simple()),
            })
        }
        _ => Err(Error::bad_request(
            "INVALID_BODY",
            "Give exactly one of bookingId and packageId.",
        )),
    }
}

async fn store_order(
    state: &AppState,
    gateway: Gateway,
    order_id: &str,
    payable: &Payable,
    student_id: Uuid,
    amount: i64,
) -> Result<()> {
    sqlx::query(
        r#"INSERT INTO payment_orders (payment_order_id, gateway, gateway_order_id, booking_id, package_id, student_id, amount_minor, currency)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 'INR')
           ON CONFLICT (gateway_order_id) DO NOTHING"#,
    )
    .bind(Uuid::new_v4())
    .bind(gateway.name())
    .bind(order_id)
    .bind(payable.booking_id)
    .bind(payable.package_id)
    .bind(student_id)
    .bind(amount)
    .execute(&state.db)
    .await?;
    Ok(())
}

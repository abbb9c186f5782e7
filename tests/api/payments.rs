//! Payments end to end against mock Razorpay and Stripe servers speaking their HTTP formats,
//! with real signatures computed from test secrets.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::IntoResponse;
use axum::routing::post;
use chrono::{Duration, Utc};
use futures::future::join_all;
use platform::config::{PaymentsConfig, RazorpayConfig, Secret, StripeConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::helpers::*;

const RAZORPAY_SECRET: &str = "rzp_test_secret";
const RAZORPAY_WEBHOOK_SECRET: &str = "rzp_webhook_secret";
const STRIPE_WEBHOOK_SECRET: &str = "whsec_test_secret";

/// Records what the gateways were asked, and can play dead.
#[derive(Default)]
struct Gateways {
    requests: Mutex<Vec<(String, HeaderMap, String)>>,
    counter: AtomicUsize,
    down: AtomicBool,
}

async fn gateway(
    State(gateways): State<Arc<Gateways>>,
    path: Option<Path<String>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: String,
) -> impl IntoResponse {
    let _ = path;
    if gateways.down.load(Ordering::SeqCst) {
        return (
            AxumStatus::SERVICE_UNAVAILABLE,
            axum::Json(json!({"error": {"code": "SERVER_ERROR"}})),
        )
            .into_response();
    }
    let n = gateways.counter.fetch_add(1, Ordering::SeqCst);
    gateways
        .requests
        .lock()
        .await
        .push((uri.path().to_owned(), headers, body));
    let answer = match uri.path() {
        "/v1/orders" => json!({"id": format!("order_{n}"), "entity": "order", "status": "created"}),
        "/v1/payment_intents" => {
            json!({"id": format!("pi_{n}"), "client_secret": format!("pi_{n}_secret_x"), "status": "requires_payment_method"})
        }
        "/v1/refunds" => json!({"id": format!("re_{n}"), "status": "succeeded"}),
        _ => json!({"id": format!("rfnd_{n}"), "entity": "refund", "status": "processed"}),
    };
    axum::Json(answer).into_response()
}

struct PaymentsApp {
    app: TestApp,
    gateways: Arc<Gateways>,
    admin: String,
    mentor_id: Uuid,
    mentor: String,
    student_id: Uuid,
    student: String,
}

async fn spawn_with_gateways() -> PaymentsApp {
    let gateways = Arc::new(Gateways::default());
    let router = Router::new()
        .route("/v1/orders", post(gateway))
        .route("/v1/payments/{payment}/refund", post(gateway))
        .route("/v1/payment_intents", post(gateway))
        .route("/v1/refunds", post(gateway))
        .with_state(gateways.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let app = spawn_app_with(Options {
        payments: PaymentsConfig {
            razorpay: Some(RazorpayConfig {
                key_id: "rzp_test_key".into(),
                key_secret: Secret::from(RAZORPAY_SECRET),
                webhook_secret: Secret::from(RAZORPAY_WEBHOOK_SECRET),
                base_url: base_url.clone(),
            }),
            stripe: Some(StripeConfig {
                publishable_key: "pk_test_x".into(),
                secret_key: Secret::from("sk_test_x"),
                webhook_secret: Secret::from(STRIPE_WEBHOOK_SECRET),
                base_url,
            }),
        },
        ..Default::default()
    })
    .await;
    let (_, admin) = app.admin().await;
    let (mentor_id, mentor) = app.open_mentor("paid-mentor@example.com", &admin).await;
    let (student_id, student) = app.student("payer@example.com").await;
    PaymentsApp {
        app,
        gateways,
        admin,
        mentor_id,
        mentor,
        student_id,
        student,
    }
}

impl PaymentsApp {
    async fn held_booking(&self, days: i64) -> Uuid {
        let body = json!({"mentorId": self.mentor_id, "subject": "Physics", "sessionType": "regular",
                          "scheduledAt": at(days, 10, 0).to_rfc3339(), "idempotencyKey": Uuid::new_v4().to_string()});
        let created = self
            .app
            .post("/api/bookings", &body, Some(&self.student))
            .await
            .expect_status(StatusCode::CREATED)
            .await;
        created["bookingId"].as_str().unwrap().parse().unwrap()
    }

    async fn razorpay_order(&self, booking_id: Uuid) -> String {
        // A client-supplied amount is ignored.
        let body = json!({"bookingId": booking_id, "amount": 1});
        let order = self
            .app
            .post("/api/payments/razorpay/orders", &body, Some(&self.student))
            .await
            .expect_status(StatusCode::OK)
            .await;
        assert_eq!(order["amount"], 60000);
        assert_eq!(order["keyId"], "rzp_test_key");
        order["orderId"].as_str().unwrap().to_owned()
    }

    async fn verify(&self, order_id: &str, payment_id: &str) -> reqwest::Response {
        let signature = payments::signatures::sign(
            RAZORPAY_SECRET,
            format!("{order_id}|{payment_id}").as_bytes(),
        );
        let body = json!({"orderId": order_id, "paymentId": payment_id, "signature": signature});
        self.app
            .post("/api/payments/razorpay/verify", &body, Some(&self.student))
            .await
    }

    async fn razorpay_webhook(
        &self,
        event_id: &str,
        event: &Value,
        secret: &str,
    ) -> reqwest::Response {
        let raw = event.to_string();
        self.app
            .client
            .post(self.app.url("/api/payments/razorpay/webhook"))
            .header("content-type", "application/json")
            .header("x-razorpay-event-id", event_id)
            .header(
                "x-razorpay-signature",
                payments::signatures::sign(secret, raw.as_bytes()),
            )
            .body(raw)
            .send()
            .await
            .unwrap()
    }

    async fn status(&self, booking_id: Uuid) -> String {
        sqlx::query_scalar("SELECT status FROM bookings WHERE booking_id = $1")
            .bind(booking_id)
            .fetch_one(&self.app.db)
            .await
            .unwrap()
    }

    async fn ledger(&self, kind: &str) -> Vec<(String, String)> {
        sqlx::query_as("SELECT amount::text, status FROM payment_transactions WHERE kind = $1 ORDER BY created_at")
            .bind(kind)
            .fetch_all(&self.app.db)
            .await
            .unwrap()
    }

    async fn reconcile(&self) -> Value {
        let invocation = json!({"Data": {"myTimer": {"ScheduleStatus": null, "IsPastDue": false}}, "Metadata": {}});
        let response = self
            .app
            .client
            .post(self.app.url("/payments-reconcile"))
            .json(&invocation)
            .send()
            .await
            .unwrap();
        response.expect_status(StatusCode::OK).await
    }
}

fn captured(order_id: &str, payment_id: &str) -> Value {
    json!({"event": "payment.captured", "payload": {"payment": {"entity": {"id": payment_id, "order_id": order_id, "amount": 60000, "status": "captured"}}}})
}

#[tokio::test]
async fn checkout_verification_confirms_once_with_the_servers_amount_and_rejects_tampering() {
    let pay = spawn_with_gateways().await;
    let booking_id = pay.held_booking(3).await;
    let order_id = pay.razorpay_order(booking_id).await;
    let sent = pay.gateways.requests.lock().await.last().cloned().unwrap();
    let sent_body: Value = serde_json::from_str(&sent.2).unwrap();
    assert_eq!(sent_body["amount"], 60000);
    assert_eq!(sent_body["currency"], "INR");
    assert!(
        sent.1["authorization"]
            .to_str()
            .unwrap()
            .starts_with("Basic ")
    );

    let tampered = json!({"orderId": order_id, "paymentId": "pay_1", "signature": payments::signatures::sign("wrong", b"x")});
    let refused = pay
        .app
        .post(
            "/api/payments/razorpay/verify",
            &tampered,
            Some(&pay.student),
        )
        .await;
    refused
        .expect_problem(StatusCode::BAD_REQUEST, "SIGNATURE_INVALID")
        .await;
    assert_eq!(pay.status(booking_id).await, "pending_payment");

    let verified = pay
        .verify(&order_id, "pay_1")
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(verified["status"], "confirmed");
    assert_eq!(pay.status(booking_id).await, "confirmed");
    // The webhook arriving afterwards changes nothing.
    pay.razorpay_webhook(
        "evt_after",
        &captured(&order_id, "pay_1"),
        RAZORPAY_WEBHOOK_SECRET,
    )
    .await
    .expect_status(StatusCode::OK)
    .await;
    assert_eq!(
        pay.ledger("payment").await,
        vec![("600.00".to_owned(), "succeeded".to_owned())]
    );
}

#[tokio::test]
async fn webhooks_need_a_valid_signature_and_replays_are_ignored() {
    let pay = spawn_with_gateways().await;
    let booking_id = pay.held_booking(3).await;
    let order_id = pay.razorpay_order(booking_id).await;
    let event = captured(&order_id, "pay_2");

    let forged = pay
        .razorpay_webhook("evt_1", &event, "not-the-secret")
        .await;
    forged
        .expect_problem(StatusCode::UNAUTHORIZED, "SIGNATURE_INVALID")
        .await;
    let unsigned = pay
        .app
        .client
        .post(pay.app.url("/api/payments/razorpay/webhook"))
        .json(&event)
        .send()
        .await
        .unwrap();
    unsigned
        .expect_problem(StatusCode::UNAUTHORIZED, "SIGNATURE_INVALID")
        .await;
    assert_eq!(pay.status(booking_id).await, "pending_payment");

    let first = pay
        .razorpay_webhook("evt_1", &event, RAZORPAY_WEBHOOK_SECRET)
        .await
        .expect_status(StatusCode::OK)
        .await;
    let replay = pay
        .razorpay_webhook("evt_1", &event, RAZORPAY_WEBHOOK_SECRET)
        .await
        .expect_status(StatusCode::OK)
        .await;

    assert_eq!(
        (first["status"].as_str(), replay["status"].as_str()),
        (Some("processed"), Some("duplicate"))
    );
    assert_eq!(pay.status(booking_id).await, "confirmed");
    // Verification arriving after the webhook is accepted and changes nothing.
    pay.verify(&order_id, "pay_2")
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(pay.ledger("payment").await.len(), 1);
}

#[tokio::test]
async fn fifty_parallel_verifications_and_webhooks_make_one_ledger_entry_and_one_confirmation() {
    let pay = spawn_with_gateways().await;
    let booking_id = pay.held_booking(4).await;
    let order_id = pay.razorpay_order(booking_id).await;
    let event = captured(&order_id, "pay_3");

    let verifications = (0..50).map(|_| pay.verify(&order_id, "pay_3"));
    let webhooks = (0..50).map(|n| {
        pay.razorpay_webhook(
            if n % 2 == 0 { "evt_a" } else { "evt_b" },
            &event,
            RAZORPAY_WEBHOOK_SECRET,
        )
    });
    let (verified, delivered) = tokio::join!(join_all(verifications), join_all(webhooks));

    for response in verified.into_iter().chain(delivered) {
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(pay.ledger("payment").await.len(), 1);
    let confirmations: i64 = sqlx::query_scalar("SELECT count(*) FROM email_outbox WHERE recipient = 'payer@example.com' AND category = 'booking'")
        .fetch_one(&pay.app.db)
        .await
        .unwrap();
    assert_eq!(confirmations, 1, "one confirmation email to the student");
}

#[tokio::test]
async fn a_payment_after_the_hold_lapsed_is_refunded_in_full() {
    let pay = spawn_with_gateways().await;
    let booking_id = pay.held_booking(5).await;
    let order_id = pay.razorpay_order(booking_id).await;
    pay.app
        .execute(
            "UPDATE bookings SET status = 'expired' WHERE booking_id = $1",
            booking_id,
        )
        .await;

    let late = pay
        .razorpay_webhook(
            "evt_late",
            &captured(&order_id, "pay_late"),
            RAZORPAY_WEBHOOK_SECRET,
        )
        .await;

    late.expect_status(StatusCode::OK).await;
    assert_eq!(pay.status(booking_id).await, "expired");
    assert_eq!(
        pay.ledger("refund").await,
        vec![("600.00".to_owned(), "succeeded".to_owned())]
    );
    let requests = pay.gateways.requests.lock().await;
    let refund = requests
        .iter()
        .find(|(path, _, _)| path == "/v1/payments/pay_late/refund")
        .expect("a refund call");
    assert_eq!(
        serde_json::from_str::<Value>(&refund.2).unwrap()["amount"],
        60000
    );
    assert!(refund.1.contains_key("x-refund-idempotency"));
}

#[tokio::test]
async fn cancellations_refund_the_policys_share_through_the_gateway_once() {
    let pay = spawn_with_gateways().await;
    let (second_id, second) = pay.app.student("second-payer@example.com").await;
    // The student cancels 12-24 h ahead: 50 %. An admin cancels another: 100 %.
    let half = pay
        .app
        .insert_booking(
            pay.mentor_id,
            pay.student_id,
            Utc::now() + Duration::hours(18),
            "pending_payment",
        )
        .await;
    let full = pay
        .app
        .insert_booking(
            pay.mentor_id,
            second_id,
            Utc::now() + Duration::hours(40),
            "pending_payment",
        )
        .await;
    for (booking_id, token, payment) in [
        (half, &pay.student, "pay_half"),
        (full, &second, "pay_full"),
    ] {
        pay.app.execute("UPDATE bookings SET hold_expires_at = now() + interval '10 minutes' WHERE booking_id = $1", booking_id).await;
        let order = pay
            .app
            .post(
                "/api/payments/razorpay/orders",
                &json!({"bookingId": booking_id}),
                Some(token),
            )
            .await
            .expect_status(StatusCode::OK)
            .await;
        let order_id = order["orderId"].as_str().unwrap();
        let signature =
            payments::signatures::sign(RAZORPAY_SECRET, format!("{order_id}|{payment}").as_bytes());
        let verified = pay
            .app
            .post(
                "/api/payments/razorpay/verify",
                &json!({"orderId": order_id, "paymentId": payment, "signature": signature}),
                Some(token),
            )
            .await;
        verified.expect_status(StatusCode::OK).await;
    }
    pay.app
        .post(
            &format!("/api/bookings/{half}/cancel"),
            &json!({"reason": "exam"}),
            Some(&pay.student),
        )
        .await;
    pay.app
        .post(
            &format!("/api/bookings/{full}/cancel"),
            &json!({"reason": "mentor ill"}),
            Some(&pay.admin),
        )
        .await;

    // Two overlapping runs, then one more: each refund still goes out once.
    tokio::join!(pay.reconcile(), pay.reconcile());
    pay.reconcile().await;

    let mut refunds = pay.ledger("refund").await;
    refunds.sort();
    assert_eq!(
        refunds,
        vec![
            ("300.00".to_owned(), "succeeded".to_owned()),
            ("600.00".to_owned(), "succeeded".to_owned())
        ]
    );
    let calls = pay
        .gateways
        .requests
        .lock()
        .await
        .iter()
        .filter(|(path, _, _)| path.ends_with("/refund"))
        .count();
    assert_eq!(calls, 2, "each refund sent once");

    // The admin's ledger: the two payments and their refunds, newest first, paged.
    let ledger = |query: &'static str| {
        let pay = &pay;
        async move {
            pay.app
                .get(&format!("/api/admin/ledger?{query}"), Some(&pay.admin))
                .await
                .expect_status(StatusCode::OK)
                .await
        }
    };
    let amounts = |page: &Value| -> Vec<(String, String)> {
        let entries = page["items"].as_array().unwrap().iter();
        let mut amounts: Vec<_> = entries
            .map(|entry| {
                (
                    entry["kind"].as_str().unwrap().to_owned(),
                    entry["amount"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        amounts.sort();
        amounts
    };
    assert_eq!(
        amounts(&ledger("kind=payment&status=succeeded").await),
        [
            ("payment".to_owned(), "600.00".to_owned()),
            ("payment".to_owned(), "600.00".to_owned())
        ]
    );
    let first = ledger("limit=3").await;
    let cursor = first["nextCursor"].as_str().unwrap().to_owned();
    let rest = pay
        .app
        .get(
            &format!("/api/admin/ledger?limit=3&cursor={cursor}"),
            Some(&pay.admin),
        )
        .await
        .expect_status(StatusCode::OK)
        .await;
    let mut all = amounts(&first);
    all.extend(amounts(&rest));
    all.sort();
    assert_eq!(
        all,
        [
            ("payment", "600.00"),
            ("payment", "600.00"),
            ("refund", "300.00"),
            ("refund", "600.00")
        ]
        .map(|(kind, amount)| (kind.to_owned(), amount.to_owned()))
    );
}

#[tokio::test]
async fn a_gateway_outage_leaves_the_booking_waiting_and_says_so() {
    let pay = spawn_with_gateways().await;
    let booking_id = pay.held_booking(6).await;
    pay.gateways.down.store(true, Ordering::SeqCst);

    let response = pay
        .app
        .post(
            "/api/payments/razorpay/orders",
            &json!({"bookingId": booking_id}),
            Some(&pay.student),
        )
        .await;

    response
        .expect_problem(StatusCode::BAD_GATEWAY, "GATEWAY_UNAVAILABLE")
        .await;
    assert_eq!(pay.status(booking_id).await, "pending_payment");
    assert_eq!(pay.app.count("payment_orders").await, 0);
}

#[tokio::test]
async fn stripe_intents_and_signed_webhooks_confirm_the_booking() {
    let pay = spawn_with_gateways().await;
    let booking_id = pay.held_booking(7).await;
    let intent = pay
        .app
        .post(
            "/api/payments/stripe/intents",
            &json!({"bookingId": booking_id}),
            Some(&pay.student),
        )
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(
        (intent["amount"].as_i64(), intent["publishableKey"].as_str()),
        (Some(60000), Some("pk_test_x"))
    );
    let sent = pay.gateways.requests.lock().await.last().cloned().unwrap();
    assert!(
        sent.2.contains("amount=60000") && sent.2.contains("currency=inr"),
        "{}",
        sent.2
    );
    assert!(sent.1.contains_key("idempotency-key"));
    let intent_id = intent["clientSecret"]
        .as_str()
        .unwrap()
        .split("_secret")
        .next()
        .unwrap()
        .to_owned();
    let event = json!({"id": "evt_s1", "type": "payment_intent.succeeded", "data": {"object": {"id": intent_id}}}).to_string();
    let send = |header: String| {
        let event = event.clone();
        let app = &pay.app;
        async move {
            app.client
                .post(app.url("/api/payments/stripe/webhook"))
                .header("stripe-signature", header)
                .body(event)
                .send()
                .await
                .unwrap()
        }
    };
    let now = Utc::now().timestamp();
    let signed_at = |t: i64| {
        payments::signatures::sign(STRIPE_WEBHOOK_SECRET, format!("{t}.{event}").as_bytes())
    };

    (send(format!("t={},v1={}", now - 400, signed_at(now - 400))).await)
        .expect_problem(StatusCode::UNAUTHORIZED, "SIGNATURE_INVALID")
        .await;
    (send(format!("t={now},v1={}", signed_at(now - 1))).await)
        .expect_problem(StatusCode::UNAUTHORIZED, "SIGNATURE_INVALID")
        .await;
    let accepted = send(format!("t={now},v1=deadbeef,v1={}", signed_at(now))).await;

    assert_eq!(
        accepted.expect_status(StatusCode::OK).await["status"],
        "processed"
    );
    assert_eq!(pay.status(booking_id).await, "confirmed");
}

#[tokio::test]
async fn payouts_are_due_a_day_after_completion_and_recorded_once() {
    let pay = spawn_with_gateways().await;
    let done = pay
        .app
        .insert_booking(
            pay.mentor_id,
            pay.student_id,
            Utc::now() - Duration::hours(30),
            "completed",
        )
        .await;
    pay.app
        .execute(
            "UPDATE bookings SET completed_at = now() - interval '25 hours' WHERE booking_id = $1",
            done,
        )
        .await;
    let recent = pay
        .app
        .insert_booking(
            pay.mentor_id,
            pay.student_id,
            Utc::now() - Duration::hours(3),
            "completed",
        )
        .await;
    pay.app
        .execute(
            "UPDATE bookings SET completed_at = now() - interval '2 hours' WHERE booking_id = $1",
            recent,
        )
        .await;

    let due = pay
        .app
        .get("/api/admin/payouts", Some(&pay.admin))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(due.as_array().unwrap().len(), 1);
    assert_eq!(
        (
            due[0]["bookingId"].as_str(),
            due[0]["amount"].as_str(),
            due[0]["upiId"].as_str()
        ),
        (
            Some(done.to_string().as_str()),
            Some("493.80"),
            Some("mentor@okaxis")
        )
    );
    pay.app
        .get("/api/admin/payouts", Some(&pay.student))
        .await
        .expect_problem(StatusCode::FORBIDDEN, "FORBIDDEN_ROLE")
        .await;

    let paid = pay
        .app
        .post(
            &format!("/api/admin/payouts/{done}/paid"),
            &json!({"reference": "UPI123"}),
            Some(&pay.admin),
        )
        .await;
    assert_eq!(paid.status(), StatusCode::NO_CONTENT);
    pay.app
        .post(
            &format!("/api/admin/payouts/{done}/paid"),
            &json!({"reference": "UPI124"}),
            Some(&pay.admin),
        )
        .await
        .expect_problem(StatusCode::CONFLICT, "PAYOUT_RECORDED")
        .await;
    pay.app
        .post(
            &format!("/api/admin/payouts/{recent}/paid"),
            &json!({"reference": "UPI125"}),
            Some(&pay.admin),
        )
        .await
        .expect_problem(StatusCode::CONFLICT, "PAYOUT_NOT_DUE")
        .await;
    assert!(
        pay.app
            .get("/api/admin/payouts", Some(&pay.admin))
            .await
            .expect_status(StatusCode::OK)
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );

    // The mentor sees the payout with its reference, and the class still to be paid.
    let mine = |status: &'static str| {
        let pay = &pay;
        async move {
            pay.app
                .get(
                    &format!("/api/mentors/me/payouts?status={status}"),
                    Some(&pay.mentor),
                )
                .await
                .expect_status(StatusCode::OK)
                .await
        }
    };
    let paid = mine("paid").await;
    assert_eq!(paid.as_array().unwrap().len(), 1);
    assert_eq!(
        (
            &paid[0]["bookingId"],
            &paid[0]["amount"],
            &paid[0]["reference"]
        ),
        (&json!(done), &json!("493.80"), &json!("UPI123"))
    );
    assert!(paid[0]["paidAt"].is_string());
    let pending = mine("pending").await;
    assert_eq!(pending.as_array().unwrap().len(), 1);
    assert_eq!(pending[0]["bookingId"], json!(recent));
    assert_eq!(pending[0]["paidAt"], Value::Null);
    for (token, status) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(pay.student.as_str()), StatusCode::FORBIDDEN),
        (Some(pay.admin.as_str()), StatusCode::FORBIDDEN),
    ] {
        let response = pay.app.get("/api/mentors/me/payouts", token).await;
        assert_eq!(response.status(), status);
    }

    // The admin's ledger holds the payout, found by kind and by booking.
    for query in ["kind=payout", &format!("bookingId={done}")] {
        let ledger = pay
            .app
            .get(&format!("/api/admin/ledger?{query}"), Some(&pay.admin))
            .await
            .expect_status(StatusCode::OK)
            .await;
        let entries = ledger["items"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{query}");
        assert_eq!(
            (
                &entries[0]["kind"],
                &entries[0]["amount"],
                &entries[0]["gatewayReference"]
            ),
            (&json!("payout"), &json!("493.80"), &json!("UPI123"))
        );
    }
    let refunds = pay
        .app
        .get("/api/admin/ledger?kind=refund", Some(&pay.admin))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(refunds["items"], json!([]));
    for (token, status) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(pay.student.as_str()), StatusCode::FORBIDDEN),
        (Some(pay.mentor.as_str()), StatusCode::FORBIDDEN),
    ] {
        let response = pay.app.get("/api/admin/ledger", token).await;
        assert_eq!(response.status(), status);
    }
}

#[tokio::test]
async fn a_gateway_without_keys_is_disabled_for_the_bookings_own_student_only() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app.open_mentor("nokeys-mentor@example.com", &admin).await;
    let (student_id, student) = app.student("nokeys@example.com").await;
    let (_, stranger) = app.student("nokeys-stranger@example.com").await;
    let booking_id = app
        .insert_booking(
            mentor_id,
            student_id,
            chrono::Utc::now() + chrono::Duration::days(2),
            "pending_payment",
        )
        .await;
    sqlx::query(
        "UPDATE bookings SET hold_expires_at = now() + interval '10 minutes' WHERE booking_id = $1",
    )
    .bind(booking_id)
    .execute(&app.db)
    .await
    .unwrap();

    for path in [
        "/api/payments/razorpay/orders",
        "/api/payments/stripe/intents",
    ] {
        let order = json!({"bookingId": booking_id});
        // Checked in this order: whose booking it is, then the gateway.
        app.post(path, &order, Some(&stranger))
            .await
            .expect_problem(StatusCode::NOT_FOUND, "BOOKING_NOT_FOUND")
            .await;
        app.post(path, &order, Some(&student))
            .await
            .expect_problem(StatusCode::CONFLICT, "GATEWAY_DISABLED")
            .await;
    }
}

#[tokio::test]
async fn refund_webhooks_settle_the_ledger_including_refunds_made_elsewhere() {
    let pay = spawn_with_gateways().await;
    let booking_id = pay.held_booking(8).await;
    let order_id = pay.razorpay_order(booking_id).await;
    pay.verify(&order_id, "pay_dash")
        .await
        .expect_status(StatusCode::OK)
        .await;
    let refund = |event: &str, id: &str| json!({"event": event, "payload": {"refund": {"entity": {"id": id, "payment_id": "pay_dash", "amount": 20000, "status": "processed"}}}});

    // A partial refund made in the gateway's dashboard still reaches the ledger.
    let reported = pay
        .razorpay_webhook(
            "evt_r1",
            &refund("refund.processed", "rfnd_dash"),
            RAZORPAY_WEBHOOK_SECRET,
        )
        .await;
    reported.expect_status(StatusCode::OK).await;
    assert_eq!(
        pay.ledger("refund").await,
        vec![("200.00".to_owned(), "succeeded".to_owned())]
    );

    let failed = pay
        .razorpay_webhook(
            "evt_r2",
            &refund("refund.failed", "rfnd_dash"),
            RAZORPAY_WEBHOOK_SECRET,
        )
        .await;
    failed.expect_status(StatusCode::OK).await;
    assert_eq!(
        pay.ledger("refund").await,
        vec![("200.00".to_owned(), "failed".to_owned())]
    );
}

#[tokio::test]
async fn paying_for_a_package_activates_it_once() {
    let pay = spawn_with_gateways().await;
    pay.app
        .insert_booking(
            pay.mentor_id,
            pay.student_id,
            Utc::now() - Duration::days(2),
            "completed",
        )
        .await;
    let bought = pay
        .app
        .post(
            "/api/packages",
            &json!({"mentorId": pay.mentor_id, "subject": "Physics"}),
            Some(&pay.student),
        )
        .await;
    let package_id = bought.expect_status(StatusCode::CREATED).await["packageId"]
        .as_str()
        .unwrap()
        .to_owned();

    let order = pay
        .app
        .post(
            "/api/payments/razorpay/orders",
            &json!({"packageId": package_id}),
            Some(&pay.student),
        )
        .await;
    let order = order.expect_status(StatusCode::OK).await;
    assert_eq!(order["amount"], 360000, "6 × 600.00 in paise");
    let order_id = order["orderId"].as_str().unwrap();
    pay.verify(order_id, "pay_pkg")
        .await
        .expect_status(StatusCode::OK)
        .await;
    pay.razorpay_webhook(
        "evt_pkg",
        &captured(order_id, "pay_pkg"),
        RAZORPAY_WEBHOOK_SECRET,
    )
    .await
    .expect_status(StatusCode::OK)
    .await;

    let packages = pay
        .app
        .get("/api/packages", Some(&pay.student))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(packages[0]["status"], "active");
    assert_eq!(
        pay.ledger("payment").await,
        vec![("3600.00".to_owned(), "succeeded".to_owned())]
    );
    let again = pay
        .app
        .post(
            "/api/payments/razorpay/orders",
            &json!({"packageId": package_id}),
            Some(&pay.student),
        )
        .await;
    again
        .expect_problem(StatusCode::CONFLICT, "NOT_PAYABLE")
        .await;
}

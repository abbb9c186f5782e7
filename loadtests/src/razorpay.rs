//! A Razorpay stand-in for the fault runs: creates orders as Razorpay's API does and signs what
//! Checkout and Razorpay's webhooks would send, with the secrets it gives the handlers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};

const KEY_SECRET: &str = "rzp_load_secret";
const WEBHOOK_SECRET: &str = "rzp_load_webhook_secret";

pub struct Razorpay {
    base_url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Razorpay {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let router = Router::new()
            .route("/v1/orders", post(create_order))
            .with_state(Arc::new(Orders {
                prefix: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
                count: AtomicU64::new(0),
            }));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Razorpay { base_url, server })
    }

    /// The handlers' settings for it.
    pub fn settings(&self) -> [(&'static str, String); 4] {
        [
            ("RAZORPAY_KEY_ID", "rzp_load_key".to_owned()),
            ("RAZORPAY_KEY_SECRET", KEY_SECRET.to_owned()),
            ("RAZORPAY_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
            ("RAZORPAY_BASE_URL", self.base_url.clone()),
        ]
    }
}

impl Drop for Razorpay {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// What Checkout hands the client after a payment: its signature of `order|payment`.
pub fn checkout_signature(order_id: &str, payment_id: &str) -> String {
    payments::signatures::sign(KEY_SECRET, format!("{order_id}|{payment_id}").as_bytes())
}

/// Razorpay's `payment.captured` event for the payment, and its signature.
pub fn captured_webhook(order_id: &str, payment_id: &str, amount_minor: i64) -> (String, String) {
    let event = json!({"event": "payment.captured", "payload": {"payment": {"entity": {
        "id": payment_id, "order_id": order_id, "amount": amount_minor, "status": "captured"}}}});
    let raw = event.to_string();
    let signature = payments::signatures::sign(WEBHOOK_SECRET, raw.as_bytes());
    (raw, signature)
}

/// Order ids unique to this mock (the prefix) and within it (the count).
struct Orders {
    prefix: String,
    count: AtomicU64,
}

async fn create_order(State(orders): State<Arc<Orders>>) -> axum::Json<Value> {
    let n = orders.count.fetch_add(1, Ordering::SeqCst);
    let id = format!("order_{}{n}", orders.prefix);
    axum::Json(json!({"id": id, "entity": "order", "status": "created"}))
}

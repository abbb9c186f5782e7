//! A SendGrid stand-in for the fault runs: accepts `POST /v3/mail/send` as SendGrid does (202)
//! and counts deliveries by the outbox id the mailer sends in `custom_args`, so the run can
//! check that every e-mail arrived exactly once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;

type Deliveries = Arc<Mutex<HashMap<String, u32>>>;

pub struct SendGrid {
    pub base_url: String,
    deliveries: Deliveries,
    server: tokio::task::JoinHandle<()>,
}

impl SendGrid {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let deliveries = Deliveries::default();
        let router = Router::new()
            .route("/v3/mail/send", post(send))
            .with_state(deliveries.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(SendGrid {
            base_url,
            deliveries,
            server,
        })
    }

    /// The handlers' settings for it.
    pub fn settings(&self) -> [(&'static str, String); 2] {
        [
            ("SENDGRID_API_KEY", "SG.load-test".to_owned()),
            ("SENDGRID_BASE_URL", self.base_url.clone()),
        ]
    }

    /// Deliveries so far, by outbox id.
    pub fn deliveries(&self) -> HashMap<String, u32> {
        self.deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for SendGrid {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn send(State(deliveries): State<Deliveries>, body: axum::Json<Value>) -> StatusCode {
    let Some(outbox_id) = body["custom_args"]["outbox_id"].as_str() else {
        return StatusCode::BAD_REQUEST;
    };
    *deliveries
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(outbox_id.to_owned())
        .or_default() += 1;
    StatusCode::ACCEPTED
}

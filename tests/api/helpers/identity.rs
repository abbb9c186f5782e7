//! A stand-in for the managed identity endpoint (App Service's protocol, as `IDENTITY_ENDPOINT`
//! serves it in Azure), whose tokens a test makes: each one also becomes a credential of the
//! service it is for, so the service accepts exactly the tokens issued so far (and not revoked).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::get;
use azure_clients::entra::ManagedIdentity;

use super::*;

const IDENTITY_HEADER: &str = "stand-in-identity-header";
/// Renewed 5 minutes before expiry, a token lasting 5 minutes and 2 seconds is renewed every
/// 2 seconds (1 to 2: `expires_on` is in whole seconds).
pub const TOKEN_LIFETIME_SECS: i64 = 5 * 60 + 2;

type Mint = dyn Fn(usize) -> Pin<Box<dyn Future<Output = String> + Send>> + Send + Sync;

pub struct IdentityStandIn {
    resource: &'static str,
    mint: Box<Mint>,
    issued: Mutex<Vec<(Instant, String)>>,
    url: String,
}

impl IdentityStandIn {
    /// Serves tokens for `resource`; `mint(n)` makes the `n`th (from 0) and registers it with
    /// the service.
    pub async fn start<F, Fut>(resource: &'static str, mint: F) -> Arc<Self>
    where
        F: Fn(usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = String> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stand_in = Arc::new(Self {
            resource,
            mint: Box::new(move |n| Box::pin(mint(n))),
            issued: Mutex::new(Vec::new()),
            url: format!("http://{}/msi/token", listener.local_addr().unwrap()),
        });
        let router = axum::Router::new()
            .route("/msi/token", get(issue))
            .with_state(stand_in.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        stand_in
    }

    /// The identity the app is configured with to reach this endpoint.
    pub fn identity(&self) -> ManagedIdentity {
        ManagedIdentity::Endpoint {
            url: self.url.clone(),
            secret: Secret::from(IDENTITY_HEADER),
        }
    }

    pub fn tokens(&self) -> Vec<String> {
        self.issued
            .lock()
            .unwrap()
            .iter()
            .map(|(_, token)| token.clone())
            .collect()
    }

    /// Waits until `count` tokens were issued (at most 10 s).
    pub async fn wait_for_tokens(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.tokens().len() < count {
            assert!(
                Instant::now() < deadline,
                "{count} tokens not issued within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether a token was issued in the last 100 ms, or is about to be (renewals come every
    /// 1 to 2 s): the instant a service may hold a new credential the client is swapping in.
    pub fn renewing(&self) -> bool {
        let since = self
            .issued
            .lock()
            .unwrap()
            .last()
            .map(|(at, _)| at.elapsed());
        since.is_some_and(|since| {
            since < Duration::from_millis(100) || since > Duration::from_millis(900)
        })
    }
}

async fn issue(
    State(stand_in): State<Arc<IdentityStandIn>>,
    headers: HeaderMap,
    Query(query): Query<Value>,
) -> Result<axum::Json<Value>, AxumStatus> {
    if headers["x-identity-header"] != IDENTITY_HEADER || query["resource"] != stand_in.resource {
        return Err(AxumStatus::FORBIDDEN);
    }
    let n = stand_in.issued.lock().unwrap().len();
    let token = (stand_in.mint)(n).await;
    stand_in
        .issued
        .lock()
        .unwrap()
        .push((Instant::now(), token.clone()));
    let expires_on = chrono::Utc::now().timestamp() + TOKEN_LIFETIME_SECS;
    Ok(axum::Json(json!({
        "access_token": token, "expires_on": expires_on.to_string(),
        "resource": stand_in.resource, "token_type": "Bearer",
    })))
}

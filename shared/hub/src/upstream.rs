//! The hub's calls to the event handler: CloudEvents in HTTP binary mode (azure-contracts §2.5)
//! with `Authorization: Bearer <the service identity's token>` for the configured resource, and
//! no `ce-signature` (local auth is off), after the abuse-protection handshake (an OPTIONS the
//! handler must answer with `WebHook-Allowed-Origin`; until it does, no event is sent and
//! connects fail).

use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::EventHandler;

pub struct Upstream {
    handler: Option<EventHandler>,
    hub: String,
    /// What the service calls itself in `WebHook-Request-Origin`: its host name.
    origin: String,
    http: reqwest::Client,
    validated: OnceCell<()>,
}

/// A connect handler's 200 answer: it may set or replace who the client is and what it may do.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectAnswer {
    pub user_id: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

/// One client connection, as the events describe it.
pub struct Caller<'a> {
    pub connection_id: &'a str,
    pub user_id: Option<&'a str>,
    pub subprotocol: Option<&'a str>,
}

impl Upstream {
    pub fn new(handler: Option<EventHandler>, hub: &str, origin: String) -> Self {
        Self {
            handler,
            hub: hub.to_owned(),
            origin,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            validated: OnceCell::new(),
        }
    }

    /// The blocking `connect` event: `Err(status)` rejects the client's handshake with it.
    pub async fn connect(
        &self,
        caller: &Caller<'_>,
        body: &Value,
    ) -> Result<ConnectAnswer, StatusCode> {
        if self.handler.is_none() {
            return Ok(ConnectAnswer::default());
        }
        let response = self
            .send(
                caller,
                "azure.webpubsub.sys.connect",
                "connect",
                "application/json",
                body.to_string().into(),
            )
            .await
            .ok_or(StatusCode::INTERNAL_SERVER_ERROR)?;
        let status = StatusCode::from_u16(response.status().as_u16())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if !status.is_success() {
            return Err(status);
        }
        let text = response.text().await.unwrap_or_default();
        if status == StatusCode::NO_CONTENT || text.trim().is_empty() {
            return Ok(ConnectAnswer::default());
        }
        serde_json::from_str(&text).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// `connected` and `disconnected`: the handler's answer does not matter.
    pub async fn notify(&self, caller: &Caller<'_>, event: &str, body: &Value) {
        if self.handler.is_some() {
            self.send(
                caller,
                &format!("azure.webpubsub.sys.{event}"),
                event,
                "application/json",
                body.to_string().into(),
            )
            .await;
        }
    }

    /// A client's `event` frame. `Ok(Some(..))` is the handler's answer to send back to the
    /// client (content type and body); `Err(())` when the handler failed.
    pub async fn user_event(
        &self,
        caller: &Caller<'_>,
        event: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<Option<(String, Bytes)>, ()> {
        if self.handler.is_none() {
            return Ok(None);
        }
        let response = self
            .send(
                caller,
                &format!("azure.webpubsub.user.{event}"),
                event,
                content_type,
                body,
            )
            .await
            .ok_or(())?;
        if !response.status().is_success() {
            return Err(());
        }
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let body = response.bytes().await.map_err(|_| ())?;
        Ok((!body.is_empty()).then_some((content_type, body)))
    }

    async fn send(
        &self,
        caller: &Caller<'_>,
        kind: &str,
        event: &str,
        content_type: &str,
        body: Bytes,
    ) -> Option<reqwest::Response> {
        let handler = self.handler.as_ref()?;
        let url = handler.url.as_str();
        if !self.validate(url).await {
            tracing::warn!(url, "event handler failed the abuse-protection check");
            return None;
        }
        let token = handler
            .issuer
            .token_for(&handler.principal_id, &handler.resource);
        let mut request = self
            .http
            .post(url)
            .bearer_auth(token)
            .header("content-type", content_type)
            .header("webhook-request-origin", &self.origin)
            .header("ce-specversion", "1.0")
            .header("ce-awpsversion", "1.0")
            .header("ce-type", kind)
            .header(
                "ce-source",
                format!("/hubs/{}/client/{}", self.hub, caller.connection_id),
            )
            .header("ce-id", Uuid::new_v4().to_string())
            .header("ce-time", Utc::now().to_rfc3339())
            .header("ce-hub", &self.hub)
            .header("ce-connectionId", caller.connection_id)
            .header("ce-eventName", event)
            .body(body);
        if let Some(user_id) = caller.user_id {
            request = request.header("ce-userId", user_id);
        }
        if let Some(subprotocol) = caller.subprotocol {
            request = request.header("ce-subprotocol", subprotocol);
        }
        match request.send().await {
            Ok(response) => Some(response),
            Err(error) => {
                tracing::warn!(event, error = %error, "event handler unreachable");
                None
            }
        }
    }

    /// The abuse-protection handshake, once per process once it has succeeded.
    async fn validate(&self, url: &str) -> bool {
        self.validated
            .get_or_try_init(|| async {
                let response = self
                    .http
                    .request(reqwest::Method::OPTIONS, url)
                    .header("webhook-request-origin", &self.origin)
                    .header("ce-awpsversion", "1.0")
                    .send()
                    .await
                    .map_err(|_| ())?;
                let allowed = response
                    .headers()
                    .get("webhook-allowed-origin")
                    .and_then(|value| value.to_str().ok())
                    .is_some_and(|origin| {
                        origin == "*" || origin.eq_ignore_ascii_case(&self.origin)
                    });
                if response.status().is_success() && allowed {
                    Ok(())
                } else {
                    Err(())
                }
            })
            .await
            .is_ok()
    }
}

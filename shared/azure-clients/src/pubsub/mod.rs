//! Azure Web PubSub, data plane (REST api-version `2024-12-01`): sends to groups, group
//! membership and permissions of client connections, and client access URLs with roles. With
//! local auth off (what Bicep deploys, and what the local hub runs), the app calls it with its
//! managed identity's Entra token, gets client URLs from `:generateToken`, and recognises the
//! service's upstream event calls by their Entra bearer token (`authenticate_event`).
//! Without configuration real time is off: sends do nothing and URLs are refused.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use azure_core::auth::TokenCredential;
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use crate::entra::{Claims, ManagedIdentity, TokenError, TokenRules, TokenValidator};
use crate::outbound;

const API_VERSION: &str = "2024-12-01";
const ENTRA_SCOPE: &str = "https://webpubsub.azure.com/.default";

/// Azure Web PubSub (`WEBPUBSUB_ENDPOINT`), or without it the handler's own local hub. `None`
/// (tests only): real time is off.
#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    pub service: Option<PubSubService>,
    /// `WEBPUBSUB_HUB`, default `codeconnect`.
    pub hub: String,
}

#[derive(Debug, Clone)]
pub enum PubSubService {
    /// A running Web PubSub with local auth off, as Bicep deploys it: reached with the app's
    /// managed identity, and calling the app's event handler with an Entra bearer token.
    Service(PubSubEndpoint),
    /// The local default: start a compatible hub and its OpenID issuer (`LOCAL_PUBSUB_PORT`,
    /// default 7072), which then run exactly as [`PubSubService::Service`].
    LocalHub { port: u16 },
}

#[derive(Debug, Clone)]
pub struct PubSubEndpoint {
    /// `WEBPUBSUB_ENDPOINT`: `https://<name>.webpubsub.azure.com`.
    pub endpoint: String,
    pub identity: ManagedIdentity,
    /// What an upstream event's bearer token must be: Entra's (`ENTRA_AUTHORITY`,
    /// `ENTRA_TENANT_ID`), for `WEBPUBSUB_EVENT_AUDIENCES` (the event handler's token resource,
    /// and its client id where the registration issues v2 tokens), issued to
    /// `WEBPUBSUB_PRINCIPAL_ID` (the Web PubSub identity's object id).
    pub events: TokenRules,
}

/// A connection permission grantable on one group.
#[derive(Debug, Clone, Copy)]
pub enum Permission {
    SendToGroup,
}

#[derive(Clone, Default)]
pub struct PubSub {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    endpoint: String,
    hub: String,
    credential: Arc<dyn TokenCredential>,
    events: TokenValidator,
    http: reqwest::Client,
}

impl PubSub {
    pub fn new(config: &RealtimeConfig) -> anyhow::Result<Self> {
        let service = match &config.service {
            None => return Ok(Self::default()),
            Some(PubSubService::LocalHub { .. }) => {
                bail!("start the local hub first (webpubsub_hub::spawn_local)")
            }
            Some(PubSubService::Service(service)) => service,
        };
        Url::parse(&service.endpoint).context("Web PubSub endpoint")?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            inner: Some(Arc::new(Inner {
                endpoint: service.endpoint.clone(),
                hub: config.hub.clone(),
                credential: crate::entra::credential(&service.identity)
                    .context("the managed identity")?,
                events: TokenValidator::new(service.events.clone()),
                http,
            })),
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// `up`, `down` or `off` (not configured), from the service's own health endpoint.
    pub async fn health(&self) -> &'static str {
        let Some(inner) = self.inner.as_deref() else {
            return "off";
        };
        let url = format!("{}/api/health", inner.endpoint);
        let answer = inner
            .http
            .head(url)
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        match answer {
            Ok(response) if response.status().is_success() => "up",
            _ => "down",
        }
    }

    /// Checks that an upstream event call came from our Web PubSub: its `Authorization` header
    /// must hold an Entra token for our event audience, from our tenant, issued to the service's
    /// identity.
    pub async fn authenticate_event(
        &self,
        authorization: Option<&str>,
    ) -> Result<Claims, TokenError> {
        let inner = self.inner.as_deref().ok_or(TokenError::Missing)?;
        inner.events.validate_header(authorization).await
    }

    /// Whether `origin` (the abuse-protection handshake's `WebHook-Request-Origin`) is the host
    /// of the configured Web PubSub.
    pub fn is_our_service(&self, origin: &str) -> bool {
        self.inner
            .as_deref()
            .and_then(|inner| Url::parse(&inner.endpoint).ok())
            .and_then(|url| url.host_str().map(str::to_owned))
            .is_some_and(|host| host.eq_ignore_ascii_case(origin.trim()))
    }

    /// Pushes `message` to `group` after a write has committed. The write stands whether or
    /// not the push gets through (clients catch up from the API), so a failure is logged only.
    pub async fn push(&self, group: &str, message: &Value) {
        if let Err(error) = self.send_to_group(group, message).await {
            tracing::warn!(group, error = format!("{error:#}"), "real-time push failed");
        }
    }

    pub async fn send_to_group(&self, group: &str, message: &Value) -> anyhow::Result<()> {
        self.call(
            Method::POST,
            &["groups", group, ":send"],
            &[],
            Some(message),
            StatusCode::ACCEPTED,
        )
        .await
    }

    pub async fn add_connection_to_group(
        &self,
        group: &str,
        connection_id: &str,
    ) -> anyhow::Result<()> {
        self.call(
            Method::PUT,
            &["groups", group, "connections", connection_id],
            &[],
            None,
            StatusCode::OK,
        )
        .await
    }

    pub async fn grant_permission(
        &self,
        permission: Permission,
        connection_id: &str,
        group: &str,
    ) -> anyhow::Result<()> {
        let permission = match permission {
            Permission::SendToGroup => "sendToGroup",
        };
        self.call(
            Method::PUT,
            &["permissions", permission, "connections", connection_id],
            &[("targetName", group)],
            None,
            StatusCode::OK,
        )
        .await
    }

    /// A URL a client connects its WebSocket to, as `user_id`, with `roles`, already in `groups`.
    pub async fn client_url(
        &self,
        user_id: &str,
        roles: &[String],
        groups: &[String],
        ttl: Duration,
    ) -> anyhow::Result<String> {
        let inner = self
            .inner
            .as_deref()
            .ok_or_else(|| anyhow!("real time is off"))?;
        let base = Url::parse(&inner.endpoint)?;
        let scheme = if base.scheme() == "http" { "ws" } else { "wss" };
        let mut client = base.join(&format!("client/hubs/{}", inner.hub))?;
        let mut query: Vec<(&str, String)> = vec![
            ("userId", user_id.to_owned()),
            ("minutesToExpire", ttl.as_secs().div_ceil(60).to_string()),
        ];
        query.extend(roles.iter().map(|role| ("role", role.clone())));
        query.extend(groups.iter().map(|group| ("group", group.clone())));
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = self
            .request(Method::POST, &[":generateToken"], &query, None)
            .await?;
        let answer: Value = expect(answer, StatusCode::OK).await?.json().await?;
        let token = answer["token"]
            .as_str()
            .context("generateToken answered without a token")?;
        client
            .set_scheme(scheme)
            .map_err(|()| anyhow!("cannot make a WebSocket URL of {client}"))?;
        client.query_pairs_mut().append_pair("access_token", token);
        Ok(client.into())
    }

    async fn call(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
        success: StatusCode,
    ) -> anyhow::Result<()> {
        if self.inner.is_none() {
            return Ok(());
        }
        let response = self.request(method, path, query, body).await?;
        expect(response, success).await?;
        Ok(())
    }

    async fn request(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> anyhow::Result<reqwest::Response> {
        let inner = self
            .inner
            .as_deref()
            .ok_or_else(|| anyhow!("real time is off"))?;
        let mut url = Url::parse(&inner.endpoint)?;
        url.path_segments_mut()
            .map_err(|()| anyhow!("endpoint cannot take a path"))?
            .pop_if_empty()
            .extend(["api", "hubs", inner.hub.as_str()])
            .extend(path);
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION)
            .extend_pairs(query);
        let bearer = inner
            .credential
            .get_token(&[ENTRA_SCOPE])
            .await
            .context("Entra token for Web PubSub")?
            .token
            .secret()
            .to_owned();
        let mut request = inner.http.request(method, url).bearer_auth(bearer);
        if let Some(body) = body {
            request = request.json(body);
        }
        outbound::send(request, "Web PubSub")
            .await
            .context("Web PubSub unreachable")
    }
}

async fn expect(
    response: reqwest::Response,
    success: StatusCode,
) -> anyhow::Result<reqwest::Response> {
    if response.status() == success {
        return Ok(response);
    }
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    bail!(
        "Web PubSub answered {status}: {}",
        body.chars().take(300).collect::<String>()
    )
}

/// A user's personal group: every negotiated connection is in it (notifications, schedule).
pub fn personal_group(user_id: uuid::Uuid) -> String {
    format!("user.{user_id}")
}

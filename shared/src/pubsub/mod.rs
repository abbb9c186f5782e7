//! Azure Web PubSub, data plane (REST api-version `2024-12-01`): sends to groups and users,
//! group membership and permissions of client connections, and client access URLs with roles.
//! Authenticates with the access key (HS256 JWTs, also what a local hub speaks) or, in Azure,
//! with the managed identity (Entra tokens; client tokens then come from `:generateToken`).
//! Without configuration real time is off: sends do nothing and URLs are refused.

pub mod hub;
mod jwt;
mod signature;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use azure_core::auth::TokenCredential;
use chrono::Utc;
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};

use crate::config::{PubSubService, RealtimeConfig, Secret};

pub use jwt::sign as sign_token;
pub use signature::signature_for;

const API_VERSION: &str = "2024-12-01";
const ENTRA_SCOPE: &str = "https://webpubsub.azure.com/.default";
/// REST tokens are minted per request and live this long.
const REST_TOKEN_TTL: i64 = 5 * 60;

/// A connection permission grantable on one group.
#[derive(Debug, Clone, Copy)]
pub enum Permission {
    SendToGroup,
    JoinLeaveGroup,
}

#[derive(Clone, Default)]
pub struct PubSub {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    endpoint: String,
    hub: String,
    auth: Auth,
    event_keys: Vec<Secret>,
    http: reqwest::Client,
}

enum Auth {
    Key(Secret),
    Entra(Arc<dyn TokenCredential>),
}

impl PubSub {
    pub fn new(config: &RealtimeConfig) -> anyhow::Result<Self> {
        let Some(service) = &config.service else {
            return Ok(Self::default());
        };
        let (endpoint, auth, event_keys) = match service {
            PubSubService::AccessKey {
                endpoint,
                key,
                event_keys,
            } => (endpoint.clone(), Auth::Key(key.clone()), event_keys.clone()),
            PubSubService::LocalHub { .. } => {
                bail!("start the local hub first (pubsub::hub::spawn_local)")
            }
            PubSubService::ManagedIdentity {
                endpoint,
                event_keys,
            } => (
                endpoint.clone(),
                Auth::Entra(
                    azure_identity::create_credential().context("create the Azure credential")?,
                ),
                event_keys.clone(),
            ),
        };
        Url::parse(&endpoint).context("Web PubSub endpoint")?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            inner: Some(Arc::new(Inner {
                endpoint,
                hub: config.hub.clone(),
                auth,
                event_keys,
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

    /// Whether `signature` (the `ce-signature` header) proves an upstream event about
    /// `connection_id` came from our Web PubSub.
    pub fn is_genuine_event(&self, signature: &str, connection_id: &str) -> bool {
        let keys: Vec<&str> = self
            .inner
            .as_deref()
            .map(|inner| inner.event_keys.iter().map(Secret::expose).collect())
            .unwrap_or_default();
        signature::is_valid(signature, connection_id, &keys)
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

    pub async fn send_to_user(&self, user_id: &str, message: &Value) -> anyhow::Result<()> {
        self.call(
            Method::POST,
            &["users", user_id, ":send"],
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
            Permission::JoinLeaveGroup => "joinLeaveGroup",
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
        let token = match &inner.auth {
            Auth::Key(key) => {
                let now = Utc::now().timestamp();
                jwt::sign(
                    &json!({"aud": client.as_str(), "iat": now, "exp": now + ttl.as_secs() as i64,
                            "sub": user_id, "role": roles, "webpubsub.group": groups}),
                    key.expose(),
                )
            }
            Auth::Entra(_) => {
                let mut query: Vec<(&str, String)> = vec![
                    ("userId", user_id.to_owned()),
                    ("minutesToExpire", ttl.as_secs().div_ceil(60).to_string()),
                ];
                query.extend(roles.iter().map(|role| ("role", role.clone())));
                query.extend(groups.iter().map(|group| ("group", group.clone())));
                let query: Vec<(&str, &str)> =
                    query.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let answer = self
                    .request(Method::POST, &[":generateToken"], &query, None)
                    .await?;
                let answer: Value = expect(answer, StatusCode::OK).await?.json().await?;
                answer["token"]
                    .as_str()
                    .context("generateToken answered without a token")?
                    .to_owned()
            }
        };
        client
            .set_scheme(scheme)
            .map_err(|()| anyhow!("cannot make a WebSocket URL of {client}"))?;
        client.query_pairs_mut().append_pair("access_token", &token);
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
        let bearer = match &inner.auth {
            Auth::Key(key) => {
                let now = Utc::now().timestamp();
                jwt::sign(
                    &json!({"aud": url.as_str(), "iat": now, "exp": now + REST_TOKEN_TTL}),
                    key.expose(),
                )
            }
            Auth::Entra(credential) => credential
                .get_token(&[ENTRA_SCOPE])
                .await
                .context("Entra token for Web PubSub")?
                .token
                .secret()
                .to_owned(),
        };
        let mut request = inner.http.request(method, url).bearer_auth(bearer);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.context("Web PubSub unreachable")
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

/// `Endpoint=…;AccessKey=…;Version=1.0;[Port=…]` → (endpoint URL, access key).
pub fn parse_connection_string(text: &str) -> Result<(String, Secret), String> {
    let mut endpoint = None;
    let mut key = None;
    let mut port = None;
    for part in text
        .split(';')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not Name=value"))?;
        match name.to_ascii_lowercase().as_str() {
            "endpoint" => endpoint = Some(value.trim_end_matches('/').to_owned()),
            "accesskey" => key = Some(value.to_owned()),
            "port" => {
                port = Some(
                    value
                        .parse::<u16>()
                        .map_err(|_| "Port is not a port number")?,
                )
            }
            _ => {}
        }
    }
    let endpoint = endpoint.ok_or("no Endpoint")?;
    let key = key.ok_or("no AccessKey")?;
    let mut url = Url::parse(&endpoint).map_err(|_| "Endpoint is not a URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("Endpoint must be http(s)".into());
    }
    if let Some(port) = port {
        url.set_port(Some(port)).map_err(|()| "Port cannot apply")?;
    }
    Ok((
        url.as_str().trim_end_matches('/').to_owned(),
        Secret::new(key),
    ))
}

/// A user's personal group: every negotiated connection is in it (notifications, schedule).
pub fn personal_group(user_id: uuid::Uuid) -> String {
    format!("user.{user_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings_give_endpoint_and_key() {
        let (endpoint, key) = parse_connection_string(
            "Endpoint=http://localhost;Port=8080;AccessKey=ABC=;Version=1.0;",
        )
        .unwrap();
        assert_eq!(
            (endpoint.as_str(), key.expose()),
            ("http://localhost:8080", "ABC=")
        );
        let (endpoint, _) = parse_connection_string(
            "Endpoint=https://cc.webpubsub.azure.com/;AccessKey=k;Version=1.0",
        )
        .unwrap();
        assert_eq!(endpoint, "https://cc.webpubsub.azure.com");
        assert!(parse_connection_string("AccessKey=k").is_err());
        assert!(parse_connection_string("Endpoint=ftp://x;AccessKey=k").is_err());
    }
}

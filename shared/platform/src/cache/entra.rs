//! Signing in to Azure Managed Redis with the app's managed identity: the username is the
//! identity's object id (the token's `oid` claim), the password its token. Every connection
//! signs in with the current token and authenticates again with each renewed one, before the
//! old one expires (Redis closes a connection whose token has expired).

use std::pin::Pin;
use std::sync::Arc;

use azure_clients::entra::renewal;
use azure_core::auth::{AccessToken, TokenCredential};
use data_encoding::BASE64URL_NOPAD;
use futures::Stream;
use redis::auth::{BasicAuth, StreamingCredentialsProvider};
use redis::{ErrorKind, RedisError, RedisResult};
use tokio::sync::watch;

/// The audience of Azure Managed Redis's Entra tokens.
pub const SCOPE: &str = "https://redis.azure.com/.default";

/// The identity's current credentials, for each connection the manager opens.
#[derive(Clone)]
pub struct TokenCredentials {
    tokens: watch::Receiver<Option<AccessToken>>,
}

impl TokenCredentials {
    pub fn new(credential: Arc<dyn TokenCredential>) -> Self {
        Self {
            tokens: renewal::keep_fresh(credential, SCOPE),
        }
    }
}

impl StreamingCredentialsProvider for TokenCredentials {
    /// The current credentials at once (once there are some), then each renewal.
    fn subscribe(&self) -> Pin<Box<dyn Stream<Item = RedisResult<BasicAuth>> + Send + 'static>> {
        let mut tokens = self.tokens.clone();
        tokens.mark_changed();
        Box::pin(futures::stream::unfold(tokens, |mut tokens| async move {
            loop {
                tokens.changed().await.ok()?;
                let credentials = tokens.borrow_and_update().as_ref().map(basic_auth);
                if let Some(credentials) = credentials {
                    return Some((credentials, tokens));
                }
            }
        }))
    }
}

fn basic_auth(token: &AccessToken) -> RedisResult<BasicAuth> {
    let secret = token.token.secret();
    let object_id = object_id(secret).ok_or_else(|| {
        RedisError::from((
            ErrorKind::AuthenticationFailed,
            "the managed identity's token carries no oid claim",
        ))
    })?;
    Ok(BasicAuth::new(object_id, secret.to_owned()))
}

/// The `oid` claim of a JWT (read, not verified: Redis verifies it).
fn object_id(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let json = BASE64URL_NOPAD
        .decode(payload.trim_end_matches('=').as_bytes())
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&json).ok()?;
    claims["oid"].as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::object_id;

    #[test]
    fn the_username_is_the_tokens_object_id() {
        // {"alg":"none"}.{"oid":"4b1c...","aud":"https://redis.azure.com"}.
        let token =
            "eyJhbGciOiJub25lIn0.eyJvaWQiOiI0YjFjIiwiYXVkIjoiaHR0cHM6Ly9yZWRpcy5henVyZS5jb20ifQ.";
        assert_eq!(object_id(token).as_deref(), Some("4b1c"));
        assert_eq!(object_id("not-a-jwt"), None);
    }
}

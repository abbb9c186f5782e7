//! The app's managed identity as an `azure_core` credential: in Azure, `azure_identity`'s
//! chain (which finds App Service's identity endpoint); locally, the local issuer's endpoint,
//! spoken to with the same App Service protocol (`GET ?resource=…&api-version=2019-08-01` with
//! `X-IDENTITY-HEADER`), so the code that asks for tokens is the same in both.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use azure_core::auth::{AccessToken, TokenCredential};
use azure_core::error::{Error, ErrorKind};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use time::OffsetDateTime;

use super::ManagedIdentity;

const API_VERSION: &str = "2019-08-01";
/// A cached token is renewed this long before it expires.
const RENEW_BEFORE: time::Duration = time::Duration::minutes(5);

/// The credential for `identity`.
pub fn credential(identity: &ManagedIdentity) -> anyhow::Result<Arc<dyn TokenCredential>> {
    Ok(match identity {
        ManagedIdentity::Azure => azure_identity::create_credential()?,
        ManagedIdentity::Endpoint { url, secret } => Arc::new(IdentityEndpoint {
            url: url.clone(),
            secret: secret.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            cache: Mutex::default(),
        }),
    })
}

/// An identity endpoint speaking App Service's managed-identity protocol.
#[derive(Debug)]
struct IdentityEndpoint {
    url: String,
    secret: SecretString,
    http: reqwest::Client,
    cache: Mutex<HashMap<String, AccessToken>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    /// Unix seconds, as a string (App Service's format).
    expires_on: String,
}

#[async_trait::async_trait]
impl TokenCredential for IdentityEndpoint {
    async fn get_token(&self, scopes: &[&str]) -> azure_core::Result<AccessToken> {
        let [scope] = scopes else {
            return Err(Error::message(
                ErrorKind::Credential,
                "a managed identity takes exactly one scope",
            ));
        };
        let resource = scope.strip_suffix("/.default").unwrap_or(scope);
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(resource)
            .filter(|token| token.expires_on - RENEW_BEFORE > OffsetDateTime::now_utc())
            .cloned();
        if let Some(token) = cached {
            return Ok(token);
        }
        let credential_error =
            |error: reqwest::Error| Error::full(ErrorKind::Credential, error, "identity endpoint");
        let answer: TokenResponse = self
            .http
            .get(&self.url)
            .query(&[("resource", resource), ("api-version", API_VERSION)])
            .header("x-identity-header", self.secret.expose_secret())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(credential_error)?
            .json()
            .await
            .map_err(credential_error)?;
        let expires_on = answer
            .expires_on
            .parse::<i64>()
            .ok()
            .and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok())
            .ok_or_else(|| Error::message(ErrorKind::Credential, "expires_on is not a time"))?;
        let token = AccessToken::new(answer.access_token, expires_on);
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(resource.to_owned(), token.clone());
        Ok(token)
    }

    async fn clear_cache(&self) -> azure_core::Result<()> {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        Ok(())
    }
}

//! Bearer-token validation against an OpenID issuer (Entra ID, or the local issuer in local
//! runs): RS256 only, the signature checked against the issuer's published keys (found through
//! its OpenID configuration, cached, fetched again when a token names a key not yet seen), the
//! issuer and tenant, the audience, the caller's principal (`oid`), and `exp`/`nbf` with a
//! minute of clock skew. `aud` alone proves nothing: any tenant's principal can ask Entra for a
//! token to any audience, so the tenant and the principal are what make a token ours.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use super::TokenRules;

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 60;
/// Keys are fetched again after this long even when every token names a known key.
const KEYS_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// A token naming an unknown key fetches the keys again at most this often, so a flood of
/// made-up key ids costs the issuer at most one request per interval.
const UNKNOWN_KEY_REFETCH: Duration = Duration::from_secs(1);

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no bearer token")]
    Missing,
    #[error("the token names no key the issuer publishes")]
    UnknownKey,
    #[error("the token is invalid: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("the token was issued for another tenant")]
    WrongTenant,
    #[error("the token was issued to another principal")]
    WrongPrincipal,
    /// The issuer's configuration or keys could not be fetched (not the caller's fault).
    #[error("the issuer's keys are unavailable: {0:#}")]
    KeysUnavailable(anyhow::Error),
}

/// The claims of a validated token that identify its caller.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    /// The calling principal's object id.
    pub oid: String,
    pub tid: String,
}

pub struct TokenValidator {
    rules: TokenRules,
    http: reqwest::Client,
    keys: RwLock<Option<Keys>>,
    /// Serialises fetches, so concurrent requests with an unknown key share one.
    fetching: Mutex<()>,
}

struct Keys {
    by_id: HashMap<String, DecodingKey>,
    issuers: Vec<String>,
    fetched_at: Instant,
}

#[derive(Deserialize)]
struct OpenIdConfiguration {
    issuer: String,
    jwks_uri: String,
}

impl TokenValidator {
    pub fn new(rules: TokenRules) -> Self {
        Self {
            rules,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            keys: RwLock::new(None),
            fetching: Mutex::new(()),
        }
    }

    /// Validates `authorization` (the whole `Authorization` header value).
    pub async fn validate_header(&self, authorization: Option<&str>) -> Result<Claims, TokenError> {
        let token = authorization
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(TokenError::Missing)?;
        self.validate(token).await
    }

    pub async fn validate(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token)?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::Invalid(
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm.into(),
            ));
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let (key, issuers) = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud"]);
        validation.set_audience(&self.rules.audiences);
        validation.set_issuer(&issuers);
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)?.claims;
        if !claims.tid.eq_ignore_ascii_case(&self.rules.tenant_id) {
            return Err(TokenError::WrongTenant);
        }
        if !self
            .rules
            .principal_ids
            .iter()
            .any(|principal| principal.eq_ignore_ascii_case(&claims.oid))
        {
            return Err(TokenError::WrongPrincipal);
        }
        Ok(claims)
    }

    /// The key named `kid` and the accepted issuers, fetching the keys when they are missing,
    /// stale, or (at most once per [`UNKNOWN_KEY_REFETCH`]) do not include `kid`.
    async fn key(&self, kid: &str) -> Result<(DecodingKey, Vec<String>), TokenError> {
        if let Some(found) = self.cached(kid, KEYS_MAX_AGE).await {
            return Ok(found);
        }
        let _fetching = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(found) = self.cached(kid, KEYS_MAX_AGE).await {
            return Ok(found);
        }
        let recently = self
            .keys
            .read()
            .await
            .as_ref()
            .is_some_and(|keys| keys.fetched_at.elapsed() < UNKNOWN_KEY_REFETCH);
        if recently {
            return Err(TokenError::UnknownKey);
        }
        let fetched = self.fetch().await.map_err(TokenError::KeysUnavailable)?;
        *self.keys.write().await = Some(fetched);
        self.cached(kid, KEYS_MAX_AGE)
            .await
            .ok_or(TokenError::UnknownKey)
    }

    async fn cached(&self, kid: &str, max_age: Duration) -> Option<(DecodingKey, Vec<String>)> {
        let keys = self.keys.read().await;
        let keys = keys
            .as_ref()
            .filter(|keys| keys.fetched_at.elapsed() < max_age)?;
        Some((keys.by_id.get(kid)?.clone(), keys.issuers.clone()))
    }

    /// The tenant's v2.0 and v1 OpenID configurations (Entra issues v1 tokens, `iss`
    /// `https://sts.windows.net/{tenant}/`, to resources that do not ask for v2) and the keys
    /// they publish.
    async fn fetch(&self) -> anyhow::Result<Keys> {
        let authority = self.rules.authority.trim_end_matches('/');
        let tenant = &self.rules.tenant_id;
        let v2_url = format!("{authority}/{tenant}/v2.0/.well-known/openid-configuration");
        let v1_url = format!("{authority}/{tenant}/.well-known/openid-configuration");
        let (v2, v1) = tokio::try_join!(
            self.json::<OpenIdConfiguration>(&v2_url),
            self.json::<OpenIdConfiguration>(&v1_url),
        )?;
        let mut by_id = HashMap::new();
        for jwks_uri in dedup([v2.jwks_uri, v1.jwks_uri]) {
            let set: JwkSet = self.json(&jwks_uri).await?;
            for jwk in &set.keys {
                let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk))
                else {
                    continue;
                };
                by_id.insert(kid, key);
            }
        }
        Ok(Keys {
            by_id,
            issuers: dedup([v2.issuer, v1.issuer]),
            fetched_at: Instant::now(),
        })
    }

    async fn json<T: serde::de::DeserializeOwned>(&self, url: &str) -> anyhow::Result<T> {
        self.http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("GET {url}"))?
            .json()
            .await
            .with_context(|| format!("read {url}"))
    }
}

fn dedup<const N: usize>(values: [String; N]) -> Vec<String> {
    let mut values = Vec::from(values);
    values.dedup();
    values
}

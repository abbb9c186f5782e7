//! A local OpenID issuer standing in for Entra ID in local runs and tests, so the app checks
//! tokens exactly as it does in Azure. Served over HTTP on a loopback port:
//! - `/{tenant}/v2.0/.well-known/openid-configuration` and `/{tenant}/.well-known/openid-configuration`
//!   (v2 and v1 issuers, as Entra publishes both), and the keys at `/{tenant}/discovery/v2.0/keys`
//!   (RS256, JWK set);
//! - `/msi/token`: the App Service managed-identity protocol, handing the app's identity a v1
//!   token for the requested resource.
//!
//! It signs with one RSA key at a time; [`LocalIssuer::rotate`] starts signing with a new key
//! and keeps publishing the old one, as Entra does during a rollover.

use std::sync::{Arc, PoisonError, RwLock};

use anyhow::Context;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use data_encoding::BASE64URL_NOPAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use uuid::Uuid;

use super::{ManagedIdentity, TokenRules};

/// Lifetime of the tokens it issues (Entra's managed-identity tokens live longer; an hour is
/// enough to exercise renewal).
const TOKEN_LIFETIME_SECONDS: i64 = 60 * 60;

pub struct LocalIssuer {
    base_url: String,
    tenant_id: String,
    /// The object id of the app's managed identity (whom `/msi/token` issues to).
    app_principal_id: String,
    identity_secret: SecretString,
    keys: RwLock<Keys>,
}

struct Keys {
    signing: SigningKey,
    /// Every key ever used, newest first: JWKs as published.
    published: Vec<Value>,
}

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
}

#[derive(Deserialize)]
struct TokenQuery {
    resource: String,
    #[serde(rename = "api-version")]
    api_version: String,
}

impl LocalIssuer {
    /// Binds a free loopback port and serves the issuer there in the background.
    pub async fn spawn() -> anyhow::Result<Arc<Self>> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let base_url = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        let (signing, jwk) = new_key().context("generate an RSA key")?;
        let issuer = Arc::new(Self {
            base_url,
            tenant_id: Uuid::new_v4().to_string(),
            app_principal_id: Uuid::new_v4().to_string(),
            identity_secret: SecretString::from(
                BASE64URL_NOPAD.encode(&rand::random::<[u8; 24]>()),
            ),
            keys: RwLock::new(Keys {
                signing,
                published: vec![jwk],
            }),
        });
        let router = Router::new()
            .route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                get(v2_configuration),
            )
            .route(
                "/{tenant}/.well-known/openid-configuration",
                get(v1_configuration),
            )
            .route("/{tenant}/discovery/v2.0/keys", get(keys))
            .route("/msi/token", get(managed_identity_token))
            .with_state(issuer.clone());
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(error = %error, "the local OpenID issuer stopped");
            }
        });
        Ok(issuer)
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    pub fn app_principal_id(&self) -> &str {
        &self.app_principal_id
    }

    /// `iss` of the v1 tokens it issues (Entra's is `https://sts.windows.net/{tenant}/`).
    pub fn v1_issuer(&self) -> String {
        format!("{}/sts/{}/", self.base_url, self.tenant_id)
    }

    pub fn v2_issuer(&self) -> String {
        format!("{}/{}/v2.0", self.base_url, self.tenant_id)
    }

    /// The app's managed identity, served by this issuer.
    pub fn app_identity(&self) -> ManagedIdentity {
        ManagedIdentity::Endpoint {
            url: format!("{}/msi/token", self.base_url),
            secret: self.identity_secret.clone(),
        }
    }

    /// Rules accepting this issuer's tokens for `audience` issued to `principal_id`.
    pub fn rules(&self, audience: &str, principal_id: &str) -> TokenRules {
        TokenRules {
            authority: self.base_url.clone(),
            tenant_id: self.tenant_id.clone(),
            audiences: vec![audience.to_owned()],
            principal_ids: vec![principal_id.to_owned()],
        }
    }

    /// A v1 access token for `principal_id` (an object id) to `audience`, as Entra issues one to
    /// a managed identity.
    pub fn token_for(&self, principal_id: &str, audience: &str) -> String {
        let now = Utc::now().timestamp();
        self.sign(&json!({
            "aud": audience, "iss": self.v1_issuer(), "iat": now, "nbf": now,
            "exp": now + TOKEN_LIFETIME_SECONDS, "tid": self.tenant_id, "oid": principal_id,
            "sub": principal_id, "appid": principal_id, "idtyp": "app", "ver": "1.0",
        }))
    }

    /// `claims` signed (RS256) with the current key, whatever they say (tests forge with it).
    pub fn sign(&self, claims: &Value) -> String {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(keys.signing.kid.clone());
        jsonwebtoken::encode(&header, claims, &keys.signing.encoding)
            .expect("RS256 signing with a generated key does not fail")
    }

    /// Starts signing with a new key; the old ones stay published.
    pub fn rotate(&self) -> anyhow::Result<()> {
        let (signing, jwk) = new_key()?;
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        keys.signing = signing;
        keys.published.insert(0, jwk);
        Ok(())
    }

    fn configuration(&self, issuer: String) -> Value {
        json!({
            "issuer": issuer,
            "jwks_uri": format!("{}/{}/discovery/v2.0/keys", self.base_url, self.tenant_id),
            "token_endpoint": format!("{}/{}/oauth2/v2.0/token", self.base_url, self.tenant_id),
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "token"],
            "subject_types_supported": ["pairwise"],
        })
    }
}

fn new_key() -> anyhow::Result<(SigningKey, Value)> {
    let private = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)?;
    let public = RsaPublicKey::from(&private);
    let kid = BASE64URL_NOPAD.encode(&rand::random::<[u8; 12]>());
    let jwk = json!({
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
        "n": BASE64URL_NOPAD.encode(&public.n().to_bytes_be()),
        "e": BASE64URL_NOPAD.encode(&public.e().to_bytes_be()),
    });
    let der = private.to_pkcs1_der()?;
    let encoding = EncodingKey::from_rsa_der(der.as_bytes());
    Ok((SigningKey { kid, encoding }, jwk))
}

async fn v2_configuration(
    State(issuer): State<Arc<LocalIssuer>>,
    Path(tenant): Path<String>,
) -> Response {
    configuration(&issuer, &tenant, issuer.v2_issuer())
}

async fn v1_configuration(
    State(issuer): State<Arc<LocalIssuer>>,
    Path(tenant): Path<String>,
) -> Response {
    configuration(&issuer, &tenant, issuer.v1_issuer())
}

fn configuration(issuer: &LocalIssuer, tenant: &str, issuer_id: String) -> Response {
    if tenant != issuer.tenant_id {
        return unknown_tenant();
    }
    axum::Json(issuer.configuration(issuer_id)).into_response()
}

async fn keys(State(issuer): State<Arc<LocalIssuer>>, Path(tenant): Path<String>) -> Response {
    if tenant != issuer.tenant_id {
        return unknown_tenant();
    }
    let keys = issuer.keys.read().unwrap_or_else(PoisonError::into_inner);
    axum::Json(json!({ "keys": keys.published })).into_response()
}

fn unknown_tenant() -> Response {
    (StatusCode::BAD_REQUEST, "unknown tenant").into_response()
}

async fn managed_identity_token(
    State(issuer): State<Arc<LocalIssuer>>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Response {
    let secret = headers
        .get("x-identity-header")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let expected = issuer.identity_secret.expose_secret().as_bytes();
    if !bool::from(secret.as_bytes().ct_eq(expected)) {
        return (
            StatusCode::UNAUTHORIZED,
            "X-IDENTITY-HEADER is missing or wrong",
        )
            .into_response();
    }
    if query.api_version != "2019-08-01" {
        return (StatusCode::BAD_REQUEST, "api-version 2019-08-01 only").into_response();
    }
    let token = issuer.token_for(&issuer.app_principal_id, &query.resource);
    let expires_on = Utc::now().timestamp() + TOKEN_LIFETIME_SECONDS;
    axum::Json(json!({
        "access_token": token,
        "expires_on": expires_on.to_string(),
        "resource": query.resource,
        "token_type": "Bearer",
        "client_id": issuer.app_principal_id,
    }))
    .into_response()
}

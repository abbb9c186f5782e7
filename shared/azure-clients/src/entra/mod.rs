//! Entra ID access tokens: validating the bearer tokens Azure services send us
//! (`TokenValidator`), the app's own managed identity as a credential (`credential`), and a local
//! OpenID issuer that stands in for Entra in local runs and tests (`LocalIssuer`).

mod credential;
mod local_issuer;
pub mod renewal;
mod validator;

pub use azure_core::auth::TokenCredential;
pub use credential::credential;
pub use local_issuer::LocalIssuer;
pub use validator::{Claims, TokenError, TokenValidator};

use secrecy::SecretString;

/// How the app obtains tokens for its own managed identity.
#[derive(Debug, Clone)]
pub enum ManagedIdentity {
    /// In Azure: `azure_identity`'s credential chain (App Service's identity endpoint).
    Azure,
    /// An endpoint speaking App Service's managed-identity protocol (the local issuer).
    Endpoint { url: String, secret: SecretString },
}

/// How to recognise a genuine access token ([`TokenValidator`]).
#[derive(Debug, Clone)]
pub struct TokenRules {
    /// The OpenID authority: `https://login.microsoftonline.com`, or the local issuer.
    pub authority: String,
    pub tenant_id: String,
    /// Accepted `aud` values.
    pub audiences: Vec<String>,
    /// Accepted `oid` values: the principals allowed to call.
    pub principal_ids: Vec<String>,
}

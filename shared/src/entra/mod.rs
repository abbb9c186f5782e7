//! Entra ID access tokens: validating the bearer tokens Azure services send us
//! (`TokenValidator`), the app's own managed identity as a credential (`credential`), and a local
//! OpenID issuer that stands in for Entra in local runs and tests (`LocalIssuer`).

mod credential;
mod local_issuer;
mod validator;

pub use credential::credential;
pub use local_issuer::LocalIssuer;
pub use validator::{Claims, TokenError, TokenValidator};

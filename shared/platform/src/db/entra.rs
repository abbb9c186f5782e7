//! Signing in to Azure Database for PostgreSQL with the app's managed identity: its Entra
//! token is the password. A token lasts about an hour and Postgres checks it only when a
//! connection opens, so open connections outlive it; new ones need a current token. The pool's
//! connect options are swapped for ones with a fresh token 5 minutes before the current one
//! expires, without closing a connection.

use std::sync::Arc;
use std::time::Duration;

use azure_core::auth::TokenCredential;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use time::OffsetDateTime;

/// The audience of Azure Database for PostgreSQL's Entra tokens.
pub const SCOPE: &str = "https://ossrdbms-aad.database.windows.net/.default";
const RENEW_BEFORE_EXPIRY: time::Duration = time::Duration::minutes(5);
const RETRY_AFTER: Duration = Duration::from_secs(10);
const FIRST_TOKEN_WAIT: Duration = Duration::from_secs(10);

/// Keeps `pool` signing in with `credential`'s current token, `options` giving the rest.
pub struct TokenPassword {
    pub pool: PgPool,
    pub options: PgConnectOptions,
    pub credential: Arc<dyn TokenCredential>,
}

impl TokenPassword {
    /// Puts the first token in place (waiting at most 10 s: a failure leaves it to the renewal,
    /// and readiness reports the database down meanwhile), then renews it in the background
    /// for as long as the pool is open.
    pub async fn start(self) {
        let first = tokio::time::timeout(FIRST_TOKEN_WAIT, self.renew()).await;
        let next = match first {
            Ok(Ok(expires_on)) => until_renewal(expires_on),
            Ok(Err(error)) => {
                tracing::error!(error = %error, "no Entra token for Postgres yet; retrying");
                RETRY_AFTER
            }
            Err(_) => {
                tracing::error!("no Entra token for Postgres within 10 s; retrying");
                RETRY_AFTER
            }
        };
        tokio::spawn(self.keep_renewing(next));
    }

    async fn keep_renewing(self, mut wait: Duration) {
        loop {
            tokio::time::sleep(wait).await;
            if self.pool.is_closed() {
                return;
            }
            wait = match self.renew().await {
                Ok(expires_on) => until_renewal(expires_on),
                Err(error) => {
                    // The current token still has up to 5 minutes.
                    tracing::warn!(error = %error, "renewing the Postgres token failed; retrying");
                    RETRY_AFTER
                }
            };
        }
    }

    /// A fresh token (not the credential's cached one) into the pool's options; its expiry.
    async fn renew(&self) -> azure_core::Result<OffsetDateTime> {
        self.credential.clear_cache().await?;
        let token = self.credential.get_token(&[SCOPE]).await?;
        let options = self.options.clone().password(token.token.secret());
        self.pool.set_connect_options(options);
        tracing::info!(expires_on = %token.expires_on, "Postgres token renewed");
        Ok(token.expires_on)
    }
}

/// How long until a token expiring at `expires_on` is renewed (at least a second).
fn until_renewal(expires_on: OffsetDateTime) -> Duration {
    let left = expires_on - RENEW_BEFORE_EXPIRY - OffsetDateTime::now_utc();
    Duration::try_from(left)
        .unwrap_or_default()
        .max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_renewed_five_minutes_before_it_expires() {
        let in_an_hour = OffsetDateTime::now_utc() + time::Duration::hours(1);
        let wait = until_renewal(in_an_hour).as_secs();
        assert!((3_290..=3_300).contains(&wait), "{wait}");
        let in_a_minute = OffsetDateTime::now_utc() + time::Duration::minutes(1);
        assert_eq!(until_renewal(in_a_minute), Duration::from_secs(1));
    }
}

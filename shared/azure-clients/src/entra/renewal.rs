//! A managed identity's token for one scope, kept fresh for a consumer that signs in with it
//! (Postgres, Redis): fetched at once, then anew 5 minutes before each expires, retrying every
//! 10 s meanwhile, for as long as anyone watches.

use std::sync::Arc;
use std::time::Duration;

use azure_core::auth::{AccessToken, TokenCredential};
use time::OffsetDateTime;
use tokio::sync::watch;

const RENEW_BEFORE_EXPIRY: time::Duration = time::Duration::minutes(5);
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// The current token for `scope` (`None` until the first arrives). The renewal stops when the
/// last receiver is dropped.
pub fn keep_fresh(
    credential: Arc<dyn TokenCredential>,
    scope: &'static str,
) -> watch::Receiver<Option<AccessToken>> {
    let (sender, receiver) = watch::channel(None);
    tokio::spawn(async move {
        loop {
            // A fresh token, not the credential's cached one, so it outlives the renewal.
            let renewed = match credential.clear_cache().await {
                Ok(()) => credential.get_token(&[scope]).await,
                Err(error) => Err(error),
            };
            let wait = match renewed {
                Ok(token) => {
                    let wait = until_renewal(token.expires_on);
                    tracing::info!(scope, expires_on = %token.expires_on, "Entra token renewed");
                    if sender.send(Some(token)).is_err() {
                        return;
                    }
                    wait
                }
                Err(error) => {
                    tracing::warn!(scope, error = %error, "no Entra token; retrying in 10 s");
                    RETRY_AFTER
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = sender.closed() => return,
            }
        }
    });
    receiver
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

//! Signing in to Azure Database for PostgreSQL with the app's managed identity: its Entra
//! token is the password. Postgres checks a token only when a connection opens, so open
//! connections outlive it; new ones need the current token. Each renewed token goes into the
//! pool's connect options, without closing a connection.

use std::sync::Arc;
use std::time::Duration;

use azure_clients::entra::renewal;
use azure_core::auth::{AccessToken, TokenCredential};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

/// The audience of Azure Database for PostgreSQL's Entra tokens.
pub const SCOPE: &str = "https://ossrdbms-aad.database.windows.net/.default";
const FIRST_TOKEN_WAIT: Duration = Duration::from_secs(10);

/// Keeps `pool` signing in with `credential`'s current token, `options` giving the rest, until
/// the pool closes. Waits at most 10 s for the first token; without it new connections fail
/// (readiness reports the database down) until it arrives.
pub async fn sign_in_with_tokens(
    pool: &PgPool,
    options: PgConnectOptions,
    credential: Arc<dyn TokenCredential>,
) {
    let mut tokens = renewal::keep_fresh(credential, SCOPE);
    let first = tokio::time::timeout(FIRST_TOKEN_WAIT, tokens.wait_for(Option::is_some))
        .await
        .map(drop);
    if first.is_err() {
        tracing::error!("no Entra token for Postgres within 10 s; new connections wait for it");
    }
    let apply = {
        let pool = pool.clone();
        move |token: &Option<AccessToken>| {
            if let Some(token) = token {
                pool.set_connect_options(options.clone().password(token.token.secret()));
            }
        }
    };
    apply(&tokens.borrow_and_update());
    let pool = pool.clone();
    tokio::spawn(async move {
        let closed = pool.close_event();
        tokio::pin!(closed);
        loop {
            tokio::select! {
                // Returning drops the receiver, which ends the renewal.
                () = &mut closed => return,
                changed = tokens.changed() => match changed {
                    Ok(()) => apply(&tokens.borrow_and_update()),
                    Err(_) => return,
                },
            }
        }
    });
}

//! The shared cache signing in to Redis with a short-lived credential (`REDIS_AUTH=entra`), as
//! Azure Managed Redis takes Entra tokens: the username is the token's `oid`, the password the
//! token. The stand-in identity endpoint issues each token as a JWT naming an ACL user of the
//! local Redis and adds it as one of the user's passwords, removing the one two renewals back
//! (it has expired), renewed every 1 to 2 seconds. The cache's connection signs in as that user
//! and authenticates again at each renewal, so requests keep using Redis; an expired token
//! can't sign in.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use data_encoding::BASE64URL_NOPAD;
use platform::config::SignIn;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

/// A JWT-shaped token (unsigned: Redis here compares it as a password) naming `user`.
fn token_for(user: &str, n: usize) -> String {
    let header = BASE64URL_NOPAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims =
        json!({"oid": user, "aud": "https://redis.azure.com", "n": n, "jti": Uuid::new_v4()});
    let claims = BASE64URL_NOPAD.encode(claims.to_string().as_bytes());
    format!("{header}.{claims}.")
}

async fn redis_admin() -> redis::aio::MultiplexedConnection {
    redis::Client::open(machine_redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Times any client has sent AUTH to this Redis (only this test signs in with credentials).
async fn auth_calls(redis: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(redis)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("cmdstat_auth:calls="))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn the_cache_signs_in_as_the_identity_and_again_at_each_renewal() {
    let app = spawn_app().await;
    let user = format!("app-{}", &Uuid::new_v4().simple().to_string()[..12]);
    let mut redis = redis_admin().await;
    redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&user)
        .arg(&["on", "resetpass", "allkeys", "allchannels", "+@all"][..])
        .query_async::<()>(&mut redis)
        .await
        .unwrap();
    let issued = Arc::new(Mutex::new(Vec::<String>::new()));
    let (named, minted) = (user.clone(), issued.clone());
    let stand_in = IdentityStandIn::start("https://redis.azure.com", move |n| {
        let (user, issued) = (named.clone(), minted.clone());
        async move {
            let token = token_for(&user, n);
            let mut redis = redis_admin().await;
            let mut rules = vec!["SETUSER".to_owned(), user.clone(), format!(">{token}")];
            let expired = {
                let mut issued = issued.lock().unwrap();
                issued.push(token.clone());
                issued.len().checked_sub(3).map(|old| issued[old].clone())
            };
            rules.extend(expired.map(|old| format!("<{old}")));
            redis::cmd("ACL")
                .arg(rules)
                .query_async::<()>(&mut redis)
                .await
                .unwrap();
            token
        }
    })
    .await;
    let instance = app
        .instance_with(|config| config.cache.auth = SignIn::Entra(stand_in.identity()))
        .await;

    let ready = instance.get("/api/health/ready", None).await;
    assert_eq!(ready.expect_status(StatusCode::OK).await["cache"], "redis");
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(
        clients
            .lines()
            .any(|client| client.contains(&format!(" user={user} "))),
        "no connection signed in as {user}: {clients}"
    );

    // Through renewals, requests keep using Redis, and the connection signs in again each time.
    let auth_before = auth_calls(&mut redis).await;
    let renewals_before = stand_in.tokens().len();
    let until = Instant::now() + Duration::from_secs(6);
    let mut answered = 0;
    while Instant::now() < until {
        let listed = instance.get("/api/mentors", None).await;
        assert_eq!(listed.status(), StatusCode::OK);
        let ready = instance.get("/api/health/ready", None).await;
        assert_eq!(ready.expect_status(StatusCode::OK).await["cache"], "redis");
        answered += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let renewals = (stand_in.tokens().len() - renewals_before) as u64;
    assert!(renewals >= 3, "{renewals} renewals");
    assert!(answered > 50, "{answered} rounds");
    let signed_in_again = auth_calls(&mut redis).await - auth_before;
    assert!(
        signed_in_again >= renewals,
        "{signed_in_again} AUTH for {renewals} renewals"
    );

    // An expired token signs nobody in.
    let mut stale = redis::Client::open(machine_redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let refused = redis::cmd("AUTH")
        .arg(&user)
        .arg(&stand_in.tokens()[0])
        .query_async::<()>(&mut stale)
        .await;
    assert!(refused.is_err(), "the first token still signs in");
    redis::cmd("ACL")
        .arg("DELUSER")
        .arg(&user)
        .query_async::<()>(&mut redis)
        .await
        .unwrap();
}

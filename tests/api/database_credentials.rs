//! The request pool signing in with a short-lived credential (`DATABASE_AUTH=entra`), against
//! PgBouncer checking passwords as Azure checks Entra tokens. A local stand-in for the managed
//! identity endpoint (App Service's protocol) issues each token as a new password of the app's
//! role, valid 5 minutes and 2 seconds, so the pool renews it every 2 seconds: the first token
//! is in place when the app starts; a connection opened with an older token keeps working while
//! new connections sign in with the current one; requests run through renewals with no error.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::get;
use azure_clients::entra::ManagedIdentity;
use futures::future::join_all;
use platform::config::{DatabaseAuth, ExposeSecret, Secret};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use crate::helpers::*;

const IDENTITY_HEADER: &str = "stand-in-identity-header";
const TOKEN_LIFETIME_SECS: i64 = 5 * 60 + 2;

/// The stand-in identity endpoint: every token is a fresh password of `role`.
struct TokenIssuer {
    role: String,
    admin: PgPool,
    issued: Mutex<Vec<(Instant, String)>>,
}

async fn issue(
    State(issuer): State<Arc<TokenIssuer>>,
    headers: HeaderMap,
    Query(query): Query<Value>,
) -> Result<axum::Json<Value>, AxumStatus> {
    if headers["x-identity-header"] != IDENTITY_HEADER
        || query["resource"] != "https://ossrdbms-aad.database.windows.net"
    {
        return Err(AxumStatus::FORBIDDEN);
    }
    let token = format!("Tk{}9", Uuid::new_v4().simple());
    sqlx::query(&format!(
        r#"ALTER ROLE "{}" PASSWORD '{token}'"#,
        issuer.role
    ))
    .execute(&issuer.admin)
    .await
    .map_err(|_| AxumStatus::INTERNAL_SERVER_ERROR)?;
    issuer
        .issued
        .lock()
        .unwrap()
        .push((Instant::now(), token.clone()));
    let expires_on = chrono::Utc::now().timestamp() + TOKEN_LIFETIME_SECS;
    Ok(axum::Json(json!({
        "access_token": token, "expires_on": expires_on.to_string(),
        "resource": query["resource"], "token_type": "Bearer",
    })))
}

impl TokenIssuer {
    fn tokens(&self) -> Vec<String> {
        self.issued
            .lock()
            .unwrap()
            .iter()
            .map(|(_, token)| token.clone())
            .collect()
    }

    /// Whether a token was issued in the last 100 ms (Postgres then holds the new password
    /// while the pool may still be swapping it in), or is about to be (renewals come every 2 s).
    fn renewing(&self) -> bool {
        let since = self
            .issued
            .lock()
            .unwrap()
            .last()
            .map(|(at, _)| at.elapsed());
        since.is_some_and(|since| {
            since < Duration::from_millis(100) || since > Duration::from_millis(1_800)
        })
    }
}

async fn wait_outside_renewal(issuer: &TokenIssuer) {
    while issuer.renewing() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A role for the app with only the privileges `handler grant-app-role` gives, an issuer of
/// its tokens, and an instance of the app signing in as it.
async fn instance_signing_in_with_tokens(app: &TestApp) -> (TestApp, Arc<TokenIssuer>) {
    let role = format!("app_{}", &Uuid::new_v4().simple().to_string()[..12]);
    sqlx::query(&format!(r#"CREATE ROLE "{role}" LOGIN"#))
        .execute(&app.db)
        .await
        .unwrap();
    let direct = app.state.config.database.direct_url.clone().unwrap();
    handler::commands::grant_app_role(direct.expose_secret(), &role)
        .await
        .unwrap();
    let issuer = Arc::new(TokenIssuer {
        role: role.clone(),
        admin: app.db.clone(),
        issued: Mutex::new(Vec::new()),
    });
    let router = axum::Router::new()
        .route("/msi/token", get(issue))
        .with_state(issuer.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/msi/token", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let mut url = reqwest::Url::parse(app.state.config.database.url.expose_secret()).unwrap();
    url.set_username(&role).unwrap();
    let instance = app
        .instance_with(|config| {
            config.database.url = Secret::from(url.to_string());
            config.database.auth = DatabaseAuth::Entra(ManagedIdentity::Endpoint {
                url: endpoint,
                secret: Secret::from(IDENTITY_HEADER),
            });
        })
        .await;
    (instance, issuer)
}

async fn current_user(connection: &mut PgConnection) -> sqlx::Result<String> {
    sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(connection)
        .await
}

#[tokio::test]
async fn the_pool_renews_its_token_without_dropping_a_connection_or_a_request() {
    let app = spawn_app().await;
    let (instance, issuer) = instance_signing_in_with_tokens(&app).await;
    let pool = &instance.state.db;
    assert_eq!(
        issuer.tokens().len(),
        1,
        "the first token before the first request"
    );
    let mut held = pool
        .acquire()
        .await
        .expect("signed in with the first token");
    assert_eq!(current_user(&mut held).await.unwrap(), issuer.role);

    let deadline = Instant::now() + Duration::from_secs(10);
    while issuer.tokens().len() < 2 {
        assert!(Instant::now() < deadline, "no renewal within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Postgres checked the first token when `held` opened; it keeps working.
    assert_eq!(current_user(&mut held).await.unwrap(), issuer.role);
    // A new connection with the first token is refused; the pool's new ones get in.
    let mut with_first =
        reqwest::Url::parse(instance.state.config.database.url.expose_secret()).unwrap();
    with_first.set_password(Some(&issuer.tokens()[0])).unwrap();
    assert!(PgConnection::connect(with_first.as_str()).await.is_err());
    let opened_before = pool.size();
    let mut fresh: Vec<_> = join_all((0..3).map(|_| pool.acquire())).await;
    assert!(pool.size() > opened_before, "new connections were opened");
    for connection in &mut fresh {
        let connection = connection
            .as_mut()
            .expect("a new connection with the renewed token");
        assert_eq!(current_user(connection).await.unwrap(), issuer.role);
    }
    drop((held, fresh));

    // Under a load of requests, through renewals, while a connection opens every 100 ms with
    // the pool's current options. Postgres holds one password per role, so for the instant
    // between the stand-in's ALTER ROLE and the pool's swap a new connection would be refused
    // (Entra keeps the previous token valid until it expires): the pool is warmed up outside
    // that instant, and the connections open outside it.
    wait_outside_renewal(&issuer).await;
    drop(join_all((0..6).map(|_| pool.acquire())).await);
    let renewals_before = issuer.tokens().len();
    let until = Instant::now() + Duration::from_secs(7);
    let workers = (0..4).map(|_| {
        let instance = &instance;
        async move {
            let mut answered = 0;
            while Instant::now() < until {
                let ready = instance.get("/api/health/ready", None).await;
                let status = ready.status();
                assert_eq!(status, StatusCode::OK, "{}", ready.text().await.unwrap());
                answered += 1;
            }
            answered
        }
    });
    let opener = async {
        let mut opened = 0;
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
            wait_outside_renewal(&issuer).await;
            let mut connection = PgConnection::connect_with(&pool.connect_options())
                .await
                .expect("a new connection with the pool's current token");
            assert_eq!(current_user(&mut connection).await.unwrap(), issuer.role);
            connection.close().await.unwrap();
            opened += 1;
        }
        opened
    };
    let (answered, opened) = tokio::join!(join_all(workers), opener);
    let renewals = issuer.tokens().len() - renewals_before;
    assert!(renewals >= 3, "{renewals} renewals");
    assert!(answered.iter().sum::<i32>() > 100, "{answered:?}");
    assert!(opened > 30, "{opened} new connections");

    // The role may read and write rows, and nothing more.
    let created = sqlx::query("CREATE TABLE intruder (id int)")
        .execute(pool)
        .await;
    assert!(created.is_err(), "the app's role cannot change the schema");
    // Closed, the pool stops renewing.
    pool.close().await;
    sqlx::query(&format!(r#"DROP OWNED BY "{}""#, issuer.role))
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query(&format!(r#"DROP ROLE "{}""#, issuer.role))
        .execute(&app.db)
        .await
        .unwrap();
}

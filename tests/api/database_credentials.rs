//! The request pool signing in with a short-lived credential (`DATABASE_AUTH=entra`), against
//! PgBouncer checking passwords as Azure checks Entra tokens: the stand-in identity endpoint
//! issues each token as the new password of the app's role, renewed every 1 to 2 seconds. The
//! first token is in place when the app starts; a connection opened with an older token keeps
//! working while new connections sign in with the current one; requests run through renewals
//! with no error; the role can't change the schema.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use platform::config::{ExposeSecret, Secret, SignIn};
use reqwest::StatusCode;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::helpers::*;

/// A role for the app with only what `handler grant-app-role` gives, the stand-in issuing its
/// tokens, and an instance of the app signing in as it.
async fn instance_signing_in_with_tokens(app: &TestApp) -> (TestApp, String, Arc<IdentityStandIn>) {
    let role = format!("app_{}", &Uuid::new_v4().simple().to_string()[..12]);
    sqlx::query(&format!(r#"CREATE ROLE "{role}" LOGIN"#))
        .execute(&app.db)
        .await
        .unwrap();
    let direct = app.state.config.database.direct_url.clone().unwrap();
    handler::commands::grant_app_role(direct.expose_secret(), &role)
        .await
        .unwrap();
    let (admin, named) = (app.db.clone(), role.clone());
    let stand_in = IdentityStandIn::start("https://ossrdbms-aad.database.windows.net", move |_| {
        let (admin, role) = (admin.clone(), named.clone());
        async move {
            let token = format!("Tk{}9", Uuid::new_v4().simple());
            sqlx::query(&format!(r#"ALTER ROLE "{role}" PASSWORD '{token}'"#))
                .execute(&admin)
                .await
                .unwrap();
            token
        }
    })
    .await;
    let mut url = reqwest::Url::parse(app.state.config.database.url.expose_secret()).unwrap();
    url.set_username(&role).unwrap();
    let instance = app
        .instance_with(|config| {
            config.database.url = Secret::from(url.to_string());
            config.database.auth = SignIn::Entra(stand_in.identity());
        })
        .await;
    (instance, role, stand_in)
}

async fn current_user(connection: &mut PgConnection) -> sqlx::Result<String> {
    sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(connection)
        .await
}

async fn wait_outside_renewal(stand_in: &IdentityStandIn) {
    while stand_in.renewing() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_pool_renews_its_token_without_dropping_a_connection_or_a_request() {
    let app = spawn_app().await;
    let (instance, role, stand_in) = instance_signing_in_with_tokens(&app).await;
    let pool = &instance.state.db;
    assert_eq!(
        stand_in.tokens().len(),
        1,
        "the first token before the first request"
    );
    let mut held = pool
        .acquire()
        .await
        .expect("signed in with the first token");
    assert_eq!(current_user(&mut held).await.unwrap(), role);

    stand_in.wait_for_tokens(2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Postgres checked the first token when `held` opened; it keeps working.
    assert_eq!(current_user(&mut held).await.unwrap(), role);
    // A new connection with the first token is refused; the pool's new ones get in.
    let mut with_first =
        reqwest::Url::parse(instance.state.config.database.url.expose_secret()).unwrap();
    with_first
        .set_password(Some(&stand_in.tokens()[0]))
        .unwrap();
    assert!(PgConnection::connect(with_first.as_str()).await.is_err());
    wait_outside_renewal(&stand_in).await;
    let opened_before = pool.size();
    let mut fresh: Vec<_> = join_all((0..3).map(|_| pool.acquire())).await;
    assert!(pool.size() > opened_before, "new connections were opened");
    for connection in &mut fresh {
        let connection = connection
            .as_mut()
            .expect("a new connection with the renewed token");
        assert_eq!(current_user(connection).await.unwrap(), role);
    }
    drop((held, fresh));

    // Under a load of requests, through renewals, while a connection opens every 100 ms with
    // the pool's current options. Postgres holds one password per role, so for the instant
    // between the stand-in's ALTER ROLE and the pool's swap a new connection would be refused
    // (Entra keeps the previous token valid until it expires): the pool is warmed up outside
    // that instant, and the connections open outside it.
    wait_outside_renewal(&stand_in).await;
    drop(join_all((0..6).map(|_| pool.acquire())).await);
    let renewals_before = stand_in.tokens().len();
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
            wait_outside_renewal(&stand_in).await;
            let mut connection = PgConnection::connect_with(&pool.connect_options())
                .await
                .expect("a new connection with the pool's current token");
            assert_eq!(current_user(&mut connection).await.unwrap(), role);
            connection.close().await.unwrap();
            opened += 1;
        }
        opened
    };
    let (answered, opened) = tokio::join!(join_all(workers), opener);
    let renewals = stand_in.tokens().len() - renewals_before;
    assert!(renewals >= 3, "{renewals} renewals");
    assert!(answered.iter().sum::<i32>() > 100, "{answered:?}");
    assert!(opened >= 10, "{opened} new connections");

    // The role may read and write rows, and nothing more.
    let created = sqlx::query("CREATE TABLE intruder (id int)")
        .execute(pool)
        .await;
    assert!(created.is_err(), "the app's role cannot change the schema");
    // Closed, the pool stops renewing.
    pool.close().await;
    sqlx::query(&format!(r#"DROP OWNED BY "{role}""#))
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query(&format!(r#"DROP ROLE "{role}""#))
        .execute(&app.db)
        .await
        .unwrap();
}

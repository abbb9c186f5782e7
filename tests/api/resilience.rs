//! Degraded dependencies: Redis unreachable, or stopped while serving; the database out of reach
//! (503 `UNAVAILABLE`, nothing half-written, the retry served once).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

/// A private redis-server on a free port, killed on drop.
struct PrivateRedis {
    child: Child,
    port: u16,
}

impl PrivateRedis {
    async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let redis = PrivateRedis { child, port };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return redis;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start");
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn exercise(app: &TestApp, email: &str) {
    let (_, token) = app.student(email).await;
    app.get("/api/auth/me", Some(&token))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let login = app.login(email).await;
    app.get("/api/auth/me", Some(&login))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let wrong = app
        .post(
            "/api/auth/login",
            &json!({"email": email, "password": "Wrong-Pass1"}),
            None,
        )
        .await;
    wrong
        .expect_problem(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS")
        .await;
    app.post("/api/auth/logout", &json!({}), Some(&login)).await;
    app.get("/api/auth/me", Some(&login))
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "SESSION_REVOKED")
        .await;
}

#[tokio::test]
async fn requests_succeed_when_redis_is_unreachable_from_the_start() {
    let app = spawn_app_with(Options {
        redis_url: Some("redis://127.0.0.1:1".into()),
        ..Default::default()
    })
    .await;

    exercise(&app, "no-redis@example.com").await;

    let ready = app
        .get("/api/health/ready", None)
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(ready["cache"], "redisDown");
}

#[tokio::test]
async fn requests_keep_succeeding_when_redis_stops_mid_flight() {
    let mut redis = PrivateRedis::start().await;
    let app = spawn_app_with(Options {
        redis_url: Some(format!("redis://127.0.0.1:{}", redis.port)),
        ..Default::default()
    })
    .await;
    exercise(&app, "before@example.com").await;
    let (_, token) = app.student("survivor@example.com").await;
    let ready = app
        .get("/api/health/ready", None)
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(ready["cache"], "redis");

    redis.stop();

    app.get("/api/auth/me", Some(&token))
        .await
        .expect_status(StatusCode::OK)
        .await;
    exercise(&app, "after@example.com").await;
}

#[tokio::test]
async fn the_app_runs_without_redis_configured() {
    let app = spawn_app_with(Options {
        redis_url: Some(String::new()),
        ..Default::default()
    })
    .await;

    exercise(&app, "local@example.com").await;

    let ready = app
        .get("/api/health/ready", None)
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(ready["cache"], "inProcess");
}

/// A TCP relay to PgBouncer that a test can cut: its connections are dropped and new ones refused
/// until it is restored, as when PgBouncer or Postgres restarts under the app.
struct DatabaseRelay {
    port: u16,
    open: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
}

impl DatabaseRelay {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let (cuts, _) = watch::channel(0);
        let relay = DatabaseRelay {
            port,
            open: open.clone(),
            cuts: cuts.clone(),
        };
        let upstream = pooled_address();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !open.load(Ordering::SeqCst) {
                    continue;
                }
                let mut cut = cuts.subscribe();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        relay
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|cuts| *cuts += 1);
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_booking_the_database_cannot_take_is_a_503_and_its_retry_books_once() {
    let relay = DatabaseRelay::start().await;
    let app = spawn_app_with(Options {
        database_port: Some(relay.port),
        acquire_timeout: Some(Duration::from_secs(2)),
        ..Default::default()
    })
    .await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app.open_mentor("steady@example.com", &admin).await;
    let (_, student) = app.student("patient@example.com").await;
    let booking = json!({"mentorId": mentor_id, "subject": "Physics", "sessionType": "regular",
                         "scheduledAt": at(6, 10, 0), "idempotencyKey": "through-the-outage"});

    relay.cut();
    let refused = app.post("/api/bookings", &booking, Some(&student)).await;
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("1"),
        "{:?}",
        refused.status()
    );
    refused
        .expect_problem(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE")
        .await;
    assert_eq!(app.count("bookings").await, 0);

    relay.restore();
    let booked = app
        .post("/api/bookings", &booking, Some(&student))
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    let again = app
        .post("/api/bookings", &booking, Some(&student))
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    assert_eq!(again["bookingId"], booked["bookingId"]);
    assert_eq!(app.count("bookings").await, 1);
}

//! Degraded dependencies: Redis unreachable, or stopped while serving.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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

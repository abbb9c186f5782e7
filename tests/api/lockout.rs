//! Login lockout per email and per IP, shared by every instance.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

async fn attempt(app: &TestApp, email: &str, password: &str, ip: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/auth/login"))
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_look_the_same() {
    let app = spawn_app().await;
    app.student("known@example.com").await;

    let wrong = attempt(&app, "known@example.com", "Wrong-Pass1", "198.51.100.1").await;
    let unknown = attempt(&app, "nobody@example.com", PASSWORD, "198.51.100.1").await;

    let wrong = wrong
        .expect_problem(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS")
        .await;
    let unknown = unknown
        .expect_problem(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS")
        .await;
    assert_eq!(wrong["detail"], unknown["detail"]);
}

#[tokio::test]
async fn five_failures_lock_the_email_for_everyone_on_every_instance() {
    let app = spawn_app().await;
    let other_instance = app.second_instance().await;
    app.student("target@example.com").await;
    app.student("bystander@example.com").await;

    for n in 0..5 {
        let response = attempt(
            &app,
            "target@example.com",
            "Wrong-Pass1",
            &format!("203.0.113.{n}"),
        )
        .await;
        response
            .expect_problem(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS")
            .await;
    }
    // The right password, from another IP, on another instance: still locked.
    let locked = attempt(
        &other_instance,
        "TARGET@example.com",
        PASSWORD,
        "192.0.2.77",
    )
    .await;

    let retry_after: i64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let problem = locked
        .expect_problem(StatusCode::TOO_MANY_REQUESTS, "LOGIN_LOCKED")
        .await;
    assert!(
        (800..=900).contains(&retry_after),
        "about 15 minutes, got {retry_after} s"
    );
    let ends_at: chrono::DateTime<chrono::Utc> =
        problem["lockoutEndsAt"].as_str().unwrap().parse().unwrap();
    let minutes = (ends_at - chrono::Utc::now()).num_minutes();
    assert!(
        (13..=15).contains(&minutes),
        "lockout ends in {minutes} min"
    );
    let bystander = attempt(
        &other_instance,
        "bystander@example.com",
        PASSWORD,
        "192.0.2.77",
    )
    .await;
    bystander.expect_status(StatusCode::OK).await;
}

#[tokio::test]
async fn a_success_before_the_limit_clears_the_email_count() {
    let app = spawn_app().await;
    app.student("forgetful@example.com").await;
    for _ in 0..4 {
        attempt(&app, "forgetful@example.com", "Wrong-Pass1", "198.51.100.9").await;
    }
    attempt(&app, "forgetful@example.com", PASSWORD, "198.51.100.9")
        .await
        .expect_status(StatusCode::OK)
        .await;

    for _ in 0..4 {
        attempt(&app, "forgetful@example.com", "Wrong-Pass1", "198.51.100.9").await;
    }

    attempt(&app, "forgetful@example.com", PASSWORD, "198.51.100.9")
        .await
        .expect_status(StatusCode::OK)
        .await;
}

#[tokio::test]
async fn thirty_failures_from_one_ip_lock_that_ip_only() {
    let app = spawn_app().await;
    app.student("victim@example.com").await;

    for n in 0..30 {
        let response = attempt(
            &app,
            &format!("spray{n}@example.com"),
            "Wrong-Pass1",
            "198.51.100.66",
        )
        .await;
        response
            .expect_problem(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS")
            .await;
    }

    let from_sprayer = attempt(&app, "victim@example.com", PASSWORD, "198.51.100.66").await;
    from_sprayer
        .expect_problem(StatusCode::TOO_MANY_REQUESTS, "LOGIN_LOCKED")
        .await;
    let from_elsewhere = attempt(&app, "victim@example.com", PASSWORD, "198.51.100.67").await;
    from_elsewhere.expect_status(StatusCode::OK).await;
}

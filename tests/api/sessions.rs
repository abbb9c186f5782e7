//! Session lifetime: single session, revocation, expiry, sliding, and load through PgBouncer.

use futures::future::join_all;
use platform::auth::token;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn a_new_login_ends_the_previous_session() {
    let app = spawn_app().await;
    let (_, first) = app.student("one@example.com").await;
    app.get("/api/auth/me", Some(&first))
        .await
        .expect_status(StatusCode::OK)
        .await;

    let second = app.login("one@example.com").await;

    app.get("/api/auth/me", Some(&first))
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "SESSION_REVOKED")
        .await;
    app.get("/api/auth/me", Some(&second))
        .await
        .expect_status(StatusCode::OK)
        .await;
}

#[tokio::test]
async fn missing_and_unknown_tokens_are_unauthenticated() {
    let app = spawn_app().await;

    app.get("/api/auth/me", None)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED")
        .await;
    app.get("/api/auth/me", Some("forged-token"))
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED")
        .await;
}

#[tokio::test]
async fn expired_sessions_are_refused() {
    let app = spawn_app().await;
    let (user_id, token) = app.student("old@example.com").await;
    // Past the 90-day absolute limit; the cache entry's own TTL has run out too.
    app.execute(
        "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE user_id = $1",
        user_id,
    )
    .await;
    app.state
        .cache
        .delete(&[token::session_cache_key(&token::hash(&token))])
        .await;

    app.get("/api/auth/me", Some(&token))
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "SESSION_EXPIRED")
        .await;
}

#[tokio::test]
async fn idle_sessions_expire_after_30_days_and_active_ones_slide() {
    let app = spawn_app().await;
    let (idle_id, idle_token) = app.student("idle@example.com").await;
    let (busy_id, busy_token) = app.student("busy@example.com").await;
    app.execute(
        "UPDATE sessions SET last_seen_at = now() - interval '31 days' WHERE user_id = $1",
        idle_id,
    )
    .await;
    app.execute(
        "UPDATE sessions SET last_seen_at = now() - interval '2 hours' WHERE user_id = $1",
        busy_id,
    )
    .await;
    for token in [&idle_token, &busy_token] {
        app.state
            .cache
            .delete(&[token::session_cache_key(&token::hash(token))])
            .await;
    }

    app.get("/api/auth/me", Some(&idle_token))
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "SESSION_EXPIRED")
        .await;
    app.get("/api/auth/me", Some(&busy_token))
        .await
        .expect_status(StatusCode::OK)
        .await;

    let seen_ago: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM now() - last_seen_at)::float8 FROM sessions WHERE user_id = $1",
    )
    .bind(busy_id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(
        seen_ago < 60.0,
        "last_seen_at slid forward ({seen_ago} s ago)"
    );
}

#[tokio::test]
async fn a_password_change_ends_every_other_session_at_once_even_when_cached() {
    let app = spawn_app().await;
    let (user_id, current) = app.student("multi@example.com").await;
    // A second live session (say, issued by another instance a moment ago), used once so that
    // it sits in the cache.
    let (other, other_hash) = token::generate();
    sqlx::query(
        "INSERT INTO sessions (session_id, user_id, token_hash, kind, expires_at) VALUES ($1, $2, $3, 'session', now() + interval '1 day')",
    )
    .bind(Uuid::new_v4())
    .bind(user_id)
    .bind(other_hash)
    .execute(&app.db)
    .await
    .unwrap();
    app.get("/api/auth/me", Some(&other))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let second_instance = app.second_instance().await;
    second_instance
        .get("/api/auth/me", Some(&other))
        .await
        .expect_status(StatusCode::OK)
        .await;

    let changed = app
        .post(
            "/api/auth/password",
            &json!({"currentPassword": PASSWORD, "newPassword": "Fresh-Passw0rd"}),
            Some(&current),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);

    for instance in [&app, &second_instance] {
        let response = instance.get("/api/auth/me", Some(&other)).await;
        response
            .expect_problem(StatusCode::UNAUTHORIZED, "SESSION_REVOKED")
            .await;
    }
    app.get("/api/auth/me", Some(&current))
        .await
        .expect_status(StatusCode::OK)
        .await;
}

#[tokio::test]
async fn two_hundred_parallel_authenticated_requests_through_pgbouncer_all_succeed() {
    let app = spawn_app().await;
    let mut tokens = Vec::new();
    for n in 0..20 {
        tokens.push(app.student(&format!("load{n}@example.com")).await.1);
    }

    let requests = (0..200).map(|n| app.get("/api/auth/me", Some(&tokens[n % tokens.len()])));
    let responses = join_all(requests).await;

    let failures: Vec<StatusCode> = responses
        .iter()
        .map(|response| response.status())
        .filter(|status| *status != StatusCode::OK)
        .collect();
    assert!(failures.is_empty(), "non-200 answers: {failures:?}");
    let server_pool: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND application_name <> $1",
    )
    .bind(TEST_APPLICATION_NAME)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(
        server_pool <= 10,
        "PgBouncer kept the server pool at 10 (saw {server_pool})"
    );
}

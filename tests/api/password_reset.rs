//! Forgot and reset password: emailed 6-digit code, 15 minutes, 5 attempts.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

async fn emailed_code(app: &TestApp, email: &str) -> String {
    let body: String = sqlx::query_scalar(
        "SELECT body_text FROM email_outbox WHERE recipient = $1 AND category = 'password_reset' ORDER BY created_at DESC LIMIT 1",
    )
    .bind(email)
    .fetch_one(&app.db)
    .await
    .expect("a reset email in the outbox");
    body.split_whitespace()
        .map(|word| word.trim_end_matches(['.', ',']))
        .find(|word| word.len() == 6 && word.chars().all(|c| c.is_ascii_digit()))
        .expect("a 6-digit code in the email")
        .to_owned()
}

#[tokio::test]
async fn forgot_answers_the_same_for_unknown_emails_and_sends_nothing() {
    let app = spawn_app().await;

    let response = app
        .post(
            "/api/auth/password/forgot",
            &json!({"email": "ghost@example.com"}),
            None,
        )
        .await;

    response.expect_status(StatusCode::ACCEPTED).await;
    assert_eq!(app.count("email_outbox").await, 0);
}

#[tokio::test]
async fn a_reset_code_replaces_the_password_and_ends_every_session() {
    let app = spawn_app().await;
    let (user_id, token) = app.student("reset@example.com").await;
    app.get("/api/auth/me", Some(&token))
        .await
        .expect_status(StatusCode::OK)
        .await;
    app.post(
        "/api/auth/password/forgot",
        &json!({"email": "Reset@example.com"}),
        None,
    )
    .await;
    let code = emailed_code(&app, "reset@example.com").await;
    let stored: Vec<u8> = sqlx::query_scalar("SELECT code_hash FROM password_reset_codes")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let mut message = user_id.as_bytes().to_vec();
    message.extend_from_slice(code.as_bytes());
    assert_eq!(
        data_encoding::HEXLOWER.encode(&stored),
        payments::signatures::sign(RESET_CODE_KEY, &message),
        "codes are stored as HMAC-SHA256(RESET_CODE_KEY, user id ‖ code), useless without the key"
    );

    let reset = app
        .post(
            "/api/auth/password/reset",
            &json!({"email": "reset@example.com", "code": code, "newPassword": "Brand-New1"}),
            None,
        )
        .await;

    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    app.get("/api/auth/me", Some(&token))
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "SESSION_REVOKED")
        .await;
    let login = app
        .post(
            "/api/auth/login",
            &json!({"email": "reset@example.com", "password": "Brand-New1"}),
            None,
        )
        .await;
    login.expect_status(StatusCode::OK).await;
    let again = app
        .post(
            "/api/auth/password/reset",
            &json!({"email": "reset@example.com", "code": code, "newPassword": "Another-1x"}),
            None,
        )
        .await;
    again
        .expect_problem(StatusCode::BAD_REQUEST, "RESET_CODE_INVALID")
        .await;
}

#[tokio::test]
async fn five_wrong_codes_use_the_code_up() {
    let app = spawn_app().await;
    app.student("guessed@example.com").await;
    app.post(
        "/api/auth/password/forgot",
        &json!({"email": "guessed@example.com"}),
        None,
    )
    .await;
    let code = emailed_code(&app, "guessed@example.com").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };

    for attempts_left in (0..5).rev() {
        let response = app
            .post("/api/auth/password/reset", &json!({"email": "guessed@example.com", "code": wrong, "newPassword": "Brand-New1"}), None)
            .await;
        let problem = response
            .expect_problem(StatusCode::BAD_REQUEST, "RESET_CODE_INVALID")
            .await;
        assert_eq!(problem["attemptsLeft"], attempts_left);
    }
    let right_but_late = app
        .post(
            "/api/auth/password/reset",
            &json!({"email": "guessed@example.com", "code": code, "newPassword": "Brand-New1"}),
            None,
        )
        .await;

    right_but_late
        .expect_problem(StatusCode::BAD_REQUEST, "RESET_CODE_INVALID")
        .await;
    app.login("guessed@example.com").await;
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = spawn_app().await;
    let (user_id, _) = app.student("late@example.com").await;
    app.post(
        "/api/auth/password/forgot",
        &json!({"email": "late@example.com"}),
        None,
    )
    .await;
    let code = emailed_code(&app, "late@example.com").await;
    app.execute("UPDATE password_reset_codes SET expires_at = now() - interval '1 second' WHERE user_id = $1", user_id).await;

    let response = app
        .post(
            "/api/auth/password/reset",
            &json!({"email": "late@example.com", "code": code, "newPassword": "Brand-New1"}),
            None,
        )
        .await;

    response
        .expect_problem(StatusCode::BAD_REQUEST, "RESET_CODE_INVALID")
        .await;
}

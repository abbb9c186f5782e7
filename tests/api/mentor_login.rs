//! Mentor sign-in: approval states and mandatory TOTP.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_pending_mentor_cannot_sign_in_and_gets_no_session_at_signup() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/api/auth/signup",
            &json!({"email": "new@example.com", "password": PASSWORD, "firstName": "N", "lastName": "M", "role": "mentor",
                    "specialties": [{"subject": "Rust", "experience": 3}]}),
            None,
        )
        .await;
    let body = response.expect_status(StatusCode::CREATED).await;
    assert_eq!(body["user"]["approvalStatus"], "pending");
    assert!(body.get("sessionToken").is_none());

    let login = app
        .post(
            "/api/auth/login",
            &json!({"email": "new@example.com", "password": PASSWORD}),
            None,
        )
        .await;

    login
        .expect_problem(StatusCode::FORBIDDEN, "APPROVAL_PENDING")
        .await;
    assert_eq!(app.count("sessions").await, 0);
}

#[tokio::test]
async fn a_rejected_mentor_is_told_why() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let mentor_id = app.pending_mentor("rejected@example.com").await;
    let rejected = app
        .post(
            &format!("/api/admin/mentors/{mentor_id}/reject"),
            &json!({"reason": "Qualifications unverifiable"}),
            Some(&admin),
        )
        .await;
    rejected.expect_status(StatusCode::OK).await;

    let login = app
        .post(
            "/api/auth/login",
            &json!({"email": "rejected@example.com", "password": PASSWORD}),
            None,
        )
        .await;

    let problem = login
        .expect_problem(StatusCode::FORBIDDEN, "APPROVAL_REJECTED")
        .await;
    assert_eq!(problem["reason"], "Qualifications unverifiable");
    let emails: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM email_outbox WHERE recipient = 'rejected@example.com'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(emails, 1, "the decision is emailed through the outbox");
}

#[tokio::test]
async fn an_approved_mentor_without_2fa_must_enrol_before_getting_a_session() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let mentor_id = app.pending_mentor("fresh@example.com").await;
    app.post(
        &format!("/api/admin/mentors/{mentor_id}/approve"),
        &json!({}),
        Some(&admin),
    )
    .await;

    let login = app
        .post(
            "/api/auth/login",
            &json!({"email": "fresh@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    let body = login.expect_status(StatusCode::OK).await;
    assert_eq!(body["require2FASetup"], true);
    assert!(body.get("sessionToken").is_none());
    let enrollment = body["enrollmentToken"].as_str().unwrap();

    // The enrolment token opens nothing but enrolment.
    app.get("/api/auth/me", Some(enrollment))
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED")
        .await;
    let verify_early = app
        .post(
            "/api/auth/2fa/verify",
            &json!({"code": "123456"}),
            Some(enrollment),
        )
        .await;
    verify_early
        .expect_problem(StatusCode::CONFLICT, "TOTP_SETUP_NOT_STARTED")
        .await;

    let setup = app
        .post("/api/auth/2fa/setup", &json!({}), Some(enrollment))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let secret = setup["secret"].as_str().unwrap();
    assert!(
        setup["otpauthUrl"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/CodeConnect:fresh%40example.com?secret=")
    );
    let wrong = app
        .post(
            "/api/auth/2fa/verify",
            &json!({"code": "000000"}),
            Some(enrollment),
        )
        .await;
    wrong
        .expect_problem(StatusCode::UNAUTHORIZED, "INVALID_TOTP")
        .await;

    let verified = app
        .post(
            "/api/auth/2fa/verify",
            &json!({"code": totp_now(secret)}),
            Some(enrollment),
        )
        .await;

    let session = verified.expect_status(StatusCode::OK).await;
    assert_eq!(session["user"]["twoFactorEnabled"], true);
    let token = session["sessionToken"].as_str().unwrap();
    app.get("/api/auth/me", Some(token))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let reuse = app
        .post("/api/auth/2fa/setup", &json!({}), Some(enrollment))
        .await;
    reuse
        .expect_problem(StatusCode::UNAUTHORIZED, "SESSION_REVOKED")
        .await;
}

#[tokio::test]
async fn a_mentor_with_2fa_needs_a_fresh_correct_code() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, _, secret) = app.signed_in_mentor("totp@example.com", &admin).await;
    let credentials = json!({"email": "totp@example.com", "password": PASSWORD});

    let without_code = app
        .post("/api/auth/login", &credentials, None)
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(without_code, json!({"require2FA": true}));

    let wrong = app
        .post(
            "/api/auth/login",
            &json!({"email": "totp@example.com", "password": PASSWORD, "totpCode": "999999"}),
            None,
        )
        .await;
    wrong
        .expect_problem(StatusCode::UNAUTHORIZED, "INVALID_TOTP")
        .await;

    // The next step's code (accepted within the one-step drift, and newer than the step the
    // enrolment used) works once; the same code again is a replay.
    let next_code = totp_at(&secret, 30);
    let with_code =
        json!({"email": "totp@example.com", "password": PASSWORD, "totpCode": next_code});
    let session = app
        .post("/api/auth/login", &with_code, None)
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert!(session["sessionToken"].is_string());

    let replay = app.post("/api/auth/login", &with_code, None).await;
    replay
        .expect_problem(StatusCode::UNAUTHORIZED, "INVALID_TOTP")
        .await;
}

#[tokio::test]
async fn wrong_totp_codes_count_toward_the_lockout() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    app.signed_in_mentor("guess@example.com", &admin).await;
    let guess = json!({"email": "guess@example.com", "password": PASSWORD, "totpCode": "000001"});

    for _ in 0..5 {
        let response = app.post("/api/auth/login", &guess, None).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }

    app.post("/api/auth/login", &guess, None)
        .await
        .expect_problem(StatusCode::TOO_MANY_REQUESTS, "LOGIN_LOCKED")
        .await;
}

//! Malformed, mistyped, oversized and unknown input: a 4xx problem, never a 500, nothing written.

use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn bad_bodies_get_problems_with_stable_codes_and_write_nothing() {
    let app = spawn_app().await;
    let valid = r#"{"email":"b@example.com","password":"Correct-Horse1","firstName":"B","lastName":"C","role":"student"}"#;
    let oversized = format!(
        r#"{{"email":"b@example.com","password":"Correct-Horse1","firstName":"{}","lastName":"C","role":"student"}}"#,
        "x".repeat(100 * 1024)
    );
    let cases: Vec<(&str, String, &str, StatusCode, &str)> = vec![
        (
            "malformed JSON",
            r#"{"email": "#.into(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "MALFORMED_JSON",
        ),
        (
            "missing field",
            r#"{"email":"b@example.com"}"#.into(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_BODY",
        ),
        (
            "wrong type",
            valid.replace(r#""firstName":"B""#, r#""firstName":42"#),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_BODY",
        ),
        (
            "unknown enum value",
            valid.replace(r#""role":"student""#, r#""role":"superuser""#),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_BODY",
        ),
        (
            "not JSON at all",
            "email=b@example.com".into(),
            "application/x-www-form-urlencoded",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "oversized body",
            oversized,
            "application/json",
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            "a JSON array",
            "[]".into(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_BODY",
        ),
    ];
    for (case, body, content_type, status, code) in cases {
        let response = app
            .client
            .post(app.url("/api/auth/signup"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), status, "case: {case}");
        let problem = response.expect_problem(status, code).await;
        assert!(
            problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "case {case}: {problem}"
        );
    }
    assert_eq!(app.count("users").await, 0);
}

#[tokio::test]
async fn bad_input_on_every_auth_write_route_is_a_4xx() {
    let app = spawn_app().await;
    let (_, token) = app.student("input@example.com").await;
    for path in [
        "/api/auth/login",
        "/api/auth/password",
        "/api/auth/password/forgot",
        "/api/auth/password/reset",
        "/api/auth/2fa/verify",
    ] {
        for body in [r#"{"#, r#"{"unexpected": true}"#, r#""a string""#] {
            let response = app
                .client
                .post(app.url(path))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            assert!(status.is_client_error(), "{path} with {body}: {status}");
        }
    }
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("email_outbox").await, 0);
    app.get("/api/auth/me", Some(&token))
        .await
        .expect_status(StatusCode::OK)
        .await;
}

#[tokio::test]
async fn unknown_paths_and_methods_get_problems() {
    let app = spawn_app().await;

    app.get("/api/nothing/here", None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "ROUTE_NOT_FOUND")
        .await;
    let wrong_method = app
        .client
        .delete(app.url("/api/auth/login"))
        .send()
        .await
        .unwrap();
    wrong_method
        .expect_problem(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED")
        .await;
    let bad_id = app
        .client
        .post(app.url("/api/admin/users/not-a-uuid/deactivate"))
        .send()
        .await
        .unwrap();
    // Authentication is checked first; the path is never trusted before that.
    assert!(bad_id.status().is_client_error());
}

/// Postgres refuses a NUL character in text; it is refused where input enters, as a 422 naming
/// the field, on public and signed-in routes, in bodies, queries and paths, and nothing is
/// written.
#[tokio::test]
async fn a_nul_character_in_any_text_is_a_422_naming_the_field() {
    let app = spawn_app().await;
    let class = app.class_in_progress().await;
    let nul = "a\u{0}b";
    let emails_before = app.count("email_outbox").await;
    let messages = format!("/api/bookings/{}/messages", class.booking_id);
    let cancel = format!("/api/bookings/{}/cancel", class.booking_id);
    let body_cases: Vec<(&str, serde_json::Value, Option<&str>, &str)> = vec![
        (
            "/api/auth/signup",
            serde_json::json!({"email": "n@example.com", "password": "Correct-Horse1",
                "firstName": nul, "lastName": "C", "role": "student", "country": nul}),
            None,
            "firstName",
        ),
        (
            "/api/auth/login",
            serde_json::json!({"email": nul, "password": "x"}),
            None,
            "email",
        ),
        (
            "/api/auth/password/forgot",
            serde_json::json!({"email": nul}),
            None,
            "email",
        ),
        (
            &messages,
            serde_json::json!({"message": nul, "clientMessageId": "c1"}),
            Some(&class.student),
            "message",
        ),
        (
            &cancel,
            serde_json::json!({"reason": nul}),
            Some(&class.student),
            "reason",
        ),
        (
            "/api/admin/users",
            serde_json::json!({"email": nul, "password": "Correct-Horse1",
                "firstName": "A", "lastName": "B"}),
            Some(&class.admin),
            "email",
        ),
    ];
    for (path, body, token, field) in &body_cases {
        let problem = app
            .post(path, body, *token)
            .await
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED")
            .await;
        let fields = problem_fields(&problem);
        assert!(fields.contains(field), "{path}: {problem}");
    }
    for path in ["/api/mentors?q=a%00b", "/api/mentors?subject=%00"] {
        let problem = app
            .get(path, None)
            .await
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED")
            .await;
        assert!(problem["errors"][0]["field"].is_string(), "{problem}");
    }
    app.get("/api/mentors/a%00b", None)
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED")
        .await;
    assert_eq!(
        app.count("chat_messages").await,
        0,
        "no chat message stored"
    );
    assert_eq!(
        app.count("email_outbox").await,
        emails_before,
        "no email queued"
    );
    let status: String = sqlx::query_scalar("SELECT status FROM bookings WHERE booking_id = $1")
        .bind(class.booking_id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(status, "confirmed");
}

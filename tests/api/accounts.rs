//! Signup, me, logout and password change.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_student_signs_up_and_is_signed_in_at_once_without_secrets_in_the_answer() {
    let app = spawn_app().await;

    let response = app
        .post(
            "/api/auth/signup",
            &json!({"email": "  Ann@Example.COM ", "password": PASSWORD, "firstName": "Ann", "lastName": "Lee", "role": "student", "country": "India"}),
            None,
        )
        .await;

    let cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.expect_status(StatusCode::CREATED).await;
    assert_eq!(body["user"]["email"], "ann@example.com");
    assert_eq!(body["user"]["role"], "student");
    assert_eq!(body["user"]["approvalStatus"], "approved");
    assert!(cookie.starts_with("cc_session="));
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(
            cookie.contains(attribute),
            "cookie lacks {attribute}: {cookie}"
        );
    }
    let token = body["sessionToken"].as_str().unwrap();
    assert_no_secrets(&json!({"user": body["user"]}));

    let me = app
        .get("/api/auth/me", Some(token))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(me["email"], "ann@example.com");
    assert_eq!(me["twoFactorEnabled"], false);
    assert_no_secrets(&me);

    let stored: Vec<u8> = sqlx::query_scalar("SELECT token_hash FROM sessions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_ne!(stored, token.as_bytes(), "tokens are stored hashed");
    let password_hash: String = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(password_hash.starts_with("$argon2id$"));
}

#[tokio::test]
async fn the_session_cookie_authenticates_like_the_bearer_header() {
    let app = spawn_app().await;
    let (_, token) = app.student("cookie@example.com").await;

    let response = app
        .client
        .get(app.url("/api/auth/me"))
        .header("cookie", format!("theme=dark; cc_session={token}"))
        .send()
        .await
        .unwrap();

    assert_eq!(
        response.expect_status(StatusCode::OK).await["email"],
        "cookie@example.com"
    );
}

#[tokio::test]
async fn a_cookie_authenticated_change_from_a_foreign_origin_is_refused() {
    let app = spawn_app().await;
    let (_, token) = app.student("csrf@example.com").await;
    let logout = |origin: Option<&str>, bearer: bool| {
        let mut request = app.client.post(app.url("/api/auth/logout"));
        request = if bearer {
            request.bearer_auth(&token)
        } else {
            request.header("cookie", format!("cc_session={token}"))
        };
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    logout(Some("https://evil.example"), false)
        .await
        .unwrap()
        .expect_problem(StatusCode::FORBIDDEN, "ORIGIN_NOT_ALLOWED")
        .await;
    // Reads with the cookie from anywhere, and the bearer header, are not at risk.
    let me = app
        .client
        .get(app.url("/api/auth/me"))
        .header("cookie", format!("cc_session={token}"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK, "the session survived");
    assert_eq!(
        logout(Some("https://app.codeconnect.example"), false)
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    let (_, token) = app.student("csrf-bearer@example.com").await;
    let by_bearer = app
        .client
        .post(app.url("/api/auth/logout"))
        .bearer_auth(&token)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(by_bearer.status(), StatusCode::NO_CONTENT);
    // The logout from our own origin above did end the first session.
    assert_eq!(
        logout(None, true).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn an_email_can_be_registered_once_whatever_its_case() {
    let app = spawn_app().await;
    app.student("dup@example.com").await;

    let response = app
        .post(
            "/api/auth/signup",
            &json!({"email": "DUP@example.com", "password": PASSWORD, "firstName": "A", "lastName": "B", "role": "student"}),
            None,
        )
        .await;

    response
        .expect_problem(StatusCode::CONFLICT, "EMAIL_TAKEN")
        .await;
    assert_eq!(app.count("users").await, 1);
}

#[tokio::test]
async fn signing_up_as_admin_is_refused_and_writes_nothing() {
    let app = spawn_app().await;

    let response = app
        .post(
            "/api/auth/signup",
            &json!({"email": "root@example.com", "password": PASSWORD, "firstName": "R", "lastName": "T", "role": "admin"}),
            None,
        )
        .await;

    response
        .expect_problem(StatusCode::FORBIDDEN, "ROLE_NOT_ALLOWED")
        .await;
    assert_eq!(app.count("users").await, 0);
}

#[tokio::test]
async fn weak_passwords_and_bad_fields_are_named_and_nothing_is_written() {
    let app = spawn_app().await;
    let cases = [
        (json!({"password": "short1A"}), "password"),
        (json!({"password": "alllowercase1"}), "password"),
        (json!({"password": "NoDigitsHere"}), "password"),
        (json!({"email": "not-an-email"}), "email"),
        (json!({"firstName": "  "}), "firstName"),
        (json!({"role": "mentor", "specialties": []}), "specialties"),
    ];
    for (overrides, field) in cases {
        let mut body = json!({"email": "v@example.com", "password": PASSWORD, "firstName": "V", "lastName": "W", "role": "student"});
        for (key, value) in overrides.as_object().unwrap() {
            body[key] = value.clone();
        }

        let response = app.post("/api/auth/signup", &body, None).await;

        let problem = response
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED")
            .await;
        let fields = problem_fields(&problem);
        assert!(
            fields.contains(&field),
            "case {overrides}: errors {problem}"
        );
    }
    assert_eq!(app.count("users").await, 0);
}

#[tokio::test]
async fn logout_ends_the_session_at_once_and_clears_the_cookie() {
    let app = spawn_app().await;
    let (_, token) = app.student("bye@example.com").await;
    app.get("/api/auth/me", Some(&token))
        .await
        .expect_status(StatusCode::OK)
        .await;

    let response = app.post("/api/auth/logout", &json!({}), Some(&token)).await;

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
    app.get("/api/auth/me", Some(&token))
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "SESSION_REVOKED")
        .await;
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_the_old_one_stops_working() {
    let app = spawn_app().await;
    app.student("pw@example.com").await;
    // Signing in caches the account (with its password hash) for the login lookup.
    let token = app.login("pw@example.com").await;

    let wrong = app
        .post(
            "/api/auth/password",
            &json!({"currentPassword": "Wrong-Pass1", "newPassword": "New-Passw0rd"}),
            Some(&token),
        )
        .await;
    wrong
        .expect_problem(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS")
        .await;

    let weak = app
        .post(
            "/api/auth/password",
            &json!({"currentPassword": PASSWORD, "newPassword": "weak"}),
            Some(&token),
        )
        .await;
    weak.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED")
        .await;

    let changed = app
        .post(
            "/api/auth/password",
            &json!({"currentPassword": PASSWORD, "newPassword": "New-Passw0rd"}),
            Some(&token),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);

    app.get("/api/auth/me", Some(&token))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let old = app
        .post(
            "/api/auth/login",
            &json!({"email": "pw@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    old.expect_problem(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS")
        .await;
    let new = app
        .post(
            "/api/auth/login",
            &json!({"email": "pw@example.com", "password": "New-Passw0rd"}),
            None,
        )
        .await;
    new.expect_status(StatusCode::OK).await;
}

/// A password stored under the earlier parameters (19 MiB, 2 passes) still signs in, and
/// that sign-in stores it hashed at today's; a wrong password changes nothing.
#[tokio::test]
async fn a_sign_in_rehashes_a_password_stored_with_older_parameters() {
    use argon2::password_hash::{PasswordHasher, SaltString};

    let app = spawn_app().await;
    let (user_id, _) = app.student("old-hash@example.com").await;
    let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
    let older = argon2::Params::new(19 * 1024, 2, 1, None).unwrap();
    let old_hash = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, older)
        .hash_password(PASSWORD.as_bytes(), &salt)
        .unwrap()
        .to_string();
    sqlx::query("UPDATE users SET password_hash = $2 WHERE user_id = $1")
        .bind(user_id)
        .bind(&old_hash)
        .execute(&app.db)
        .await
        .unwrap();
    let stored = || async {
        sqlx::query_scalar::<_, String>("SELECT password_hash FROM users WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&app.db)
            .await
            .unwrap()
    };

    app.post(
        "/api/auth/login",
        &json!({"email": "old-hash@example.com", "password": "Wrong-Passw0rd"}),
        None,
    )
    .await
    .expect_problem(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS")
    .await;
    assert_eq!(stored().await, old_hash, "a wrong password changes nothing");

    app.login("old-hash@example.com").await;
    let upgraded = stored().await;
    assert!(
        upgraded.starts_with("$argon2id$v=19$m=12288,t=3,p=1$"),
        "{upgraded}"
    );
    app.login("old-hash@example.com").await;
    assert_eq!(stored().await, upgraded, "rehashed once");
}

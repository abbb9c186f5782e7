//! Admin routes: role enforcement and account deactivation.

use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn every_admin_route_answers_by_role() {
    let app = spawn_app().await;
    let (admin_id, admin) = app.admin().await;
    let (student_id, student) = app.student("role-student@example.com").await;
    let (target_id, _) = app.student("role-target@example.com").await;
    let (mentor_id, mentor, _) = app
        .signed_in_mentor("role-mentor@example.com", &admin)
        .await;
    let pending_id = app.pending_mentor("role-pending@example.com").await;
    let missing = Uuid::new_v4();
    let new_admin = json!({"email": "second-admin@example.com", "password": PASSWORD, "firstName": "Sec", "lastName": "Ond"});
    let routes: Vec<(Method, String, serde_json::Value, StatusCode)> = vec![
        (
            Method::GET,
            "/api/admin/users".into(),
            json!(null),
            StatusCode::OK,
        ),
        (
            Method::POST,
            "/api/admin/users".into(),
            new_admin,
            StatusCode::CREATED,
        ),
        (
            Method::POST,
            format!("/api/admin/users/{target_id}/deactivate"),
            json!({}),
            StatusCode::OK,
        ),
        (
            Method::POST,
            format!("/api/admin/users/{target_id}/reactivate"),
            json!({}),
            StatusCode::OK,
        ),
        (
            Method::POST,
            format!("/api/admin/users/{missing}/deactivate"),
            json!({}),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            format!("/api/admin/users/{admin_id}/deactivate"),
            json!({}),
            StatusCode::CONFLICT,
        ),
        (
            Method::GET,
            "/api/admin/mentors/pending".into(),
            json!(null),
            StatusCode::OK,
        ),
        (
            Method::POST,
            format!("/api/admin/mentors/{pending_id}/approve"),
            json!({}),
            StatusCode::OK,
        ),
        (
            Method::POST,
            format!("/api/admin/mentors/{student_id}/approve"),
            json!({}),
            StatusCode::NOT_FOUND,
        ),
        // Last: rejecting the mentor also ends the mentor's session.
        (
            Method::POST,
            format!("/api/admin/mentors/{mentor_id}/reject"),
            json!({"reason": "test"}),
            StatusCode::OK,
        ),
    ];
    for (method, path, body, admin_status) in routes {
        // Non-admins first: they must change nothing.
        for (who, token, expected) in [
            ("anonymous", None, StatusCode::UNAUTHORIZED),
            ("student", Some(student.as_str()), StatusCode::FORBIDDEN),
            ("mentor", Some(mentor.as_str()), StatusCode::FORBIDDEN),
            ("admin", Some(admin.as_str()), admin_status),
        ] {
            let response = app.send(method.clone(), &path, &body, token).await;
            assert_eq!(response.status(), expected, "{method} {path} as {who}");
        }
    }
}

#[tokio::test]
async fn deactivation_ends_sessions_at_once_and_blocks_login_until_reactivated() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (student_id, token) = app.student("leaver@example.com").await;
    let second_instance = app.second_instance().await;
    second_instance
        .get("/api/auth/me", Some(&token))
        .await
        .expect_status(StatusCode::OK)
        .await;

    let deactivated = app
        .post(
            &format!("/api/admin/users/{student_id}/deactivate"),
            &json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(
        deactivated.expect_status(StatusCode::OK).await["isActive"],
        false
    );

    second_instance
        .get("/api/auth/me", Some(&token))
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "SESSION_REVOKED")
        .await;
    let login = app
        .post(
            "/api/auth/login",
            &json!({"email": "leaver@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    login
        .expect_problem(StatusCode::FORBIDDEN, "ACCOUNT_INACTIVE")
        .await;

    app.post(
        &format!("/api/admin/users/{student_id}/reactivate"),
        &json!({}),
        Some(&admin),
    )
    .await;
    app.login("leaver@example.com").await;
}

#[tokio::test]
async fn the_user_list_pages_stably_and_filters_by_role() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    for n in 0..5 {
        app.student(&format!("page{n}@example.com")).await;
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/admin/users?role=student&limit=2&cursor={cursor}"),
            None => "/api/admin/users?role=student&limit=2".into(),
        };
        let page = app
            .get(&path, Some(&admin))
            .await
            .expect_status(StatusCode::OK)
            .await;
        for user in page["items"].as_array().unwrap() {
            assert_eq!(user["role"], "student");
            assert_no_secrets(user);
            seen.push(user["email"].as_str().unwrap().to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }

    seen.sort();
    assert_eq!(
        seen,
        (0..5)
            .map(|n| format!("page{n}@example.com"))
            .collect::<Vec<_>>()
    );
    app.get("/api/admin/users?cursor=garbage", Some(&admin))
        .await
        .expect_problem(StatusCode::BAD_REQUEST, "INVALID_CURSOR")
        .await;
    app.get("/api/admin/users?role=wizard", Some(&admin))
        .await
        .expect_problem(StatusCode::BAD_REQUEST, "INVALID_QUERY")
        .await;
    app.get("/api/admin/users?limit=0", Some(&admin))
        .await
        .expect_problem(StatusCode::BAD_REQUEST, "INVALID_QUERY")
        .await;
}

#[tokio::test]
async fn admin_paths_in_other_cases_are_not_found_for_every_role() {
    // The host's `{area:regex(^admin$)}` constraint ignores case, so it forwards these.
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, student) = app.student("case-student@example.com").await;

    for path in [
        "/api/ADMIN/users",
        "/api/Admin/settings",
        "/api/aDmIn/mentors/pending",
    ] {
        for token in [Some(admin.as_str()), Some(student.as_str()), None] {
            app.get(path, token)
                .await
                .expect_problem(StatusCode::NOT_FOUND, "ROUTE_NOT_FOUND")
                .await;
        }
    }
}

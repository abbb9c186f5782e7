//! Platform settings: defaults, admin edits, public views, and their effect on the rest.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

fn limits(daily: i64, weekly: i64, weekly_enabled: bool, buffer: i64) -> Value {
    json!({"dailyLimit": daily, "weeklyLimit": weekly, "weeklyLimitEnabled": weekly_enabled,
           "monthlyLimit": 15, "maxActivePackages": 2, "bufferMinutes": buffer})
}

#[tokio::test]
async fn defaults_come_from_the_spec_and_edits_show_everywhere_at_once() {
    let app = spawn_app().await;
    let other_instance = app.second_instance().await;
    let (_, admin) = app.admin().await;

    let fees = expect_status(
        other_instance.get("/api/fee-config", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(fees, json!({"platformFeeRate": "0.15", "gstRate": "0.18"}));
    let payment = expect_status(
        app.get("/api/admin/payment-config", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(payment["platformFeePercent"], "15.00");
    assert_eq!(
        expect_status(
            app.get("/api/admin/booking-limits", Some(&admin)).await,
            StatusCode::OK
        )
        .await,
        limits(3, 10, false, 5)
    );

    let mut changed = payment.clone();
    changed["platformFeePercent"] = json!("12.50");
    changed["adminUpiId"] = json!("platform@okaxis");
    let saved = expect_status(
        app.put("/api/admin/payment-config", &changed, Some(&admin))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(saved, changed);

    let fees = expect_status(
        other_instance.get("/api/fee-config", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        fees["platformFeeRate"], "0.125",
        "the other instance sees the change at once"
    );
    let ui = json!({"showAbout": false, "showCareers": true, "showBlog": true, "showHelpCentre": true,
                    "helpCentreUrl": "https://help.codeconnect.example", "dashboardLinks": [{"label": "Guide", "url": "https://codeconnect.example/guide"}]});
    expect_status(
        app.put("/api/admin/ui-config", &ui, Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        expect_status(
            other_instance.get("/api/admin/ui-config", None).await,
            StatusCode::OK
        )
        .await,
        ui
    );
    let checkout = expect_status(app.get("/api/payment-config", None).await, StatusCode::OK).await;
    assert_eq!(
        checkout["razorpay"]["enabled"], false,
        "no keys configured here"
    );
    assert_no_secrets(&checkout);
}

#[tokio::test]
async fn every_settings_route_answers_by_role() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, student) = app.student("settings-student@example.com").await;
    let (_, mentor, _) = app
        .signed_in_mentor("settings-mentor@example.com", &admin)
        .await;
    let mut admin_routes = Vec::new();
    for path in [
        "/api/admin/payment-config",
        "/api/admin/payment-methods",
        "/api/admin/booking-limits",
        "/api/admin/settings",
    ] {
        let current = expect_status(app.get(path, Some(&admin)).await, StatusCode::OK).await;
        admin_routes.push((Method::GET, path, Value::Null));
        admin_routes.push((Method::PUT, path, current));
    }
    admin_routes.push((
        Method::PUT,
        "/api/admin/ui-config",
        expect_status(app.get("/api/admin/ui-config", None).await, StatusCode::OK).await,
    ));

    for (method, path, body) in admin_routes {
        for (who, token, expected) in [
            ("anonymous", None, StatusCode::UNAUTHORIZED),
            ("student", Some(student.as_str()), StatusCode::FORBIDDEN),
            ("mentor", Some(mentor.as_str()), StatusCode::FORBIDDEN),
            ("admin", Some(admin.as_str()), StatusCode::OK),
        ] {
            let response = app.send(method.clone(), path, &body, token).await;
            assert_eq!(response.status(), expected, "{method} {path} as {who}");
        }
    }
    for path in [
        "/api/admin/ui-config",
        "/api/fee-config",
        "/api/payment-config",
    ] {
        for token in [
            None,
            Some(student.as_str()),
            Some(mentor.as_str()),
            Some(admin.as_str()),
        ] {
            assert_eq!(
                app.get(path, token).await.status(),
                StatusCode::OK,
                "GET {path}"
            );
        }
    }
}

#[tokio::test]
async fn bad_settings_are_refused_and_nothing_is_written() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let cases = [
        ("/api/admin/booking-limits", limits(0, 10, false, 5)),
        ("/api/admin/booking-limits", limits(3, 10, false, 61)),
        ("/api/admin/booking-limits", json!({"dailyLimit": "three"})),
        (
            "/api/admin/payment-config",
            json!({"platformFeePercent": "75.00", "gstPercent": "18.00", "razorpayEnabled": true, "stripeEnabled": true, "razorpayMode": "test", "adminUpiId": null}),
        ),
        (
            "/api/admin/payment-config",
            json!({"platformFeePercent": "15.00", "gstPercent": "18.00", "razorpayEnabled": true, "stripeEnabled": true, "razorpayMode": "sandbox", "adminUpiId": null}),
        ),
        (
            "/api/admin/payment-config",
            json!({"platformFeePercent": "15.00", "gstPercent": "18.00", "razorpayEnabled": true, "stripeEnabled": true, "razorpayMode": "test", "adminUpiId": "not-upi"}),
        ),
        (
            "/api/admin/ui-config",
            json!({"showAbout": true, "showCareers": true, "showBlog": true, "showHelpCentre": true, "helpCentreUrl": "javascript:alert(1)", "dashboardLinks": []}),
        ),
        (
            "/api/admin/settings",
            json!({"mediaApprovalRequired": "yes"}),
        ),
        (
            "/api/admin/payment-methods",
            json!({"upi": true, "cards": true, "netbanking": true, "stripe": true, "crypto": true}),
        ),
    ];
    for (path, body) in cases {
        let status = app.put(path, &body, Some(&admin)).await.status();
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {body}: {status}"
        );
    }
    assert_eq!(app.count("platform_settings").await, 0);
}

#[tokio::test]
async fn booking_limits_and_the_buffer_apply_to_new_bookings() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app.open_mentor("limited@example.com", &admin).await;
    let (_, student) = app.student("weekly@example.com").await;
    let (_, other) = app.student("buffered@example.com").await;
    expect_status(
        app.put(
            "/api/admin/booking-limits",
            &limits(3, 2, true, 15),
            Some(&admin),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let book = |token: String, day: i64, hour: u32, minute: u32| {
        let body = json!({"mentorId": mentor_id, "subject": "Physics", "sessionType": "regular",
                          "scheduledAt": at(day, hour, minute).to_rfc3339(), "idempotencyKey": Uuid::new_v4().to_string()});
        let app = &app;
        async move { app.post("/api/bookings", &body, Some(&token)).await }
    };
    // Two classes in one ISO week (days 14 and 15 from today may straddle a week; use one day).
    expect_status(book(student.clone(), 14, 8, 0).await, StatusCode::CREATED).await;
    expect_status(book(student.clone(), 14, 12, 0).await, StatusCode::CREATED).await;

    expect_problem(
        book(student.clone(), 14, 16, 0).await,
        StatusCode::CONFLICT,
        "LIMIT_WEEKLY",
    )
    .await;
    // The 15-minute buffer: 12:00-12:55 blocks until 13:10.
    expect_problem(
        book(other.clone(), 14, 13, 5).await,
        StatusCode::CONFLICT,
        "SLOT_TAKEN",
    )
    .await;
    expect_status(book(other.clone(), 14, 13, 10).await, StatusCode::CREATED).await;
}

async fn listed(app: &TestApp) -> usize {
    let page = expect_status(app.get("/api/mentors", None).await, StatusCode::OK).await;
    page["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn requiring_approved_media_hides_mentors_without_it_at_once() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app.visible_mentor("no-photo@example.com", &admin).await;
    assert_eq!(listed(&app).await, 1);

    expect_status(
        app.put(
            "/api/admin/settings",
            &json!({"mediaApprovalRequired": true}),
            Some(&admin),
        )
        .await,
        StatusCode::OK,
    )
    .await;

    assert_eq!(listed(&app).await, 0);
    expect_problem(
        app.get(&format!("/api/mentors/{mentor_id}"), None).await,
        StatusCode::NOT_FOUND,
        "MENTOR_NOT_FOUND",
    )
    .await;
    sqlx::query("INSERT INTO mentor_media (mentor_media_id, mentor_id, kind, blob_name, content_type, size_bytes, status) VALUES ($1, $2, 'photo', 'x.jpg', 'image/jpeg', 10, 'approved')")
        .bind(Uuid::new_v4())
        .bind(mentor_id)
        .execute(&app.db)
        .await
        .unwrap();
    expect_status(
        app.put(
            "/api/admin/settings",
            &json!({"mediaApprovalRequired": true}),
            Some(&admin),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed(&app).await, 1);
}

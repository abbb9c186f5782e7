//! Platform settings: defaults, admin edits, public views, and their effect on the rest.

use platform::config::{PaymentsConfig, RazorpayConfig, Secret, StripeConfig};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

fn limits(daily: i64, weekly: i64, weekly_enabled: bool, buffer: i64) -> Value {
    json!({"dailyLimit": daily, "weeklyLimit": weekly, "weeklyLimitEnabled": weekly_enabled,
           "monthlyLimit": 15, "maxActivePackages": 2, "bufferMinutes": buffer})
}

const ADMIN_SETTINGS: [&str; 7] = [
    "/api/admin/ui-config",
    "/api/admin/payment-config",
    "/api/admin/payment-methods",
    "/api/admin/booking-limits",
    "/api/admin/settings",
    "/api/admin/rate-limits",
    "/api/admin/lookups",
];

fn default_payment_config() -> Value {
    json!({"platformFeePercent": "15.00", "gstPercent": "18.00", "razorpayEnabled": true,
           "stripeEnabled": true, "razorpayMode": "test", "adminUpiId": null})
}

/// A valid, non-default value for every admin setting.
/// The `rate-limits` setting with every budget `quota` except `per_ip`.
fn rate_limits(per_ip: Value, quota: Value) -> Value {
    json!({"perIp": per_ip, "perSession": quota, "signupPerIp": quota, "loginPerIp": quota,
           "recoveryPerIp": quota, "twoFactorPerSession": quota, "checkoutPerSession": quota,
           "negotiatePerSession": quota, "uploadsPerSession": quota})
}

fn edited_settings() -> [(&'static str, Value); 7] {
    [
        (
            "/api/admin/ui-config",
            json!({"showAbout": false, "showCareers": true, "showBlog": true, "showHelpCentre": true,
                   "helpCentreUrl": "https://help.codeconnect.example",
                   "dashboardLinks": [{"label": "Guide", "url": "https://codeconnect.example/guide"}]}),
        ),
        (
            "/api/admin/payment-config",
            json!({"platformFeePercent": "12.50", "gstPercent": "5.00", "razorpayEnabled": false,
                   "stripeEnabled": true, "razorpayMode": "live", "adminUpiId": "platform@okaxis"}),
        ),
        (
            "/api/admin/payment-methods",
            json!({"upi": true, "cards": false, "netbanking": false, "stripe": true}),
        ),
        ("/api/admin/booking-limits", limits(4, 12, true, 10)),
        (
            "/api/admin/settings",
            json!({"mediaApprovalRequired": true}),
        ),
        (
            "/api/admin/rate-limits",
            rate_limits(
                json!({"limit": 5000, "windowSeconds": 60}),
                json!({"limit": 1000, "windowSeconds": 60}),
            ),
        ),
        (
            "/api/admin/lookups",
            json!({"subjects": ["Physics", "Robotics"], "qualifications": ["BSc", "MSc"],
                   "specializations": ["Optics"]}),
        ),
    ]
}

#[tokio::test]
async fn every_setting_starts_at_the_spec_defaults_and_reading_writes_nothing() {
    let app = spawn_app_with(Options {
        rate_limits: Budgets::Defaults,
        ..Options::default()
    })
    .await;
    let (_, admin) = app.admin().await;
    let all_methods = json!({"upi": true, "cards": true, "netbanking": true, "stripe": true});
    let cases = [
        (
            "/api/admin/ui-config",
            json!({"showAbout": true, "showCareers": false, "showBlog": false, "showHelpCentre": true,
                   "helpCentreUrl": null, "dashboardLinks": []}),
        ),
        ("/api/admin/payment-config", default_payment_config()),
        ("/api/admin/payment-methods", all_methods.clone()),
        ("/api/admin/booking-limits", limits(3, 10, false, 5)),
        (
            "/api/admin/settings",
            json!({"mediaApprovalRequired": false}),
        ),
        (
            "/api/admin/rate-limits",
            json!({"perIp": {"limit": 3000, "windowSeconds": 60},
                   "perSession": {"limit": 600, "windowSeconds": 60},
                   "signupPerIp": {"limit": 10, "windowSeconds": 600},
                   "loginPerIp": {"limit": 100, "windowSeconds": 600},
                   "recoveryPerIp": {"limit": 10, "windowSeconds": 600},
                   "twoFactorPerSession": {"limit": 10, "windowSeconds": 300},
                   "checkoutPerSession": {"limit": 30, "windowSeconds": 600},
                   "negotiatePerSession": {"limit": 60, "windowSeconds": 60},
                   "uploadsPerSession": {"limit": 60, "windowSeconds": 600}}),
        ),
        (
            "/api/fee-config",
            json!({"platformFeeRate": "0.15", "gstRate": "0.18"}),
        ),
        (
            "/api/lookups",
            json!({
                "subjects": ["Mathematics", "Physics", "Chemistry", "Biology", "Computer Science",
                    "Programming", "Data Science", "English", "Hindi", "Economics", "Accountancy",
                    "Business Studies", "History", "Geography", "Political Science"],
                "qualifications": ["Higher Secondary", "Diploma", "BA", "BSc", "BCom", "BTech",
                    "BE", "BCA", "MA", "MSc", "MCom", "MTech", "ME", "MCA", "MBA", "PhD"],
                "specializations": ["Mathematics", "Physics", "Chemistry", "Biology",
                    "Computer Science", "Electronics", "Mechanical Engineering", "Civil Engineering",
                    "English Literature", "Economics", "Commerce", "Finance", "History", "Statistics"],
            }),
        ),
        (
            "/api/payment-config",
            json!({"razorpay": {"enabled": false, "mode": "test", "keyId": null},
                   "stripe": {"enabled": false, "publishableKey": null},
                   "methods": all_methods}),
        ),
    ];

    for (path, expected) in cases {
        let body = app
            .get(path, Some(&admin))
            .await
            .expect_status(StatusCode::OK)
            .await;
        assert_eq!(body, expected, "GET {path}");
    }

    assert_eq!(app.count("platform_settings").await, 0);
}

#[tokio::test]
async fn each_setting_round_trips_and_every_instance_reads_the_new_value() {
    let app = spawn_app_with(Options {
        rate_limits: Budgets::Defaults,
        ..Options::default()
    })
    .await;
    let other_instance = app.second_instance().await;
    let (admin_id, admin) = app.admin().await;
    for path in ADMIN_SETTINGS {
        // Both instances cache the default first, so the reads below prove the invalidation.
        for instance in [&app, &other_instance] {
            instance
                .get(path, Some(&admin))
                .await
                .expect_status(StatusCode::OK)
                .await;
        }
    }

    for (path, edited) in edited_settings() {
        let saved = app
            .put(path, &edited, Some(&admin))
            .await
            .expect_status(StatusCode::OK)
            .await;
        assert_eq!(saved, edited, "PUT {path} answers the stored value");
        for (instance, name) in [(&app, "same"), (&other_instance, "other")] {
            let read = instance
                .get(path, Some(&admin))
                .await
                .expect_status(StatusCode::OK)
                .await;
            assert_eq!(read, edited, "GET {path} on the {name} instance");
        }
    }

    let writers: Vec<Option<Uuid>> = sqlx::query_scalar("SELECT updated_by FROM platform_settings")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(writers, vec![Some(admin_id); 7]);
}

#[tokio::test]
async fn a_fee_change_shows_in_fee_config_at_once_on_every_instance() {
    let app = spawn_app().await;
    let other_instance = app.second_instance().await;
    let (_, admin) = app.admin().await;
    let defaults = json!({"platformFeeRate": "0.15", "gstRate": "0.18"});
    for instance in [&app, &other_instance] {
        let fees = instance
            .get("/api/fee-config", None)
            .await
            .expect_status(StatusCode::OK)
            .await;
        assert_eq!(fees, defaults);
    }

    let mut changed = default_payment_config();
    changed["platformFeePercent"] = json!("12.5");
    changed["gstPercent"] = json!("9");
    let saved = app
        .put("/api/admin/payment-config", &changed, Some(&admin))
        .await
        .expect_status(StatusCode::OK)
        .await;

    assert_eq!(
        (&saved["platformFeePercent"], &saved["gstPercent"]),
        (&json!("12.50"), &json!("9.00")),
        "percentages are stored and shown with two places"
    );
    for (instance, name) in [(&app, "same"), (&other_instance, "other")] {
        let fees = instance
            .get("/api/fee-config", None)
            .await
            .expect_status(StatusCode::OK)
            .await;
        assert_eq!(
            fees,
            json!({"platformFeeRate": "0.125", "gstRate": "0.09"}),
            "{name} instance"
        );
    }
}

#[tokio::test]
async fn checkout_config_shows_enabled_gateways_and_public_keys_but_never_secrets() {
    let app = spawn_app_with(Options {
        payments: PaymentsConfig {
            razorpay: Some(RazorpayConfig {
                key_id: "rzp_test_public_key".into(),
                key_secret: Secret::from("rzp-key-secret-value"),
                webhook_secret: Secret::from("rzp-webhook-secret-value"),
                base_url: "http://127.0.0.1:9".into(),
            }),
            stripe: Some(StripeConfig {
                publishable_key: "pk_test_public_key".into(),
                secret_key: Secret::from("sk-secret-value"),
                webhook_secret: Secret::from("whsec-secret-value"),
                base_url: "http://127.0.0.1:9".into(),
            }),
        },
        ..Default::default()
    })
    .await;
    let (_, admin) = app.admin().await;
    let checkout = app
        .get("/api/payment-config", None)
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(
        (&checkout["razorpay"], &checkout["stripe"]),
        (
            &json!({"enabled": true, "mode": "test", "keyId": "rzp_test_public_key"}),
            &json!({"enabled": true, "publishableKey": "pk_test_public_key"})
        )
    );

    let mut razorpay_off = default_payment_config();
    razorpay_off["razorpayEnabled"] = json!(false);
    app.put("/api/admin/payment-config", &razorpay_off, Some(&admin))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let checkout = app
        .get("/api/payment-config", None)
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(
        checkout["razorpay"],
        json!({"enabled": false, "mode": "test", "keyId": null}),
        "a disabled gateway offers no key"
    );

    for path in ["/api/payment-config", "/api/fee-config"]
        .into_iter()
        .chain(ADMIN_SETTINGS)
    {
        let body = app
            .get(path, Some(&admin))
            .await
            .expect_status(StatusCode::OK)
            .await;
        assert_no_secrets(&body);
        let text = body.to_string();
        assert!(
            !text.contains("secret-value"),
            "GET {path} leaks a secret: {text}"
        );
    }
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
    for path in ADMIN_SETTINGS {
        let current = app
            .get(path, Some(&admin))
            .await
            .expect_status(StatusCode::OK)
            .await;
        if path != "/api/admin/ui-config" {
            admin_routes.push((Method::GET, path, Value::Null));
        }
        admin_routes.push((Method::PUT, path, current));
    }

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
        "/api/lookups",
    ] {
        for (who, token) in [
            ("anonymous", None),
            ("student", Some(student.as_str())),
            ("mentor", Some(mentor.as_str())),
            ("admin", Some(admin.as_str())),
        ] {
            assert_eq!(
                app.get(path, token).await.status(),
                StatusCode::OK,
                "GET {path} as {who}"
            );
        }
    }
}

/// A PUT with a raw JSON text body, to send what `serde_json::Value` can't (malformed JSON).
async fn put_raw(app: &TestApp, path: &str, body: &str, token: &str) -> reqwest::Response {
    app.client
        .put(app.url(path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("send request")
}

/// A PUT with bad input and the problem it earns.
struct BadPut {
    path: &'static str,
    body: String,
    status: StatusCode,
    code: &'static str,
    /// The one field a `VALIDATION_FAILED` problem names.
    field: Option<&'static str>,
}

/// Valid JSON of the wrong shape: 422 `INVALID_BODY`.
fn misshapen(path: &'static str, body: String) -> BadPut {
    BadPut {
        path,
        body,
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code: "INVALID_BODY",
        field: None,
    }
}

/// The right shape breaking a rule on `field`: 422 `VALIDATION_FAILED`.
fn invalid(path: &'static str, body: String, field: &'static str) -> BadPut {
    BadPut {
        path,
        body,
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code: "VALIDATION_FAILED",
        field: Some(field),
    }
}

/// `base` with `field` replaced, as JSON text.
fn with(base: &Value, field: &str, value: Value) -> String {
    let mut body = base.clone();
    body[field] = value;
    body.to_string()
}

/// Every PUT with malformed JSON, wrong types, missing or unknown fields, out-of-range values
/// and unknown enum values.
fn bad_puts() -> Vec<BadPut> {
    let [
        ui,
        payment,
        methods,
        booking_limits,
        marketplace,
        _,
        lookups,
    ] = edited_settings().map(|(_, body)| body);
    let mut cases = Vec::new();
    for path in ADMIN_SETTINGS {
        cases.push(BadPut {
            path,
            body: "{not json".into(),
            status: StatusCode::BAD_REQUEST,
            code: "MALFORMED_JSON",
            field: None,
        });
        cases.push(misshapen(path, "[]".into()));
        cases.push(misshapen(path, "{}".into()));
    }
    let path = "/api/admin/ui-config";
    let link = |label: &str, url: &str| json!([{"label": label, "url": url}]);
    let too_many = vec![json!({"label": "Guide", "url": "https://codeconnect.example"}); 21];
    cases.extend([
        invalid(
            path,
            with(&ui, "helpCentreUrl", json!("javascript:alert(1)")),
            "helpCentreUrl",
        ),
        invalid(
            path,
            with(&ui, "helpCentreUrl", json!("https://")),
            "helpCentreUrl",
        ),
        invalid(
            path,
            with(&ui, "dashboardLinks", link("Files", "ftp://files.example")),
            "dashboardLinks[0].url",
        ),
        invalid(
            path,
            with(
                &ui,
                "dashboardLinks",
                link(" ", "https://codeconnect.example"),
            ),
            "dashboardLinks[0].label",
        ),
        invalid(
            path,
            with(&ui, "dashboardLinks", json!(too_many)),
            "dashboardLinks",
        ),
        misshapen(path, with(&ui, "showAbout", json!("yes"))),
        misshapen(path, with(&ui, "showFaq", json!(true))),
    ]);
    let path = "/api/admin/payment-config";
    cases.extend([
        invalid(
            path,
            with(&payment, "platformFeePercent", json!("75.00")),
            "platformFeePercent",
        ),
        invalid(
            path,
            with(&payment, "platformFeePercent", json!("-1.00")),
            "platformFeePercent",
        ),
        invalid(
            path,
            with(&payment, "platformFeePercent", json!("15.001")),
            "platformFeePercent",
        ),
        invalid(
            path,
            with(&payment, "gstPercent", json!("41.00")),
            "gstPercent",
        ),
        invalid(
            path,
            with(&payment, "adminUpiId", json!("not-upi")),
            "adminUpiId",
        ),
        misshapen(path, with(&payment, "gstPercent", json!("eighteen"))),
        misshapen(path, with(&payment, "razorpayMode", json!("sandbox"))),
        misshapen(path, with(&payment, "razorpayEnabled", json!("true"))),
        misshapen(path, with(&payment, "razorpayKeySecret", json!("x"))),
    ]);
    let path = "/api/admin/payment-methods";
    cases.extend([
        misshapen(path, with(&methods, "upi", json!(1))),
        misshapen(path, with(&methods, "crypto", json!(true))),
    ]);
    let path = "/api/admin/booking-limits";
    cases.extend([
        invalid(
            path,
            with(&booking_limits, "dailyLimit", json!(0)),
            "dailyLimit",
        ),
        invalid(
            path,
            with(&booking_limits, "weeklyLimit", json!(101)),
            "weeklyLimit",
        ),
        invalid(
            path,
            with(&booking_limits, "monthlyLimit", json!(0)),
            "monthlyLimit",
        ),
        invalid(
            path,
            with(&booking_limits, "maxActivePackages", json!(11)),
            "maxActivePackages",
        ),
        invalid(
            path,
            with(&booking_limits, "bufferMinutes", json!(61)),
            "bufferMinutes",
        ),
        invalid(
            path,
            with(&booking_limits, "bufferMinutes", json!(-1)),
            "bufferMinutes",
        ),
        misshapen(path, with(&booking_limits, "dailyLimit", json!("three"))),
        misshapen(path, with(&booking_limits, "dailyLimit", json!(3.5))),
    ]);
    let path = "/api/admin/settings";
    cases.push(misshapen(
        path,
        with(&marketplace, "mediaApprovalRequired", json!("yes")),
    ));
    let path = "/api/admin/rate-limits";
    let quota = json!({"limit": 100, "windowSeconds": 60});
    cases.extend([
        invalid(
            path,
            rate_limits(json!({"limit": 0, "windowSeconds": 60}), quota.clone()).to_string(),
            "perIp.limit",
        ),
        invalid(
            path,
            rate_limits(json!({"limit": 10, "windowSeconds": 86_401}), quota.clone()).to_string(),
            "perIp.windowSeconds",
        ),
        misshapen(
            path,
            rate_limits(json!({"limit": -1, "windowSeconds": 60}), quota.clone()).to_string(),
        ),
        misshapen(
            path,
            rate_limits(json!({"limit": 10, "windowSeconds": 60, "burst": 5}), quota).to_string(),
        ),
    ]);
    let path = "/api/admin/lookups";
    cases.extend([
        invalid(path, with(&lookups, "subjects", json!([])), "subjects"),
        invalid(
            path,
            with(&lookups, "subjects", json!(["Physics", "physics"])),
            "subjects[1]",
        ),
        invalid(
            path,
            with(&lookups, "qualifications", json!([" BSc"])),
            "qualifications[0]",
        ),
        invalid(
            path,
            with(&lookups, "specializations", json!([""])),
            "specializations[0]",
        ),
        invalid(
            path,
            with(&lookups, "specializations", json!(["x".repeat(101)])),
            "specializations[0]",
        ),
        misshapen(path, with(&lookups, "subjects", json!("Physics"))),
        misshapen(path, with(&lookups, "colours", json!(["red"]))),
    ]);
    cases
}

#[tokio::test]
async fn bad_settings_are_refused_and_nothing_is_written() {
    let app = spawn_app_with(Options {
        rate_limits: Budgets::Defaults,
        ..Options::default()
    })
    .await;
    let (_, admin) = app.admin().await;

    for case in bad_puts() {
        let response = put_raw(&app, case.path, &case.body, &admin).await;
        let problem = response.expect_problem(case.status, case.code).await;
        if let Some(field) = case.field {
            let fields = problem_fields(&problem);
            assert_eq!(fields, vec![field], "PUT {} {}", case.path, case.body);
        }
    }
    assert_eq!(app.count("platform_settings").await, 0, "no row inserted");

    // Stored values survive bad replacements too.
    for (path, edited) in edited_settings() {
        app.put(path, &edited, Some(&admin))
            .await
            .expect_status(StatusCode::OK)
            .await;
    }
    for case in bad_puts() {
        let response = put_raw(&app, case.path, &case.body, &admin).await;
        response.expect_problem(case.status, case.code).await;
    }
    assert_eq!(app.count("platform_settings").await, 7);
    for (path, edited) in edited_settings() {
        let read = app
            .get(path, Some(&admin))
            .await
            .expect_status(StatusCode::OK)
            .await;
        assert_eq!(read, edited, "GET {path} after bad PUTs");
    }
}

#[tokio::test]
async fn booking_limits_and_the_buffer_apply_to_new_bookings() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app.open_mentor("limited@example.com", &admin).await;
    let (_, student) = app.student("weekly@example.com").await;
    let (_, other) = app.student("buffered@example.com").await;
    app.put(
        "/api/admin/booking-limits",
        &limits(3, 2, true, 15),
        Some(&admin),
    )
    .await
    .expect_status(StatusCode::OK)
    .await;
    let book = |token: String, day: i64, hour: u32, minute: u32| {
        let body = json!({"mentorId": mentor_id, "subject": "Physics", "sessionType": "regular",
                          "scheduledAt": at(day, hour, minute).to_rfc3339(), "idempotencyKey": Uuid::new_v4().to_string()});
        let app = &app;
        async move { app.post("/api/bookings", &body, Some(&token)).await }
    };
    // Two classes in one ISO week (days 14 and 15 from today may straddle a week; use one day).
    book(student.clone(), 14, 8, 0)
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    book(student.clone(), 14, 12, 0)
        .await
        .expect_status(StatusCode::CREATED)
        .await;

    book(student.clone(), 14, 16, 0)
        .await
        .expect_problem(StatusCode::CONFLICT, "LIMIT_WEEKLY")
        .await;
    // The 15-minute buffer: 12:00-12:55 blocks until 13:10, so 13:00 (free under the default
    // 5 minutes) is taken and the next start on the grid, 13:15, is free.
    book(other.clone(), 14, 13, 0)
        .await
        .expect_problem(StatusCode::CONFLICT, "SLOT_TAKEN")
        .await;
    book(other.clone(), 14, 13, 15)
        .await
        .expect_status(StatusCode::CREATED)
        .await;
}

async fn listed(app: &TestApp) -> usize {
    let page = app
        .get("/api/mentors", None)
        .await
        .expect_status(StatusCode::OK)
        .await;
    page["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn requiring_approved_media_hides_mentors_without_it_at_once() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app.visible_mentor("no-photo@example.com", &admin).await;
    assert_eq!(listed(&app).await, 1);

    app.put(
        "/api/admin/settings",
        &json!({"mediaApprovalRequired": true}),
        Some(&admin),
    )
    .await
    .expect_status(StatusCode::OK)
    .await;

    assert_eq!(listed(&app).await, 0);
    app.get(&format!("/api/mentors/{mentor_id}"), None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "MENTOR_NOT_FOUND")
        .await;
    sqlx::query("INSERT INTO mentor_media (mentor_media_id, mentor_id, kind, blob_name, content_type, size_bytes, status) VALUES ($1, $2, 'photo', 'x.jpg', 'image/jpeg', 10, 'approved')")
        .bind(Uuid::new_v4())
        .bind(mentor_id)
        .execute(&app.db)
        .await
        .unwrap();
    app.put(
        "/api/admin/settings",
        &json!({"mediaApprovalRequired": true}),
        Some(&admin),
    )
    .await
    .expect_status(StatusCode::OK)
    .await;
    assert_eq!(listed(&app).await, 1);
}

#[tokio::test]
async fn public_settings_are_cacheable_with_etags_and_follow_the_admins_edit_at_once() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let first = app.get("/api/lookups", None).await;
    assert_eq!(first.headers()["cache-control"], "public, max-age=300");
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "a strong ETag: {etag}"
    );
    assert!(
        first.expect_status(StatusCode::OK).await["subjects"]
            .as_array()
            .unwrap()
            .contains(&json!("Physics"))
    );
    // Unchanged: 304, no body, the same validators.
    let unchanged = app
        .get_if_none_match("/api/lookups", &format!("\"other\", W/{etag}"))
        .await;
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(unchanged.headers()["etag"], etag.as_str());
    assert_eq!(unchanged.headers()["cache-control"], "public, max-age=300");
    assert!(unchanged.bytes().await.unwrap().is_empty());

    let [.., (_, edited)] = edited_settings();
    app.put("/api/admin/lookups", &edited, Some(&admin))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let changed = app.get_if_none_match("/api/lookups", &etag).await;
    assert_ne!(changed.headers()["etag"], etag.as_str());
    let read = changed.expect_status(StatusCode::OK).await;
    assert_eq!(read, edited, "the server's cached copy was replaced");

    // Prices are revalidated before each use.
    let fees = app.get("/api/fee-config", None).await;
    assert_eq!(fees.headers()["cache-control"], "public, no-cache");
    let fees_etag = fees.headers()["etag"].to_str().unwrap().to_owned();
    let again = app.get_if_none_match("/api/fee-config", &fees_etag).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    // Whatever is not public stays out of caches, without an ETag.
    for path in ["/api/admin/lookups", "/api/auth/me"] {
        let private = app.get(path, Some(&admin)).await;
        assert_eq!(private.headers()["cache-control"], "no-store", "{path}");
        assert!(private.headers().get("etag").is_none(), "{path}");
    }
}

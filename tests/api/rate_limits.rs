//! Request budgets (product-spec §12): refused at exactly their limit with the IETF draft's
//! fields, shared by two instances through Redis, kept per instance with Redis down, and never
//! met by an honest heavy user under the defaults.

use domain::platform_settings::RateLimits;
use platform::rate_limit::Quota;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

/// The app with every budget out of reach except those `adjust` sets.
async fn app_with(adjust: impl FnOnce(&mut RateLimits), redis_url: Option<String>) -> TestApp {
    let mut limits = unlimited();
    adjust(&mut limits);
    spawn_app_with(Options {
        rate_limits: Budgets::Stored(limits),
        redis_url,
        ..Options::default()
    })
    .await
}

/// A request from client `ip`, as Azure's front end reports it (the last `X-Forwarded-For`
/// entry), after whatever the client itself claimed.
async fn from(
    app: &TestApp,
    ip: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Response {
    let mut request = app
        .client
        .request(method, app.url(path))
        .header("x-forwarded-for", format!("10.9.8.7, {ip}"));
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.unwrap()
}

fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_route_budget_refuses_at_exactly_its_limit_with_the_draft_headers() {
    let app = app_with(|limits| limits.login_per_ip = Quota::new(3, 600), None).await;
    let wrong = json!({"email": "nobody@example.com", "password": "Wrong-password1"});
    for remaining in [2, 1, 0] {
        let response = from(
            &app,
            "203.0.113.5",
            Method::POST,
            "/api/auth/login",
            Some(&wrong),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(
            header(&response, "ratelimit-policy").contains(r#""login";q=3;w=600"#),
            "{:?}",
            response.headers()
        );
        assert!(
            header(&response, "ratelimit").contains(&format!(r#""login";r={remaining};"#)),
            "{:?}",
            response.headers()
        );
    }
    let refused = from(
        &app,
        "203.0.113.5",
        Method::POST,
        "/api/auth/login",
        Some(&wrong),
    )
    .await;
    let retry_after: u64 = header(&refused, "retry-after")
        .parse()
        .expect("Retry-After");
    assert!(
        (1..=200).contains(&retry_after),
        "retry after {retry_after}"
    );
    assert!(header(&refused, "ratelimit").contains(r#""login";r=0;"#));
    let problem = refused
        .expect_problem(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED")
        .await;
    assert_eq!(problem["policies"], json!(["login"]));

    // Another client is not held back, and the refusal was not spent: other routes still pass.
    let other = from(
        &app,
        "203.0.113.6",
        Method::POST,
        "/api/auth/login",
        Some(&wrong),
    )
    .await;
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
    let mentors = from(&app, "203.0.113.5", Method::GET, "/api/mentors", None).await;
    assert_eq!(mentors.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_client_budget_holds_across_two_instances_on_one_redis() {
    let first = app_with(|limits| limits.per_ip = Quota::new(5, 600), None).await;
    let second = first.second_instance().await;
    for app in [&first, &first, &first, &second, &second] {
        let response = from(app, "198.51.100.7", Method::GET, "/api/mentors", None).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    for app in [&second, &first] {
        from(app, "198.51.100.7", Method::GET, "/api/mentors", None)
            .await
            .expect_problem(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED")
            .await;
    }
    // Rotating what the client itself puts in X-Forwarded-For changes nothing.
    let forged = first
        .client
        .get(first.url("/api/mentors"))
        .header("x-forwarded-for", "1.2.3.4, 198.51.100.7")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn with_redis_down_each_instance_still_refuses_on_its_own() {
    let app = app_with(
        |limits| limits.per_ip = Quota::new(3, 600),
        Some("redis://127.0.0.1:1".into()),
    )
    .await;
    for _ in 0..3 {
        let response = from(&app, "192.0.2.44", Method::GET, "/api/mentors", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(header(&response, "ratelimit-policy").contains(r#""ip";q=3;w=600"#));
    }
    from(&app, "192.0.2.44", Method::GET, "/api/mentors", None)
        .await
        .expect_problem(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED")
        .await;
}

#[tokio::test]
async fn a_session_budget_is_its_own_whatever_the_ip() {
    let app = app_with(|limits| limits.per_session = Quota::new(4, 600), None).await;
    let (_, first) = app.student("budget-one@example.com").await;
    let (_, second) = app.student("budget-two@example.com").await;
    for ip in ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"] {
        let response = app
            .client
            .get(app.url("/api/auth/me"))
            .bearer_auth(&first)
            .header("x-forwarded-for", ip)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    app.get("/api/auth/me", Some(&first))
        .await
        .expect_problem(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED")
        .await;
    app.get("/api/auth/me", Some(&second))
        .await
        .expect_status(StatusCode::OK)
        .await;
}

#[tokio::test]
async fn signed_webhooks_and_health_probes_are_not_limited() {
    let app = app_with(|limits| limits.per_ip = Quota::new(1, 600), None).await;
    for _ in 0..3 {
        let health = from(&app, "203.0.113.9", Method::GET, "/api/health", None).await;
        assert_eq!(health.status(), StatusCode::OK);
        assert!(health.headers().get("ratelimit").is_none());
        // Not configured here: the webhook answers for itself, never 429.
        let webhook = from(
            &app,
            "203.0.113.9",
            Method::POST,
            "/api/payments/stripe/webhook",
            Some(&json!({})),
        )
        .await;
        assert_ne!(webhook.status(), StatusCode::TOO_MANY_REQUESTS);
    }
}

/// A minute of the frontend's real polling in a live class (chat every 3 s, WebRTC stats every
/// 3 s, the notification badge and dashboards), sent at once: the default budgets leave most of
/// their room.
#[tokio::test]
async fn an_honest_heavy_minute_stays_far_inside_the_defaults() {
    let app = spawn_app_with(Options {
        rate_limits: Budgets::Defaults,
        ..Options::default()
    })
    .await;
    let class = app.class_in_progress().await;
    let booking = class.booking_id;
    let mut answers = Vec::new();
    for tick in 0..20 {
        answers.push(
            app.get(
                &format!("/api/bookings/{booking}/messages"),
                Some(&class.student),
            )
            .await,
        );
        if tick % 4 == 0 {
            answers.push(
                app.post(
                    &format!("/api/bookings/{booking}/messages"),
                    &json!({"message": format!("question {tick}"), "clientMessageId": format!("m-{tick}")}),
                    Some(&class.student),
                )
                .await,
            );
        }
        answers.push(
            app.post(
                "/api/webrtc/stats",
                &json!({"bookingId": booking, "samples": [{
                    "recordedAt": chrono::Utc::now(), "connectionType": "srflx",
                    "packetLoss": 0.01, "rttMs": 80.0, "jitterMs": 5.0
                }]}),
                Some(&class.student),
            )
            .await,
        );
        if tick % 2 == 0 {
            answers.push(
                app.get("/api/notifications/unread-count", Some(&class.student))
                    .await,
            );
        }
        if tick % 5 == 0 {
            answers.push(
                app.get("/api/bookings?when=upcoming", Some(&class.student))
                    .await,
            );
            answers.push(app.get("/api/auth/me", Some(&class.student)).await);
        }
    }
    let last = answers.last().unwrap();
    let state = header(last, "ratelimit").to_owned();
    for answer in answers {
        assert!(answer.status().is_success(), "{}", answer.status());
    }
    let remaining = |policy: &str| -> u32 {
        let item = state
            .split(", ")
            .find(|item| item.starts_with(&format!("\"{policy}\"")))
            .unwrap_or_else(|| panic!("no {policy} in {state}"));
        item.split(";r=")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let defaults = RateLimits::default();
    assert!(
        remaining("session") > defaults.per_session.limit * 4 / 5,
        "{state}"
    );
    assert!(remaining("ip") > defaults.per_ip.limit * 4 / 5, "{state}");
}

/// The probe's finding: wrong reset codes guessed for many e-mails from one client met no 429.
#[tokio::test]
async fn reset_code_guesses_from_one_client_meet_a_429() {
    let app = app_with(|limits| limits.recovery_per_ip = Quota::new(3, 600), None).await;
    for n in 0..3 {
        let guess = json!({"email": format!("victim-{n}@example.com"), "code": "123456",
                           "newPassword": "Brand-New1"});
        let response = from(
            &app,
            "203.0.113.77",
            Method::POST,
            "/api/auth/password/reset",
            Some(&guess),
        )
        .await;
        assert_ne!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    let guess =
        json!({"email": "victim-9@example.com", "code": "123456", "newPassword": "Brand-New1"});
    from(
        &app,
        "203.0.113.77",
        Method::POST,
        "/api/auth/password/reset",
        Some(&guess),
    )
    .await
    .expect_problem(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED")
    .await;
}

/// Budgets are kept in microseconds: a hundred thousand a second is not rounded down to one a
/// millisecond (which would leave 999 after the first request).
#[tokio::test]
async fn a_budget_of_thousands_a_second_keeps_its_resolution() {
    let app = app_with(|limits| limits.per_ip = Quota::new(100_000, 1), None).await;
    let response = from(&app, "203.0.113.50", Method::GET, "/api/mentors", None).await;
    let state = header(&response, "ratelimit");
    assert!(state.contains(r#""ip";r=99999;"#), "{state}");
}

#[tokio::test]
async fn behind_our_front_door_each_client_has_its_own_budget() {
    let app = app_with(|limits| limits.per_ip = Quota::new(2, 600), None).await;
    let profile = "0d8f3b0e-7a4c-4c55-9f57-5c1f3a8a2b10";
    let app = app
        .instance_with(|config| config.front_door_id = Some(profile.into()))
        .await;
    // Front Door's edge address is the last X-Forwarded-For entry for everyone behind it.
    let via_edge = |front_door_id: &str, client: &str| {
        app.client
            .get(app.url("/api/mentors"))
            .header("x-azure-fdid", front_door_id)
            .header("x-azure-clientip", client)
            .header("x-forwarded-for", format!("{client}, 198.51.100.200"))
            .send()
    };
    for client in ["203.0.113.1", "203.0.113.2"] {
        for _ in 0..2 {
            let response = via_edge(profile, client).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{client}");
        }
        via_edge(profile, client)
            .await
            .unwrap()
            .expect_problem(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED")
            .await;
    }
    // Another profile's id (or a forged one) earns no trust: those requests count against the
    // address they came from, whatever client they name.
    for (n, client) in ["203.0.113.3", "203.0.113.4", "203.0.113.5"]
        .iter()
        .enumerate()
    {
        let response = via_edge("someone-elses-profile", client).await.unwrap();
        let expected = if n < 2 {
            StatusCode::OK
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(response.status(), expected, "{client}");
    }
}

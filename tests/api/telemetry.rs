//! Traces and metrics reach Application Insights (a local stand-in for its ingestion endpoint,
//! which checks the Entra token and the envelopes): one request item per request, continuing
//! the caller's trace, with its SQL and Redis calls as dependencies under the same operation.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

/// Waits up to 20 s (the exporter sends every 5 s) for `ready` to hold.
async fn eventually(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "not within 20 s: {what} {:?}",
            telemetry().refusals()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_booking_is_one_request_item_with_its_sql_and_redis_dependencies_in_the_callers_trace() {
    let ingestion = telemetry();
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app.open_mentor("traced@example.com", &admin).await;
    let (_, student) = app.student("traced-student@example.com").await;
    let trace_id = Uuid::new_v4().simple().to_string();
    let caller_span = format!("{:016x}", rand_span_id());

    let booked = app
        .client
        .post(app.url("/api/bookings"))
        .bearer_auth(&student)
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .json(&json!({
            "mentorId": mentor_id, "subject": "Physics", "sessionType": "regular",
            "scheduledAt": at(3, 10, 0).to_rfc3339(), "idempotencyKey": Uuid::new_v4().to_string()
        }))
        .send()
        .await
        .unwrap();
    booked.expect_status(StatusCode::CREATED).await;

    let of_kind = |items: &[Item], kind: &str| {
        items
            .iter()
            .filter(|item| item.base_type == kind)
            .cloned()
            .collect::<Vec<_>>()
    };
    eventually("the request item and its dependencies", || {
        let items = ingestion.operation(&trace_id);
        let types: Vec<_> = items
            .iter()
            .filter_map(|i| i.dependency_type.clone())
            .collect();
        !of_kind(&items, "RequestData").is_empty()
            && types.iter().any(|t| t == "postgresql")
            && types.iter().any(|t| t == "redis")
    })
    .await;
    let items = ingestion.operation(&trace_id);
    let requests = of_kind(&items, "RequestData");
    assert_eq!(requests.len(), 1, "one request item: {items:#?}");
    let request = &requests[0];
    assert_eq!(request.name, "POST /api/bookings");
    assert_eq!(request.response_code.as_deref(), Some("201"));
    assert_eq!(
        request.parent_id.as_deref(),
        Some(caller_span.as_str()),
        "the request continues the caller's span"
    );
    let dependencies = of_kind(&items, "RemoteDependencyData");
    let statements: Vec<_> = dependencies
        .iter()
        .filter(|d| d.dependency_type.as_deref() == Some("postgresql"))
        .collect();
    assert!(
        statements.iter().any(|d| d.name.starts_with("INSERT")),
        "the booking's INSERT is traced: {statements:#?}"
    );
    // Every dependency hangs under a span of this request (its own or one inside it).
    let span_ids: Vec<_> = items.iter().filter_map(|i| i.id.clone()).collect();
    for dependency in &dependencies {
        let parent = dependency.parent_id.as_ref().expect("a parent");
        assert!(
            span_ids.contains(parent) || parent == request.id.as_ref().unwrap(),
            "{dependency:#?}"
        );
    }
    assert_eq!(
        ingestion.refusals(),
        Vec::<String>::new(),
        "every upload was accepted"
    );
}

#[tokio::test]
async fn serving_the_mentor_list_from_the_cache_counts_hits() {
    let ingestion = telemetry();
    let app = spawn_app().await;
    let hits = || ingestion.metric("cache.lookups", &[("cache", "mentors"), ("result", "hit")]);
    let misses = || ingestion.metric("cache.lookups", &[("cache", "mentors"), ("result", "miss")]);
    let (hits_before, misses_before) = (hits(), misses());

    app.get("/api/mentors?limit=7", None)
        .await
        .expect_status(StatusCode::OK)
        .await;
    for _ in 0..3 {
        app.get("/api/mentors?limit=7", None)
            .await
            .expect_status(StatusCode::OK)
            .await;
    }

    eventually("three hits and a miss counted", || {
        hits() >= hits_before + 3.0 && misses() >= misses_before + 1.0
    })
    .await;
    assert_eq!(
        ingestion.refusals(),
        Vec::<String>::new(),
        "every upload was accepted"
    );
}

/// A non-zero span id for the caller's `traceparent`.
fn rand_span_id() -> u64 {
    Uuid::new_v4().as_u64_pair().0 | 1
}

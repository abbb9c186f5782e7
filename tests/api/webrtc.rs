//! WebRTC quality data: participants post samples and events of their class, within physical
//! ranges; admins read the summary.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn sample(overrides: Value) -> Value {
    let mut sample = json!({
        "recordedAt": Utc::now(), "connectionType": "relay", "packetLoss": 0.02,
        "rttMs": 120.0, "jitterMs": 8.0, "bitrateInKbps": 900.0, "bitrateOutKbps": 450.0,
        "healthScore": 87.0
    });
    for (field, value) in overrides.as_object().unwrap() {
        sample[field] = value.clone();
    }
    sample
}

#[tokio::test]
async fn participants_report_quality_and_admins_read_the_summary() {
    let app = spawn_app().await;
    let class = app.class_in_progress().await;
    for token in [&class.student, &class.mentor] {
        app.post(
            "/api/webrtc/stats",
            &json!({"bookingId": class.booking_id, "samples": [sample(json!({})), sample(json!({"rttMs": 140.0}))]}),
            Some(token),
        )
        .await
        .expect_status(StatusCode::ACCEPTED)
        .await;
    }
    app.post(
        "/api/webrtc/events",
        &json!({"bookingId": class.booking_id, "events": [{"occurredAt": Utc::now(), "kind": "ice_restart"}]}),
        Some(&class.student),
    )
    .await
    .expect_status(StatusCode::ACCEPTED)
    .await;
    let (_, stranger) = app.student("stranger@example.com").await;
    app.post(
        "/api/webrtc/stats",
        &json!({"bookingId": class.booking_id, "samples": [sample(json!({}))]}),
        Some(&stranger),
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "NOT_A_PARTICIPANT")
    .await;

    let summary = app
        .get("/api/admin/webrtc/summary", Some(&class.admin))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let relay = &summary["connectionTypes"][0];
    assert_eq!(relay["connectionType"], "relay");
    assert_eq!(relay["samples"], 4);
    assert_eq!(relay["classes"], 1);
    assert_eq!(relay["avgRttMs"], 130.0);
    assert_eq!(
        summary["events"],
        json!([{"kind": "ice_restart", "count": 1}])
    );
    app.get("/api/admin/webrtc/summary", Some(&class.student))
        .await
        .expect_problem(StatusCode::FORBIDDEN, "FORBIDDEN_ROLE")
        .await;
}

#[tokio::test]
async fn measurements_outside_physical_ranges_are_refused_naming_the_field_and_nothing_is_stored() {
    let app = spawn_app().await;
    let class = app.class_in_progress().await;
    let week_ago = Utc::now() - Duration::days(7);
    let tomorrow = Utc::now() + Duration::days(1);
    for (overrides, field) in [
        (json!({"rttMs": 1e39}), "samples.rttMs"),
        (json!({"rttMs": -1.0}), "samples.rttMs"),
        (json!({"rttMs": 60001.0}), "samples.rttMs"),
        (json!({"jitterMs": 1e6}), "samples.jitterMs"),
        (json!({"bitrateInKbps": 2e7}), "samples.bitrateInKbps"),
        (json!({"bitrateOutKbps": -5.0}), "samples.bitrateOutKbps"),
        (json!({"packetLoss": 1.5}), "samples.packetLoss"),
        (json!({"healthScore": 101.0}), "samples.healthScore"),
        (json!({"recordedAt": week_ago}), "samples.recordedAt"),
        (json!({"recordedAt": tomorrow}), "samples.recordedAt"),
    ] {
        let refused = app
            .post(
                "/api/webrtc/stats",
                &json!({"bookingId": class.booking_id, "samples": [sample(json!({})), sample(overrides.clone())]}),
                Some(&class.student),
            )
            .await
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED")
            .await;
        assert_eq!(problem_fields(&refused), vec![field], "{overrides}");
    }
    let refused = app
        .post(
            "/api/webrtc/events",
            &json!({"bookingId": class.booking_id, "events": [{"occurredAt": week_ago, "kind": "ice_restart"}]}),
            Some(&class.student),
        )
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED")
        .await;
    assert_eq!(problem_fields(&refused), vec!["events.occurredAt"]);
    assert_eq!(app.count("webrtc_stats").await, 0);
    assert_eq!(app.count("webrtc_events").await, 0);
}

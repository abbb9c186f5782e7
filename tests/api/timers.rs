//! Timer invocations through the Functions custom-handler contract.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// The host's exact invocation body for a timer (azure-contracts §1.4).
fn invocation(past_due: bool) -> Value {
    json!({
        "Data": {
            "myTimer": {
                "Schedule": { "AdjustForDST": true },
                "ScheduleStatus": {
                    "Last": "0001-01-01T00:00:00",
                    "Next": "2026-11-22T11:17:00+00:00",
                    "LastUpdated": "2026-11-22T10:17:00.0153+00:00"
                },
                "IsPastDue": past_due
            }
        },
        "Metadata": { "sys": { "MethodName": "auth-cleanup", "UtcNow": "2026-11-22T11:17:00.01Z", "RandGuid": "2f9f4fe7-6e3c-4f4b-9b1c-0c8d1c4d5e6f" } }
    })
}

async fn invoke(app: &TestApp, function: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/{function}")))
        .header(
            "x-azure-functions-invocationid",
            "5f3c0b1e-0000-4000-8000-000000000001",
        )
        .header("user-agent", "Azure-Functions-Host/4.1041.200")
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_cleanup_timer_answers_the_invocation_contract_and_deletes_ended_sessions() {
    let app = spawn_app().await;
    let (ended_id, _) = app.student("ended@example.com").await;
    let (live_id, live_token) = app.student("live@example.com").await;
    app.execute(
        "UPDATE sessions SET revoked_at = now() - interval '2 days' WHERE user_id = $1",
        ended_id,
    )
    .await;

    let response = invoke(&app, "auth-cleanup", &invocation(false)).await;

    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.expect_status(StatusCode::OK).await;
    assert_eq!(body["Logs"][0], "deleted 1 ended sessions");
    // DefaultHttpWorkerService logs "Outputs not set" / "ReturnValue not set" otherwise.
    let summary = body["ReturnValue"].as_str().expect("a summary line");
    assert!(
        summary.starts_with("auth-cleanup: deleted 1 ended sessions; "),
        "{summary}"
    );
    assert_eq!(body["Outputs"], json!({ "result": summary }));
    let remaining: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT user_id FROM sessions")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(remaining, vec![live_id]);
    app.get("/api/auth/me", Some(&live_token))
        .await
        .expect_status(StatusCode::OK)
        .await;
}

#[tokio::test]
async fn overlapping_and_past_due_invocations_are_safe() {
    let app = spawn_app().await;
    let (ended_id, _) = app.student("ended@example.com").await;
    app.execute(
        "UPDATE sessions SET expires_at = now() - interval '3 days' WHERE user_id = $1",
        ended_id,
    )
    .await;
    let body = invocation(true);

    let responses = join_all([
        invoke(&app, "auth-cleanup", &body),
        invoke(&app, "AUTH-CLEANUP", &body),
    ])
    .await;

    let mut deleted = 0;
    for response in responses {
        let body = response.expect_status(StatusCode::OK).await;
        let logs: Vec<&str> = body["Logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert!(logs.contains(&"ran late (past due); caught up"), "{logs:?}");
        deleted += logs[0]
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap();
    }
    assert_eq!(deleted, 1, "the session is deleted once across both runs");
    assert_eq!(app.count("sessions").await, 0);
}

#[tokio::test]
async fn unknown_functions_and_bodies_without_a_timer_are_refused() {
    let app = spawn_app().await;

    invoke(&app, "no-such-timer", &invocation(false))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "FUNCTION_NOT_FOUND")
        .await;
    let no_timer = json!({"Data": {}, "Metadata": {}});
    invoke(&app, "auth-cleanup", &no_timer)
        .await
        .expect_problem(StatusCode::BAD_REQUEST, "INVALID_INVOCATION")
        .await;
}

#[tokio::test]
async fn alone_the_handler_fires_timers_from_their_schedules_and_catches_up_after_downtime() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app.open_mentor("alone-mentor@example.com", &admin).await;
    let (student_id, _) = app.student("alone-student@example.com").await;
    let hold = app
        .insert_booking(mentor_id, student_id, at(3, 10, 0), "pending_payment")
        .await;
    app.execute(
        "UPDATE bookings SET hold_expires_at = now() - interval '1 minute' WHERE booking_id = $1",
        hold,
    )
    .await;
    // The last run the schedule monitor saw was an hour ago: the handler was down since.
    sqlx::query("INSERT INTO timer_runs (name, last_run_at) VALUES ('booking-lifecycle', now() - interval '1 hour')")
        .execute(&app.db)
        .await
        .unwrap();

    let _alone = app
        .instance_with(|config| config.timers_in_process = true)
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status: String =
            sqlx::query_scalar("SELECT status FROM bookings WHERE booking_id = $1")
                .bind(hold)
                .fetch_one(&app.db)
                .await
                .unwrap();
        if status == "expired" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the missed run never came (status {status})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // The run is recorded once it has finished, a moment after its changes commit.
    loop {
        let recorded: bool = sqlx::query_scalar(
            "SELECT last_run_at > now() - interval '1 minute' FROM timer_runs WHERE name = 'booking-lifecycle'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        if recorded {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the catch-up run is recorded, so it does not repeat"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

//! The booking-lifecycle and reminders timers through the Functions invocation contract:
//! every transition and reminder happens once, even when two invocations overlap.

use chrono::{Duration, Utc};
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

fn invocation() -> Value {
    json!({
        "Data": { "myTimer": { "Schedule": { "AdjustForDST": true }, "ScheduleStatus": null, "IsPastDue": false } },
        "Metadata": { "sys": { "MethodName": "booking-lifecycle", "UtcNow": Utc::now().to_rfc3339() } }
    })
}

async fn invoke_twice_at_once(app: &TestApp, function: &str) -> Vec<Value> {
    let body = invocation();
    let calls = (0..2).map(|_| {
        app.client
            .post(app.url(&format!("/{function}")))
            .json(&body)
            .send()
    });
    let mut answers = Vec::new();
    for response in join_all(calls).await {
        answers.push(response.unwrap().expect_status(StatusCode::OK).await);
    }
    answers
}

async fn status_of(app: &TestApp, booking_id: Uuid) -> String {
    sqlx::query_scalar("SELECT status FROM bookings WHERE booking_id = $1")
        .bind(booking_id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_lifecycle_expires_holds_completes_classes_and_marks_mentor_no_shows_once() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app.open_mentor("timers@example.com", &admin).await;
    let students = app.students_direct(4).await;
    let lapsed = app
        .insert_booking(mentor_id, students[0].0, at(3, 9, 0), "pending_payment")
        .await;
    app.execute(
        "UPDATE bookings SET hold_expires_at = now() - interval '1 second' WHERE booking_id = $1",
        lapsed,
    )
    .await;
    let holding = app
        .insert_booking(mentor_id, students[1].0, at(3, 12, 0), "pending_payment")
        .await;
    app.execute(
        "UPDATE bookings SET hold_expires_at = now() + interval '5 minutes' WHERE booking_id = $1",
        holding,
    )
    .await;
    let taught = app
        .insert_booking(
            mentor_id,
            students[2].0,
            Utc::now() - Duration::hours(3),
            "confirmed",
        )
        .await;
    app.execute(
        "UPDATE bookings SET mentor_joined_at = scheduled_at WHERE booking_id = $1",
        taught,
    )
    .await;
    let missed = app
        .insert_booking(
            mentor_id,
            students[3].0,
            Utc::now() - Duration::minutes(76),
            "confirmed",
        )
        .await;
    let starting = app
        .insert_booking(
            mentor_id,
            students[0].0,
            Utc::now() - Duration::minutes(14),
            "confirmed",
        )
        .await;

    let answers = invoke_twice_at_once(&app, "booking-lifecycle").await;

    for answer in &answers {
        assert_eq!(answer["Outputs"]["result"], answer["ReturnValue"]);
        assert!(
            answer["Logs"][0].as_str().unwrap().starts_with("expired "),
            "{answer}"
        );
    }
    assert_eq!(status_of(&app, lapsed).await, "expired");
    assert_eq!(status_of(&app, holding).await, "pending_payment");
    assert_eq!(status_of(&app, taught).await, "completed");
    assert_eq!(status_of(&app, missed).await, "no_show");
    assert_eq!(
        status_of(&app, starting).await,
        "confirmed",
        "15 minutes have not passed yet"
    );
    let no_show_notices: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE kind = 'mentor_no_show'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(no_show_notices, 1, "two overlapping runs notify once");
    let refund: (i32, String) = sqlx::query_as(
        "SELECT refund_percent, refund_amount::text FROM bookings WHERE booking_id = $1",
    )
    .bind(missed)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(refund.0, 100);
    let profile: i32 =
        sqlx::query_scalar("SELECT student_count FROM mentor_profiles WHERE user_id = $1")
            .bind(mentor_id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(profile, 1, "the completed class counts its student");
}

#[tokio::test]
async fn reminders_go_out_once_a_day_ahead_and_once_an_hour_ahead() {
    // A class 20 hours away gets the day-ahead reminder; one 50 minutes away only the
    // hour-ahead one; one 30 hours away nothing yet.
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app.open_mentor("remind@example.com", &admin).await;
    let students = app.students_direct(3).await;
    let tomorrow = app
        .insert_booking(
            mentor_id,
            students[0].0,
            Utc::now() + Duration::hours(20),
            "confirmed",
        )
        .await;
    let soon = app
        .insert_booking(
            mentor_id,
            students[1].0,
            Utc::now() + Duration::minutes(50),
            "confirmed",
        )
        .await;
    app.insert_booking(
        mentor_id,
        students[2].0,
        Utc::now() + Duration::hours(30),
        "confirmed",
    )
    .await;

    invoke_twice_at_once(&app, "reminders").await;
    invoke_twice_at_once(&app, "reminders").await;

    let per_booking: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT booking_id, count(*) FROM notifications WHERE kind = 'class_reminder' GROUP BY booking_id ORDER BY 2",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    // Both people, once each, however often the timer runs.
    let mut per_booking = per_booking;
    per_booking.sort_by_key(|(booking, _)| *booking != tomorrow);
    assert_eq!(per_booking, vec![(tomorrow, 2), (soon, 2)]);
    let hour_ahead: Option<chrono::DateTime<Utc>> =
        sqlx::query_scalar("SELECT reminder_1h_sent_at FROM bookings WHERE booking_id = $1")
            .bind(soon)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(hour_ahead.is_some());
    let emails: i64 =
        sqlx::query_scalar("SELECT count(*) FROM email_outbox WHERE category = 'reminder'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(emails, 4);
}

#[tokio::test]
async fn the_rating_timer_recomputes_from_reviews() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app.open_mentor("recalc@example.com", &admin).await;
    let students = app.students_direct(2).await;
    for (rating, (student_id, _)) in [3, 4].into_iter().zip(&students) {
        let booking = app
            .insert_booking(
                mentor_id,
                *student_id,
                at(-2 - i64::from(rating), 9, 0),
                "completed",
            )
            .await;
        sqlx::query("INSERT INTO reviews (review_id, booking_id, mentor_id, student_id, rating) VALUES (gen_random_uuid(), $1, $2, $3, $4)")
            .bind(booking)
            .bind(mentor_id)
            .bind(student_id)
            .bind(rating)
            .execute(&app.db)
            .await
            .unwrap();
    }

    let answers = invoke_twice_at_once(&app, "rating-recalc").await;

    assert!(
        answers[0]["Logs"][0]
            .as_str()
            .unwrap()
            .starts_with("recalculated")
    );
    let detail = app
        .get(&format!("/api/mentors/{mentor_id}"), None)
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(
        (
            detail["rating"].as_str(),
            detail["reviewCount"].as_i64(),
            detail["studentCount"].as_i64()
        ),
        (Some("3.50"), Some(2), Some(2))
    );
}

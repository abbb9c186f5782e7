//! Cancellation refunds, rescheduling, reviews, packages, lists and who may see what.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

/// A start 2-5 hours from now whose class (with its buffer) ends before midnight UTC, where the
/// open mentor's whole-day slot ends: whatever the time of day the test runs.
fn within_six_hours() -> chrono::DateTime<Utc> {
    (2..=5)
        .map(|hours| {
            // Down to the quarter hour: a start availability offers.
            let start = (Utc::now() + Duration::hours(hours)).timestamp();
            chrono::DateTime::from_timestamp(start - start % 900, 0).unwrap()
        })
        .find(|start| (*start + Duration::hours(2)).date_naive() == start.date_naive())
        .expect("one of 2-5 hours ahead leaves a class inside its day")
}

async fn confirmed_class(
    app: &TestApp,
    mentor_id: Uuid,
    student: &str,
    when: chrono::DateTime<Utc>,
) -> String {
    let body = json!({"mentorId": mentor_id, "subject": "Physics", "sessionType": "regular",
                      "scheduledAt": when.to_rfc3339(), "idempotencyKey": Uuid::new_v4().to_string()});
    let created = app
        .post("/api/bookings", &body, Some(student))
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    let id = created["bookingId"].as_str().unwrap().to_owned();
    // Payment is another capability's; mark this one paid.
    app.execute(
        "UPDATE bookings SET status = 'confirmed', hold_expires_at = NULL WHERE booking_id = $1",
        id.parse().unwrap(),
    )
    .await;
    id
}

#[tokio::test]
async fn a_students_refund_depends_on_notice_and_a_mentors_cancel_refunds_in_full() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, mentor) = app.open_mentor("refunds@example.com", &admin).await;
    let now = Utc::now();
    let cases = [
        // Each class is cancelled before the next is made, so they never block each other.
        (
            Duration::hours(24) + Duration::minutes(2),
            "student",
            100,
            "600.00",
        ),
        (
            Duration::hours(24) - Duration::minutes(2),
            "student",
            50,
            "300.00",
        ),
        (
            Duration::hours(12) + Duration::minutes(2),
            "student",
            50,
            "300.00",
        ),
        (
            Duration::hours(12) - Duration::minutes(2),
            "student",
            0,
            "0.00",
        ),
        (Duration::hours(2), "mentor", 100, "600.00"),
        (Duration::hours(3), "admin", 100, "600.00"),
    ];
    for (n, (ahead, who, percent, amount)) in cases.into_iter().enumerate() {
        let (student_id, student) = app.student(&format!("refund{n}@example.com")).await;
        // Inserted (paid) directly: some of these times cross midnight, outside any slot.
        let id = app
            .insert_booking(mentor_id, student_id, now + ahead, "confirmed")
            .await;
        let token = match who {
            "student" => &student,
            "mentor" => &mentor,
            _ => &admin,
        };

        let cancelled = app
            .post(
                &format!("/api/bookings/{id}/cancel"),
                &json!({"reason": "can't make it"}),
                Some(token),
            )
            .await;

        let body = cancelled.expect_status(StatusCode::OK).await;
        assert_eq!(body["status"], "cancelled", "case {n}");
        assert_eq!(body["refundPercent"], percent, "case {n}: {who} {ahead:?}");
        assert_eq!(body["refundAmount"], amount, "case {n}");
        let again = app
            .post(
                &format!("/api/bookings/{id}/cancel"),
                &json!({"reason": "twice"}),
                Some(token),
            )
            .await;
        again
            .expect_problem(StatusCode::CONFLICT, "BOOKING_NOT_CANCELLABLE")
            .await;
    }
    let notices: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE kind = 'booking_cancelled'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        notices, 7,
        "the other party is told (an admin's cancel tells both)"
    );
}

#[tokio::test]
async fn rescheduling_needs_six_hours_notice_and_a_valid_new_time() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, mentor) = app.open_mentor("moves@example.com", &admin).await;
    let (_, student) = app.student("mover@example.com").await;
    let (_, other_student) = app.student("blocker@example.com").await;
    let id = confirmed_class(&app, mentor_id, &student, at(5, 10, 0)).await;
    confirmed_class(&app, mentor_id, &other_student, at(5, 14, 0)).await;
    let path = format!("/api/bookings/{id}/reschedule");

    let taken = app
        .post(
            &path,
            &json!({"scheduledAt": at(5, 14, 30).to_rfc3339()}),
            Some(&student),
        )
        .await;
    taken
        .expect_problem(StatusCode::CONFLICT, "SLOT_TAKEN")
        .await;
    let too_soon = app
        .post(
            &path,
            &json!({"scheduledAt": (Utc::now() + Duration::minutes(30)).to_rfc3339()}),
            Some(&student),
        )
        .await;
    too_soon
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "TOO_SOON")
        .await;
    let moved = app
        .post(
            &path,
            &json!({"scheduledAt": at(5, 11, 0).to_rfc3339()}),
            Some(&mentor),
        )
        .await;
    let body = moved.expect_status(StatusCode::OK).await;
    assert_eq!(
        body["scheduledAt"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<Utc>>()
            .unwrap(),
        at(5, 11, 0)
    );
    assert_eq!(body["status"], "confirmed", "payment is kept");

    let soon = confirmed_class(&app, mentor_id, &student, within_six_hours()).await;
    let late = app
        .post(
            &format!("/api/bookings/{soon}/reschedule"),
            &json!({"scheduledAt": at(6, 9, 0).to_rfc3339()}),
            Some(&student),
        )
        .await;
    late.expect_problem(StatusCode::CONFLICT, "RESCHEDULE_TOO_LATE")
        .await;
    let stranger = app
        .post(
            &path,
            &json!({"scheduledAt": at(6, 9, 0).to_rfc3339()}),
            Some(&other_student),
        )
        .await;
    stranger
        .expect_problem(StatusCode::NOT_FOUND, "BOOKING_NOT_FOUND")
        .await;
    let off_grid = app
        .post(
            &path,
            &json!({"scheduledAt": at(6, 13, 7).to_rfc3339()}),
            Some(&student),
        )
        .await;
    off_grid
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "START_OFF_GRID")
        .await;
}

#[tokio::test]
async fn a_class_moves_at_most_three_times_whoever_moves_it() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, mentor) = app.open_mentor("often@example.com", &admin).await;
    let (_, student) = app.student("undecided@example.com").await;
    let id = confirmed_class(&app, mentor_id, &student, at(5, 9, 0)).await;
    let path = format!("/api/bookings/{id}/reschedule");

    for (n, (hour, token)) in [(10, &student), (11, &mentor), (12, &student)]
        .into_iter()
        .enumerate()
    {
        let moved = app
            .post(
                &path,
                &json!({"scheduledAt": at(5, hour, 0).to_rfc3339()}),
                Some(token),
            )
            .await
            .expect_status(StatusCode::OK)
            .await;
        assert_eq!(moved["rescheduleCount"], n + 1);
    }
    for token in [&student, &mentor] {
        app.post(
            &path,
            &json!({"scheduledAt": at(5, 13, 0).to_rfc3339()}),
            Some(token),
        )
        .await
        .expect_problem(StatusCode::CONFLICT, "RESCHEDULE_LIMIT")
        .await;
    }
    let stays: chrono::DateTime<Utc> =
        sqlx::query_scalar("SELECT scheduled_at FROM bookings WHERE booking_id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        stays,
        at(5, 12, 0),
        "a refused move leaves the class where it was"
    );
}

#[tokio::test]
async fn a_completed_class_can_be_reviewed_once_and_the_rating_follows() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app.open_mentor("rated@example.com", &admin).await;
    let (_, first) = app.student("reviewer1@example.com").await;
    let (_, second) = app.student("reviewer2@example.com").await;
    let one = confirmed_class(&app, mentor_id, &first, at(3, 9, 0)).await;
    let two = confirmed_class(&app, mentor_id, &second, at(3, 12, 0)).await;

    let early = app
        .post(
            &format!("/api/bookings/{one}/review"),
            &json!({"rating": 5}),
            Some(&first),
        )
        .await;
    early
        .expect_problem(StatusCode::CONFLICT, "REVIEW_NOT_ALLOWED")
        .await;
    for id in [&one, &two] {
        app.execute(
            "UPDATE bookings SET status = 'completed' WHERE booking_id = $1",
            id.parse().unwrap(),
        )
        .await;
    }
    let bad = app
        .post(
            &format!("/api/bookings/{one}/review"),
            &json!({"rating": 6}),
            Some(&first),
        )
        .await;
    bad.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED")
        .await;
    let not_mine = app
        .post(
            &format!("/api/bookings/{one}/review"),
            &json!({"rating": 1}),
            Some(&second),
        )
        .await;
    not_mine
        .expect_problem(StatusCode::NOT_FOUND, "BOOKING_NOT_FOUND")
        .await;
    app.post(
        &format!("/api/bookings/{one}/review"),
        &json!({"rating": 5, "comment": "Great"}),
        Some(&first),
    )
    .await
    .expect_status(StatusCode::CREATED)
    .await;
    app.post(
        &format!("/api/bookings/{two}/review"),
        &json!({"rating": 4}),
        Some(&second),
    )
    .await
    .expect_status(StatusCode::CREATED)
    .await;
    let twice = app
        .post(
            &format!("/api/bookings/{one}/review"),
            &json!({"rating": 1}),
            Some(&first),
        )
        .await;
    twice
        .expect_problem(StatusCode::CONFLICT, "REVIEW_EXISTS")
        .await;

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
        (Some("4.50"), Some(2), Some(2))
    );
    let list = app
        .get("/api/mentors", None)
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(
        list["items"][0]["rating"], "4.50",
        "the cached list shows the review at once"
    );
    let reviews = app
        .get(&format!("/api/mentors/{mentor_id}/reviews"), None)
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(reviews["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn packages_need_a_completed_class_cost_six_classes_less_discount_and_spend_credits() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, mentor) = app.open_mentor("bundles@example.com", &admin).await;
    app.put(
        "/api/mentors/me/package-discount",
        &json!({"percent": 10}),
        Some(&mentor),
    )
    .await;
    let (student_id, student) = app.student("loyal@example.com").await;
    let buy = json!({"mentorId": mentor_id, "subject": "physics"});

    app.post("/api/packages", &buy, Some(&student))
        .await
        .expect_problem(StatusCode::CONFLICT, "PACKAGE_PREREQUISITE")
        .await;
    app.insert_booking(
        mentor_id,
        student_id,
        Utc::now() - Duration::days(2),
        "completed",
    )
    .await;
    let package = app
        .post("/api/packages", &buy, Some(&student))
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    assert_eq!(
        (
            package["price"].as_str(),
            package["status"].as_str(),
            package["creditsRemaining"].as_i64()
        ),
        (Some("3240.00"), Some("pending_payment"), Some(6))
    );
    app.post("/api/packages", &buy, Some(&student))
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    app.post("/api/packages", &buy, Some(&student))
        .await
        .expect_problem(StatusCode::CONFLICT, "PACKAGE_LIMIT")
        .await;

    let package_id: Uuid = package["packageId"].as_str().unwrap().parse().unwrap();
    let path = format!("/api/packages/{package_id}/classes");
    let class = |day: i64| json!({"scheduledAt": at(day, 9, 0).to_rfc3339(), "idempotencyKey": Uuid::new_v4().to_string()});
    app.post(&path, &class(2), Some(&student))
        .await
        .expect_problem(StatusCode::CONFLICT, "PACKAGE_EXHAUSTED")
        .await;
    app.execute(
        "UPDATE packages SET status = 'active', credits_remaining = 2 WHERE package_id = $1",
        package_id,
    )
    .await;
    for day in [2, 3] {
        let booked = app
            .post(&path, &class(day), Some(&student))
            .await
            .expect_status(StatusCode::CREATED)
            .await;
        assert_eq!(booked["status"], "confirmed");
        assert_eq!(booked["classFee"], "540.00");
    }
    app.post(&path, &class(4), Some(&student))
        .await
        .expect_problem(StatusCode::CONFLICT, "PACKAGE_EXHAUSTED")
        .await;
    let packages = app
        .get("/api/packages", Some(&student))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let used = packages
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["packageId"] == package_id.to_string())
        .unwrap();
    assert_eq!(
        (used["creditsRemaining"].as_i64(), used["status"].as_str()),
        (Some(0), Some("exhausted"))
    );
}

#[tokio::test]
async fn lists_show_each_side_its_classes_and_change_at_once() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, mentor) = app.open_mentor("lists@example.com", &admin).await;
    let (student_id, student) = app.student("lister@example.com").await;
    let (_, stranger) = app.student("stranger@example.com").await;
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["bookingId"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(
        ids(&app
            .get("/api/bookings", Some(&student))
            .await
            .expect_status(StatusCode::OK)
            .await)
        .is_empty()
    );

    let later = confirmed_class(&app, mentor_id, &student, at(9, 9, 0)).await;
    let sooner = confirmed_class(&app, mentor_id, &student, at(4, 9, 0)).await;
    let past = app
        .insert_booking(mentor_id, student_id, at(-3, 9, 0), "completed")
        .await;

    let student_view = app
        .get("/api/bookings", Some(&student))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(
        ids(&student_view),
        vec![sooner.clone(), later.clone()],
        "upcoming, soonest first"
    );
    let history = app
        .get("/api/bookings?when=past", Some(&student))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(ids(&history), vec![past.to_string()]);
    let mentor_view = app
        .get("/api/bookings?when=upcoming", Some(&mentor))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(ids(&mentor_view), vec![sooner.clone(), later.clone()]);
    app.post(
        &format!("/api/bookings/{sooner}/cancel"),
        &json!({"reason": "ill"}),
        Some(&student),
    )
    .await;
    let confirmed_only = app
        .get("/api/bookings?status=confirmed", Some(&mentor))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(
        ids(&confirmed_only),
        vec![later.clone()],
        "the mentor's cached list changed at once"
    );

    for (token, expected) in [
        (&student, StatusCode::OK),
        (&mentor, StatusCode::OK),
        (&admin, StatusCode::OK),
        (&stranger, StatusCode::NOT_FOUND),
    ] {
        assert_eq!(
            app.get(&format!("/api/bookings/{later}"), Some(token))
                .await
                .status(),
            expected
        );
    }
    app.get(&format!("/api/bookings/{later}"), None)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED")
        .await;
    let by_mentor = app.post("/api/bookings", &json!({"mentorId": mentor_id, "subject": "Physics", "sessionType": "regular", "scheduledAt": at(9, 12, 0).to_rfc3339(), "idempotencyKey": "k"}), Some(&mentor)).await;
    by_mentor
        .expect_problem(StatusCode::FORBIDDEN, "FORBIDDEN_ROLE")
        .await;
    for bad in [
        r#"{"#,
        r#"{"mentorId": "nope"}"#,
        r#"{"mentorId": "00000000-0000-0000-0000-000000000000", "subject": "x", "sessionType": "marathon", "scheduledAt": "tomorrow", "idempotencyKey": "k"}"#,
    ] {
        let response = app
            .client
            .post(app.url("/api/bookings"))
            .bearer_auth(&student)
            .header("content-type", "application/json")
            .body(bad)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{bad}");
    }
}

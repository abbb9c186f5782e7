//! Every booking rule and its error code, at the boundaries.

use chrono::{Datelike, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

fn booking(mentor_id: Uuid, when: chrono::DateTime<Utc>, kind: &str) -> Value {
    json!({
        "mentorId": mentor_id, "subject": "Physics", "sessionType": kind,
        "scheduledAt": when.to_rfc3339(), "idempotencyKey": Uuid::new_v4().to_string()
    })
}

async fn book(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.post("/api/bookings", body, Some(token)).await
}

#[tokio::test]
async fn a_regular_booking_holds_the_slot_for_ten_minutes_with_the_fee_split_snapshotted() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app.open_mentor("fees@example.com", &admin).await;
    let (_, student) = app.student("payer@example.com").await;

    let created = book(&app, &student, &booking(mentor_id, at(3, 10, 0), "regular")).await;

    let body = created.expect_status(StatusCode::CREATED).await;
    assert_eq!(body["status"], "pending_payment");
    assert_eq!(
        (
            body["classFee"].as_str(),
            body["platformFee"].as_str(),
            body["gst"].as_str(),
            body["mentorPayout"].as_str()
        ),
        (Some("600.00"), Some("90.00"), Some("16.20"), Some("493.80"))
    );
    let hold: chrono::DateTime<Utc> = body["holdExpiresAt"].as_str().unwrap().parse().unwrap();
    let minutes = (hold - Utc::now()).num_seconds();
    assert!(
        (540..=600).contains(&minutes),
        "hold of about 10 minutes, got {minutes} s"
    );
    assert_eq!(
        body["endsAt"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<Utc>>()
            .unwrap()
            - at(3, 10, 0),
        Duration::minutes(55)
    );
}

#[tokio::test]
async fn the_start_must_be_an_hour_to_sixty_days_ahead() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app.open_mentor("window@example.com", &admin).await;
    let (_, student) = app.student("window-student@example.com").await;
    let now = Utc::now();
    // The open mentor's slots are whole UTC days and a class may not span two slots, so a
    // boundary that would put the class across midnight moves to the nearer side that fits.
    let first_start = fit_in_the_day(
        quarter_hour(now + Duration::minutes(61), Direction::Later),
        Direction::Later,
    );
    let last_start = fit_in_the_day(
        quarter_hour(
            now + Duration::days(60) - Duration::minutes(5),
            Direction::Earlier,
        ),
        Direction::Earlier,
    );

    let too_soon = book(
        &app,
        &student,
        &booking(mentor_id, now + Duration::minutes(59), "regular"),
    )
    .await;
    too_soon
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "TOO_SOON")
        .await;
    let just_in_time = book(&app, &student, &booking(mentor_id, first_start, "regular")).await;
    just_in_time.expect_status(StatusCode::CREATED).await;
    let too_far = book(
        &app,
        &student,
        &booking(
            mentor_id,
            now + Duration::days(60) + Duration::minutes(5),
            "regular",
        ),
    )
    .await;
    too_far
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "TOO_FAR")
        .await;
    let last_day = book(&app, &student, &booking(mentor_id, last_start, "regular")).await;
    last_day.expect_status(StatusCode::CREATED).await;
}

#[derive(Clone, Copy)]
enum Direction {
    Earlier,
    Later,
}

/// The nearest quarter hour in `direction` (starts are offered on that grid).
fn quarter_hour(instant: chrono::DateTime<Utc>, direction: Direction) -> chrono::DateTime<Utc> {
    let seconds = instant.timestamp();
    let down = seconds - seconds.rem_euclid(900);
    let snapped = match direction {
        Direction::Earlier => down,
        Direction::Later if down == seconds => down,
        Direction::Later => down + 900,
    };
    chrono::DateTime::from_timestamp(snapped, 0).unwrap()
}

/// `start`, or the nearest start on the grid in `direction` whose 55-minute class ends by
/// midnight UTC (23:00 on the way back: 23:05 would be off the quarter-hour grid).
fn fit_in_the_day(start: chrono::DateTime<Utc>, direction: Direction) -> chrono::DateTime<Utc> {
    let class = Duration::minutes(55);
    if (start + class).date_naive() == start.date_naive() {
        return start;
    }
    let next_midnight = (start + class)
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    match direction {
        Direction::Earlier => quarter_hour(next_midnight - class, Direction::Earlier),
        Direction::Later => next_midnight,
    }
}

#[tokio::test]
async fn the_class_must_fit_in_a_slot_in_the_mentors_time_zone() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    // Slots 09:00-17:00 every day in Asia/Kolkata (UTC+5:30): 03:30-11:30 UTC.
    let (mentor_id, _) = app
        .visible_mentor("kolkata-slots@example.com", &admin)
        .await;
    let (_, student) = app.student("edges@example.com").await;

    // Starts are offered every 15 minutes from the slot's start: 09:00, 09:15, … 16:00 local.
    for (hour, minute, second, expected) in [
        (3, 29, 0, Some("OUTSIDE_AVAILABILITY")),  // 08:59 local
        (3, 30, 0, None),                          // 09:00
        (10, 30, 0, None),                         // 16:00, ends 16:55
        (10, 45, 0, Some("OUTSIDE_AVAILABILITY")), // 16:15 would end 17:10
        (10, 35, 0, Some("START_OFF_GRID")),       // 16:05 ends at 17:00 but is off the grid
        (5, 7, 0, Some("START_OFF_GRID")),         // 10:37
        (5, 0, 13, Some("START_OFF_GRID")),        // 10:30:13
        (12, 0, 0, Some("OUTSIDE_AVAILABILITY")),
    ] {
        let start = at(5 + i64::from(hour % 3), hour, minute) + Duration::seconds(second);
        let response = book(&app, &student, &booking(mentor_id, start, "regular")).await;
        match expected {
            Some(code) => {
                response
                    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, code)
                    .await;
            }
            None => {
                response.expect_status(StatusCode::CREATED).await;
            }
        }
    }
}

#[tokio::test]
async fn the_buffer_keeps_classes_five_minutes_apart_for_mentor_and_student() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app.open_mentor("buffer@example.com", &admin).await;
    let (other_mentor, _) = app.open_mentor("buffer-other@example.com", &admin).await;
    let (_, first) = app.student("first@example.com").await;
    let (_, second) = app.student("second@example.com").await;
    book(&app, &first, &booking(mentor_id, at(4, 10, 0), "regular"))
        .await
        .expect_status(StatusCode::CREATED)
        .await;

    // The mentor's class runs 10:00-10:55 and needs 5 minutes either side: the neighbouring
    // starts on the quarter-hour grid keep exactly that.
    for (hour, minute, expected) in [
        (9, 15, Some("SLOT_TAKEN")),
        (10, 45, Some("SLOT_TAKEN")),
        (10, 30, Some("SLOT_TAKEN")),
        (9, 0, None),
        (11, 0, None),
    ] {
        let response = book(
            &app,
            &second,
            &booking(mentor_id, at(4, hour, minute), "regular"),
        )
        .await;
        match expected {
            Some(code) => {
                response.expect_problem(StatusCode::CONFLICT, code).await;
            }
            None => {
                let body = response.expect_status(StatusCode::CREATED).await;
                let id = body["bookingId"].as_str().unwrap();
                // Free the student again for the next case.
                app.post(
                    &format!("/api/bookings/{id}/cancel"),
                    &json!({"reason": "test"}),
                    Some(&second),
                )
                .await;
            }
        }
    }
    // The first student can't be in two classes either, even with another mentor.
    let clash = book(
        &app,
        &first,
        &booking(other_mentor, at(4, 10, 45), "regular"),
    )
    .await;
    clash
        .expect_problem(StatusCode::CONFLICT, "STUDENT_CONFLICT")
        .await;
    book(
        &app,
        &first,
        &booking(other_mentor, at(4, 11, 0), "regular"),
    )
    .await
    .expect_status(StatusCode::CREATED)
    .await;
}

#[tokio::test]
async fn demos_are_free_confirmed_at_once_and_one_per_pair_unless_cancelled() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, token) = app.open_mentor("demo@example.com", &admin).await;
    let (_, student) = app.student("curious@example.com").await;

    let demo = book(&app, &student, &booking(mentor_id, at(2, 8, 0), "demo"))
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    assert_eq!(demo["status"], "confirmed");
    assert_eq!(demo["classFee"], "0.00");
    assert_eq!(
        demo["endsAt"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<Utc>>()
            .unwrap()
            - at(2, 8, 0),
        Duration::minutes(40)
    );
    let again = book(&app, &student, &booking(mentor_id, at(3, 8, 0), "demo")).await;
    again
        .expect_problem(StatusCode::CONFLICT, "DEMO_ALREADY_BOOKED")
        .await;

    let id = demo["bookingId"].as_str().unwrap();
    app.post(
        &format!("/api/bookings/{id}/cancel"),
        &json!({"reason": "clash"}),
        Some(&student),
    )
    .await;
    book(&app, &student, &booking(mentor_id, at(3, 8, 0), "demo"))
        .await
        .expect_status(StatusCode::CREATED)
        .await;

    app.put(
        "/api/mentors/me/demo",
        &json!({"enabled": false}),
        Some(&token),
    )
    .await;
    let (_, other_student) = app.student("late-curious@example.com").await;
    let off = book(
        &app,
        &other_student,
        &booking(mentor_id, at(4, 8, 0), "demo"),
    )
    .await;
    off.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "DEMO_NOT_OFFERED")
        .await;
}

#[tokio::test]
async fn unknown_mentors_subjects_and_mentors_without_upi_are_refused() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app.open_mentor("subjects@example.com", &admin).await;
    let (no_upi, token, _) = app.signed_in_mentor("no-upi@example.com", &admin).await;
    app.post(
        "/api/mentors/me/subjects",
        &json!({"subject": "Physics", "experienceYears": 1}),
        Some(&token),
    )
    .await;
    app.post(
        "/api/mentors/me/slots",
        &json!({"dayOfWeek": 1, "start": "00:00", "end": "24:00"}),
        Some(&token),
    )
    .await;
    let (_, student) = app.student("asker@example.com").await;

    let mut wrong_subject = booking(mentor_id, at(3, 9, 0), "regular");
    wrong_subject["subject"] = json!("Cooking");
    book(&app, &student, &wrong_subject)
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "SUBJECT_NOT_OFFERED")
        .await;
    book(
        &app,
        &student,
        &booking(Uuid::new_v4(), at(3, 9, 0), "regular"),
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "MENTOR_NOT_FOUND")
    .await;
    book(&app, &student, &booking(no_upi, at(3, 9, 0), "regular"))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "MENTOR_PAYMENT_MISSING")
        .await;
    assert_eq!(app.count("bookings").await, 0);
}

#[tokio::test]
async fn a_student_books_at_most_three_classes_a_day_and_fifteen_a_month() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app.open_mentor("limits@example.com", &admin).await;
    let (_, student) = app.student("keen@example.com").await;
    // The first day of next month, in the mentor's zone (UTC), plus at least two days' lead.
    let today = Utc::now().date_naive();
    let (year, month) = if today.month() == 12 {
        (today.year() + 1, 1)
    } else {
        (today.year(), today.month() + 1)
    };
    let first_of_next = chrono::NaiveDate::from_ymd_opt(year, month, 1).unwrap();
    let day = |offset: i64, hour: u32| {
        (first_of_next + Duration::days(offset))
            .and_hms_opt(hour, 0, 0)
            .unwrap()
            .and_utc()
    };

    for hour in [8, 10, 12] {
        book(&app, &student, &booking(mentor_id, day(0, hour), "regular"))
            .await
            .expect_status(StatusCode::CREATED)
            .await;
    }
    let fourth = book(&app, &student, &booking(mentor_id, day(0, 14), "regular")).await;
    let problem = fourth
        .expect_problem(StatusCode::CONFLICT, "LIMIT_DAILY")
        .await;
    assert_eq!(problem["limit"], 3);

    for offset in 1..=4 {
        for hour in [8, 10, 12] {
            book(
                &app,
                &student,
                &booking(mentor_id, day(offset, hour), "regular"),
            )
            .await
            .expect_status(StatusCode::CREATED)
            .await;
        }
    }
    let sixteenth = book(&app, &student, &booking(mentor_id, day(5, 8), "regular")).await;
    sixteenth
        .expect_problem(StatusCode::CONFLICT, "LIMIT_MONTHLY")
        .await;
    assert_eq!(app.count("bookings").await, 15);
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_booking() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app.open_mentor("idem@example.com", &admin).await;
    let (_, student) = app.student("retrier@example.com").await;
    let body = booking(mentor_id, at(6, 9, 0), "regular");

    let first = book(&app, &student, &body)
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    let second = book(&app, &student, &body)
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    let parallel = futures::future::join_all((0..10).map(|_| book(&app, &student, &body))).await;

    assert_eq!(first, second);
    for response in parallel {
        assert_eq!(
            response.expect_status(StatusCode::CREATED).await["bookingId"],
            first["bookingId"]
        );
    }
    assert_eq!(app.count("bookings").await, 1);
}

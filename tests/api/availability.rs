//! Bookable start times from weekly slots in the mentor's time zone.

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// The next date (at least two days ahead) that falls on ISO `weekday` in `zone`.
fn next(zone: Tz, weekday: u32) -> NaiveDate {
    let today = Utc::now().with_timezone(&zone).date_naive();
    let ahead =
        (i64::from(weekday) - i64::from(today.weekday().number_from_monday())).rem_euclid(7);
    today + Duration::days(if ahead < 2 { ahead + 7 } else { ahead })
}

async fn mentor_in(
    app: &TestApp,
    admin: &str,
    email: &str,
    zone: &str,
    slot: Value,
) -> (uuid::Uuid, String) {
    let (mentor_id, token, _) = app.signed_in_mentor(email, admin).await;
    let profile = json!({"firstName": "Zed", "lastName": "One", "timeZone": zone});
    app.put("/api/mentors/me/profile", &profile, Some(&token))
        .await
        .expect_status(StatusCode::OK)
        .await;
    app.post(
        "/api/mentors/me/subjects",
        &json!({"subject": "Physics", "experienceYears": 3}),
        Some(&token),
    )
    .await;
    app.post("/api/mentors/me/slots", &slot, Some(&token))
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    app.put(
        "/api/mentors/me/upi",
        &json!({"upiId": "zed@okaxis"}),
        Some(&token),
    )
    .await;
    (mentor_id, token)
}

fn starts(body: &Value, key: &str) -> Vec<String> {
    body["starts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[key].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn starts_are_given_in_utc_and_local_time_minus_existing_bookings() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (student_id, _) = app.student("avail-student@example.com").await;
    let zone = chrono_tz::Asia::Kolkata;
    let (mentor_id, _) = mentor_in(
        &app,
        &admin,
        "kolkata@example.com",
        "Asia/Kolkata",
        json!({"dayOfWeek": 2, "start": "10:00", "end": "12:00"}),
    )
    .await;
    let tuesday = next(zone, 2);
    let path = format!("/api/mentors/{mentor_id}/availability?date={tuesday}");

    let body = app
        .get(&path, None)
        .await
        .expect_status(StatusCode::OK)
        .await;

    assert_eq!(body["timeZone"], "Asia/Kolkata");
    assert_eq!(body["durationMinutes"], 55);
    assert_eq!(
        starts(&body, "startLocal"),
        ["10:00", "10:15", "10:30", "10:45", "11:00"].map(|t| format!("{tuesday}T{t}"))
    );
    assert_eq!(
        body["starts"][0]["startUtc"],
        format!("{tuesday}T04:30:00Z")
    );
    assert_eq!(body["starts"][0]["endLocal"], format!("{tuesday}T10:55"));

    // A confirmed class at 10:30 local (blocking until 11:30 with the buffer) removes the
    // starts whose class plus buffer would overlap it.
    let booked = zone
        .from_local_datetime(&tuesday.and_hms_opt(10, 30, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc);
    app.insert_booking(mentor_id, student_id, booked, "confirmed")
        .await;
    // Inserted directly, so announced as every booking change is after it commits.
    domain::booking_changes::announce(&app.state, &[mentor_id, student_id]).await;
    let body = app
        .get(&path, None)
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert!(starts(&body, "startLocal").is_empty(), "{body}");
    let demo = app.get(&format!("{path}&sessionType=demo"), None).await;
    demo.expect_problem(StatusCode::CONFLICT, "DEMO_NOT_OFFERED")
        .await;
}

#[tokio::test]
async fn a_slot_early_in_the_mentors_day_can_fall_on_the_previous_utc_day() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let zone = chrono_tz::Pacific::Auckland;
    let (mentor_id, token) = mentor_in(
        &app,
        &admin,
        "auckland@example.com",
        "Pacific/Auckland",
        json!({"dayOfWeek": 1, "start": "07:00", "end": "08:00"}),
    )
    .await;
    app.put(
        "/api/mentors/me/demo",
        &json!({"enabled": true}),
        Some(&token),
    )
    .await;
    let monday = next(zone, 1);

    let body = app
        .get(
            &format!("/api/mentors/{mentor_id}/availability?date={monday}&sessionType=demo"),
            None,
        )
        .await
        .expect_status(StatusCode::OK)
        .await;

    assert_eq!(body["durationMinutes"], 40);
    let utc_starts = starts(&body, "startUtc");
    assert_eq!(utc_starts.len(), 2, "07:00 and 07:15 local: {body}");
    let sunday = monday - Duration::days(1);
    assert!(
        utc_starts
            .iter()
            .all(|s| s.starts_with(&sunday.to_string())),
        "Monday morning in Auckland is Sunday in UTC: {utc_starts:?}"
    );
}

#[tokio::test]
async fn a_dst_observing_zone_uses_its_offset_on_that_date() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let zone = chrono_tz::America::New_York;
    let (mentor_id, _) = mentor_in(
        &app,
        &admin,
        "newyork@example.com",
        "America/New_York",
        json!({"dayOfWeek": 3, "start": "09:00", "end": "10:00"}),
    )
    .await;
    let wednesday = next(zone, 3);
    let expected_start = zone
        .from_local_datetime(&wednesday.and_hms_opt(9, 0, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc);

    let body = app
        .get(
            &format!("/api/mentors/{mentor_id}/availability?date={wednesday}"),
            None,
        )
        .await
        .expect_status(StatusCode::OK)
        .await;

    assert_eq!(
        starts(&body, "startUtc")[0],
        expected_start.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    );
    let offset_hours =
        (expected_start.naive_utc() - wednesday.and_hms_opt(9, 0, 0).unwrap()).num_hours();
    assert!(
        offset_hours == 4 || offset_hours == 5,
        "EDT or EST, got {offset_hours}"
    );
}

#[tokio::test]
async fn days_outside_the_booking_window_and_bad_dates_get_nothing_or_a_problem() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app.visible_mentor("window@example.com", &admin).await;
    let far = (Utc::now() + Duration::days(90)).date_naive();
    let past = (Utc::now() - Duration::days(3)).date_naive();

    for date in [far, past] {
        let body = app
            .get(
                &format!("/api/mentors/{mentor_id}/availability?date={date}"),
                None,
            )
            .await
            .expect_status(StatusCode::OK)
            .await;
        assert!(
            body["starts"].as_array().unwrap().is_empty(),
            "{date}: {body}"
        );
    }
    for bad in [
        "date=tomorrow",
        "date=2026-02-30",
        "",
        "date=2027-01-05&sessionType=marathon",
    ] {
        let response = app
            .get(
                &format!("/api/mentors/{mentor_id}/availability?{bad}"),
                None,
            )
            .await;
        response
            .expect_problem(StatusCode::BAD_REQUEST, "INVALID_QUERY")
            .await;
    }
}

#[tokio::test]
async fn cached_availability_changes_at_once_when_a_booking_takes_or_frees_a_start() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app.open_mentor("cached-avail@example.com", &admin).await;
    let (_, student) = app.student("cached-student@example.com").await;
    let when = at(3, 10, 0);
    let path = format!(
        "/api/mentors/{mentor_id}/availability?date={}",
        when.date_naive()
    );
    let has_start = |body: &serde_json::Value| {
        body["starts"].as_array().unwrap().iter().any(|start| {
            start["startUtc"] == when.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
    };
    assert!(has_start(
        &app.get(&path, None)
            .await
            .expect_status(StatusCode::OK)
            .await
    ));

    let booking = json!({"mentorId": mentor_id, "subject": "Physics", "sessionType": "regular",
                         "scheduledAt": when.to_rfc3339(), "idempotencyKey": "cached-1"});
    let created = app
        .post("/api/bookings", &booking, Some(&student))
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    assert!(
        !has_start(
            &app.get(&path, None)
                .await
                .expect_status(StatusCode::OK)
                .await
        ),
        "the hold takes it at once"
    );

    let booking_id = created["bookingId"].as_str().unwrap();
    app.post(
        &format!("/api/bookings/{booking_id}/cancel"),
        &json!({"reason": "changed plans"}),
        Some(&student),
    )
    .await
    .expect_status(StatusCode::OK)
    .await;
    assert!(
        has_start(
            &app.get(&path, None)
                .await
                .expect_status(StatusCode::OK)
                .await
        ),
        "free again at once"
    );
}

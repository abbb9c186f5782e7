//! Mentor self-service under /api/mentors/me: profile, subjects, slots, UPI, demo, discount.

use chrono::{Datelike, Duration, TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn a_mentor_edits_the_profile_and_bad_time_zones_are_refused() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.signed_in_mentor("prof@example.com", &admin).await;
    let profile = json!({
        "firstName": "Priya", "lastName": "Rao", "country": "India", "title": "Physics olympiad coach",
        "description": "Ten years of teaching.", "timeZone": "Europe/Berlin",
        "qualifications": [{"qualification": "PhD", "specialization": "Optics", "score": "A"}],
        "specialties": [{"subject": "Physics", "experience": 10}]
    });

    let updated = app
        .put("/api/mentors/me/profile", &profile, Some(&token))
        .await
        .expect_status(StatusCode::OK)
        .await;

    assert_eq!(updated["title"], "Physics olympiad coach");
    assert_eq!(updated["timeZone"], "Europe/Berlin");
    assert_eq!(updated["rating"], "0.00");
    assert_no_secrets(&updated);
    let fetched = app
        .get("/api/mentors/me/profile", Some(&token))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(fetched, updated);

    let mut bad = profile.clone();
    bad["timeZone"] = json!("Mars/Olympus");
    let refused = app.put("/api/mentors/me/profile", &bad, Some(&token)).await;
    refused
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED")
        .await;
    let unchanged = app
        .get("/api/mentors/me/profile", Some(&token))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(unchanged["timeZone"], "Europe/Berlin");
}

#[tokio::test]
async fn subjects_are_unique_per_mentor_and_fees_are_exact_positive_decimals() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.signed_in_mentor("subj@example.com", &admin).await;
    let (_, other, _) = app.signed_in_mentor("other-subj@example.com", &admin).await;

    let created = app
        .post(
            "/api/mentors/me/subjects",
            &json!({"subject": "Rust", "experienceYears": 3}),
            Some(&token),
        )
        .await;
    let subject = created.expect_status(StatusCode::CREATED).await;
    assert_eq!(subject["classFee"], "500.00", "the default fee");
    let subject_id = subject["subjectId"].as_str().unwrap().to_owned();

    let duplicate = app
        .post(
            "/api/mentors/me/subjects",
            &json!({"subject": " rust ", "experienceYears": 1}),
            Some(&token),
        )
        .await;
    duplicate
        .expect_problem(StatusCode::CONFLICT, "SUBJECT_EXISTS")
        .await;
    for fee in [
        json!("0"),
        json!("-5.00"),
        json!("10.005"),
        json!("2000000"),
    ] {
        let response = app
            .post(
                "/api/mentors/me/subjects",
                &json!({"subject": "Go", "experienceYears": 1, "classFee": fee}),
                Some(&token),
            )
            .await;
        response
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED")
            .await;
    }
    let updated = app
        .put(
            &format!("/api/mentors/me/subjects/{subject_id}"),
            &json!({"subject": "Rust", "experienceYears": 4, "classFee": "750.50"}),
            Some(&token),
        )
        .await;
    assert_eq!(
        updated.expect_status(StatusCode::OK).await["classFee"],
        "750.50"
    );

    let foreign = app
        .put(
            &format!("/api/mentors/me/subjects/{subject_id}"),
            &json!({"subject": "Hacked", "experienceYears": 1}),
            Some(&other),
        )
        .await;
    foreign
        .expect_problem(StatusCode::NOT_FOUND, "SUBJECT_NOT_FOUND")
        .await;
    app.delete(
        &format!("/api/mentors/me/subjects/{subject_id}"),
        Some(&other),
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "SUBJECT_NOT_FOUND")
    .await;

    let listed = app
        .get("/api/mentors/me/subjects", Some(&token))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(
        app.delete(
            &format!("/api/mentors/me/subjects/{subject_id}"),
            Some(&token)
        )
        .await
        .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.count("teacher_subjects").await, 0);
}

#[tokio::test]
async fn slots_must_be_ordered_well_formed_and_never_overlap() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.signed_in_mentor("slots@example.com", &admin).await;
    let slot =
        |day: i32, start: &str, end: &str| json!({"dayOfWeek": day, "start": start, "end": end});

    app.post(
        "/api/mentors/me/slots",
        &slot(1, "09:00", "12:00"),
        Some(&token),
    )
    .await
    .expect_status(StatusCode::CREATED)
    .await;
    // Touching is fine; overlapping is not; the same hours on another day are fine.
    app.post(
        "/api/mentors/me/slots",
        &slot(1, "12:00", "13:00"),
        Some(&token),
    )
    .await
    .expect_status(StatusCode::CREATED)
    .await;
    app.post(
        "/api/mentors/me/slots",
        &slot(2, "10:00", "24:00"),
        Some(&token),
    )
    .await
    .expect_status(StatusCode::CREATED)
    .await;
    let overlap = app
        .post(
            "/api/mentors/me/slots",
            &slot(1, "11:30", "14:00"),
            Some(&token),
        )
        .await;
    overlap
        .expect_problem(StatusCode::CONFLICT, "SLOT_OVERLAP")
        .await;
    app.post(
        "/api/mentors/me/slots",
        &slot(4, "09:00", "09:40"),
        Some(&token),
    )
    .await
    .expect_status(StatusCode::CREATED)
    .await;
    for (day, start, end) in [
        (1, "14:00", "13:00"),
        (1, "14:00", "14:00"),
        (0, "09:00", "10:00"),
        (8, "09:00", "10:00"),
        (3, "9:00", "10:00"),
        (3, "09:00", "25:00"),
        (3, "24:00", "24:00"),
        // Shorter than the shortest class (40 minutes): nothing could ever be booked in it.
        (3, "09:00", "09:01"),
        (3, "23:59", "24:00"),
        (3, "09:00", "09:39"),
    ] {
        let response = app
            .post(
                "/api/mentors/me/slots",
                &slot(day, start, end),
                Some(&token),
            )
            .await;
        response
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED")
            .await;
    }

    let listed = app
        .get("/api/mentors/me/slots", Some(&token))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let summary: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {}-{}",
                s["dayOfWeek"],
                s["start"].as_str().unwrap(),
                s["end"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            "1 09:00-12:00",
            "1 12:00-13:00",
            "2 10:00-24:00",
            "4 09:00-09:40"
        ]
    );
}

#[tokio::test]
async fn a_slot_with_an_upcoming_booking_cannot_be_deleted_blocked_or_moved_away() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, token, _) = app.signed_in_mentor("busy-slot@example.com", &admin).await;
    let (student_id, _) = app.student("booker@example.com").await;
    // Next week's Wednesday 10:00 in the mentor's zone (Asia/Kolkata by default).
    let zone = chrono_tz::Asia::Kolkata;
    let today = Utc::now().with_timezone(&zone).date_naive();
    let days_ahead = (10 - i64::from(today.weekday().number_from_monday())) % 7 + 7;
    let day = today + Duration::days(days_ahead);
    let starts_at = zone
        .from_local_datetime(&day.and_hms_opt(10, 0, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let created = app
        .post(
            "/api/mentors/me/slots",
            &json!({"dayOfWeek": 3, "start": "09:00", "end": "12:00"}),
            Some(&token),
        )
        .await;
    let slot_id = created.expect_status(StatusCode::CREATED).await["slotId"]
        .as_str()
        .unwrap()
        .to_owned();
    app.insert_booking(mentor_id, student_id, starts_at, "confirmed")
        .await;
    let path = format!("/api/mentors/me/slots/{slot_id}");

    app.delete(&path, Some(&token))
        .await
        .expect_problem(StatusCode::CONFLICT, "SLOT_IN_USE")
        .await;
    for (start, end, blocked) in [
        ("11:00", "12:00", false),
        ("09:00", "12:00", true),
        ("09:00", "10:30", false),
    ] {
        let change = json!({"dayOfWeek": 3, "start": start, "end": end, "isBlocked": blocked});
        app.put(&path, &change, Some(&token))
            .await
            .expect_problem(StatusCode::CONFLICT, "SLOT_IN_USE")
            .await;
    }
    let widened = json!({"dayOfWeek": 3, "start": "08:00", "end": "13:00"});
    app.put(&path, &widened, Some(&token))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let slot_row: (i32, i32, bool) =
        sqlx::query_as("SELECT start_minute, end_minute, is_blocked FROM time_slots")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(slot_row, (480, 780, false));
}

#[tokio::test]
async fn upi_demo_and_discount_are_validated_and_completion_reports_what_is_missing() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.signed_in_mentor("complete@example.com", &admin).await;
    let completion = app
        .get("/api/mentors/me/profile-completion", Some(&token))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(
        completion,
        json!({"hasSubjects": false, "hasTimeSlots": false, "hasUpiId": false, "mediaApproved": false, "isComplete": false})
    );

    app.put(
        "/api/mentors/me/upi",
        &json!({"upiId": "not a upi"}),
        Some(&token),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED")
    .await;
    app.put(
        "/api/mentors/me/package-discount",
        &json!({"percent": 51}),
        Some(&token),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED")
    .await;
    let demo = app
        .put(
            "/api/mentors/me/demo",
            &json!({"enabled": true}),
            Some(&token),
        )
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(demo["demoEnabled"], true);
    let discount = app
        .put(
            "/api/mentors/me/package-discount",
            &json!({"percent": 10}),
            Some(&token),
        )
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(discount["packageDiscountPercent"], 10);
    app.post(
        "/api/mentors/me/subjects",
        &json!({"subject": "Chess", "experienceYears": 2}),
        Some(&token),
    )
    .await;
    app.post(
        "/api/mentors/me/slots",
        &json!({"dayOfWeek": 6, "start": "10:00", "end": "11:00"}),
        Some(&token),
    )
    .await;
    app.put(
        "/api/mentors/me/upi",
        &json!({"upiId": "chess.coach@okhdfc"}),
        Some(&token),
    )
    .await;

    let completion = app
        .get("/api/mentors/me/profile-completion", Some(&token))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(
        completion,
        json!({"hasSubjects": true, "hasTimeSlots": true, "hasUpiId": true, "mediaApproved": false, "isComplete": true})
    );
}

#[tokio::test]
async fn every_mentor_route_answers_by_role() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, student) = app.student("matrix-student@example.com").await;
    let (mentor_id, mentor) = app
        .visible_mentor("matrix-mentor@example.com", &admin)
        .await;
    let (_, other_mentor, _) = app
        .signed_in_mentor("matrix-other@example.com", &admin)
        .await;
    let subjects = app
        .get("/api/mentors/me/subjects", Some(&mentor))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let subject_id = subjects[0]["subjectId"].as_str().unwrap().to_owned();
    let slots = app
        .get("/api/mentors/me/slots", Some(&mentor))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let slot_id = slots[0]["slotId"].as_str().unwrap().to_owned();
    let tomorrow = (Utc::now() + Duration::days(2)).date_naive();
    let subject_body = json!({"subject": "Physics", "experienceYears": 5, "classFee": "650.00"});
    let slot_body = json!({"dayOfWeek": 1, "start": "09:00", "end": "16:00"});

    // (method, path, body, status for the owner, status for another mentor)
    let own: Vec<(Method, String, Value, StatusCode, StatusCode)> = vec![
        (
            Method::GET,
            "/api/mentors/me/profile".into(),
            Value::Null,
            StatusCode::OK,
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/api/mentors/me/profile-completion".into(),
            Value::Null,
            StatusCode::OK,
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/api/mentors/me/subjects".into(),
            Value::Null,
            StatusCode::OK,
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/api/mentors/me/slots".into(),
            Value::Null,
            StatusCode::OK,
            StatusCode::OK,
        ),
        (
            Method::PUT,
            "/api/mentors/me/demo".into(),
            json!({"enabled": false}),
            StatusCode::OK,
            StatusCode::OK,
        ),
        (
            Method::PUT,
            "/api/mentors/me/package-discount".into(),
            json!({"percent": 5}),
            StatusCode::OK,
            StatusCode::OK,
        ),
        (
            Method::PUT,
            "/api/mentors/me/upi".into(),
            json!({"upiId": "owner@okaxis"}),
            StatusCode::OK,
            StatusCode::OK,
        ),
        (
            Method::PUT,
            format!("/api/mentors/me/subjects/{subject_id}"),
            subject_body,
            StatusCode::OK,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::PUT,
            format!("/api/mentors/me/slots/{slot_id}"),
            slot_body,
            StatusCode::OK,
            StatusCode::NOT_FOUND,
        ),
    ];
    for (method, path, body, owner_status, other_status) in own {
        for (who, token, expected) in [
            ("anonymous", None, StatusCode::UNAUTHORIZED),
            ("student", Some(student.as_str()), StatusCode::FORBIDDEN),
            ("admin", Some(admin.as_str()), StatusCode::FORBIDDEN),
            ("other mentor", Some(other_mentor.as_str()), other_status),
            ("mentor", Some(mentor.as_str()), owner_status),
        ] {
            let response = app.send(method.clone(), &path, &body, token).await;
            assert_eq!(response.status(), expected, "{method} {path} as {who}");
        }
    }
    let public = [
        "/api/mentors".to_owned(),
        format!("/api/mentors/{mentor_id}"),
        format!("/api/mentors/{mentor_id}/reviews"),
        format!("/api/mentors/{mentor_id}/availability?date={tomorrow}"),
    ];
    for path in public {
        for token in [
            None,
            Some(student.as_str()),
            Some(mentor.as_str()),
            Some(admin.as_str()),
        ] {
            assert_eq!(
                app.get(&path, token).await.status(),
                StatusCode::OK,
                "GET {path}"
            );
        }
    }
    let unknown = Uuid::new_v4();
    app.get(&format!("/api/mentors/{unknown}"), None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "MENTOR_NOT_FOUND")
        .await;
}

#[tokio::test]
async fn bad_input_on_every_mentor_write_route_is_a_4xx_and_writes_nothing() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.signed_in_mentor("bad@example.com", &admin).await;
    let subject_id = Uuid::new_v4();
    let routes = [
        (Method::PUT, "/api/mentors/me/profile".to_owned()),
        (Method::PUT, "/api/mentors/me/upi".into()),
        (Method::PUT, "/api/mentors/me/demo".into()),
        (Method::PUT, "/api/mentors/me/package-discount".into()),
        (Method::POST, "/api/mentors/me/subjects".into()),
        (
            Method::PUT,
            format!("/api/mentors/me/subjects/{subject_id}"),
        ),
        (Method::POST, "/api/mentors/me/slots".into()),
        (Method::PUT, format!("/api/mentors/me/slots/{subject_id}")),
    ];
    let bodies = [
        r#"{"#,
        r#"[]"#,
        r#"{"enabled": "yes", "percent": "ten", "dayOfWeek": "monday"}"#,
        r#"{"experienceYears": 1e99}"#,
    ];
    let before: (String,) = sqlx::query_as("SELECT row_to_json(p)::text FROM mentor_profiles p")
        .fetch_one(&app.db)
        .await
        .unwrap();
    for (method, path) in routes {
        for body in bodies {
            let response = app
                .client
                .request(method.clone(), app.url(&path))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(
                response.status().is_client_error(),
                "{method} {path} with {body}: {}",
                response.status()
            );
        }
    }
    let after: (String,) = sqlx::query_as("SELECT row_to_json(p)::text FROM mentor_profiles p")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(before, after);
    assert_eq!(
        app.count("teacher_subjects").await + app.count("time_slots").await,
        0
    );
}

//! Races between requests (on one or two instances) can never double-book.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn two_hundred_students_racing_for_one_slot_make_exactly_one_booking() {
    let app = spawn_app().await;
    let second_instance = app.second_instance().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app.open_mentor("popular@example.com", &admin).await;
    let students = app.students_direct(200).await;
    let when = at(7, 15, 0).to_rfc3339();

    let requests = students.iter().enumerate().map(|(n, (_, token))| {
        let instance = if n % 2 == 0 { &app } else { &second_instance };
        let body = json!({"mentorId": mentor_id, "subject": "Physics", "sessionType": "regular",
                          "scheduledAt": when, "idempotencyKey": Uuid::new_v4().to_string()});
        async move { instance.post("/api/bookings", &body, Some(token)).await }
    });
    let responses = join_all(requests).await;

    let created = created_or_slot_taken(responses).await;
    assert_eq!(created, 1);
    assert_eq!(app.count("bookings").await, 1);
}

#[tokio::test]
async fn one_student_racing_for_two_mentors_at_once_gets_one_class() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (first_mentor, _) = app.open_mentor("m1@example.com", &admin).await;
    let (second_mentor, _) = app.open_mentor("m2@example.com", &admin).await;
    let (_, student) = app.student("greedy@example.com").await;
    let when = at(8, 11, 0).to_rfc3339();

    let requests = (0..100).map(|n| {
        let mentor = if n % 2 == 0 {
            first_mentor
        } else {
            second_mentor
        };
        let body = json!({"mentorId": mentor, "subject": "Physics", "sessionType": "regular",
                          "scheduledAt": when, "idempotencyKey": Uuid::new_v4().to_string()});
        let token = student.clone();
        let app = &app;
        async move { app.post("/api/bookings", &body, Some(&token)).await }
    });
    let responses = join_all(requests).await;

    let mut created = 0;
    for response in responses {
        if response.status() == StatusCode::CREATED {
            created += 1;
        } else {
            let status = response.status();
            let body = response.expect_status(status).await;
            assert!(
                matches!(
                    body["code"].as_str(),
                    Some("STUDENT_CONFLICT" | "SLOT_TAKEN")
                ),
                "{body}"
            );
            assert_eq!(status, StatusCode::CONFLICT);
        }
    }
    assert_eq!(created, 1);
}

#[tokio::test]
async fn crowds_racing_for_many_slots_at_once_each_get_an_answer_and_one_booking_per_slot() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let mut mentors = Vec::new();
    for n in 0..4 {
        mentors.push(
            app.open_mentor(&format!("busy{n}@example.com"), &admin)
                .await
                .0,
        );
    }
    let starts = [at(7, 7, 0), at(7, 8, 0), at(7, 9, 0)];
    let slots: Vec<_> = mentors
        .iter()
        .flat_map(|mentor| {
            starts
                .iter()
                .map(move |start| (*mentor, start.to_rfc3339()))
        })
        .collect();
    let students = app.students_direct(8 * slots.len()).await;

    let requests = students.iter().enumerate().map(|(n, (_, token))| {
        let (mentor, when) = &slots[n % slots.len()];
        let body = json!({"mentorId": mentor, "subject": "Physics", "sessionType": "regular",
                          "scheduledAt": when, "idempotencyKey": Uuid::new_v4().to_string()});
        let app = &app;
        async move { app.post("/api/bookings", &body, Some(token)).await }
    });
    let responses = join_all(requests).await;

    let created = created_or_slot_taken(responses).await;
    assert_eq!(created, slots.len());
    assert_eq!(app.count("bookings").await, slots.len() as i64);
}

/// How many answers were 201; every other answer must be 409 SLOT_TAKEN.
async fn created_or_slot_taken(responses: Vec<reqwest::Response>) -> usize {
    let mut created = 0;
    for response in responses {
        match response.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {
                response
                    .expect_problem(StatusCode::CONFLICT, "SLOT_TAKEN")
                    .await;
            }
            other => panic!("unexpected {other}: {}", response.text().await.unwrap()),
        }
    }
    created
}

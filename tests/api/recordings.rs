//! Class recordings against Azurite: parts sent straight to storage as blocks of the recording's
//! blob, by the class's mentor only, within the class's window, under the size limit; the
//! `recordings` timer committing them in part order exactly once (also under overlapping runs),
//! retrying a failed commit, refusing a recording that is not WebM, and deleting recordings 6
//! months after the class; read URLs for participants and admins, demo recordings locked.

use chrono::{Duration, Utc};
use futures::future::join_all;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

/// `len` bytes of part `n`: part 1 opens with the WebM (EBML) header, later parts continue it.
fn part(n: u8, len: usize) -> Vec<u8> {
    let mut bytes = if n == 1 {
        vec![0x1A, 0x45, 0xDF, 0xA3]
    } else {
        Vec::new()
    };
    bytes.extend((0..len - bytes.len()).map(|i| (i as u8) ^ n.wrapping_mul(37)));
    bytes
}

/// Sends part `n` as the mentor's client does: ask for its URL, PUT the block to storage,
/// complete the part. Answers with the first refusal, else the completion.
async fn upload(app: &TestApp, booking_id: Uuid, n: i32, body: Vec<u8>, token: &str) -> Response {
    let path = format!("/api/bookings/{booking_id}/recording/parts/{n}");
    let begun = app
        .post(&format!("{path}/upload"), &json!({}), Some(token))
        .await;
    if begun.status() != StatusCode::OK {
        return begun;
    }
    let target: Value = begun.json().await.unwrap();
    assert_eq!(put_block(&target, body).await, StatusCode::CREATED);
    app.post(&format!("{path}/complete"), &json!({}), Some(token))
        .await
}

/// A Put Block to a part's upload target, as a browser sends it.
async fn put_block(target: &Value, body: Vec<u8>) -> StatusCode {
    let url = target["url"].as_str().expect("an upload URL");
    assert!(url.contains("comp=block&blockid="), "{url}");
    put_to_storage(target, body).await
}

/// Moves the class into the past: ended `minutes_ago`, completed.
async fn end_class(app: &TestApp, booking_id: Uuid, minutes_ago: i64) {
    sqlx::query(
        r#"UPDATE bookings SET status = 'completed',
               scheduled_at = now() - make_interval(mins => $2 + 55),
               ends_at = now() - make_interval(mins => $2),
               blocked_until = now() - make_interval(mins => $2 - 5)
           WHERE booking_id = $1"#,
    )
    .bind(booking_id)
    .bind(minutes_ago as i32)
    .execute(&app.db)
    .await
    .unwrap();
}

async fn fetch(url: &str) -> (StatusCode, Vec<u8>) {
    let response = reqwest::get(url).await.expect("fetch");
    let status = response.status();
    (status, response.bytes().await.unwrap().to_vec())
}

async fn recording_url(app: &TestApp, recording_id: &str, token: &str) -> Response {
    app.get(&format!("/api/recordings/{recording_id}/url"), Some(token))
        .await
}

#[tokio::test]
async fn parts_uploaded_out_of_order_merge_into_their_concatenation() {
    let app = spawn_app().await;
    let class = app.class_in_progress().await;
    let parts = [
        part(1, 300_000),
        part(2, 5 * 1024 * 1024 + 17),
        part(3, 1234),
    ];
    for n in [3, 1, 2] {
        let view = (upload(
            &app,
            class.booking_id,
            n,
            parts[n as usize - 1].clone(),
            &class.mentor,
        )
        .await)
            .expect_status(StatusCode::OK)
            .await;
        assert_eq!(view["partNumber"], n);
        assert_eq!(view["sizeBytes"], parts[n as usize - 1].len());
    }
    // A retry of part 2 replaces it: the merge has one part 2, the latest.
    let retried = part(2, 4000);
    upload(&app, class.booking_id, 2, retried.clone(), &class.mentor)
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(app.count("recording_parts").await, 3);

    // Not merged while the class is recent.
    end_class(&app, class.booking_id, 19).await;
    app.invoke_timer("recordings", false).await;
    assert_eq!(app.count("recordings").await, 0);

    end_class(&app, class.booking_id, 21).await;
    let answer = app.invoke_timer("recordings", false).await;
    assert_eq!(
        answer["Logs"][0], "merged 1 recordings, deleted 0 expired",
        "{answer}"
    );
    assert_eq!(
        app.count("recording_parts").await,
        0,
        "parts deleted after the merge"
    );

    let expected: Vec<u8> = [parts[0].clone(), retried, parts[2].clone()].concat();
    for token in [&class.student, &class.mentor, &class.admin] {
        let list = app
            .get("/api/recordings", Some(token))
            .await
            .expect_status(StatusCode::OK)
            .await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        let recording = &list["items"][0];
        assert_eq!(recording["bookingId"], class.booking_id.to_string());
        assert_eq!(recording["sizeBytes"], expected.len());
        assert_eq!(recording["partCount"], 3);
        assert_eq!(recording["locked"], false);
        let url = recording_url(&app, recording["recordingId"].as_str().unwrap(), token)
            .await
            .expect_status(StatusCode::OK)
            .await;
        let (status, bytes) = fetch(url["url"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            bytes == expected,
            "the merged blob is the parts in part order"
        );
    }
    // Uploads end with the merge.
    upload(&app, class.booking_id, 4, part(4, 100), &class.mentor)
        .await
        .expect_problem(StatusCode::CONFLICT, "RECORDING_ALREADY_MERGED")
        .await;
}

#[tokio::test]
async fn only_the_classes_mentor_uploads_within_the_limit_and_the_window() {
    let app = spawn_app().await;
    let class = app.class_in_progress().await;
    let (_, other_mentor) = app.open_mentor("rec-other@example.com", &class.admin).await;
    let (_, stranger) = app.student("rec-stranger@example.com").await;
    for (token, code) in [
        (&class.student, "NOT_THE_MENTOR"),
        (&other_mentor, "NOT_THE_MENTOR"),
        (&stranger, "NOT_THE_MENTOR"),
        (&class.admin, "NOT_THE_MENTOR"),
    ] {
        upload(&app, class.booking_id, 1, part(1, 1000), token)
            .await
            .expect_problem(StatusCode::FORBIDDEN, code)
            .await;
    }
    let path = format!("/api/bookings/{}/recording/parts/1", class.booking_id);
    for step in ["upload", "complete"] {
        let anonymous = app.post(&format!("{path}/{step}"), &json!({}), None).await;
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    }
    // Completing a part that never arrived, then one over 100 MiB: nothing is recorded.
    app.post(&format!("{path}/complete"), &json!({}), Some(&class.mentor))
        .await
        .expect_problem(StatusCode::CONFLICT, "UPLOAD_INCOMPLETE")
        .await;
    let too_big = (upload(
        &app,
        class.booking_id,
        1,
        part(1, 100 * 1024 * 1024 + 1),
        &class.mentor,
    )
    .await)
        .expect_problem(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE")
        .await;
    assert_eq!(too_big["maxBytes"], 100 * 1024 * 1024);
    // A part URL is for its own block of its own class's blob.
    let target = app
        .post(&format!("{path}/upload"), &json!({}), Some(&class.mentor))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let url = target["url"].as_str().unwrap();
    let mut elsewhere = target.clone();
    elsewhere["url"] = json!(url.replacen(
        &class.booking_id.to_string(),
        &Uuid::new_v4().to_string(),
        1
    ));
    assert_eq!(
        put_block(&elsewhere, part(1, 100)).await,
        StatusCode::FORBIDDEN
    );
    let mut tampered = target.clone();
    tampered["url"] = json!(url.replacen("sig=", "sig=A", 1));
    assert_eq!(
        put_block(&tampered, part(1, 100)).await,
        StatusCode::FORBIDDEN
    );
    for n in [0, 1000] {
        upload(&app, class.booking_id, n, part(2, 100), &class.mentor)
            .await
            .expect_problem(StatusCode::BAD_REQUEST, "INVALID_PART_NUMBER")
            .await;
    }
    upload(&app, Uuid::new_v4(), 1, part(1, 100), &class.mentor)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "BOOKING_NOT_FOUND")
        .await;
    assert_eq!(
        app.count("recording_parts").await,
        0,
        "nothing refused was recorded"
    );

    // Window: 15 minutes after the end is still fine, later is not; nor is a class tomorrow.
    end_class(&app, class.booking_id, 14).await;
    upload(&app, class.booking_id, 1, part(1, 100), &class.mentor)
        .await
        .expect_status(StatusCode::OK)
        .await;
    end_class(&app, class.booking_id, 16).await;
    upload(&app, class.booking_id, 2, part(2, 100), &class.mentor)
        .await
        .expect_problem(StatusCode::CONFLICT, "RECORDING_WINDOW_CLOSED")
        .await;
    let tomorrow = app
        .insert_booking(
            class.mentor_id,
            class.student_id,
            Utc::now() + Duration::days(1),
            "confirmed",
        )
        .await;
    upload(&app, tomorrow, 1, part(1, 100), &class.mentor)
        .await
        .expect_problem(StatusCode::CONFLICT, "RECORDING_WINDOW_CLOSED")
        .await;
}

#[tokio::test]
async fn overlapping_runs_merge_once_and_a_failed_merge_is_retried() {
    let app = spawn_app().await;
    let class = app.class_in_progress().await;
    let parts = [part(1, 2000), part(2, 3000)];
    for (n, body) in parts.iter().enumerate() {
        (upload(
            &app,
            class.booking_id,
            n as i32 + 1,
            body.clone(),
            &class.mentor,
        )
        .await)
            .expect_status(StatusCode::OK)
            .await;
    }
    // Part 3 is recorded but its block never arrived (lost): the commit fails, keeps the parts
    // and records why.
    app.execute(
        "INSERT INTO recording_parts (booking_id, part_number, size_bytes) VALUES ($1, 3, 1000)",
        class.booking_id,
    )
    .await;
    end_class(&app, class.booking_id, 30).await;
    let answer = app.invoke_timer("recordings", true).await;
    let logs = answer["Logs"].to_string();
    assert!(logs.contains("merged 0 recordings"), "{logs}");
    assert!(logs.contains("failed; will retry"), "{logs}");
    assert!(logs.contains("past due"), "{logs}");
    let (status, error): (String, Option<String>) =
        sqlx::query_as("SELECT status, last_error FROM recordings WHERE booking_id = $1")
            .bind(class.booking_id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(status, "merging");
    assert!(error.is_some());
    assert_eq!(app.count("recording_parts").await, 3);

    // Part 3 arrives (sent here with the store's own write URL, the window being closed); once
    // the backoff has passed, two overlapping runs commit it exactly once.
    let part_3 = domain::uploads::UploadTarget::put_block(
        app.state.blobs.as_ref(),
        &app.state.config.blob.recordings_container,
        &format!("bookings/{}/recording.webm", class.booking_id),
        b"part-003",
        std::time::Duration::from_secs(60),
        1000,
    )
    .await
    .unwrap();
    let part_3 = serde_json::to_value(part_3).unwrap();
    assert_eq!(put_block(&part_3, part(3, 1000)).await, StatusCode::CREATED);
    app.execute(
        "UPDATE recordings SET lease_until = now() - interval '1 second' WHERE booking_id = $1",
        class.booking_id,
    )
    .await;
    let answers = join_all((0..2).map(|_| app.invoke_timer("recordings", false))).await;
    let merged: Vec<String> = answers.iter().map(|a| a["Logs"][0].to_string()).collect();
    assert!(
        merged.contains(&"\"merged 1 recordings, deleted 0 expired\"".to_owned())
            && merged.contains(&"\"merged 0 recordings, deleted 0 expired\"".to_owned()),
        "exactly one run merged: {merged:?}"
    );
    let (status, attempts): (String, i32) =
        sqlx::query_as("SELECT status, attempts FROM recordings WHERE booking_id = $1")
            .bind(class.booking_id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts), ("ready", 2));
    let list = app
        .get("/api/recordings", Some(&class.student))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let url = recording_url(
        &app,
        list["items"][0]["recordingId"].as_str().unwrap(),
        &class.student,
    )
    .await
    .expect_status(StatusCode::OK)
    .await;
    assert!(
        fetch(url["url"].as_str().unwrap()).await.1 == [parts.concat(), part(3, 1000)].concat()
    );
}

#[tokio::test]
async fn a_recording_that_is_not_webm_is_deleted_and_marked_failed() {
    let app = spawn_app().await;
    let class = app.class_in_progress().await;
    upload(
        &app,
        class.booking_id,
        1,
        b"not a webm stream".to_vec(),
        &class.mentor,
    )
    .await
    .expect_status(StatusCode::OK)
    .await;
    end_class(&app, class.booking_id, 30).await;
    app.invoke_timer("recordings", false).await;
    let (status, blob): (String, Option<String>) =
        sqlx::query_as("SELECT status, blob_name FROM recordings WHERE booking_id = $1")
            .bind(class.booking_id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((status.as_str(), blob), ("failed", None));
    let stored = app
        .state
        .blobs
        .properties(
            &app.state.config.blob.recordings_container,
            &format!("bookings/{}/recording.webm", class.booking_id),
        )
        .await
        .unwrap();
    assert_eq!(stored, None, "the refused recording is deleted");
    let list = app
        .get("/api/recordings", Some(&class.mentor))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(list["items"], json!([]));
    // Not retried.
    app.invoke_timer("recordings", false).await;
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM recordings WHERE booking_id = $1")
        .bind(class.booking_id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(attempts, 1);
}

#[tokio::test]
async fn demo_recordings_stay_locked_for_the_student_until_a_completed_regular_class() {
    let app = spawn_app().await;
    let class = app.class_in_progress().await;
    app.execute(
        "UPDATE bookings SET session_type = 'demo' WHERE booking_id = $1",
        class.booking_id,
    )
    .await;
    upload(&app, class.booking_id, 1, part(1, 500), &class.mentor)
        .await
        .expect_status(StatusCode::OK)
        .await;
    end_class(&app, class.booking_id, 25).await;
    app.invoke_timer("recordings", false).await;

    let list = app
        .get("/api/recordings", Some(&class.student))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let recording = &list["items"][0];
    assert_eq!(
        (&recording["sessionType"], &recording["locked"]),
        (&json!("demo"), &json!(true))
    );
    let recording_id = recording["recordingId"].as_str().unwrap().to_owned();
    recording_url(&app, &recording_id, &class.student)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "RECORDING_LOCKED")
        .await;
    // The mentor and admins are never locked out; strangers never learn it exists.
    recording_url(&app, &recording_id, &class.mentor)
        .await
        .expect_status(StatusCode::OK)
        .await;
    recording_url(&app, &recording_id, &class.admin)
        .await
        .expect_status(StatusCode::OK)
        .await;
    let (_, stranger) = app.student("rec-stranger@example.com").await;
    recording_url(&app, &recording_id, &stranger)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "RECORDING_NOT_FOUND")
        .await;
    let theirs = app
        .get("/api/recordings", Some(&stranger))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(theirs["items"], json!([]));
    assert_eq!(
        app.get("/api/recordings", None).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // A confirmed regular class is not enough; a completed one unlocks.
    let regular = app
        .insert_booking(
            class.mentor_id,
            class.student_id,
            Utc::now() - Duration::days(2),
            "confirmed",
        )
        .await;
    recording_url(&app, &recording_id, &class.student)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "RECORDING_LOCKED")
        .await;
    app.execute(
        "UPDATE bookings SET status = 'completed' WHERE booking_id = $1",
        regular,
    )
    .await;
    let url = recording_url(&app, &recording_id, &class.student)
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(fetch(url["url"].as_str().unwrap()).await.1, part(1, 500));
}

#[tokio::test]
async fn recordings_are_deleted_six_months_after_the_class() {
    let app = spawn_app().await;
    let class = app.class_in_progress().await;
    upload(&app, class.booking_id, 1, part(1, 500), &class.mentor)
        .await
        .expect_status(StatusCode::OK)
        .await;
    end_class(&app, class.booking_id, 25).await;
    app.invoke_timer("recordings", false).await;
    let list = app
        .get("/api/recordings", Some(&class.mentor))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let recording_id = list["items"][0]["recordingId"].as_str().unwrap().to_owned();
    let url = recording_url(&app, &recording_id, &class.mentor)
        .await
        .expect_status(StatusCode::OK)
        .await;
    let url = url["url"].as_str().unwrap().to_owned();
    assert_eq!(fetch(&url).await.0, StatusCode::OK);

    // Five months on it stays; past six months it goes, blob and all.
    app.execute(
        "UPDATE bookings SET scheduled_at = now() - interval '5 months' WHERE booking_id = $1",
        class.booking_id,
    )
    .await;
    let answer = app.invoke_timer("recordings", false).await;
    assert_eq!(answer["Logs"][0], "merged 0 recordings, deleted 0 expired");
    app.execute("UPDATE bookings SET scheduled_at = now() - interval '6 months 1 day' WHERE booking_id = $1", class.booking_id)
        .await;
    let answer = app.invoke_timer("recordings", false).await;
    assert_eq!(answer["Logs"][0], "merged 0 recordings, deleted 1 expired");
    assert_eq!(app.count("recordings").await, 0);
    assert_eq!(fetch(&url).await.0, StatusCode::NOT_FOUND);
    let _: Value = recording_url(&app, &recording_id, &class.mentor)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "RECORDING_NOT_FOUND")
        .await;
}

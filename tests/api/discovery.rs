//! Find Mentors: visibility, filters, pagination and the cache's invalidation paths.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

async fn listed_ids(app: &TestApp, query: &str) -> Vec<Uuid> {
    let page = app
        .get(&format!("/api/mentors{query}"), None)
        .await
        .expect_status(StatusCode::OK)
        .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|mentor| mentor["mentorId"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn only_mentors_meeting_every_visibility_condition_are_listed() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (visible, _) = app.visible_mentor("visible@example.com", &admin).await;

    // One mentor per missing condition.
    let (no_subject, token) = app.visible_mentor("no-subject@example.com", &admin).await;
    let subjects = app
        .get("/api/mentors/me/subjects", Some(&token))
        .await
        .expect_status(StatusCode::OK)
        .await;
    app.delete(
        &format!(
            "/api/mentors/me/subjects/{}",
            subjects[0]["subjectId"].as_str().unwrap()
        ),
        Some(&token),
    )
    .await;

    let (all_blocked, token) = app.visible_mentor("blocked@example.com", &admin).await;
    let slots = app
        .get("/api/mentors/me/slots", Some(&token))
        .await
        .expect_status(StatusCode::OK)
        .await;
    for slot in slots.as_array().unwrap() {
        let blocked = json!({"dayOfWeek": slot["dayOfWeek"], "start": slot["start"], "end": slot["end"], "isBlocked": true});
        app.put(
            &format!("/api/mentors/me/slots/{}", slot["slotId"].as_str().unwrap()),
            &blocked,
            Some(&token),
        )
        .await
        .expect_status(StatusCode::OK)
        .await;
    }

    let (no_upi, token, _) = app.signed_in_mentor("no-upi@example.com", &admin).await;
    app.post(
        "/api/mentors/me/subjects",
        &json!({"subject": "Art", "experienceYears": 1}),
        Some(&token),
    )
    .await;
    app.post(
        "/api/mentors/me/slots",
        &json!({"dayOfWeek": 2, "start": "09:00", "end": "10:00"}),
        Some(&token),
    )
    .await;

    let (inactive, _) = app.visible_mentor("inactive@example.com", &admin).await;
    app.post(
        &format!("/api/admin/users/{inactive}/deactivate"),
        &json!({}),
        Some(&admin),
    )
    .await;

    let (rejected, _) = app.visible_mentor("rejected@example.com", &admin).await;
    app.post(
        &format!("/api/admin/mentors/{rejected}/reject"),
        &json!({"reason": "fake"}),
        Some(&admin),
    )
    .await;

    let pending = app.pending_mentor("pending@example.com").await;

    assert_eq!(listed_ids(&app, "").await, vec![visible]);
    for hidden in [no_subject, all_blocked, no_upi, inactive, rejected, pending] {
        app.get(&format!("/api/mentors/{hidden}"), None)
            .await
            .expect_problem(StatusCode::NOT_FOUND, "MENTOR_NOT_FOUND")
            .await;
        let availability = app
            .get(
                &format!("/api/mentors/{hidden}/availability?date=2030-01-01"),
                None,
            )
            .await;
        availability
            .expect_problem(StatusCode::NOT_FOUND, "MENTOR_NOT_FOUND")
            .await;
    }
    let detail = app
        .get(&format!("/api/mentors/{visible}"), None)
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(detail["subjects"][0]["classFee"], "600.00");
    assert_no_secrets(&detail);
}

#[tokio::test]
async fn every_filter_narrows_the_list() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (physics, _) = app.visible_mentor("physics@example.com", &admin).await;
    let (maths, token) = app.visible_mentor("maths@example.com", &admin).await;
    let subjects = app
        .get("/api/mentors/me/subjects", Some(&token))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let subject_id = subjects[0]["subjectId"].as_str().unwrap();
    let changed = json!({"subject": "Mathematics", "experienceYears": 8, "classFee": "1200.00"});
    app.put(
        &format!("/api/mentors/me/subjects/{subject_id}"),
        &changed,
        Some(&token),
    )
    .await;
    let profile = json!({"firstName": "Grace", "lastName": "Hopper", "title": "Compiler whisperer", "timeZone": "Asia/Kolkata"});
    app.put("/api/mentors/me/profile", &profile, Some(&token))
        .await;
    app.execute(
        "UPDATE mentor_profiles SET rating = 4.80 WHERE user_id = $1",
        maths,
    )
    .await;
    app.execute(
        "UPDATE mentor_profiles SET rating = 3.90 WHERE user_id = $1",
        physics,
    )
    .await;

    let cases: Vec<(&str, Vec<Uuid>)> = vec![
        ("", vec![maths, physics]),
        ("?subject=physics", vec![physics]),
        ("?subject=MATHEMATICS", vec![maths]),
        ("?minFee=1000", vec![maths]),
        ("?maxFee=600.00", vec![physics]),
        ("?minFee=500&maxFee=700", vec![physics]),
        ("?subject=physics&minFee=1000", vec![]),
        ("?minRating=4.5", vec![maths]),
        ("?experience=3to5", vec![physics]),
        ("?experience=gt5", vec![maths]),
        ("?experience=le2", vec![]),
        ("?q=whisperer", vec![maths]),
        ("?q=hopper", vec![maths]),
        ("?q=PHYS", vec![physics]),
        ("?q=100%25", vec![]),
    ];
    for (query, expected) in cases {
        assert_eq!(listed_ids(&app, query).await, expected, "query {query}");
    }
    for bad in [
        "?experience=ancient",
        "?minFee=cheap",
        "?minFee=10&maxFee=5",
        "?limit=500",
    ] {
        app.get(&format!("/api/mentors{bad}"), None)
            .await
            .expect_problem(StatusCode::BAD_REQUEST, "INVALID_QUERY")
            .await;
    }
}

#[tokio::test]
async fn pages_are_stable_and_complete_even_with_equal_ratings() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let mut expected = Vec::new();
    for n in 0..5 {
        expected.push(
            app.visible_mentor(&format!("page{n}@example.com"), &admin)
                .await
                .0,
        );
    }

    let mut seen: Vec<Uuid> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let query = match &cursor {
            Some(cursor) => format!("/api/mentors?limit=2&cursor={cursor}"),
            None => "/api/mentors?limit=2".into(),
        };
        let page = app
            .get(&query, None)
            .await
            .expect_status(StatusCode::OK)
            .await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["mentorId"].as_str().unwrap().parse::<Uuid>().unwrap()),
        );
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }

    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    sorted_seen.dedup();
    assert_eq!(sorted_seen.len(), 5, "no duplicates: {seen:?}");
    expected.sort();
    assert_eq!(sorted_seen, expected);
    app.get("/api/mentors?cursor=bogus", None)
        .await
        .expect_problem(StatusCode::BAD_REQUEST, "INVALID_CURSOR")
        .await;
}

#[tokio::test]
async fn every_mutation_path_shows_in_the_cached_list_at_once() {
    let app = spawn_app().await;
    let other_instance = app.second_instance().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, token) = app.visible_mentor("cached@example.com", &admin).await;
    let card = |list: &Value| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mentorId"] == mentor_id.to_string())
            .cloned()
    };
    let list = || async {
        other_instance
            .get("/api/mentors", None)
            .await
            .expect_status(StatusCode::OK)
            .await
    };
    assert!(card(&list().await).is_some());

    let profile = json!({"firstName": "Renamed", "lastName": "Mentor", "title": "New title", "timeZone": "Asia/Kolkata"});
    app.put("/api/mentors/me/profile", &profile, Some(&token))
        .await;
    assert_eq!(
        card(&list().await).unwrap()["title"],
        "New title",
        "profile edit"
    );

    app.put(
        "/api/mentors/me/demo",
        &json!({"enabled": true}),
        Some(&token),
    )
    .await;
    assert_eq!(
        card(&list().await).unwrap()["demoEnabled"],
        true,
        "demo toggle"
    );

    let added = app
        .post(
            "/api/mentors/me/subjects",
            &json!({"subject": "Astronomy", "experienceYears": 2, "classFee": "800.00"}),
            Some(&token),
        )
        .await;
    let astronomy = added.expect_status(StatusCode::CREATED).await["subjectId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        card(&list().await).unwrap()["subjects"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "subject added"
    );
    app.put(
        &format!("/api/mentors/me/subjects/{astronomy}"),
        &json!({"subject": "Astronomy", "experienceYears": 2, "classFee": "900.00"}),
        Some(&token),
    )
    .await;
    assert_eq!(
        card(&list().await).unwrap()["subjects"][0]["classFee"],
        "900.00",
        "subject fee changed"
    );
    app.delete(
        &format!("/api/mentors/me/subjects/{astronomy}"),
        Some(&token),
    )
    .await;
    assert_eq!(
        card(&list().await).unwrap()["subjects"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "subject deleted"
    );

    let slots = app
        .get("/api/mentors/me/slots", Some(&token))
        .await
        .expect_status(StatusCode::OK)
        .await;
    for slot in slots.as_array().unwrap() {
        app.delete(
            &format!("/api/mentors/me/slots/{}", slot["slotId"].as_str().unwrap()),
            Some(&token),
        )
        .await;
    }
    assert!(card(&list().await).is_none(), "slots removed");
    app.post(
        "/api/mentors/me/slots",
        &json!({"dayOfWeek": 4, "start": "08:00", "end": "09:00"}),
        Some(&token),
    )
    .await;
    assert!(card(&list().await).is_some(), "slot added");

    app.put(
        "/api/mentors/me/upi",
        &json!({"upiId": "changed@okicici"}),
        Some(&token),
    )
    .await;
    app.post(
        &format!("/api/admin/users/{mentor_id}/deactivate"),
        &json!({}),
        Some(&admin),
    )
    .await;
    assert!(card(&list().await).is_none(), "deactivation");
    app.post(
        &format!("/api/admin/users/{mentor_id}/reactivate"),
        &json!({}),
        Some(&admin),
    )
    .await;
    assert!(card(&list().await).is_some(), "reactivation");
    app.post(
        &format!("/api/admin/mentors/{mentor_id}/reject"),
        &json!({"reason": "review"}),
        Some(&admin),
    )
    .await;
    assert!(card(&list().await).is_none(), "rejection");
    app.post(
        &format!("/api/admin/mentors/{mentor_id}/approve"),
        &json!({}),
        Some(&admin),
    )
    .await;
    assert!(card(&list().await).is_some(), "approval");
}

#[tokio::test]
async fn the_public_mentor_reads_carry_one_etag_everywhere_and_answer_304_until_a_change() {
    let app = spawn_app().await;
    let other = app.second_instance().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, mentor) = app.visible_mentor("etag-mentor@example.com", &admin).await;
    for path in [
        "/api/mentors".to_owned(),
        format!("/api/mentors/{mentor_id}"),
    ] {
        let first = app.get(&path, None).await;
        assert_eq!(
            first.headers()["cache-control"],
            "public, max-age=60, stale-while-revalidate=240"
        );
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        first.expect_status(StatusCode::OK).await;
        // The same bytes on every instance: the same tag.
        let elsewhere = other.get(&path, None).await;
        assert_eq!(elsewhere.headers()["etag"], etag.as_str(), "{path}");
        let unchanged = app.get_if_none_match(&path, &etag).await;
        assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert!(unchanged.bytes().await.unwrap().is_empty());

        let renamed =
            json!({"firstName": "Renamed", "lastName": format!("After {path}"), "timeZone": "UTC"});
        app.put("/api/mentors/me/profile", &renamed, Some(&mentor))
            .await
            .expect_status(StatusCode::OK)
            .await;
        let changed = app.get_if_none_match(&path, &etag).await;
        assert_eq!(changed.status(), StatusCode::OK, "{path} after a change");
        assert_ne!(changed.headers()["etag"], etag.as_str());
    }
}

#[tokio::test]
async fn reviews_may_be_kept_a_minute_and_availability_is_revalidated_every_time() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app
        .open_mentor("cached-reads@mentors.example", &admin)
        .await;
    let (student_id, student) = app.student("cached-reads@students.example").await;

    // Reviews: a minute in any cache, then stale while revalidating; a new review, a new tag.
    let reviews = format!("/api/mentors/{mentor_id}/reviews");
    let first = app.get(&reviews, None).await;
    assert_eq!(
        first.headers()["cache-control"],
        "public, max-age=60, stale-while-revalidate=240"
    );
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let unchanged = app.get_if_none_match(&reviews, &etag).await;
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);
    let booking = app
        .insert_booking(mentor_id, student_id, at(-2, 10, 0), "completed")
        .await;
    app.post(
        &format!("/api/bookings/{booking}/review"),
        &json!({"rating": 5, "comment": "Clear and patient"}),
        Some(&student),
    )
    .await
    .expect_status(StatusCode::CREATED)
    .await;
    let changed = app.get_if_none_match(&reviews, &etag).await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(
        changed.expect_status(StatusCode::OK).await["items"][0]["rating"],
        5
    );

    // Availability: public but checked on every use, so a booking takes its start away at once;
    // for a far day and for tomorrow (whose near starts are filtered as it is served).
    for days in [20, 1] {
        let day = at(days, 0, 0).date_naive();
        let path = format!("/api/mentors/{mentor_id}/availability?date={day}&sessionType=demo");
        let first = app.get(&path, None).await;
        assert_eq!(first.headers()["cache-control"], "public, no-cache");
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        let starts = first.expect_status(StatusCode::OK).await["starts"].clone();
        let unchanged = app.get_if_none_match(&path, &etag).await;
        assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED, "{path}");

        let (_, other) = app
            .student(&format!("in-{days}-days@students.example"))
            .await;
        let start = starts[starts.as_array().unwrap().len() - 1]["startUtc"].clone();
        app.post(
            "/api/bookings",
            &json!({"mentorId": mentor_id, "subject": "Physics", "sessionType": "demo",
                    "scheduledAt": start, "idempotencyKey": format!("cached-{days}")}),
            Some(&other),
        )
        .await
        .expect_status(StatusCode::CREATED)
        .await;
        let changed = app.get_if_none_match(&path, &etag).await;
        assert_eq!(changed.status(), StatusCode::OK, "{path} after a booking");
        assert_ne!(changed.headers()["etag"], etag.as_str());
    }
}

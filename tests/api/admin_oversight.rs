//! The admin's booking search over seeded bookings: by person (as student or mentor), mentor,
//! status and start range, newest class first, paged with a cursor; admins only.

use chrono::{Duration, SecondsFormat, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

fn ids(page: &Value) -> Vec<Value> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|booking| booking["bookingId"].clone())
        .collect()
}

#[tokio::test]
async fn admins_search_bookings_by_person_mentor_status_and_date() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (ana, ana_token) = app.student("search-ana@example.com").await;
    let (ben, _) = app.student("search-ben@example.com").await;
    let (physics, _) = app
        .visible_mentor("search-physics@example.com", &admin)
        .await;
    let (maths, mentor_token) = app.visible_mentor("search-maths@example.com", &admin).await;
    // One instant for every time here: the range below must fall exactly between the classes.
    let now = Utc::now();
    let day = |days: i64| now + Duration::days(days);
    // Newest class first: in 3 days, in 2, yesterday, 3 days ago.
    let ana_physics_soon = app.insert_booking(physics, ana, day(3), "confirmed").await;
    let ben_maths = app.insert_booking(maths, ben, day(2), "cancelled").await;
    let ana_maths_done = app.insert_booking(maths, ana, day(-1), "completed").await;
    let ben_physics_done = app.insert_booking(physics, ben, day(-3), "completed").await;

    let search = |query: String| {
        let (app, admin) = (&app, &admin);
        async move {
            app.get(&format!("/api/admin/bookings{query}"), Some(admin))
                .await
                .expect_status(StatusCode::OK)
                .await
        }
    };
    assert_eq!(
        ids(&search(String::new()).await),
        [
            json!(ana_physics_soon),
            json!(ben_maths),
            json!(ana_maths_done),
            json!(ben_physics_done)
        ]
    );
    // A person as student, and a mentor as person.
    assert_eq!(
        ids(&search(format!("?person={ana}")).await),
        [json!(ana_physics_soon), json!(ana_maths_done)]
    );
    assert_eq!(
        ids(&search(format!("?person={maths}")).await),
        [json!(ben_maths), json!(ana_maths_done)]
    );
    assert_eq!(
        ids(&search(format!("?mentorId={physics}&status=completed")).await),
        [json!(ben_physics_done)]
    );
    let instant = |days| day(days).to_rfc3339_opts(SecondsFormat::Micros, true);
    let (from, to) = (instant(-2), instant(2));
    assert_eq!(
        ids(&search(format!("?from={from}&to={to}")).await),
        [json!(ana_maths_done)],
        "from inclusive, to exclusive"
    );
    // Two pages of two.
    let first = search("?limit=2".into()).await;
    assert_eq!(ids(&first), [json!(ana_physics_soon), json!(ben_maths)]);
    let cursor = first["nextCursor"].as_str().unwrap();
    let second = search(format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(
        ids(&second),
        [json!(ana_maths_done), json!(ben_physics_done)]
    );
    assert_eq!(second["nextCursor"], Value::Null);

    app.get(
        &format!("/api/admin/bookings?from={to}&to={from}"),
        Some(&admin),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED")
    .await;
    for (token, status) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(ana_token.as_str()), StatusCode::FORBIDDEN),
        (Some(mentor_token.as_str()), StatusCode::FORBIDDEN),
    ] {
        let response = app.get("/api/admin/bookings", token).await;
        assert_eq!(response.status(), status);
    }
    let nobody = search(format!("?person={}", Uuid::new_v4())).await;
    assert_eq!(nobody["items"], json!([]));
}

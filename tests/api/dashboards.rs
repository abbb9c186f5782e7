//! The dashboards: exact figures on seeded classes and ledger rows, per role, and the read
//! replica's pool as their source.

use chrono::{DateTime, Duration, TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Expect, ExtraDatabase, TestApp, spawn_app};

fn at(month: u32, day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, month, day, 10, 0, 0).unwrap()
}

/// A classes-and-money history: mentor A taught student S five classes (October and November),
/// S2 one; mentor B taught S one; payments, two refunds and two payouts in the ledger.
struct Seeded {
    app: TestApp,
    admin: String,
    mentor_a: Uuid,
    mentor_a_token: String,
    student: String,
    upcoming: Uuid,
    /// Mentor A's classes per month, for the ledger cross-check.
    october: Vec<Uuid>,
}

async fn seeded() -> Seeded {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_a, mentor_a_token, _) = app.signed_in_mentor("a@mentors.example", &admin).await;
    let mentor_b = app.pending_mentor("b@mentors.example").await;
    let (student_id, student) = app.student("s@students.example").await;
    let (student_2, _) = app.student("s2@students.example").await;
    for (user, created) in [
        (student_id, at(10, 1)),
        (mentor_a, at(10, 2)),
        (student_2, at(11, 3)),
        (mentor_b, at(11, 4)),
    ] {
        sqlx::query("UPDATE users SET created_at = $2 WHERE user_id = $1")
            .bind(user)
            .bind(created)
            .execute(&app.db)
            .await
            .unwrap();
    }

    let class = |mentor, student, when, status| {
        let app = &app;
        async move {
            let id = app.insert_booking(mentor, student, when, status).await;
            if status == "completed" {
                sqlx::query("UPDATE bookings SET completed_at = ends_at WHERE booking_id = $1")
                    .bind(id)
                    .execute(&app.db)
                    .await
                    .unwrap();
            }
            id
        }
    };
    let b1 = class(mentor_a, student_id, at(10, 5), "completed").await;
    let b2 = class(mentor_a, student_id, at(11, 10), "completed").await;
    let b3 = class(mentor_a, student_id, at(11, 20), "completed").await;
    let b4 = class(mentor_a, student_id, at(11, 25), "cancelled").await;
    let upcoming = class(
        mentor_a,
        student_id,
        Utc::now() + Duration::days(3),
        "confirmed",
    )
    .await;
    let b6 = class(mentor_a, student_id, at(11, 12), "no_show").await;
    let b7 = class(mentor_b, student_id, at(11, 15), "completed").await;
    let _b8 = class(mentor_a, student_2, at(11, 22), "completed").await;

    // Every paid class was paid the day before; the cancelled and the no-show were refunded.
    for (booking, mentor, refunded) in [
        (b1, mentor_a, None),
        (b2, mentor_a, None),
        (b3, mentor_a, None),
        (b4, mentor_a, Some(at(11, 25))),
        (b6, mentor_a, Some(at(11, 12))),
        (b7, mentor_b, None),
    ] {
        let paid_at = sqlx::query_scalar::<_, DateTime<Utc>>(
            "SELECT scheduled_at - interval '1 day' FROM bookings WHERE booking_id = $1",
        )
        .bind(booking)
        .fetch_one(&app.db)
        .await
        .unwrap();
        let order = Uuid::new_v4();
        sqlx::query(
            r#"INSERT INTO payment_orders (payment_order_id, gateway, gateway_order_id, booking_id, student_id,
                                          amount_minor, currency, status, created_at)
               VALUES ($1, 'razorpay', $1::text, $2, $3, 60000, 'INR', 'paid', $4)"#,
        )
        .bind(order)
        .bind(booking)
        .bind(student_id)
        .bind(paid_at)
        .execute(&app.db)
        .await
        .unwrap();
        ledger(
            &app,
            "payment",
            Some(order),
            booking,
            mentor,
            "600.00",
            paid_at,
        )
        .await;
        if let Some(refunded_at) = refunded {
            ledger(
                &app,
                "refund",
                Some(order),
                booking,
                mentor,
                "600.00",
                refunded_at,
            )
            .await;
        }
    }
    ledger(&app, "payout", None, b1, mentor_a, "493.80", at(10, 7)).await;
    ledger(&app, "payout", None, b2, mentor_a, "493.80", at(11, 12)).await;
    // Reviews as written, and the rating the hourly timer keeps on the profile.
    for (booking, rating, written) in [(b1, 5, at(10, 6)), (b2, 4, at(11, 11)), (b3, 3, at(11, 21))]
    {
        sqlx::query(
            r#"INSERT INTO reviews (review_id, booking_id, mentor_id, student_id, rating, created_at)
               VALUES (gen_random_uuid(), $1, $2, $3, $4, $5)"#,
        )
        .bind(booking)
        .bind(mentor_a)
        .bind(student_id)
        .bind(rating)
        .bind(written)
        .execute(&app.db)
        .await
        .unwrap();
    }
    sqlx::query("UPDATE mentor_profiles SET rating = 4.00, review_count = 3 WHERE user_id = $1")
        .bind(mentor_a)
        .execute(&app.db)
        .await
        .unwrap();

    Seeded {
        app,
        admin,
        mentor_a,
        mentor_a_token,
        student,
        upcoming,
        october: vec![b1],
    }
}

async fn ledger(
    app: &TestApp,
    kind: &str,
    order: Option<Uuid>,
    booking: Uuid,
    mentor: Uuid,
    amount: &str,
    recorded: DateTime<Utc>,
) {
    sqlx::query(
        r#"INSERT INTO payment_transactions (payment_transaction_id, kind, gateway, gateway_reference, payment_order_id,
                                            booking_id, mentor_id, amount, status, created_at)
           VALUES (gen_random_uuid(), $1, CASE WHEN $1 = 'payout' THEN NULL ELSE 'razorpay' END,
                   gen_random_uuid()::text, $2, $3, $4, $5::numeric, 'succeeded', $6)"#,
    )
    .bind(kind)
    .bind(order)
    .bind(booking)
    .bind(mentor)
    .bind(amount)
    .bind(recorded)
    .execute(&app.db)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_students_dashboard_counts_classes_time_and_money_per_mentor() {
    let seeded = seeded().await;

    let dashboard = seeded
        .app
        .get("/api/dashboards/student", Some(&seeded.student))
        .await
        .expect_status(StatusCode::OK)
        .await;

    assert_eq!(dashboard["upcomingClasses"], 1);
    assert_eq!(dashboard["completedClasses"], 4);
    assert_eq!(dashboard["cancelledClasses"], 1);
    assert_eq!(dashboard["minutesLearned"], 220);
    assert_eq!(dashboard["hoursLearned"], "3.67");
    // 3,600.00 paid for six classes, 1,200.00 of it refunded.
    assert_eq!(dashboard["moneySpent"], "2400.00");
    assert_eq!(
        dashboard["nextClass"]["bookingId"],
        seeded.upcoming.to_string()
    );
    let by_mentor = dashboard["byMentor"].as_array().unwrap();
    let summary: Vec<Value> = by_mentor
        .iter()
        .map(|row| {
            json!([
                row["upcomingClasses"],
                row["completedClasses"],
                row["cancelledClasses"],
                row["minutesLearned"],
                row["moneySpent"]
            ])
        })
        .collect();
    assert_eq!(
        summary,
        [
            json!([1, 3, 1, 165, "1800.00"]),
            json!([0, 1, 0, 55, "600.00"])
        ]
    );
    assert_eq!(by_mentor[0]["mentorId"], seeded.mentor_a.to_string());
    assert_eq!(by_mentor[0]["lastClassAt"], "2026-11-20T10:00:00Z");
}

#[tokio::test]
async fn a_mentors_dashboard_adds_up_to_the_ledger() {
    let seeded = seeded().await;
    let app = &seeded.app;

    let dashboard = app
        .get("/api/dashboards/mentor", Some(&seeded.mentor_a_token))
        .await
        .expect_status(StatusCode::OK)
        .await;

    assert_eq!(
        dashboard["earningsByMonth"],
        json!([
            {"month": "2026-11", "classes": 3, "gross": "1800.00", "platformFee": "270.00",
             "gst": "48.60", "net": "1481.40", "paidOut": "493.80"},
            {"month": "2026-10", "classes": 1, "gross": "600.00", "platformFee": "90.00",
             "gst": "16.20", "net": "493.80", "paidOut": "493.80"},
        ])
    );
    // October is paid out in full: its net is the sum of the payout rows of its classes.
    let october_payouts: String = sqlx::query_scalar(
        "SELECT sum(amount)::text FROM payment_transactions WHERE kind = 'payout' AND booking_id = ANY($1)",
    )
    .bind(&seeded.october)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(dashboard["earningsByMonth"][1]["net"], october_payouts);

    let payouts = &dashboard["payouts"];
    assert_eq!(payouts["paidTotal"], "987.60");
    assert_eq!(payouts["paidCount"], 2);
    assert_eq!(payouts["lastPaidAt"], "2026-11-12T10:00:00Z");
    assert_eq!(payouts["pendingTotal"], "987.60");
    assert_eq!(payouts["pendingCount"], 2);
    assert_eq!(payouts["dueTotal"], "987.60");
    assert_eq!(
        dashboard["classesByStatus"],
        json!({"pendingPayment": 0, "confirmed": 1, "completed": 4, "cancelled": 1,
               "expired": 0, "noShow": 1})
    );
    assert_eq!(dashboard["distinctStudents"], 2);
    assert_eq!(dashboard["rating"], "4.00");
    assert_eq!(dashboard["reviewCount"], 3);
    assert_eq!(
        dashboard["reviewsByMonth"],
        json!([
            {"month": "2026-11", "reviews": 2, "averageRating": "3.50"},
            {"month": "2026-10", "reviews": 1, "averageRating": "5.00"},
        ])
    );
}

#[tokio::test]
async fn the_admins_dashboard_buckets_money_bookings_and_signups_by_month() {
    let seeded = seeded().await;

    let dashboard = seeded
        .app
        .get(
            "/api/admin/dashboard?period=month&from=2026-10-15T00:00:00Z&to=2026-12-01T00:00:00Z",
            Some(&seeded.admin),
        )
        .await
        .expect_status(StatusCode::OK)
        .await;

    // `from` rounds down to its month.
    assert_eq!(dashboard["from"], "2026-10-01T00:00:00Z");
    assert_eq!(dashboard["to"], "2026-12-01T00:00:00Z");
    assert_eq!(
        dashboard["buckets"],
        json!([
            {"start": "2026-10-01T00:00:00Z", "grossBookings": "600.00", "platformFee": "90.00",
             "gst": "16.20", "paymentsReceived": "600.00", "refunds": "0.00", "payoutsPaid": "493.80",
             "bookingsByStatus": {"pendingPayment": 0, "confirmed": 0, "completed": 1, "cancelled": 0,
                                  "expired": 0, "noShow": 0},
             "studentSignups": 1, "mentorSignups": 1, "activeMentors": 1,
             "cancellationRate": 0.0, "noShowRate": 0.0},
            {"start": "2026-11-01T00:00:00Z", "grossBookings": "2400.00", "platformFee": "360.00",
             "gst": "64.80", "paymentsReceived": "3000.00", "refunds": "1200.00", "payoutsPaid": "493.80",
             "bookingsByStatus": {"pendingPayment": 0, "confirmed": 0, "completed": 4, "cancelled": 1,
                                  "expired": 0, "noShow": 1},
             "studentSignups": 1, "mentorSignups": 1, "activeMentors": 2,
             "cancellationRate": 0.1667, "noShowRate": 0.2},
        ])
    );
    // Unpaid and due now: mentor A's two November classes and mentor B's one.
    assert_eq!(dashboard["payoutsDue"], "1481.40");
    assert_eq!(dashboard["payoutsDueCount"], 3);

    let weeks = seeded
        .app
        .get(
            "/api/admin/dashboard?period=week&from=2026-11-09T00:00:00Z&to=2026-11-23T00:00:00Z",
            Some(&seeded.admin),
        )
        .await
        .expect_status(StatusCode::OK)
        .await;
    let completed: Vec<&Value> = weeks["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|bucket| &bucket["bookingsByStatus"]["completed"])
        .collect();
    // Monday 9 November: the 10th and 15th; Monday 16th: the 20th and 22nd.
    assert_eq!(completed, [&json!(2), &json!(2)]);
}

#[tokio::test]
async fn each_dashboard_is_for_its_role_only() {
    let seeded = seeded().await;
    let app = &seeded.app;
    let mentor = seeded.mentor_a_token.as_str();
    for (path, allowed) in [
        ("/api/dashboards/student", seeded.student.as_str()),
        ("/api/dashboards/mentor", mentor),
        ("/api/admin/dashboard", seeded.admin.as_str()),
    ] {
        app.get(path, Some(allowed))
            .await
            .expect_status(StatusCode::OK)
            .await;
        app.get(path, None)
            .await
            .expect_problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED")
            .await;
    }
    for (path, token) in [
        ("/api/dashboards/student", mentor),
        ("/api/dashboards/student", seeded.admin.as_str()),
        ("/api/dashboards/mentor", seeded.student.as_str()),
        ("/api/dashboards/mentor", seeded.admin.as_str()),
        ("/api/admin/dashboard", seeded.student.as_str()),
        ("/api/admin/dashboard", mentor),
    ] {
        app.get(path, Some(token))
            .await
            .expect_problem(StatusCode::FORBIDDEN, "FORBIDDEN_ROLE")
            .await;
    }
}

#[tokio::test]
async fn the_admins_range_is_checked() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    for query in [
        "from=2026-11-01T00:00:00Z&to=2026-10-01T00:00:00Z",
        "period=day&from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
    ] {
        app.get(&format!("/api/admin/dashboard?{query}"), Some(&admin))
            .await
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED")
            .await;
    }
    app.get("/api/admin/dashboard?period=hour", Some(&admin))
        .await
        .expect_problem(StatusCode::BAD_REQUEST, "INVALID_QUERY")
        .await;
    // By default: 30 days to the end of today, day by day.
    let before = Utc::now().date_naive();
    let dashboard = app
        .get("/api/admin/dashboard", Some(&admin))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(dashboard["period"], "day");
    let buckets = dashboard["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 30);
    let today = [before, Utc::now().date_naive()].map(|day| json!(format!("{day}T00:00:00Z")));
    assert!(today.contains(&buckets[29]["start"]), "{}", buckets[29]);
}

#[tokio::test]
async fn dashboards_read_from_the_replica_when_one_is_set() {
    let app = spawn_app().await;
    let (student_id, student) = app.student("replica@students.example").await;
    // The replica's stand-in: another database, holding a class the primary does not (as a
    // lagging or diverged replica would).
    let replica = ExtraDatabase::create().await;
    let mentor_id = Uuid::new_v4();
    for (user_id, email, role) in [
        (student_id, "replica@students.example", "student"),
        (mentor_id, "replica@mentors.example", "mentor"),
    ] {
        sqlx::query(
            "INSERT INTO users (user_id, email, password_hash, first_name, last_name, role) VALUES ($1, $2, 'unused', 'Re', 'Plica', $3)",
        )
        .bind(user_id)
        .bind(email)
        .bind(role)
        .execute(&replica.db)
        .await
        .unwrap();
    }
    sqlx::query(
        r#"INSERT INTO bookings (booking_id, student_id, mentor_id, subject, session_type, status, scheduled_at,
                                ends_at, blocked_until)
           VALUES (gen_random_uuid(), $1, $2, 'Physics', 'regular', 'completed', $3, $3 + interval '55 minutes',
                   $3 + interval '60 minutes')"#,
    )
    .bind(student_id)
    .bind(mentor_id)
    .bind(at(11, 2))
    .execute(&replica.db)
    .await
    .unwrap();
    let with_replica = app
        .instance_with(|config| {
            config.database.read_url = Some(replica.pooled_url.clone().into());
            // Its own cache namespace, so the two instances' dashboards never meet.
            config.cache.key_prefix.push_str("replica:");
        })
        .await;

    let from_replica = with_replica
        .get("/api/dashboards/student", Some(&student))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let from_primary = app
        .get("/api/dashboards/student", Some(&student))
        .await
        .expect_status(StatusCode::OK)
        .await;

    assert_eq!(from_replica["completedClasses"], 1);
    assert_eq!(from_replica["minutesLearned"], 55);
    assert_eq!(from_primary["completedClasses"], 0);
    // Sessions are still checked on the primary: the replica holds none.
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&replica.db)
        .await
        .unwrap();
    assert_eq!(sessions, 0);
}

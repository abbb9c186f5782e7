//! In-app notifications and email delivery through the outbox (SendGrid as a mock server).

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use futures::future::join_all;
use platform::config::{Secret, SendGridConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::helpers::*;

/// A SendGrid stand-in: records each mail and answers with a configurable status.
struct SendGrid {
    mails: Mutex<Vec<(HeaderMap, Value)>>,
    status: AtomicU16,
}

async fn mail_send(
    State(mock): State<Arc<SendGrid>>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> AxumStatus {
    let status = AxumStatus::from_u16(mock.status.load(Ordering::SeqCst)).unwrap();
    if status.is_success() {
        mock.mails.lock().await.push((headers, body));
    }
    status
}

async fn spawn_with_sendgrid() -> (TestApp, Arc<SendGrid>) {
    let mock = Arc::new(SendGrid {
        mails: Mutex::new(Vec::new()),
        status: AtomicU16::new(202),
    });
    let router = Router::new()
        .route("/v3/mail/send", post(mail_send))
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let app = spawn_app_with(Options {
        sendgrid: Some(SendGridConfig {
            api_key: Secret::from("SG.test-key"),
            base_url,
        }),
        ..Default::default()
    })
    .await;
    (app, mock)
}

async fn run_outbox(app: &TestApp) -> Value {
    let invocation =
        json!({"Data": {"myTimer": {"ScheduleStatus": null, "IsPastDue": false}}, "Metadata": {}});
    let response = app
        .client
        .post(app.url("/outbox"))
        .json(&invocation)
        .send()
        .await
        .unwrap();
    response.expect_status(StatusCode::OK).await
}

/// A student with a password-reset e-mail queued for them; their session token.
async fn student_with_queued_email(app: &TestApp, email: &str) -> String {
    let (_, token) = app.student(email).await;
    app.post("/api/auth/password/forgot", &json!({"email": email}), None)
        .await
        .expect_status(StatusCode::ACCEPTED)
        .await;
    token
}

async fn outbox_states(app: &TestApp) -> Vec<(String, i32)> {
    sqlx::query_as("SELECT status, attempts FROM email_outbox ORDER BY created_at")
        .fetch_all(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn queued_emails_are_sent_once_through_sendgrid() {
    let (app, sendgrid) = spawn_with_sendgrid().await;
    student_with_queued_email(&app, "mail@example.com").await;

    let logs = run_outbox(&app).await;
    run_outbox(&app).await;

    assert_eq!(logs["Logs"][0], "sent 1, retrying 0, failed 0");
    let mails = sendgrid.mails.lock().await;
    assert_eq!(mails.len(), 1);
    let (headers, body) = &mails[0];
    assert_eq!(headers["authorization"], "Bearer SG.test-key");
    assert_eq!(
        body["personalizations"][0]["to"][0]["email"],
        "mail@example.com"
    );
    assert_eq!(body["from"]["email"], "no-reply@codeconnect.example");
    assert_eq!(body["categories"][0], "password_reset");
    assert_eq!(body["content"][0]["type"], "text/plain");
    assert!(body["custom_args"]["outbox_id"].is_string());
    assert_eq!(outbox_states(&app).await, vec![("sent".to_owned(), 1)]);
}

#[tokio::test]
async fn an_admin_retries_a_failed_email_and_the_next_run_sends_it() {
    let (app, sendgrid) = spawn_with_sendgrid().await;
    let (_, admin) = app.admin().await;
    let student = student_with_queued_email(&app, "failed-mail@example.com").await;
    sendgrid.status.store(400, Ordering::SeqCst);
    assert_eq!(
        run_outbox(&app).await["Logs"][0],
        "sent 0, retrying 0, failed 1"
    );
    let failed = app
        .get("/api/admin/outbox?status=failed", Some(&admin))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let id = failed["items"][0]["emailOutboxId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        failed["items"][0]["lastError"],
        "SendGrid answered 400 Bad Request"
    );
    let retry = format!("/api/admin/outbox/{id}/retry");
    for (token, status) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(student.as_str()), StatusCode::FORBIDDEN),
    ] {
        assert_eq!(app.post(&retry, &json!({}), token).await.status(), status);
    }

    let queued = app
        .post(&retry, &json!({}), Some(&admin))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(
        (&queued["status"], &queued["attempts"]),
        (&json!("pending"), &json!(0))
    );
    app.post(&retry, &json!({}), Some(&admin))
        .await
        .expect_problem(StatusCode::CONFLICT, "EMAIL_NOT_FAILED")
        .await;
    let unknown = format!("/api/admin/outbox/{}/retry", Uuid::new_v4());
    app.post(&unknown, &json!({}), Some(&admin))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "EMAIL_NOT_FOUND")
        .await;
    sendgrid.status.store(202, Ordering::SeqCst);
    assert_eq!(
        run_outbox(&app).await["Logs"][0],
        "sent 1, retrying 0, failed 0"
    );
    assert_eq!(sendgrid.mails.lock().await.len(), 1);
}

#[tokio::test]
async fn mail_to_the_reserved_invalid_domain_is_never_sent() {
    let (app, sendgrid) = spawn_with_sendgrid().await;
    student_with_queued_email(&app, "someone@smoke.codeconnect.invalid").await;

    assert_eq!(
        run_outbox(&app).await["Logs"][0],
        "sent 0, retrying 0, failed 1"
    );
    assert!(sendgrid.mails.lock().await.is_empty());
    assert_eq!(outbox_states(&app).await, vec![("failed".to_owned(), 1)]);
}

#[tokio::test]
async fn server_errors_are_retried_later_and_client_errors_fail_for_good() {
    let (app, sendgrid) = spawn_with_sendgrid().await;
    student_with_queued_email(&app, "retry@example.com").await;
    sendgrid.status.store(503, Ordering::SeqCst);

    assert_eq!(
        run_outbox(&app).await["Logs"][0],
        "sent 0, retrying 1, failed 0"
    );
    assert_eq!(
        run_outbox(&app).await["Logs"][0],
        "sent 0, retrying 0, failed 0",
        "not due again yet"
    );
    sendgrid.status.store(202, Ordering::SeqCst);
    sqlx::query("UPDATE email_outbox SET next_attempt_at = now()")
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(
        run_outbox(&app).await["Logs"][0],
        "sent 1, retrying 0, failed 0"
    );
    assert_eq!(outbox_states(&app).await, vec![("sent".to_owned(), 2)]);

    student_with_queued_email(&app, "bounce@example.com").await;
    sendgrid.status.store(400, Ordering::SeqCst);
    assert_eq!(
        run_outbox(&app).await["Logs"][0],
        "sent 0, retrying 0, failed 1"
    );
    let last_error: Option<String> =
        sqlx::query_scalar("SELECT last_error FROM email_outbox WHERE status = 'failed'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(last_error.unwrap().contains("400"));
}

#[tokio::test]
async fn overlapping_runs_send_each_email_exactly_once() {
    let (app, sendgrid) = spawn_with_sendgrid().await;
    for n in 0..12 {
        let email = format!("burst{n}@example.com");
        app.student(&email).await;
        app.post("/api/auth/password/forgot", &json!({"email": email}), None)
            .await;
    }

    join_all((0..4).map(|_| run_outbox(&app))).await;

    assert_eq!(sendgrid.mails.lock().await.len(), 12);
    let sent: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM email_outbox WHERE status = 'sent' AND attempts = 1",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(sent, 12);
}

#[tokio::test]
async fn without_a_sendgrid_key_emails_stay_queued() {
    let app = spawn_app().await;
    student_with_queued_email(&app, "local@example.com").await;

    let logs = run_outbox(&app).await;

    assert!(
        logs["Logs"][0]
            .as_str()
            .unwrap()
            .starts_with("no SendGrid key")
    );
    assert_eq!(outbox_states(&app).await, vec![("pending".to_owned(), 0)]);
}

#[tokio::test]
async fn people_read_their_own_notifications() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app.open_mentor("notifier@example.com", &admin).await;
    let (_, student) = app.student("reader@example.com").await;
    let (_, stranger) = app.student("stranger@example.com").await;
    for day in [2, 3, 4] {
        let demo_or_regular = if day == 2 { "demo" } else { "regular" };
        let body = json!({"mentorId": mentor_id, "subject": "Physics", "sessionType": demo_or_regular,
                          "scheduledAt": at(day, 9, 0).to_rfc3339(), "idempotencyKey": Uuid::new_v4().to_string()});
        let created = app
            .post("/api/bookings", &body, Some(&student))
            .await
            .expect_status(StatusCode::CREATED)
            .await;
        if day > 2 {
            let id = created["bookingId"].as_str().unwrap();
            app.post(
                &format!("/api/bookings/{id}/cancel"),
                &json!({"reason": "changed plans"}),
                Some(&student),
            )
            .await;
        }
    }
    // The demo's confirmation is the student's only notice (cancellations tell the mentor).
    let page = app
        .get("/api/notifications", Some(&student))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["kind"], "booking_confirmed");
    let notice_id = items[0]["notificationId"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/api/notifications/unread-count", Some(&student))
            .await
            .expect_status(StatusCode::OK)
            .await["unread"],
        1
    );

    app.post(
        &format!("/api/notifications/{notice_id}/read"),
        &json!({}),
        Some(&stranger),
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "NOTIFICATION_NOT_FOUND")
    .await;
    assert_eq!(
        app.post(
            &format!("/api/notifications/{notice_id}/read"),
            &json!({}),
            Some(&student)
        )
        .await
        .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/api/notifications/unread-count", Some(&student))
            .await
            .expect_status(StatusCode::OK)
            .await["unread"],
        0
    );
    let unread = app
        .get("/api/notifications?unread=true", Some(&student))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert!(unread["items"].as_array().unwrap().is_empty());
    app.get("/api/notifications", None)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED")
        .await;
}

#[tokio::test]
async fn notifications_page_newest_first_and_read_all_clears_them() {
    let app = spawn_app().await;
    let (student_id, student) = app.student("many@example.com").await;
    for n in 0..5 {
        sqlx::query("INSERT INTO notifications (notification_id, user_id, kind, title, body, created_at) VALUES ($1, $2, 'test', $3, 'body', now() - make_interval(mins => $4))")
            .bind(Uuid::new_v4())
            .bind(student_id)
            .bind(format!("notice {n}"))
            .bind(n)
            .execute(&app.db)
            .await
            .unwrap();
    }

    let first = app
        .get("/api/notifications?limit=3", Some(&student))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let cursor = first["nextCursor"].as_str().unwrap();
    let second = app
        .get(
            &format!("/api/notifications?limit=3&cursor={cursor}"),
            Some(&student),
        )
        .await
        .expect_status(StatusCode::OK)
        .await;
    let titles: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["items"].as_array().unwrap())
        .map(|n| n["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["notice 0", "notice 1", "notice 2", "notice 3", "notice 4"]
    );

    assert_eq!(
        app.post("/api/notifications/read-all", &json!({}), Some(&student))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/api/notifications/unread-count", Some(&student))
            .await
            .expect_status(StatusCode::OK)
            .await["unread"],
        0
    );
}

#[tokio::test]
async fn one_outbox_run_drains_a_burst_of_several_batches_each_sent_once() {
    let (app, sendgrid) = spawn_with_sendgrid().await;
    // 130 e-mails: more than two of the mailer's batches of 50.
    sqlx::query(
        r#"INSERT INTO email_outbox (email_outbox_id, recipient, subject, body_text, category)
           SELECT gen_random_uuid(), 'burst' || n || '@example.com', 'Class confirmed', 'See you', 'booking'
           FROM generate_series(1, 130) n"#,
    )
    .execute(&app.db)
    .await
    .unwrap();

    assert_eq!(
        run_outbox(&app).await["Logs"][0],
        "sent 130, retrying 0, failed 0"
    );
    let mails = sendgrid.mails.lock().await;
    let outbox_ids: std::collections::HashSet<&str> = mails
        .iter()
        .filter_map(|(_, body)| body["custom_args"]["outbox_id"].as_str())
        .collect();
    assert_eq!((mails.len(), outbox_ids.len()), (130, 130));
    let pending: i64 =
        sqlx::query_scalar("SELECT count(*) FROM email_outbox WHERE status <> 'sent'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(pending, 0);
}

//! `handler smoke` against the running handler with its local Web PubSub hub and Azurite: the
//! whole checklist passes and leaves nothing of its accounts behind (rows, e-mails, blobs),
//! real accounts untouched; a failure stops the checklist and still cleans up; the admin
//! endpoints it uses (the outbox, the removal of smoke accounts) are admin-only.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use handler::commands::{Report, SmokeOptions, smoke};
use platform::config::Secret;
use reqwest::StatusCode;
use serde_json::json;
use tokio::runtime::Handle;
use tokio::task::block_in_place;

use crate::helpers::*;

const ADMIN: &str = "smoke-admin@example.com";
const STEPS: &[&str] = &[
    "health",
    "readiness",
    "openapi",
    "admin sign-in",
    "mentor sign-up",
    "mentor calendar",
    "student sign-up",
    "discovery",
    "availability",
    "booking",
    "realtime connect",
    "chat round trip",
    "photo upload",
    "confirmation e-mail",
    "cancel",
    "clean-up",
];

fn options(app: &TestApp, password: &str) -> SmokeOptions {
    SmokeOptions {
        base_url: app.url(""),
        admin_email: ADMIN.into(),
        admin_password: Secret::from(password),
        admin_totp_secret: None,
        deadline: Duration::from_secs(60),
    }
}

impl TestApp {
    async fn smoke_accounts(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM users WHERE email LIKE '%@smoke.codeconnect.invalid'",
        )
        .fetch_one(&self.db)
        .await
        .unwrap()
    }

    async fn smoke_emails(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM email_outbox WHERE recipient LIKE '%.invalid'")
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    /// The blob of the smoke mentor's photo, while it exists.
    async fn smoke_photo_blob(&self) -> Option<String> {
        sqlx::query_scalar(
            r#"SELECT m.blob_name FROM mentor_media m JOIN users u ON u.user_id = m.mentor_id
               WHERE u.email LIKE '%@smoke.codeconnect.invalid'"#,
        )
        .fetch_optional(&self.db)
        .await
        .unwrap()
    }
}

fn names(report: &Report) -> Vec<&str> {
    report.steps.iter().map(|step| step.name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checklist_passes_and_leaves_nothing_of_its_accounts_behind() {
    let app = app_with_hub().await;
    app.admin_with_email(ADMIN).await;
    let (real_student, _) = app.student("real-student@example.com").await;
    // An interrupted earlier run's account goes too.
    app.student("student-earlier@smoke.codeconnect.invalid")
        .await;

    // Read while the checklist runs, before the clean-up: the photo's blob and the e-mails.
    let photo = Arc::new(Mutex::new(None));
    let emails_queued = Arc::new(Mutex::new(0));
    let mut lines = Vec::new();
    let mut print = |step: &handler::commands::Step| {
        lines.push(step.to_string());
        let handle = Handle::current();
        match step.name {
            "photo upload" => {
                let blob = block_in_place(|| handle.block_on(app.smoke_photo_blob()));
                *photo.lock().unwrap() = blob;
            }
            "cancel" => {
                let emails = block_in_place(|| handle.block_on(app.smoke_emails()));
                *emails_queued.lock().unwrap() = emails;
            }
            _ => {}
        }
    };
    let report = smoke(&options(&app, PASSWORD), &mut print).await.unwrap();

    assert!(report.passed(), "{lines:#?}");
    assert_eq!(names(&report), STEPS);
    assert_eq!(lines.len(), STEPS.len());
    assert!(
        lines.iter().all(|line| line.starts_with("ok   ")),
        "{lines:#?}"
    );
    assert!(
        report
            .summary()
            .starts_with("smoke passed: 16 of 16 steps ok"),
        "{}",
        report.summary()
    );
    assert!(report.requests <= 60, "{} requests", report.requests);
    // Two confirmations and two cancellation notices, at least.
    let emails = *emails_queued.lock().unwrap();
    assert!(emails >= 4, "{emails} e-mails");
    let clean_up = report.steps.last().unwrap().outcome.as_ref().unwrap();
    assert_eq!(
        clean_up,
        &format!("removed 3 accounts, 1 bookings, {emails} e-mails, 1 blobs")
    );

    assert_eq!(app.smoke_accounts().await, 0);
    for table in [
        "bookings",
        "chat_messages",
        "notifications",
        "mentor_media",
        "media_uploads",
    ] {
        assert_eq!(app.count(table).await, 0, "{table}");
    }
    assert_eq!(app.smoke_emails().await, 0);
    let blob = photo.lock().unwrap().clone().expect("the photo's blob");
    let container = &app.state.config.blob.media_container;
    assert_eq!(
        app.state.blobs.properties(container, &blob).await.unwrap(),
        None
    );
    // Everyone else is still there, and the mentor is no longer listed.
    let real: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE user_id = $1")
        .bind(real_student)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(real, 1);
    let listed = app.get("/api/mentors?q=Smoke", None).await;
    assert_eq!(
        listed.expect_status(StatusCode::OK).await["items"],
        json!([])
    );
}

#[tokio::test]
async fn a_wrong_admin_password_stops_the_checklist_before_any_account_is_made() {
    let app = spawn_app().await;
    app.admin_with_email(ADMIN).await;
    let report = smoke(&options(&app, "Wrong-password1"), &mut |_| {})
        .await
        .unwrap();

    assert!(!report.passed());
    assert_eq!(
        names(&report),
        ["health", "readiness", "openapi", "admin sign-in"]
    );
    let failure = report.steps[3].outcome.as_ref().unwrap_err();
    assert!(
        failure.contains("401") && failure.contains("INVALID_CREDENTIALS"),
        "{failure}"
    );
    assert!(
        report
            .summary()
            .starts_with("smoke FAILED (admin sign-in): 3 of 4")
    );
    assert_eq!(app.smoke_accounts().await, 0);
}

#[tokio::test]
async fn a_failed_step_still_removes_the_accounts_made_so_far() {
    // No Web PubSub: negotiation fails, after the booking was made.
    let app = spawn_app().await;
    app.admin_with_email(ADMIN).await;
    let report = smoke(&options(&app, PASSWORD), &mut |_| {}).await.unwrap();

    assert!(!report.passed());
    let failed: Vec<&str> = report
        .steps
        .iter()
        .filter(|step| step.outcome.is_err())
        .map(|step| step.name)
        .collect();
    assert_eq!(failed, ["realtime connect"]);
    assert_eq!(names(&report).last(), Some(&"clean-up"));
    assert_eq!(app.smoke_accounts().await, 0);
    assert_eq!(app.count("bookings").await, 0);
}

#[tokio::test]
async fn the_outbox_and_the_removal_of_smoke_accounts_are_for_admins_only() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, student) = app.student("outbox-student@example.com").await;
    app.post(
        "/api/auth/password/forgot",
        &json!({"email": "Outbox-Student@example.com"}),
        None,
    )
    .await
    .expect_status(StatusCode::ACCEPTED)
    .await;

    for token in [None, Some(student.as_str())] {
        let status = if token.is_none() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(app.get("/api/admin/outbox", token).await.status(), status);
        assert_eq!(
            app.delete("/api/admin/smoke-accounts", token)
                .await
                .status(),
            status
        );
    }
    let path = "/api/admin/outbox?recipient=OUTBOX-student@example.com&status=pending";
    let outbox = app
        .get(path, Some(&admin))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let emails = outbox["items"].as_array().unwrap();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0]["category"], "password_reset");
    assert_eq!(emails[0]["status"], "pending");
    assert!(
        emails[0].get("bodyText").is_none(),
        "bodies carry reset codes"
    );
    let sent = app
        .get("/api/admin/outbox?status=sent", Some(&admin))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(sent["items"], json!([]));
    let removed = app
        .delete("/api/admin/smoke-accounts", Some(&admin))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(
        removed,
        json!({"accounts": 0, "bookings": 0, "emails": 0, "blobs": 0})
    );
}

//! `handler smoke <base-url>`: the post-deployment checklist as a command, safe against
//! production. Health, readiness and the OpenAPI document; then, with an admin's sign-in, a
//! throwaway mentor and student under the reserved [`SMOKE_CHECK_DOMAIN`] (never e-mailed):
//! the mentor is approved, enrols 2FA and opens one day; the student finds them, reads their
//! availability and books a free demo; both meet in the class chat through Web PubSub; the
//! mentor sends a photo through the direct-to-storage upload and reads it back; the outbox holds
//! the booking's confirmation; the student cancels. At the end, whatever happened, the admin
//! removes every smoke account and all it made. Bounded: one deadline for the checklist, 30 s
//! for the clean-up, at most 60 HTTP requests, 15 s each; one line per step and a summary.

mod api;
mod realtime;

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{Datelike, NaiveDate, Utc};
use domain::users::SMOKE_CHECK_DOMAIN;
use platform::config::{ExposeSecret, Secret};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

pub use api::Step;
use api::{Api, Log, Stopped};
use realtime::Socket;

const REQUEST_BUDGET: usize = 60;
const CLEAN_UP_ALLOWANCE: usize = 4;
const CLEAN_UP_DEADLINE: Duration = Duration::from_secs(30);
const SUBJECT: &str = "Smoke check";

/// Where to check and as which admin.
pub struct SmokeOptions {
    /// The app's URL, e.g. `https://<app>.azurewebsites.net`.
    pub base_url: String,
    pub admin_email: String,
    pub admin_password: Secret,
    /// The admin's TOTP secret, when the admin has 2FA on.
    pub admin_totp_secret: Option<Secret>,
    /// The checklist's time limit (the clean-up has its own).
    pub deadline: Duration,
}

/// Every step taken, in order.
pub struct Report {
    pub steps: Vec<Step>,
    pub requests: usize,
    pub elapsed: Duration,
}

impl Report {
    /// Every step passed, the clean-up included.
    pub fn passed(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(|step| step.outcome.is_ok())
    }

    pub fn summary(&self) -> String {
        let passed = self.steps.iter().filter(|s| s.outcome.is_ok()).count();
        let failed: Vec<&str> = self
            .steps
            .iter()
            .filter(|s| s.outcome.is_err())
            .map(|s| s.name)
            .collect();
        let verdict = if failed.is_empty() {
            "passed".to_owned()
        } else {
            format!("FAILED ({})", failed.join(", "))
        };
        format!(
            "smoke {verdict}: {passed} of {} steps ok, {} requests, {:.1} s",
            self.steps.len(),
            self.requests,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Runs the checklist against `options.base_url`, handing each step to `print` as it ends.
pub async fn smoke(
    options: &SmokeOptions,
    print: &mut (dyn FnMut(&Step) + Send),
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let api = Api::new(&options.base_url, REQUEST_BUDGET)?;
    let mut log = Log::new(print);
    let mut admin = None;
    let run = Run::new();
    let checked = tokio::time::timeout(
        options.deadline,
        checklist(&api, &mut log, &mut admin, options, &run),
    )
    .await;
    if checked.is_err() {
        log.record(Step {
            name: "deadline",
            outcome: Err(format!(
                "the checklist did not finish within {} s",
                options.deadline.as_secs()
            )),
            elapsed: started.elapsed(),
        });
    }
    if let Some(admin) = admin {
        api.allow(CLEAN_UP_ALLOWANCE);
        let clean_up = async {
            tokio::time::timeout(CLEAN_UP_DEADLINE, clean_up(&api, &admin))
                .await
                .context("no clean-up within 30 s")?
        };
        let _ = log.step("clean-up", clean_up).await;
    }
    Ok(Report {
        steps: log.steps,
        requests: api.sent(),
        elapsed: started.elapsed(),
    })
}

/// This run's names (its throwaway accounts and the text that finds them) and its day.
struct Run {
    tag: String,
    password: String,
    /// Tomorrow (UTC) when the run began: the day the mentor opens and the student books.
    day: NaiveDate,
}

impl Run {
    fn new() -> Self {
        let id = Uuid::new_v4().simple().to_string();
        Self {
            tag: id[..12].to_owned(),
            // Upper, lower and digit, as the password rule asks; never printed.
            password: format!("Sm{}9", Uuid::new_v4().simple()),
            day: (Utc::now() + chrono::Duration::days(1)).date_naive(),
        }
    }

    fn email(&self, role: &str) -> String {
        format!("{role}-{}@{SMOKE_CHECK_DOMAIN}", self.tag)
    }
}

/// A signed-in throwaway account.
struct Person {
    id: String,
    token: String,
    email: String,
}

async fn checklist(
    api: &Api,
    log: &mut Log<'_>,
    admin: &mut Option<String>,
    options: &SmokeOptions,
    run: &Run,
) -> Result<(), Stopped> {
    log.step("health", async {
        api.get("/api/health", None).await?;
        Ok(((), "live".to_owned()))
    })
    .await?;
    log.step("readiness", async {
        let ready = api.get("/api/health/ready", None).await?;
        let seen = format!("postgres {}, cache {}", ready["postgres"], ready["cache"]);
        Ok(((), seen.replace('"', "")))
    })
    .await?;
    log.step("openapi", async {
        let document = api.get("/api/openapi.json", None).await?;
        let paths = document["paths"].as_object().map_or(0, |paths| paths.len());
        ensure!(
            document["paths"]["/api/bookings"].is_object(),
            "the document has no /api/bookings"
        );
        Ok(((), format!("{paths} paths")))
    })
    .await?;
    let token = log
        .step("admin sign-in", admin_sign_in(api, options))
        .await?;
    *admin = Some(token.clone());
    let mentor = log
        .step("mentor sign-up", mentor_sign_up(api, &token, run))
        .await?;
    log.step("mentor calendar", open_calendar(api, &mentor, run))
        .await?;
    let student = log
        .step("student sign-up", student_sign_up(api, run))
        .await?;
    log.step("discovery", find(api, &mentor, run)).await?;
    let start = log
        .step("availability", first_start(api, &mentor, run))
        .await?;
    let booking = log
        .step("booking", book(api, &student, &mentor, &start, run))
        .await?;
    let socket = log
        .step("realtime connect", join_chat(api, &student, &booking))
        .await?;
    log.step("chat round trip", chat(api, &mentor, &booking, socket, run))
        .await?;
    log.step("photo upload", upload_photo(api, &mentor)).await?;
    log.step("confirmation e-mail", confirmation(api, &token, &student))
        .await?;
    log.step("cancel", cancel(api, &student, &booking)).await?;
    Ok(())
}

async fn admin_sign_in(api: &Api, options: &SmokeOptions) -> anyhow::Result<(String, String)> {
    let code = match &options.admin_totp_secret {
        Some(secret) => Some(totp(secret.expose_secret())?),
        None => None,
    };
    let body = json!({
        "email": options.admin_email,
        "password": options.admin_password.expose_secret(),
        "totpCode": code,
    });
    let signed_in = post(api, "/api/auth/login", &body, None, StatusCode::OK).await?;
    if signed_in["require2FA"] == true {
        bail!("the admin has 2FA on: set SMOKE_ADMIN_TOTP_SECRET");
    }
    ensure!(
        signed_in["user"]["role"] == "admin",
        "{} is not an admin",
        options.admin_email
    );
    Ok((
        text(&signed_in, "sessionToken")?,
        options.admin_email.clone(),
    ))
}

/// Signs a mentor up, approves them as the admin, and enrols their 2FA: the mentor signed in.
async fn mentor_sign_up(api: &Api, admin: &str, run: &Run) -> anyhow::Result<(Person, String)> {
    let email = run.email("mentor");
    let signup = json!({
        "email": email, "password": run.password, "firstName": "Smoke", "lastName": "Check",
        "role": "mentor", "country": "India",
        "qualifications": [{"qualification": "BSc", "specialization": SUBJECT, "score": "8"}],
        "specialties": [{"subject": SUBJECT, "experience": 1}],
    });
    let signed_up = post(api, "/api/auth/signup", &signup, None, StatusCode::CREATED).await?;
    let id = text(&signed_up["user"], "userId")?;
    let approve = format!("/api/admin/mentors/{id}/approve");
    post(api, &approve, &json!({}), Some(admin), StatusCode::OK).await?;
    let login = json!({"email": email, "password": run.password});
    let enrolment = post(api, "/api/auth/login", &login, None, StatusCode::OK).await?;
    let enrolment = text(&enrolment, "enrollmentToken")?;
    let setup = post(
        api,
        "/api/auth/2fa/setup",
        &json!({}),
        Some(&enrolment),
        StatusCode::OK,
    )
    .await?;
    let code = totp(&text(&setup, "secret")?)?;
    let verified = post(
        api,
        "/api/auth/2fa/verify",
        &json!({ "code": code }),
        Some(&enrolment),
        StatusCode::OK,
    )
    .await?;
    let token = text(&verified, "sessionToken")?;
    let seen = "approved, 2FA enrolled".to_owned();
    Ok((Person { id, token, email }, seen))
}

/// Names the mentor after this run, and opens tomorrow (UTC) for free demos.
async fn open_calendar(api: &Api, mentor: &Person, run: &Run) -> anyhow::Result<((), String)> {
    let token = Some(mentor.token.as_str());
    let profile =
        json!({"firstName": "Smoke", "lastName": format!("Check {}", run.tag), "timeZone": "UTC"});
    let subject = json!({"subject": SUBJECT, "experienceYears": 1, "classFee": "100.00"});
    let tomorrow = run.day.weekday();
    let slot =
        json!({"dayOfWeek": tomorrow.number_from_monday(), "start": "00:00", "end": "24:00"});
    let steps = [
        (
            Method::PUT,
            "/api/mentors/me/profile",
            profile,
            StatusCode::OK,
        ),
        (
            Method::POST,
            "/api/mentors/me/subjects",
            subject,
            StatusCode::CREATED,
        ),
        (
            Method::POST,
            "/api/mentors/me/slots",
            slot,
            StatusCode::CREATED,
        ),
        (
            Method::PUT,
            "/api/mentors/me/upi",
            json!({"upiId": "smoke@okaxis"}),
            StatusCode::OK,
        ),
        (
            Method::PUT,
            "/api/mentors/me/demo",
            json!({"enabled": true}),
            StatusCode::OK,
        ),
    ];
    for (method, path, body, status) in steps {
        api.call(method, path, Some(&body), token, status).await?;
    }
    Ok(((), format!("{tomorrow} UTC open, demos on")))
}

async fn student_sign_up(api: &Api, run: &Run) -> anyhow::Result<(Person, String)> {
    let email = run.email("student");
    let signup = json!({
        "email": email, "password": run.password, "firstName": "Smoke", "lastName": "Student",
        "role": "student",
    });
    let signed_up = post(api, "/api/auth/signup", &signup, None, StatusCode::CREATED).await?;
    let person = Person {
        id: text(&signed_up["user"], "userId")?,
        token: text(&signed_up, "sessionToken")?,
        email,
    };
    Ok((person, "signed in".to_owned()))
}

/// The student finds the mentor in Find Mentors by this run's tag.
async fn find(api: &Api, mentor: &Person, run: &Run) -> anyhow::Result<((), String)> {
    let listed = api
        .get(&format!("/api/mentors?q={}", run.tag), None)
        .await?;
    let cards = listed["items"].as_array().context("a list without items")?;
    ensure!(
        cards
            .iter()
            .any(|card| card["mentorId"] == mentor.id.as_str()),
        "the mentor is not listed (is the list cache stale?)"
    );
    Ok(((), format!("listed ({} match)", cards.len())))
}

/// The first demo start the mentor offers on the run's day.
async fn first_start(api: &Api, mentor: &Person, run: &Run) -> anyhow::Result<(String, String)> {
    let date = run.day;
    let path = format!(
        "/api/mentors/{}/availability?date={date}&sessionType=demo",
        mentor.id
    );
    let availability = api.get(&path, None).await?;
    let starts = availability["starts"].as_array().context("no starts")?;
    let first = starts
        .first()
        .context("no bookable start on the run's day")?;
    let start = text(first, "startUtc")?;
    Ok((
        start.clone(),
        format!("{} starts, first {start}", starts.len()),
    ))
}

async fn book(
    api: &Api,
    student: &Person,
    mentor: &Person,
    start: &str,
    run: &Run,
) -> anyhow::Result<(String, String)> {
    let request = json!({
        "mentorId": mentor.id, "subject": SUBJECT, "sessionType": "demo",
        "scheduledAt": start, "idempotencyKey": format!("smoke-{}", run.tag),
    });
    let booked = post(
        api,
        "/api/bookings",
        &request,
        Some(&student.token),
        StatusCode::CREATED,
    )
    .await?;
    ensure!(
        booked["status"] == "confirmed",
        "a free demo should be confirmed at once, not {}",
        booked["status"]
    );
    Ok((text(&booked, "bookingId")?, "demo confirmed".to_owned()))
}

/// The student negotiates, connects and subscribes to the class chat. The subscription waits
/// (briefly) for the service's `connected` event to reach the app.
async fn join_chat(api: &Api, student: &Person, booking: &str) -> anyhow::Result<(Socket, String)> {
    let token = Some(student.token.as_str());
    let negotiated = post(
        api,
        "/api/realtime/negotiate",
        &json!({}),
        token,
        StatusCode::OK,
    )
    .await?;
    let socket = Socket::connect(&text(&negotiated, "url")?).await?;
    let subscribe = json!({"connectionId": socket.connection_id});
    let path = format!("/api/bookings/{booking}/messages/subscribe");
    let mut pause = Duration::from_millis(150);
    for _ in 0..6 {
        let (status, answer) = api
            .respond(Method::POST, &path, Some(&subscribe), token)
            .await?;
        if status == StatusCode::OK {
            return Ok((socket, "connected, subscribed to the chat".to_owned()));
        }
        if answer["code"] != "CONNECTION_NOT_YOURS" {
            bail!("subscribe: {status} {}", answer["code"]);
        }
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
    bail!("the service's connected event did not reach the app")
}

/// The mentor posts a message; the student's socket receives it.
async fn chat(
    api: &Api,
    mentor: &Person,
    booking: &str,
    mut socket: Socket,
    run: &Run,
) -> anyhow::Result<((), String)> {
    let message =
        json!({"message": format!("smoke check {}", run.tag), "clientMessageId": run.tag});
    let path = format!("/api/bookings/{booking}/messages");
    let sent = Instant::now();
    let posted = post(
        api,
        &path,
        &message,
        Some(&mentor.token),
        StatusCode::CREATED,
    )
    .await?;
    let id = text(&posted, "messageId")?;
    let received = socket
        .wait_for(|frame| {
            frame["data"]["type"] == "chat.message"
                && frame["data"]["message"]["messageId"] == id.as_str()
        })
        .await;
    socket.close().await;
    received.context("the message never reached the other participant")?;
    let millis = sent.elapsed().as_millis();
    Ok(((), format!("delivered in {millis} ms")))
}

/// A 1×1 PNG.
const PHOTO: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xCF, 0xC0, 0xF0,
    0x1F, 0x00, 0x05, 0x00, 0x01, 0xFF, 0x89, 0x99, 0x3D, 0x1D, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

/// Begin, PUT to storage, complete, and read the photo back through its read URL.
async fn upload_photo(api: &Api, mentor: &Person) -> anyhow::Result<((), String)> {
    let token = Some(mentor.token.as_str());
    let begin = json!({"contentType": "image/png", "sizeBytes": PHOTO.len()});
    let path = "/api/mentors/me/media/photo/uploads";
    let upload = post(api, path, &begin, token, StatusCode::CREATED).await?;
    let target = &upload["target"];
    let mut put = api.request(Method::PUT, &text(target, "url")?).body(PHOTO);
    for (name, value) in target["headers"].as_object().context("no upload headers")? {
        put = put.header(name, value.as_str().unwrap_or_default());
    }
    let stored = api.send(put).await?.status();
    ensure!(
        stored == StatusCode::CREATED,
        "storage answered the PUT with {stored}"
    );
    let complete = format!("{path}/{}/complete", text(&upload, "uploadId")?);
    let media = post(api, &complete, &json!({}), token, StatusCode::OK).await?;
    let read = api
        .send(api.request(Method::GET, &text(&media, "url")?))
        .await?;
    ensure!(
        read.status() == StatusCode::OK,
        "the read URL answered {}",
        read.status()
    );
    let bytes = read.bytes().await.context("reading the photo back")?;
    ensure!(bytes.as_ref() == PHOTO, "the photo read back differs");
    Ok(((), format!("{} bytes stored and read back", PHOTO.len())))
}

/// The booking's confirmation e-mail to the student is in the outbox.
async fn confirmation(api: &Api, admin: &str, student: &Person) -> anyhow::Result<((), String)> {
    let path = format!("/api/admin/outbox?recipient={}", student.email);
    let outbox = api.get(&path, Some(admin)).await?;
    let emails = outbox["items"]
        .as_array()
        .context("an outbox without items")?;
    let confirmation = emails
        .iter()
        .find(|email| email["category"] == "booking")
        .context("no booking e-mail queued for the student")?;
    Ok((
        (),
        format!("queued, {}", confirmation["status"]).replace('"', ""),
    ))
}

async fn cancel(api: &Api, student: &Person, booking: &str) -> anyhow::Result<((), String)> {
    let path = format!("/api/bookings/{booking}/cancel");
    let reason = json!({"reason": "smoke check"});
    let cancelled = post(api, &path, &reason, Some(&student.token), StatusCode::OK).await?;
    ensure!(
        cancelled["status"] == "cancelled",
        "the booking is {} after cancelling",
        cancelled["status"]
    );
    Ok(((), "cancelled".to_owned()))
}

/// Removes every smoke account (this run's and any an interrupted run left) and signs out.
async fn clean_up(api: &Api, admin: &str) -> anyhow::Result<((), String)> {
    let removed = api
        .call(
            Method::DELETE,
            "/api/admin/smoke-accounts",
            None,
            Some(admin),
            StatusCode::OK,
        )
        .await?;
    let logout = "/api/auth/logout";
    post(api, logout, &json!({}), Some(admin), StatusCode::NO_CONTENT).await?;
    let seen = format!(
        "removed {} accounts, {} bookings, {} e-mails, {} blobs",
        removed["accounts"], removed["bookings"], removed["emails"], removed["blobs"]
    );
    Ok(((), seen))
}

async fn post(
    api: &Api,
    path: &str,
    body: &Value,
    token: Option<&str>,
    status: StatusCode,
) -> anyhow::Result<Value> {
    api.call(Method::POST, path, Some(body), token, status)
        .await
}

fn text(value: &Value, field: &str) -> anyhow::Result<String> {
    value[field]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("the answer has no {field}"))
}

fn totp(secret: &str) -> anyhow::Result<String> {
    auth::totp::current_code(secret, Utc::now().timestamp()).context("an invalid TOTP secret")
}

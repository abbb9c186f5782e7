//! `spawn_app()`: the real handler on a free port with a fresh database (created and migrated
//! over the direct port, used by the app through PgBouncer) and its own Redis key prefix.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use azure_clients::blob::StorageAccount;
use azure_clients::blob::{BlobBackend, BlobConfig};
use azure_clients::entra::LocalIssuer;
use azure_clients::entra::{ManagedIdentity, TokenRules};
use azure_clients::pubsub::{PubSubEndpoint, PubSubService, RealtimeConfig};
use platform::AppState;
use platform::config::{
    CacheConfig, Config, DatabaseConfig, MailConfig, PaymentsConfig, Secret, SendGridConfig,
    TurnConfig,
};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

pub const PASSWORD: &str = "Correct-Horse1";
/// Marks the tests' own direct connections, to tell them apart from the app's (via PgBouncer).
pub const TEST_APPLICATION_NAME: &str = "codeconnect-tests";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// The OpenID issuer beside the local hub, when the app runs one.
    issuer: Option<Arc<LocalIssuer>>,
    /// Direct connection pool to this test's database, for arranging and asserting.
    pub db: PgPool,
    pub state: AppState,
    database_name: String,
    config: Config,
}

/// What [`TestApp::class_in_progress`] arranges; tokens are session tokens.
pub struct ClassInProgress {
    pub booking_id: Uuid,
    pub mentor_id: Uuid,
    pub mentor: String,
    pub student_id: Uuid,
    pub student: String,
    pub admin: String,
}

#[derive(Default)]
pub struct Options {
    /// `None`: the machine's Redis. `Some("")`: no Redis at all.
    pub redis_url: Option<String>,
    /// Gateways (pointed at mock servers); none by default.
    pub payments: PaymentsConfig,
    /// SendGrid (a mock server); none by default, so emails stay in the outbox.
    pub sendgrid: Option<SendGridConfig>,
    /// Fire the timers in-process (off by default: tests invoke them as the host does).
    pub timers_in_process: bool,
    /// Web PubSub; off by default.
    pub realtime: Option<RealtimeConfig>,
    pub turn: Option<TurnConfig>,
}

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn direct_base() -> String {
    setting(
        "TEST_DATABASE_DIRECT_BASE",
        "postgres://postgres@127.0.0.1:5432",
    )
}

fn pooled_base() -> String {
    setting(
        "TEST_DATABASE_POOLED_BASE",
        "postgres://postgres@127.0.0.1:6432",
    )
}

pub fn machine_redis_url() -> String {
    setting("TEST_REDIS_URL", "redis://127.0.0.1:6379")
}

/// Web PubSub configured but unreachable (and so is its identity endpoint): every push fails.
pub fn unreachable_realtime() -> RealtimeConfig {
    let nowhere = "http://127.0.0.1:9";
    RealtimeConfig {
        service: Some(PubSubService::Service(PubSubEndpoint {
            endpoint: nowhere.into(),
            identity: ManagedIdentity::Endpoint {
                url: format!("{nowhere}/msi/token"),
                secret: Secret::from("unreachable"),
            },
            events: TokenRules {
                authority: nowhere.into(),
                tenant_id: "00000000-0000-0000-0000-000000000000".into(),
                audiences: vec!["api://nowhere".into()],
                principal_ids: vec!["00000000-0000-0000-0000-000000000001".into()],
            },
        })),
        hub: "codeconnect".into(),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        platform::telemetry::init("info");
    }
    let database_name = format!("test_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&format!("{}/postgres", direct_base()))
        .await
        .expect("connect to Postgres directly");
    sqlx::query(&format!(r#"CREATE DATABASE "{database_name}""#))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let direct_url = format!("{}/{database_name}", direct_base());
    platform::db::migrate(&direct_url).await.expect("migrate");

    let redis_url = match options.redis_url {
        None => Some(machine_redis_url()),
        Some(url) if url.is_empty() => None,
        Some(url) => Some(url),
    };
    let config = Config {
        bind_address: "127.0.0.1".into(),
        port: 0,
        database: DatabaseConfig {
            url: Secret::from(format!("{}/{database_name}", pooled_base())),
            direct_url: Some(Secret::from(direct_url.clone())),
            max_connections: 20,
            acquire_timeout: Duration::from_secs(30),
        },
        cache: CacheConfig {
            redis_url: redis_url.map(Secret::from),
            key_prefix: format!("test:{database_name}:"),
            redis_timeout: Duration::from_millis(500),
        },
        cors_allowed_origins: vec!["https://app.codeconnect.example".into()],
        log_filter: "info".into(),
        payments: options.payments,
        mail: MailConfig {
            sendgrid: options.sendgrid,
            from: "no-reply@codeconnect.example".into(),
        },
        blob: BlobConfig {
            backend: BlobBackend::SharedKey(
                StorageAccount::from_connection_string(&setting(
                    "TEST_AZURE_STORAGE_CONNECTION_STRING",
                    "UseDevelopmentStorage=true",
                ))
                .expect("Azurite connection string"),
            ),
            media_container: "media".into(),
            recordings_container: "recordings".into(),
        },
        timers_in_process: options.timers_in_process,
        realtime: options.realtime.unwrap_or(RealtimeConfig {
            service: None,
            hub: "codeconnect".into(),
        }),
        turn: options.turn,
    };
    let options = PgConnectOptions::from_str(&direct_url)
        .expect("test database URL")
        .application_name(TEST_APPLICATION_NAME);
    let db = PgPoolOptions::new()
        .max_connections(5)
        .connect_with(options)
        .await
        .expect("connect to the test database");
    let mut app = start(config.clone(), db).await;
    app.database_name = database_name;
    app
}

async fn start(config: Config, db: PgPool) -> TestApp {
    let app = handler::build(config.clone()).await.expect("build the app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let issuer = app.local_issuer();
    tokio::spawn(app.run());
    TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client"),
        issuer,
        db,
        state,
        database_name: String::new(),
        config,
    }
}

impl TestApp {
    /// A second instance of the app on the same database and cache (as on Azure scale-out).
    pub async fn second_instance(&self) -> TestApp {
        start(self.config.clone(), self.db.clone()).await
    }

    /// Another instance on the same database and cache, with its configuration adjusted.
    pub async fn instance_with(&self, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = self.config.clone();
        adjust(&mut config);
        start(config, self.db.clone()).await
    }

    /// The local OpenID issuer (the app must run the local hub).
    pub fn issuer(&self) -> &LocalIssuer {
        self.issuer.as_deref().expect("the app runs the local hub")
    }

    /// What the app accepts as an upstream event's token (the app must run the local hub).
    pub fn events_rules(&self) -> TokenRules {
        match &self.state.config.realtime.service {
            Some(PubSubService::Service(service)) => service.events.clone(),
            _ => panic!("the app runs no Web PubSub"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> Response {
        self.send(reqwest::Method::POST, path, body, token).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.send(reqwest::Method::GET, path, &Value::Null, token)
            .await
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.db)
            .await
            .expect("count rows")
    }

    /// Signs up a student and returns `(user_id, session token)`.
    pub async fn student(&self, email: &str) -> (Uuid, String) {
        let response = self
            .post(
                "/api/auth/signup",
                &json!({"email": email, "password": PASSWORD, "firstName": "Stu", "lastName": "Dent", "role": "student"}),
                None,
            )
            .await;
        let body = expect_status(response, StatusCode::CREATED).await;
        (
            user_id_of(&body),
            body["sessionToken"].as_str().unwrap().to_owned(),
        )
    }

    /// Inserts an admin directly (as the bootstrap command does) and signs in.
    pub async fn admin(&self) -> (Uuid, String) {
        let email = format!("admin-{}@example.com", Uuid::new_v4().simple());
        let hash = platform::auth::password::hash(PASSWORD.into())
            .await
            .unwrap();
        let user_id = Uuid::new_v4();
        sqlx::query("INSERT INTO users (user_id, email, password_hash, first_name, last_name, role) VALUES ($1, $2, $3, 'Ad', 'Min', 'admin')")
            .bind(user_id)
            .bind(&email)
            .bind(hash)
            .execute(&self.db)
            .await
            .unwrap();
        (user_id, self.login(&email).await)
    }

    pub async fn login(&self, email: &str) -> String {
        let response = self
            .post(
                "/api/auth/login",
                &json!({"email": email, "password": PASSWORD}),
                None,
            )
            .await;
        let body = expect_status(response, StatusCode::OK).await;
        body["sessionToken"]
            .as_str()
            .expect("a session token")
            .to_owned()
    }

    /// Signs up a mentor (pending) and returns its id.
    pub async fn pending_mentor(&self, email: &str) -> Uuid {
        let response = self
            .post(
                "/api/auth/signup",
                &json!({
                    "email": email, "password": PASSWORD, "firstName": "Men", "lastName": "Tor",
                    "role": "mentor", "country": "India",
                    "qualifications": [{"qualification": "MSc", "specialization": "Physics", "score": "8.9"}],
                    "specialties": [{"subject": "Physics", "experience": 4}]
                }),
                None,
            )
            .await;
        user_id_of(&expect_status(response, StatusCode::CREATED).await)
    }

    /// A mentor that is approved, has enrolled TOTP and is signed in: `(id, token, totp secret)`.
    pub async fn signed_in_mentor(&self, email: &str, admin_token: &str) -> (Uuid, String, String) {
        let mentor_id = self.pending_mentor(email).await;
        let approved = self
            .post(
                &format!("/api/admin/mentors/{mentor_id}/approve"),
                &json!({}),
                Some(admin_token),
            )
            .await;
        expect_status(approved, StatusCode::OK).await;
        let login = self
            .post(
                "/api/auth/login",
                &json!({"email": email, "password": PASSWORD}),
                None,
            )
            .await;
        let enrollment = expect_status(login, StatusCode::OK).await["enrollmentToken"]
            .as_str()
            .expect("an enrollment token")
            .to_owned();
        let setup = self
            .post("/api/auth/2fa/setup", &json!({}), Some(&enrollment))
            .await;
        let secret = expect_status(setup, StatusCode::OK).await["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        let verify = self
            .post(
                "/api/auth/2fa/verify",
                &json!({"code": totp_now(&secret)}),
                Some(&enrollment),
            )
            .await;
        let token = expect_status(verify, StatusCode::OK).await["sessionToken"]
            .as_str()
            .expect("a session after enrolment")
            .to_owned();
        (mentor_id, token, secret)
    }

    /// Any method; a JSON body unless `body` is null; a bearer token if given.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if !body.is_null() {
            request = request.json(body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("send request")
    }

    pub async fn put(&self, path: &str, body: &Value, token: Option<&str>) -> Response {
        self.send(reqwest::Method::PUT, path, body, token).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        self.send(reqwest::Method::DELETE, path, &Value::Null, token)
            .await
    }

    /// A mentor who appears in Find Mentors: approved, 2FA enrolled, one subject ("Physics",
    /// 4 years, 600.00), a Monday-to-Sunday 09:00-17:00 slot each day, and a UPI id.
    pub async fn visible_mentor(&self, email: &str, admin_token: &str) -> (Uuid, String) {
        let (mentor_id, token, _) = self.signed_in_mentor(email, admin_token).await;
        let subject = json!({"subject": "Physics", "experienceYears": 4, "classFee": "600.00"});
        expect_status(
            self.post("/api/mentors/me/subjects", &subject, Some(&token))
                .await,
            StatusCode::CREATED,
        )
        .await;
        for day in 1..=7 {
            let slot = json!({"dayOfWeek": day, "start": "09:00", "end": "17:00"});
            expect_status(
                self.post("/api/mentors/me/slots", &slot, Some(&token))
                    .await,
                StatusCode::CREATED,
            )
            .await;
        }
        let upi = json!({"upiId": "mentor@okaxis"});
        expect_status(
            self.put("/api/mentors/me/upi", &upi, Some(&token)).await,
            StatusCode::OK,
        )
        .await;
        (mentor_id, token)
    }

    /// A mentor in UTC, available all day every day, teaching "Physics" at 600.00, with demos
    /// on: the simplest calendar for booking-rule tests.
    pub async fn open_mentor(&self, email: &str, admin_token: &str) -> (Uuid, String) {
        let (mentor_id, token) = self.visible_mentor(email, admin_token).await;
        let profile = json!({"firstName": "Open", "lastName": "Mentor", "timeZone": "UTC"});
        expect_status(
            self.put("/api/mentors/me/profile", &profile, Some(&token))
                .await,
            StatusCode::OK,
        )
        .await;
        let slots = expect_status(
            self.get("/api/mentors/me/slots", Some(&token)).await,
            StatusCode::OK,
        )
        .await;
        for slot in slots.as_array().unwrap() {
            let whole_day =
                json!({"dayOfWeek": slot["dayOfWeek"], "start": "00:00", "end": "24:00"});
            let path = format!("/api/mentors/me/slots/{}", slot["slotId"].as_str().unwrap());
            expect_status(
                self.put(&path, &whole_day, Some(&token)).await,
                StatusCode::OK,
            )
            .await;
        }
        expect_status(
            self.put(
                "/api/mentors/me/demo",
                &json!({"enabled": true}),
                Some(&token),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        (mentor_id, token)
    }

    /// `n` students inserted directly with live sessions (fast: no password hashing).
    pub async fn students_direct(&self, n: usize) -> Vec<(Uuid, String)> {
        let mut students = Vec::with_capacity(n);
        for _ in 0..n {
            let user_id = Uuid::new_v4();
            let (token, token_hash) = platform::auth::token::generate();
            sqlx::query(
                r#"WITH u AS (INSERT INTO users (user_id, email, password_hash, first_name, last_name, role)
                              VALUES ($1, $1::text || '@students.example', 'unused', 'Load', 'Student', 'student'))
                   INSERT INTO sessions (session_id, user_id, token_hash, kind, expires_at)
                   VALUES (gen_random_uuid(), $1, $2, 'session', now() + interval '1 day')"#,
            )
            .bind(user_id)
            .bind(token_hash)
            .execute(&self.db)
            .await
            .expect("insert student");
            students.push((user_id, token));
        }
        students
    }

    /// Inserts a regular 600.00 booking directly, to arrange states the API can't reach now
    /// (classes in the past, paid classes, classes starting in minutes).
    pub async fn insert_booking(
        &self,
        mentor_id: Uuid,
        student_id: Uuid,
        starts_at: chrono::DateTime<chrono::Utc>,
        status: &str,
    ) -> Uuid {
        let booking_id = Uuid::new_v4();
        sqlx::query(
            r#"INSERT INTO bookings (booking_id, student_id, mentor_id, subject, session_type, status, scheduled_at, ends_at,
                                    blocked_until, class_fee, platform_fee, gst, mentor_payout)
               VALUES ($1, $2, $3, 'Physics', 'regular', $4, $5, $5 + interval '55 minutes', $5 + interval '60 minutes',
                       600.00, 90.00, 16.20, 493.80)"#,
        )
        .bind(booking_id)
        .bind(student_id)
        .bind(mentor_id)
        .bind(status)
        .bind(starts_at)
        .execute(&self.db)
        .await
        .expect("insert booking");
        booking_id
    }

    /// Invokes timer `function` as the Functions host does (azure-contracts §1.4) and returns
    /// the invocation answer.
    pub async fn invoke_timer(&self, function: &str, past_due: bool) -> Value {
        let body = json!({
            "Data": { "myTimer": {
                "Schedule": { "AdjustForDST": true },
                "ScheduleStatus": { "Last": "0001-01-01T00:00:00", "Next": chrono::Utc::now().to_rfc3339(),
                                    "LastUpdated": chrono::Utc::now().to_rfc3339() },
                "IsPastDue": past_due } },
            "Metadata": { "sys": { "MethodName": function, "UtcNow": chrono::Utc::now().to_rfc3339() } }
        });
        let response = self
            .client
            .post(self.url(&format!("/{function}")))
            .json(&body)
            .send()
            .await
            .expect("invoke timer");
        expect_status(response, StatusCode::OK).await
    }

    /// A class in progress: an admin, a mentor, a student and their confirmed booking that
    /// started 10 minutes ago.
    pub async fn class_in_progress(&self) -> ClassInProgress {
        let (_, admin) = self.admin().await;
        let (mentor_id, mentor) = self.open_mentor("class-mentor@example.com", &admin).await;
        let (student_id, student) = self.student("class-student@example.com").await;
        let booking_id = self
            .insert_booking(
                mentor_id,
                student_id,
                chrono::Utc::now() - chrono::Duration::minutes(10),
                "confirmed",
            )
            .await;
        ClassInProgress {
            booking_id,
            mentor_id,
            mentor,
            student_id,
            student,
            admin,
        }
    }

    /// Runs `sql` directly (arranging states HTTP can't reach, like a session 31 days idle).
    pub async fn execute(&self, sql: &str, id: Uuid) {
        sqlx::query(sql)
            .bind(id)
            .execute(&self.db)
            .await
            .expect("arrange");
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if self.database_name.is_empty() {
            return;
        }
        let database_name = std::mem::take(&mut self.database_name);
        // Drop runs outside async; a small thread with its own runtime does the cleanup.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(mut admin) =
                    PgConnection::connect(&format!("{}/postgres", direct_base())).await
                {
                    let _ = sqlx::query(&format!(
                        r#"DROP DATABASE IF EXISTS "{database_name}" WITH (FORCE)"#
                    ))
                    .execute(&mut admin)
                    .await;
                }
            });
        })
        .join();
    }
}

pub fn user_id_of(body: &Value) -> Uuid {
    body["user"]["userId"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no user id in {body}"))
}

/// The current TOTP code for `secret`, as an authenticator app would show it.
pub fn totp_now(secret: &str) -> String {
    totp_at(secret, 0)
}

/// The TOTP code `offset_seconds` from now.
pub fn totp_at(secret: &str, offset_seconds: i64) -> String {
    auth::totp::current_code(secret, chrono::Utc::now().timestamp() + offset_seconds)
        .expect("valid secret")
}

/// A UTC instant `days` from today at `hour:minute`.
pub fn at(days: i64, hour: u32, minute: u32) -> chrono::DateTime<chrono::Utc> {
    let date = chrono::Utc::now().date_naive() + chrono::Duration::days(days);
    date.and_hms_opt(hour, minute, 0).unwrap().and_utc()
}

/// Asserts the status (showing the body when it differs) and returns the JSON body.
pub async fn expect_status(response: Response, expected: StatusCode) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, expected, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Asserts a problem+json answer with `status` and `code`, returning its body.
pub async fn expect_problem(response: Response, status: StatusCode, code: &str) -> Value {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = expect_status(response, status).await;
    assert_eq!(content_type, "application/problem+json", "body: {body}");
    assert_eq!(body["code"], code, "body: {body}");
    assert_eq!(body["status"], status.as_u16(), "body: {body}");
    body
}

/// Fails if any string in `body` looks like a secret the API must never return.
pub fn assert_no_secrets(body: &Value) {
    let text = body.to_string().to_lowercase();
    for needle in ["$argon2", "password", "totp_secret", "totpsecret", "hash"] {
        assert!(!text.contains(needle), "response leaks {needle:?}: {body}");
    }
}

/// Sends `body` as an upload target (`{url, method, headers}`) says, straight to storage, as a
/// browser would; the status storage answered.
pub async fn put_to_storage(target: &Value, body: Vec<u8>) -> StatusCode {
    assert_eq!(target["method"], "PUT");
    let url = target["url"].as_str().expect("an upload URL");
    let mut request = reqwest::Client::new()
        .put(url)
        .header("content-length", body.len())
        .body(body);
    for (name, value) in target["headers"].as_object().expect("headers") {
        request = request.header(name, value.as_str().unwrap());
    }
    request.send().await.expect("PUT to storage").status()
}

/// The fields a `VALIDATION_FAILED` problem names.
pub fn problem_fields(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .expect("a validation problem lists its errors")
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect()
}

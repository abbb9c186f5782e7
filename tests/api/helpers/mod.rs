//! `spawn_app()`: the real handler on a free port with a fresh database (created and migrated
//! over the direct port, used by the app through PgBouncer) and its own Redis key prefix; the
//! HTTP verbs and the response checks (`Expect`). Helpers for one area live in its submodule.

mod accounts;
mod bookings;
mod identity;
mod realtime;
mod storage;
mod telemetry;

pub use accounts::*;
pub use bookings::*;
pub use identity::*;
pub use realtime::*;
pub use storage::*;
pub use telemetry::*;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use azure_clients::blob::StorageAccount;
use azure_clients::blob::{BlobBackend, BlobConfig};
use azure_clients::entra::LocalIssuer;
use azure_clients::entra::{ManagedIdentity, TokenRules};
use azure_clients::pubsub::{PubSubEndpoint, PubSubService, RealtimeConfig};
use domain::platform_settings::{RateLimits, Setting};
use platform::AppState;
use platform::config::{
    CacheConfig, Config, DatabaseConfig, MailConfig, PaymentsConfig, Secret, SendGridConfig,
    SignIn, TurnConfig,
};
use platform::rate_limit::Quota;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

pub const PASSWORD: &str = "Correct-Horse1";
/// Marks the tests' own direct connections, to tell them apart from the app's (via PgBouncer).
pub const TEST_APPLICATION_NAME: &str = "codeconnect-tests";
/// The key reset codes are stored under in tests.
pub const RESET_CODE_KEY: &str = "test-reset-code-key-32-characters";

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
    /// Request budgets; by default none that a test meets.
    pub rate_limits: Budgets,
    /// Web PubSub; off by default.
    pub realtime: Option<RealtimeConfig>,
    pub turn: Option<TurnConfig>,
    /// Browser origins admitted besides the default frontend's.
    pub allowed_origins: Vec<String>,
    /// Reach PgBouncer through this local port (a relay a test can cut) instead of its own.
    pub database_port: Option<u16>,
    /// How long a request waits for a pooled connection; 30 s by default.
    pub acquire_timeout: Option<Duration>,
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

/// PgBouncer's `host:port`, as the apps reach it.
pub fn pooled_address() -> String {
    let base = pooled_base();
    let after_user = base
        .rsplit_once('@')
        .map_or(base.as_str(), |(_, rest)| rest);
    after_user
        .split('/')
        .next()
        .unwrap_or(after_user)
        .to_owned()
}

pub fn machine_redis_url() -> String {
    setting("TEST_REDIS_URL", "redis://127.0.0.1:6379")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    telemetry();
    let limits = match &options.rate_limits {
        Budgets::Unlimited => Some(unlimited()),
        Budgets::Stored(limits) => Some(limits.clone()),
        Budgets::Defaults => None,
    };
    let database_name = create_database().await;
    let direct_url = format!("{}/{database_name}", direct_base());

    let redis_url = match options.redis_url {
        None => Some(machine_redis_url()),
        Some(url) if url.is_empty() => None,
        Some(url) => Some(url),
    };
    let config = Config {
        bind_address: "127.0.0.1".into(),
        port: 0,
        database: DatabaseConfig {
            url: Secret::from(match options.database_port {
                Some(port) => format!("postgres://postgres@127.0.0.1:{port}/{database_name}"),
                None => format!("{}/{database_name}", pooled_base()),
            }),
            direct_url: Some(Secret::from(direct_url.clone())),
            read_url: None,
            max_connections: 20,
            acquire_timeout: options.acquire_timeout.unwrap_or(Duration::from_secs(30)),
            auth: SignIn::Url,
        },
        cache: CacheConfig {
            redis_url: redis_url.map(Secret::from),
            key_prefix: format!("test:{database_name}:"),
            redis_timeout: Duration::from_millis(500),
            auth: SignIn::Url,
        },
        cors_allowed_origins: [
            vec!["https://app.codeconnect.example".to_owned()],
            options.allowed_origins,
        ]
        .concat(),
        front_door_id: None,
        log_filter: "info".into(),
        // The binary exports through `telemetry()`, installed once for every app.
        telemetry: None,
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
        reset_code_key: Secret::from(RESET_CODE_KEY),
    };
    let options = PgConnectOptions::from_str(&direct_url)
        .expect("test database URL")
        .application_name(TEST_APPLICATION_NAME);
    let db = PgPoolOptions::new()
        .max_connections(5)
        .connect_with(options)
        .await
        .expect("connect to the test database");
    if let Some(limits) = limits {
        sqlx::query("INSERT INTO platform_settings (setting_key, value) VALUES ($1, $2)")
            .bind(RateLimits::KEY)
            .bind(sqlx::types::Json(limits))
            .execute(&db)
            .await
            .expect("store the rate limits");
    }
    let mut app = start(config.clone(), db).await;
    app.database_name = database_name;
    app
}

/// Creates a fresh database, migrated, and returns its name.
async fn create_database() -> String {
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
    database_name
}

/// A second migrated database beside a test app's (a read replica's stand-in), dropped with
/// this value.
pub struct ExtraDatabase {
    name: String,
    /// Its URL through PgBouncer, as an app would reach it.
    pub pooled_url: String,
    /// A direct pool, for arranging its rows.
    pub db: PgPool,
}

impl ExtraDatabase {
    pub async fn create() -> Self {
        let name = create_database().await;
        let db = PgPool::connect(&format!("{}/{name}", direct_base()))
            .await
            .expect("connect to the extra database");
        Self {
            pooled_url: format!("{}/{name}", pooled_base()),
            name,
            db,
        }
    }
}

impl Drop for ExtraDatabase {
    fn drop(&mut self) {
        drop_database(std::mem::take(&mut self.name));
    }
}

/// The request budgets a test app starts with.
#[derive(Default)]
pub enum Budgets {
    /// None a test meets (`unlimited`), stored as the `rate-limits` setting.
    #[default]
    Unlimited,
    /// These, stored as the setting.
    Stored(RateLimits),
    /// Nothing stored: the defaults apply.
    Defaults,
}

/// Budgets no test meets unless it is about them.
pub fn unlimited() -> RateLimits {
    let quota = Quota::new(1_000_000, 60);
    RateLimits {
        per_ip: quota,
        per_session: quota,
        signup_per_ip: quota,
        login_per_ip: quota,
        recovery_per_ip: quota,
        two_factor_per_session: quota,
        checkout_per_session: quota,
        negotiate_per_session: quota,
        uploads_per_session: quota,
    }
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

    /// An anonymous GET of `path` with `If-None-Match: etag`.
    pub async fn get_if_none_match(&self, path: &str, etag: &str) -> Response {
        self.client
            .get(self.url(path))
            .header("if-none-match", etag)
            .send()
            .await
            .expect("GET with If-None-Match")
    }

    pub async fn put(&self, path: &str, body: &Value, token: Option<&str>) -> Response {
        self.send(reqwest::Method::PUT, path, body, token).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        self.send(reqwest::Method::DELETE, path, &Value::Null, token)
            .await
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
        response.expect_status(StatusCode::OK).await
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
        drop_database(std::mem::take(&mut self.database_name));
    }
}

/// Drops a test database, its connections forced closed. Drops run outside async, so a small
/// thread with its own runtime does the work.
fn drop_database(database_name: String) {
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

/// A response's checks, so a request and what it must answer read as one expression:
/// `app.get(path, token).await.expect_status(StatusCode::OK).await`.
pub trait Expect {
    /// Asserts the status (showing the body when it differs) and returns the JSON body.
    async fn expect_status(self, expected: StatusCode) -> Value;
    /// Asserts a problem+json answer with `status` and `code`, returning its body.
    async fn expect_problem(self, status: StatusCode, code: &str) -> Value;
}

impl Expect for Response {
    async fn expect_status(self, expected: StatusCode) -> Value {
        let status = self.status();
        let text = self.text().await.unwrap_or_default();
        assert_eq!(status, expected, "unexpected status; body: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn expect_problem(self, status: StatusCode, code: &str) -> Value {
        let content_type = self
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = self.expect_status(status).await;
        assert_eq!(content_type, "application/problem+json", "body: {body}");
        assert_eq!(body["code"], code, "body: {body}");
        assert_eq!(body["status"], status.as_u16(), "body: {body}");
        body
    }
}

/// Fails if any string in `body` looks like a secret the API must never return.
pub fn assert_no_secrets(body: &Value) {
    let text = body.to_string().to_lowercase();
    for needle in ["$argon2", "password", "totp_secret", "totpsecret", "hash"] {
        assert!(!text.contains(needle), "response leaks {needle:?}: {body}");
    }
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

//! The handler as the Functions host runs it: a child process with the app settings in its
//! environment (including the names the host itself sets), its readiness found by polling the
//! port, and its output read line by line the way `WorkerProcess` reads it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Where a line came from: the host treats the two streams differently.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stream {
    Stdout,
    Stderr,
}

/// The level the Functions host files a line of handler output under
/// (`WorkerProcess.OnOutputDataReceived` / `ParseErrorMessageAndLog`, useStdErrStreamForErrorsOnly off).
fn host_level(stream: Stream, line: &str) -> &'static str {
    let line = line.to_lowercase();
    match stream {
        Stream::Stdout => "Information",
        Stream::Stderr if line.contains("warn") => "Warning",
        Stream::Stderr
            if ["error", "fail", "severe", "unhandled exception"]
                .iter()
                .any(|word| line.contains(word)) =>
        {
            "Error"
        }
        Stream::Stderr => "Information",
    }
}

struct Handler {
    child: Child,
    port: u16,
    lines: Arc<Mutex<Vec<(Stream, String)>>>,
}

impl Handler {
    /// The handler this build made.
    fn start(settings: &[(&str, &str)]) -> Handler {
        Self::start_on(free_port(), settings)
    }

    /// The handler this build made, on `port`.
    fn start_on(port: u16, settings: &[(&str, &str)]) -> Handler {
        Self::start_binary(Path::new(env!("CARGO_BIN_EXE_handler")), port, settings)
    }

    /// `binary`, started from its own folder as the host starts the packaged handler.
    fn start_binary(binary: &Path, port: u16, settings: &[(&str, &str)]) -> Handler {
        let mut command = Command::new(binary);
        if let Some(folder) = binary.parent() {
            command.current_dir(folder);
        }
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env("LOCAL_PUBSUB_PORT", "0")
            .env(
                "AZURE_STORAGE_CONNECTION_STRING",
                "UseDevelopmentStorage=true",
            )
            .env("RESET_CODE_KEY", "process-test-reset-code-key-32-chars")
            .envs(settings.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start the handler binary");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for (stream, reader) in [
            (
                Stream::Stdout,
                Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            ),
            (Stream::Stderr, Box::new(child.stderr.take().unwrap())),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(reader).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push((stream, line));
                }
            });
        }
        Handler { child, port, lines }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Polls like the host (every 25 ms; any HTTP answer means ready), at most 30 s (Flex's limit).
    async fn wait_until_ready(&mut self) -> Duration {
        let started = Instant::now();
        let client = reqwest::Client::new();
        while started.elapsed() < Duration::from_secs(30) {
            if client.get(self.url("/")).send().await.is_ok() {
                return started.elapsed();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the handler exited with {status}: {:?}", self.lines());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the handler did not answer within 30 s: {:?}", self.lines());
    }

    fn lines(&self) -> Vec<(Stream, String)> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Handler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Settings of a handler whose database is unreachable (nothing at start waits for it).
const BASE: &[(&str, &str)] = &[
    (
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:9/unreachable",
    ),
    ("DATABASE_ACQUIRE_TIMEOUT_SECS", "1"),
    ("API_ALLOWED_ORIGINS", "https://app.codeconnect.example"),
    // What the Flex host writes from the site's CORS settings, as a JSON array.
    ("CORS_ALLOWED_ORIGINS", r#"["https://portal.azure.com"]"#),
    ("LOG_LEVEL", "info"),
];

async fn preflight(client: &reqwest::Client, handler: &Handler, origin: &str) -> reqwest::Response {
    client
        .request(reqwest::Method::OPTIONS, handler.url("/api/mentors"))
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn with_the_hosts_cors_setting_present_the_handler_serves_its_own_origins_only() {
    let mut handler = Handler::start(BASE);
    handler.wait_until_ready().await;
    let client = reqwest::Client::new();

    let health = client.get(handler.url("/api/health")).send().await.unwrap();
    let ours = preflight(&client, &handler, "https://app.codeconnect.example").await;
    let portal = preflight(&client, &handler, "https://portal.azure.com").await;

    assert_eq!(health.status(), 200);
    assert_eq!(
        ours.headers()["access-control-allow-origin"],
        "https://app.codeconnect.example"
    );
    assert_eq!(ours.headers()["access-control-allow-credentials"], "true");
    assert!(
        !portal.headers().contains_key("access-control-allow-origin"),
        "the host's CORS_ALLOWED_ORIGINS must not be read as ours"
    );
}

#[tokio::test]
async fn the_host_files_info_lines_as_information_and_errors_as_errors() {
    let mut handler = Handler::start(BASE);
    handler.wait_until_ready().await;
    let client = reqwest::Client::new();

    // A caller's request id is logged with the request: words in it must not change the level.
    client
        .get(handler.url("/api/health"))
        .header("x-request-id", "retry-after-failure-error-7")
        .send()
        .await
        .unwrap();
    // The database is unreachable: discovery is refused with a logged warning, and a timer
    // fails with a logged error.
    let refused = client
        .get(handler.url("/api/mentors"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    let invocation = serde_json::json!({"Data": {"myTimer": {"ScheduleStatus": null, "IsPastDue": false}}, "Metadata": {}});
    let failed = client
        .post(handler.url("/auth-cleanup"))
        .json(&invocation)
        .send()
        .await
        .unwrap();
    assert!(failed.status().is_server_error(), "{}", failed.status());
    let deadline = Instant::now() + Duration::from_secs(5);
    let logged =
        |lines: &[(Stream, String)], text: &str| lines.iter().any(|(_, line)| line.contains(text));
    while Instant::now() < deadline
        && !(logged(&handler.lines(), "timer failed")
            && logged(&handler.lines(), "a dependency is unavailable"))
    {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let lines = handler.lines();
    let mut seen = Vec::new();
    assert!(!lines.is_empty());
    for (stream, line) in &lines {
        let json: Value = serde_json::from_str(line)
            .unwrap_or_else(|_| panic!("{stream:?} line is not JSON: {line}"));
        let level = json["level"].as_str().expect("every line has a level");
        let expected = match level {
            "ERROR" => "Error",
            "WARN" => "Warning",
            _ => "Information",
        };
        assert_eq!(
            host_level(*stream, line),
            expected,
            "the host would misfile this {level} line from {stream:?}: {line}"
        );
        seen.push(level.to_owned());
    }
    assert!(
        lines
            .iter()
            .any(|(_, line)| line.contains("retry-after-failure-error-7")
                && line.contains(r#""level":"INFO""#)),
        "the request's info line: {lines:?}"
    );
    assert!(seen.iter().any(|level| level == "ERROR"), "{lines:?}");
    assert!(seen.iter().any(|level| level == "WARN"), "{lines:?}");
}

/// Every line a request logs, on either stream, is JSON carrying the trace the caller started
/// (the host forwards `traceparent`) and the span it was logged in; with no connection string
/// nothing is exported, and the ids still tie the lines together.
#[tokio::test]
async fn a_requests_log_lines_carry_the_callers_trace_id() {
    let mut handler = Handler::start(BASE);
    handler.wait_until_ready().await;
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    // Discovery is refused (no database): a warning on stderr and the request's line on stdout.
    let refused = reqwest::Client::new()
        .get(handler.url("/api/mentors"))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    let deadline = Instant::now() + Duration::from_secs(5);
    let of_request = |lines: &[(Stream, String)]| -> Vec<(Stream, Value)> {
        lines
            .iter()
            .map(|(stream, line)| (*stream, serde_json::from_str::<Value>(line).unwrap()))
            .filter(|(_, json)| json["span"]["url.path"] == "/api/mentors")
            .collect()
    };
    while of_request(&handler.lines()).len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let lines = of_request(&handler.lines());
    let streams: Vec<Stream> = lines.iter().map(|(stream, _)| *stream).collect();
    assert!(
        streams.contains(&Stream::Stdout) && streams.contains(&Stream::Stderr),
        "an info line and a warning: {lines:?}"
    );
    for (_, json) in &lines {
        assert_eq!(
            json["openTelemetry"]["traceId"],
            trace_id.as_str(),
            "{json}"
        );
        let span_id = json["openTelemetry"]["spanId"].as_str().unwrap_or_default();
        assert!(
            span_id.len() == 16 && span_id != "00f067aa0ba902b7",
            "the handler's own span: {json}"
        );
    }
}

#[tokio::test]
async fn an_unresolved_key_vault_reference_stops_the_start_naming_the_setting() {
    let mut settings = BASE.to_vec();
    settings[0] = (
        "DATABASE_URL",
        "@Microsoft.KeyVault(SecretUri=https://kv-cc.vault.azure.net/secrets/database-url/)",
    );
    let mut handler = Handler::start(&settings);

    let status = handler.child.wait().expect("the handler exits");
    std::thread::sleep(Duration::from_millis(100));

    assert!(!status.success());
    let lines = handler.lines();
    let message = lines
        .iter()
        .find(|(_, line)| line.contains("DATABASE_URL is an unresolved Key Vault reference"))
        .unwrap_or_else(|| panic!("no message naming the setting: {lines:?}"));
    assert_eq!(host_level(message.0, &message.1), "Error");
    assert!(message.1.contains("Key Vault Secrets User"));
}

/// The folder `bash infra/package.sh` writes (`infra/local/test.sh` runs it before the tests).
fn packaged_handler() -> PathBuf {
    let binary = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/functionapp/handler");
    assert!(
        binary.exists(),
        "no packaged handler at {}: run `bash infra/package.sh` first",
        binary.display()
    );
    binary
}

/// The highest `GLIBC_x.y` symbol version the binary needs, from its dynamic symbol table.
fn highest_glibc_version(binary: &Path) -> (u32, u32) {
    let output = Command::new("objdump")
        .arg("-T")
        .arg(binary)
        .output()
        .expect("run objdump (binutils)");
    assert!(
        output.status.success(),
        "objdump failed on {}",
        binary.display()
    );
    String::from_utf8_lossy(&output.stdout)
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|word| word.strip_prefix("GLIBC_"))
        .filter_map(|version| {
            let (major, minor) = version.split_once('.')?;
            Some((major.parse().ok()?, minor.split('.').next()?.parse().ok()?))
        })
        .max()
        .expect("a dynamically linked binary needs some glibc symbols")
}

/// Needs the release package (minutes to build): `infra/local/test.sh` builds it and runs this.
#[tokio::test]
#[ignore = "needs `bash infra/package.sh`; infra/local/test.sh runs it"]
async fn the_packaged_handler_needs_at_most_glibc_2_28_and_starts() {
    let binary = packaged_handler();

    // The Functions Linux images include bullseye (glibc 2.31); 2.28 leaves headroom.
    let highest = highest_glibc_version(&binary);
    assert!(
        highest <= (2, 28),
        "needs GLIBC_{}.{}",
        highest.0,
        highest.1
    );
    let symbols = Command::new("readelf")
        .arg("-S")
        .arg(&binary)
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&symbols.stdout).contains(".symtab"),
        "the packaged handler is stripped"
    );
    let mut handler = Handler::start_binary(&binary, free_port(), BASE);
    let ready_after = handler.wait_until_ready().await;
    let health = reqwest::get(handler.url("/api/health")).await.unwrap();

    assert_eq!(health.status(), 200);
    assert!(ready_after < Duration::from_secs(30), "Flex allows 30 s");
}

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or(default.to_owned())
}

fn direct_base() -> String {
    setting(
        "TEST_DATABASE_DIRECT_BASE",
        "postgres://postgres@127.0.0.1:5432",
    )
}

/// A migrated database of its own (created over the direct port, migrated by `handler migrate`
/// given the database settings alone, as an operator runs it), dropped when the test ends.
struct Database {
    name: String,
    /// Its URL through PgBouncer, as the app reaches it.
    url: String,
}

impl Database {
    async fn migrated() -> Database {
        use sqlx::Connection;
        let pooled = setting(
            "TEST_DATABASE_POOLED_BASE",
            "postgres://postgres@127.0.0.1:6432",
        );
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", direct_base()))
            .await
            .expect("connect to Postgres directly");
        sqlx::query(&format!(r#"CREATE DATABASE "{name}""#))
            .execute(&mut admin)
            .await
            .expect("create the database");
        let database = Database {
            url: format!("{pooled}/{name}"),
            name,
        };
        let migrated = Command::new(env!("CARGO_BIN_EXE_handler"))
            .arg("migrate")
            .env_clear()
            .env("DATABASE_URL", &database.url)
            .env(
                "DATABASE_DIRECT_URL",
                format!("{}/{}", direct_base(), database.name),
            )
            .status()
            .expect("run handler migrate");
        assert!(migrated.success(), "handler migrate failed: {migrated}");
        database
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        // Drop runs outside async; a small thread with its own runtime does the cleanup.
        let _ = std::thread::spawn(move || {
            use sqlx::Connection;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(mut admin) =
                    sqlx::PgConnection::connect(&format!("{}/postgres", direct_base())).await
                {
                    let _ =
                        sqlx::query(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
                            .execute(&mut admin)
                            .await;
                }
            });
        })
        .join();
    }
}

/// `handler hub` run alone, and the settings it wrote for the handlers.
struct HubProcess {
    child: Child,
    settings: Vec<(String, String)>,
}

impl HubProcess {
    async fn start(event_handler: &str) -> HubProcess {
        let env_file = std::env::temp_dir().join(format!("hub-{}.env", uuid::Uuid::new_v4()));
        let mut child = Command::new(env!("CARGO_BIN_EXE_handler"))
            .args(["hub", "--port", "0", "--event-handler", event_handler])
            .arg("--env-file")
            .arg(&env_file)
            .env_clear()
            .stdout(Stdio::null())
            .spawn()
            .expect("start handler hub");
        let started = Instant::now();
        let text = loop {
            if let Ok(text) = std::fs::read_to_string(&env_file) {
                break text;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("handler hub exited with {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no settings within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        let _ = std::fs::remove_file(&env_file);
        let settings = text
            .lines()
            .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        HubProcess { child, settings }
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two handler processes share one hub process, as instances share Web PubSub in Azure: each
/// handler reaches the hub with a token `azure_identity`'s App Service credential fetched from
/// the hub's issuer, and the hub's events, sent to one handler with the hub identity's token,
/// are checked against the issuer in the other process.
#[tokio::test]
async fn handlers_started_with_a_lone_hubs_settings_run_real_time_through_it() {
    let database = Database::migrated().await;
    let events_port = free_port();
    let hub = HubProcess::start(&format!(
        "http://127.0.0.1:{events_port}/api/realtime/events"
    ))
    .await;
    let names: Vec<&str> = hub.settings.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "WEBPUBSUB_ENDPOINT",
            "WEBPUBSUB_HUB",
            "ENTRA_AUTHORITY",
            "ENTRA_TENANT_ID",
            "WEBPUBSUB_EVENT_AUDIENCES",
            "WEBPUBSUB_PRINCIPAL_ID",
            "AZURE_CREDENTIAL_KIND",
            "IDENTITY_ENDPOINT",
            "IDENTITY_HEADER"
        ]
    );
    let mut settings: Vec<(&str, &str)> = hub
        .settings
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    settings.extend([
        ("DATABASE_URL", database.url.as_str()),
        ("LOG_LEVEL", "info"),
    ]);
    let mut receiver = Handler::start_on(events_port, &settings);
    let mut other = Handler::start(&settings);
    receiver.wait_until_ready().await;
    other.wait_until_ready().await;
    let client = reqwest::Client::new();

    let ready: Value = client
        .get(other.url("/api/health/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["realtime"], "up", "{ready}");
    let signup: Value = client
        .post(other.url("/api/auth/signup"))
        .json(&serde_json::json!({
            "email": "lone-hub@example.com", "password": "Correct horse battery 9",
            "firstName": "Stu", "lastName": "Dent", "role": "student"
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = signup["sessionToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{signup}"));
    let negotiated = client
        .post(other.url("/api/realtime/negotiate"))
        .bearer_auth(token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(negotiated.status(), 200, "{:?}", other.lines());
    let url: Value = negotiated.json().await.unwrap();
    let url = url["url"].as_str().unwrap();
    assert!(
        url.starts_with(&hub.settings[0].1.replace("http", "ws")),
        "{url}"
    );

    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "json.webpubsub.azure.v1".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .unwrap_or_else(|error| panic!("connect: {error}; {:?}", receiver.lines()));
    use futures::StreamExt;
    let connected = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("a message within 10 s")
        .expect("an open socket")
        .unwrap();
    let connected: Value = serde_json::from_str(connected.to_text().unwrap()).unwrap();
    assert_eq!(connected["event"], "connected", "{connected}");
    assert_eq!(connected["userId"], signup["user"]["userId"], "{connected}");
    assert!(
        receiver
            .lines()
            .iter()
            .all(|(_, line)| !line.contains("upstream event refused")),
        "{:?}",
        receiver.lines()
    );
}

/// `handler smoke` as an operator runs it after a deployment: against a handler process with
/// its local hub and Azurite, with the admin `handler create-admin` made, one line per step and
/// a summary on stdout, exit 0; with a wrong password it stops early and exits non-zero.
#[tokio::test]
async fn the_smoke_command_checks_a_running_handler_and_says_so_in_its_exit_status() {
    let database = Database::migrated().await;
    let direct = format!("{}/{}", direct_base(), database.name);
    let mut handler = Handler::start(&[("DATABASE_URL", &database.url)]);
    handler.wait_until_ready().await;
    let admin = "smoke-admin@example.com";
    let created = Command::new(env!("CARGO_BIN_EXE_handler"))
        .args(["create-admin", admin])
        .env_clear()
        .env("DATABASE_URL", &database.url)
        .env("DATABASE_DIRECT_URL", &direct)
        .env("ADMIN_PASSWORD", "Smoke-admin1")
        .stdout(Stdio::null())
        .status()
        .expect("run handler create-admin");
    assert!(created.success());
    let smoke = |password: &str| {
        Command::new(env!("CARGO_BIN_EXE_handler"))
            .args(["smoke", &handler.url(""), "--deadline", "60"])
            .env_clear()
            .env("SMOKE_ADMIN_EMAIL", admin)
            .env("SMOKE_ADMIN_PASSWORD", password)
            .output()
            .expect("run handler smoke")
    };

    let passed = smoke("Smoke-admin1");
    let stdout = String::from_utf8_lossy(&passed.stdout);
    assert!(passed.status.success(), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 17, "{stdout}");
    assert!(
        lines[..16].iter().all(|line| line.starts_with("ok   ")),
        "{stdout}"
    );
    assert!(
        lines[16].starts_with("smoke passed: 16 of 16 steps ok"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("Smoke-admin1"),
        "the password is never printed"
    );

    let refused = smoke("Wrong-password1");
    let stdout = String::from_utf8_lossy(&refused.stdout);
    assert_eq!(refused.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL admin sign-in"), "{stdout}");
    assert!(stdout.contains("smoke FAILED (admin sign-in)"), "{stdout}");
}

//! The typed TypeScript client in `shared/api-client`: its committed OpenAPI document and
//! generated types are what the handler serves (the drift check), and the client, compiled with
//! `tsc --strict`, signs up, logs in, finds a mentor and books against the running handler.
//! `infra/local/up.sh` installs the package's pinned npm dependencies.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::process::Command;

use crate::helpers::{Expect, spawn_app};

const REGENERATE: &str = "the committed client is out of date: run `npm run generate` in shared/api-client and commit openapi.json and src/schema.d.ts";

fn package() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/api-client");
    assert!(
        dir.join("node_modules/openapi-fetch").exists(),
        "run infra/local/up.sh first (it installs {})",
        dir.display()
    );
    dir
}

/// A fresh folder under the system's temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("cc-api-client-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a command in the package folder, failing with its output unless it succeeds.
async fn run(command: &mut Command, what: &str) -> String {
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .unwrap_or_else(|_| panic!("{what} finishes within 120 s"))
        .unwrap_or_else(|error| panic!("start {what}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}

#[tokio::test]
async fn the_committed_document_and_types_are_what_the_handler_serves() {
    let dir = package();
    let app = spawn_app().await;
    let served = app
        .get("/api/openapi.json", None)
        .await
        .expect_status(StatusCode::OK)
        .await;
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("openapi.json")).unwrap())
            .expect("openapi.json is JSON");
    assert!(served == committed, "{REGENERATE} (openapi.json differs)");

    let generated = Scratch::new();
    let types = generated.0.join("schema.d.ts");
    run(
        Command::new(dir.join("node_modules/.bin/openapi-typescript"))
            .arg("openapi.json")
            .arg("--output")
            .arg(&types)
            .current_dir(&dir),
        "openapi-typescript",
    )
    .await;
    let expected = std::fs::read_to_string(&types).unwrap();
    let committed_types = std::fs::read_to_string(dir.join("src/schema.d.ts")).unwrap();
    assert!(
        expected == committed_types,
        "{REGENERATE} (src/schema.d.ts differs)"
    );
}

#[tokio::test]
async fn the_typed_client_signs_up_logs_in_finds_a_mentor_and_books() {
    let dir = package();
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _) = app.open_mentor("typed@mentors.example", &admin).await;
    let student_email = "typed-client@students.example";
    let book_date = (chrono::Utc::now() + chrono::Duration::days(2)).date_naive();

    // Compiled strictly, test included: a type that no longer fits the API fails here.
    let out_dir = Scratch::new();
    run(
        Command::new(dir.join("node_modules/.bin/tsc"))
            .args(["-p", ".", "--outDir"])
            .arg(&out_dir.0)
            .current_dir(&dir),
        "tsc",
    )
    .await;
    // The compiled ES modules import openapi-fetch: resolve it from the package's node_modules.
    std::os::unix::fs::symlink(dir.join("node_modules"), out_dir.0.join("node_modules")).unwrap();
    std::fs::copy(dir.join("package.json"), out_dir.0.join("package.json")).unwrap();
    let report = run(
        Command::new("node")
            .args(["--test", "--test-reporter=tap", "test/"])
            .current_dir(&out_dir.0)
            .env("API_BASE_URL", app.url(""))
            .env("MENTOR_ID", mentor_id.to_string())
            .env("STUDENT_EMAIL", student_email)
            .env("BOOK_DATE", book_date.to_string()),
        "node --test",
    )
    .await;

    assert!(
        report.contains("# pass 2") && report.contains("# fail 0"),
        "{report}"
    );
    let (status, bookings): (String, i64) = sqlx::query_as(
        r#"SELECT min(b.status::text), count(*) FROM bookings b
           JOIN users u ON u.user_id = b.student_id WHERE u.email = $1"#,
    )
    .bind(student_email)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((status.as_str(), bookings), ("confirmed", 1));
}

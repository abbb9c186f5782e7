//! The OpenAPI document against the running handler, by schemathesis: every operation, as a
//! student, a mentor and an admin, with generated valid and invalid input. No answer may be a
//! server error or differ from the schema the document gives for its status.

use std::time::Duration;

use crate::helpers::*;

/// What one role's run may take at most (its examples are bounded; this stops a hang).
const RUN_LIMIT: Duration = Duration::from_secs(300);

#[tokio::test]
#[ignore = "needs schemathesis: `bash infra/local/test.sh` installs it and runs this"]
async fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let schemathesis = std::env::var("SCHEMATHESIS")
        .expect("SCHEMATHESIS names the schemathesis binary (infra/local/test.sh sets it)");
    let app = app_with_hub().await;
    let (_, admin) = app.admin().await;
    let (_, mentor) = app.open_mentor("fuzzed-mentor@example.com", &admin).await;
    let (_, student) = app.student("fuzzed-student@example.com").await;
    let schema = app.url("/api/openapi.json");
    let reports = std::env::temp_dir().join(format!("schemathesis-{}", std::process::id()));

    // Schemathesis keeps a cache in its working directory: the reports folder, not the checkout.
    std::fs::create_dir_all(&reports).expect("create the reports folder");
    let mut failures = Vec::new();
    for (role, token) in [
        ("student", &student),
        ("mentor", &mentor),
        ("admin", &admin),
    ] {
        let run = tokio::process::Command::new(&schemathesis)
            .args(["run", &schema])
            .args(["--checks", "not_a_server_error,response_schema_conformance"])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--phases", "examples,coverage,fuzzing"])
            // One worker: CPython 3.11's AST module races between threads ("AST constructor
            // recursion depth mismatch"), which Hypothesis meets when it describes a strategy.
            .args(["--max-examples", "25", "--workers", "1", "--seed", "19"])
            .args(["--no-shrink", "--suppress-health-check", "all"])
            // Ending the session would leave the rest of the run signed out.
            .args(["--exclude-path", "/api/auth/logout"])
            .arg("--report-dir")
            .arg(reports.join(role))
            .args(["--report", "junit"])
            .env("NO_COLOR", "1")
            .current_dir(&reports)
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(RUN_LIMIT, run)
            .await
            .unwrap_or_else(|_| panic!("schemathesis as {role} ran over {RUN_LIMIT:?}"))
            .expect("start schemathesis");
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            failures.push(format!(
                "as {role} ({}):\n{stdout}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        } else if !stdout.contains("passed") || stdout.contains("Selected: 0/") {
            failures.push(format!("as {role}, nothing was tested:\n{stdout}"));
        }
    }
    assert!(
        failures.is_empty(),
        "schemathesis found failures (reports in {}) {}",
        reports.display(),
        failures.join("\n")
    );
    // Kept only when something failed, to read.
    let _ = std::fs::remove_dir_all(&reports);
}

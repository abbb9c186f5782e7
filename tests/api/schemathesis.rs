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

/// Checks every schema's example against its schema, with the JSON Schema validator the
/// schemathesis environment carries (`jsonschema_rs`); prints one line per misfit.
const CHECK_EXAMPLES: &str = r##"
import json, sys
import jsonschema_rs
document = json.load(sys.stdin)
schemas = document["components"]["schemas"]
checked = 0
for name, schema in schemas.items():
    examples = ([schema["example"]] if "example" in schema else []) + schema.get("examples", [])
    if not examples or not isinstance(schema.get("properties"), dict):
        continue
    validator = jsonschema_rs.validator_for({"$ref": "#/components/schemas/" + name, "components": document["components"]})
    for example in examples:
        checked += 1
        for error in validator.iter_errors(example):
            print(f"{name}: {error.message} at {list(error.instance_path)}")
print(f"checked {checked}")
"##;

#[tokio::test]
#[ignore = "needs schemathesis's environment: `bash infra/local/test.sh` installs it and runs this"]
async fn every_example_in_the_document_fits_its_schema() {
    let schemathesis = std::path::PathBuf::from(
        std::env::var("SCHEMATHESIS")
            .expect("SCHEMATHESIS names the schemathesis binary (infra/local/test.sh sets it)"),
    );
    let python = schemathesis.with_file_name("python");
    let document = handler::openapi().to_json().unwrap();
    let mut child = tokio::process::Command::new(&python)
        .args(["-c", CHECK_EXAMPLES])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the schemathesis environment's python");
    let mut stdin = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, document.as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    let report = String::from_utf8_lossy(&output.stdout);

    assert!(output.status.success(), "{report}");
    let checked: usize = report
        .lines()
        .last()
        .and_then(|line| line.strip_prefix("checked "))
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("{report}"));
    // The main flows' requests and answers, at least: signup, login, availability, booking.
    assert!(checked >= 6, "{report}");
    assert_eq!(report.lines().count(), 1, "examples that misfit:\n{report}");
}

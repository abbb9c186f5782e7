//! Health probes, OpenAPI, and the headers every response carries.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn liveness_and_readiness_answer() {
    let app = spawn_app().await;

    let live = app
        .get("/api/health", None)
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(live["status"], "ok");
    let ready = app
        .get("/api/health/ready", None)
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["postgres"], "up");
    assert_eq!(ready["cache"], "redis");
    assert_eq!(ready["realtime"], "off");
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_app().await;

    let document = app
        .get("/api/openapi.json", None)
        .await
        .expect_status(StatusCode::OK)
        .await;

    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/api/auth/signup",
        "/api/auth/login",
        "/api/auth/me",
        "/api/auth/2fa/verify",
        "/api/admin/users/{user_id}/deactivate",
        "/api/health/ready",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from {:?}",
            paths.keys()
        );
    }
    assert!(document["components"]["securitySchemes"]["session"].is_object());
    let mut unresolved = Vec::new();
    unresolved_references(&document, &document, &mut unresolved);
    assert!(
        unresolved.is_empty(),
        "references to nothing: {unresolved:?}"
    );
    let undocumented = undocumented_operations(paths);
    assert!(
        undocumented.is_empty(),
        "operations a frontend developer can't read: {undocumented:#?}"
    );
}

/// Operations without a short summary (a title: one line, at most 60 characters, no final
/// period) and a description, with an operation id another operation has too (client
/// generators name functions and types after it), needing a session without listing 401, with
/// a 4xx response that names no error code, or with an error response that describes no body
/// (most are the `Problem`).
fn undocumented_operations(paths: &serde_json::Map<String, Value>) -> Vec<String> {
    let mut found = Vec::new();
    let mut operation_ids = std::collections::HashMap::new();
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            let name = format!("{} {path}", method.to_uppercase());
            let id = operation["operationId"].as_str().unwrap_or_default();
            if let Some(other) = operation_ids.insert(id.to_owned(), name.clone()) {
                found.push(format!("{name}: operation id {id:?} also names {other}"));
            }
            let summary = operation["summary"].as_str().unwrap_or_default();
            if summary.is_empty()
                || summary.len() > 60
                || summary.contains('\n')
                || summary.ends_with('.')
            {
                found.push(format!("{name}: summary {summary:?}"));
            }
            if operation["description"].as_str().is_none_or(str::is_empty) {
                found.push(format!("{name}: no description"));
            }
            let responses = operation["responses"].as_object().unwrap();
            let signed_in = operation["security"]
                .as_array()
                .is_some_and(|requirements| !requirements.is_empty());
            if signed_in && !responses.contains_key("401") {
                found.push(format!("{name}: needs a session but lists no 401"));
            }
            for (status, response) in responses {
                let described = response["description"].as_str().unwrap_or_default();
                // A code is a word of capitals and underscores, such as `SLOT_TAKEN`.
                let names_a_code = described
                    .split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
                    .any(|word| word.len() >= 4);
                if status.starts_with('4') && !names_a_code {
                    found.push(format!("{name}: {status} names no error code"));
                }
                let has_body = response["content"]
                    .as_object()
                    .is_some_and(|content| !content.is_empty());
                if (status.starts_with('4') || status.starts_with('5')) && !has_body {
                    found.push(format!("{name}: {status} has no body"));
                }
            }
        }
    }
    found
}

/// Every `$ref` under `node` that names nothing in `document`: a client generator or a schema
/// fuzzer skips what such a reference describes.
fn unresolved_references(document: &Value, node: &Value, found: &mut Vec<String>) {
    match node {
        Value::Object(fields) => {
            if let Some(Value::String(reference)) = fields.get("$ref") {
                let target = reference
                    .strip_prefix('#')
                    .and_then(|pointer| document.pointer(pointer));
                if target.is_none() {
                    found.push(reference.clone());
                }
            }
            for value in fields.values() {
                unresolved_references(document, value, found);
            }
        }
        Value::Array(items) => {
            for item in items {
                unresolved_references(document, item, found);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn responses_carry_security_headers_and_a_request_id() {
    let app = spawn_app().await;

    let response = app
        .client
        .get(app.url("/api/health"))
        .header("x-forwarded-proto", "https")
        .header("origin", "https://app.codeconnect.example")
        .send()
        .await
        .unwrap();

    let headers = response.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(
        headers["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
    assert!(!headers["x-request-id"].is_empty());
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.codeconnect.example"
    );
    assert_eq!(headers["access-control-allow-credentials"], "true");

    let foreign = app
        .client
        .get(app.url("/api/health"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert!(foreign.headers().get("strict-transport-security").is_none());
}

#[tokio::test]
async fn a_request_id_is_echoed_only_when_it_is_a_short_token() {
    let app = spawn_app().await;
    let id_for = |sent: String| {
        let app = &app;
        async move {
            let response = app
                .client
                .get(app.url("/api/health"))
                .header("x-request-id", sent)
                .send()
                .await
                .unwrap();
            response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    let mine = "frontend-7f3a.42:b_c".to_owned();
    assert_eq!(id_for(mine.clone()).await, mine);
    for hostile in [
        "<script>alert(1)</script>".to_owned(),
        "x".repeat(20 * 1024),
        "a b".to_owned(),
    ] {
        let answered = id_for(hostile.clone()).await;
        assert_ne!(answered, hostile);
        assert!(
            uuid::Uuid::parse_str(&answered).is_ok(),
            "a minted id: {answered}"
        );
    }
}

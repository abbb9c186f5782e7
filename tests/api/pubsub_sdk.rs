//! Microsoft's own npm SDKs against our local Web PubSub hub, unmodified: `@azure/web-pubsub`
//! (server REST client), `@azure/web-pubsub-client` (WebSocket client, reliable protocol) and
//! `@azure/web-pubsub-express` as the hub's event handler, which parses every CloudEvent the hub
//! sends. The checks live in `tests/pubsub-sdk/check.mjs`; `infra/local/up.sh` installs the
//! pinned packages.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use shared::pubsub::hub::{HubConfig, serve};

#[tokio::test]
async fn microsofts_sdks_work_against_the_local_hub() {
    let sdk = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pubsub-sdk");
    assert!(
        sdk.join("node_modules/@azure/web-pubsub-client").exists(),
        "run infra/local/up.sh first (it installs {})",
        sdk.display()
    );
    let handler_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let key = "c2RrLWNoZWNrLWtleS0xMjM0NTY3ODkwYWJjZGVm";
    tokio::spawn(serve(
        listener,
        HubConfig {
            key: key.into(),
            hub: "sdk".into(),
            event_handler: Some(format!("http://127.0.0.1:{handler_port}/eventhandler")),
        },
    ));
    let run = tokio::process::Command::new("node")
        .arg("check.mjs")
        .current_dir(&sdk)
        .env("HUB_ENDPOINT", &endpoint)
        .env("HUB_KEY", key)
        .env("HUB_NAME", "sdk")
        .env("HANDLER_PORT", handler_port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("the SDK checks finish within 90 s")
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("all checks passed"),
        "SDK checks failed:\n{stdout}\n{stderr}"
    );
}

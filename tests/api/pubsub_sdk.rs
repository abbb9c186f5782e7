//! Microsoft's own npm SDKs against our local Web PubSub hub in Entra mode (local auth off, as
//! Bicep deploys the service), unmodified: `@azure/web-pubsub` (server REST client with a token
//! credential over the local issuer's managed-identity endpoint), `@azure/web-pubsub-client`
//! (WebSocket client, reliable protocol, URLs from `:generateToken`) and
//! `@azure/web-pubsub-express` as the hub's event handler, which parses every CloudEvent the hub
//! sends. The checks live in `tests/pubsub-sdk/check.mjs`; `infra/local/up.sh` installs the
//! pinned packages.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use azure_clients::entra::{LocalIssuer, ManagedIdentity};
use platform::config::ExposeSecret;
use webpubsub_hub::{EventHandler, HubConfig, LOCAL_EVENTS_AUDIENCE, REST_AUDIENCE, serve};

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
    let hub_port = listener.local_addr().unwrap().port();
    let issuer = LocalIssuer::spawn().await.unwrap();
    let ManagedIdentity::Endpoint {
        url: identity_endpoint,
        secret: identity_header,
    } = issuer.app_identity()
    else {
        unreachable!("the local issuer serves an identity endpoint")
    };
    tokio::spawn(serve(
        listener,
        HubConfig {
            hub: "sdk".into(),
            client_key: "c2RrLWNoZWNrLWtleS0xMjM0NTY3ODkwYWJjZGVm".into(),
            rest_callers: Some(issuer.rules(REST_AUDIENCE, issuer.app_principal_id())),
            event_handler: Some(EventHandler {
                url: format!("http://127.0.0.1:{handler_port}/eventhandler"),
                resource: LOCAL_EVENTS_AUDIENCE.into(),
                issuer: issuer.clone(),
                principal_id: uuid::Uuid::new_v4().to_string(),
            }),
        },
    ));
    // The SDKs send bearer tokens over HTTPS only, as Azure's endpoint is.
    let front = crate::tls_front::tls_front(hub_port).await;
    let endpoint = format!("https://127.0.0.1:{}", front.port);
    let run = tokio::process::Command::new("node")
        // The client SDK registers an ack before sending; over TLS a refusal's ack can arrive
        // before the send completes and rejects a promise it awaits a moment later. Node's
        // default would end the process on that (handled) rejection.
        .arg("--unhandled-rejections=warn")
        .arg("check.mjs")
        .current_dir(&sdk)
        .env("HUB_ENDPOINT", &endpoint)
        .env("NODE_EXTRA_CA_CERTS", &front.certificate_file)
        .env("IDENTITY_ENDPOINT", &identity_endpoint)
        .env("IDENTITY_HEADER", identity_header.expose_secret())
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

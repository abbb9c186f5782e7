//! Application Insights' ingestion endpoint, stood in for by a real local HTTP server, and the
//! test binary's telemetry exported to it. A process installs one exporter, so every app of the
//! binary reports here; tests find their own items by operation id (the trace they started).
//!
//! The stand-in accepts what Azure Monitor accepts with local auth off: `POST /v2/track` with a
//! bearer token for `https://monitor.azure.com` from the app's identity (checked against the
//! local issuer's keys, tenant and principal), a gzipped JSON array of envelopes with the
//! connection string's key, each `name`, `time`, `tags` and `data.baseType`/`baseData`. Anything
//! else is refused and kept in `refusals`.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use azure_clients::entra::{self, LocalIssuer, TokenValidator};
use platform::telemetry::{Export, Telemetry};
use serde_json::{Value, json};

use crate::tls_front::tls_front;

const INSTRUMENTATION_KEY: &str = "00000000-0000-4000-8000-0000000000a1";
const AUDIENCE: &str = "https://monitor.azure.com";

/// A request or dependency item, as ingested.
#[derive(Debug, Clone)]
pub struct Item {
    /// `RequestData` or `RemoteDependencyData`.
    pub base_type: String,
    pub name: String,
    pub operation_id: String,
    pub parent_id: Option<String>,
    pub id: Option<String>,
    /// A dependency's type (`postgresql`, `redis`, `HTTP`).
    pub dependency_type: Option<String>,
    pub response_code: Option<String>,
}

#[derive(Default)]
struct Received {
    items: Vec<Item>,
    /// Sum of every exported value per metric name and properties.
    metrics: BTreeMap<(String, BTreeMap<String, String>), f64>,
    refusals: Vec<String>,
}

pub struct Ingestion {
    validator: TokenValidator,
    received: Mutex<Received>,
}

/// The binary's telemetry, installed once: logs only with `TEST_LOG`, traces and metrics (every
/// half second) to the stand-in. It runs on a runtime of its own, since each test's ends with it.
pub fn telemetry() -> Arc<Ingestion> {
    static INSTALLED: OnceLock<(Arc<Ingestion>, Option<Telemetry>)> = OnceLock::new();
    let (ingestion, _) = INSTALLED.get_or_init(|| {
        std::thread::spawn(|| {
            let runtime = Box::leak(Box::new(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("telemetry runtime"),
            ));
            runtime.block_on(install())
        })
        .join()
        .expect("install telemetry")
    });
    ingestion.clone()
}

async fn install() -> (Arc<Ingestion>, Option<Telemetry>) {
    let issuer = LocalIssuer::spawn().await.expect("local issuer");
    let ingestion = Arc::new(Ingestion {
        validator: TokenValidator::new(issuer.rules(AUDIENCE, issuer.app_principal_id())),
        received: Mutex::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the ingestion stand-in");
    // The exporter sends over HTTPS only, as Azure's endpoint is.
    let front = tls_front(listener.local_addr().unwrap().port()).await;
    let endpoint = format!("https://127.0.0.1:{}/", front.port);
    let certificate = std::fs::read(&front.certificate_file).expect("the front's certificate");
    let router = Router::new()
        .route("/v2/track", post(track))
        .with_state(ingestion.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let filter = if std::env::var("TEST_LOG").is_ok() {
        "info"
    } else {
        "off"
    };
    let export = Export {
        connection_string: format!(
            "InstrumentationKey={INSTRUMENTATION_KEY};IngestionEndpoint={endpoint}"
        ),
        credential: entra::credential(&issuer.app_identity()).expect("app credential"),
        metric_interval: Duration::from_millis(500),
        traces_per_second: 10,
        http: reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&certificate).unwrap())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        runtime: tokio::runtime::Handle::current(),
    };
    let telemetry = platform::telemetry::init(filter, Some(export)).expect("telemetry");
    (ingestion, telemetry)
}

impl Ingestion {
    fn received(&self) -> std::sync::MutexGuard<'_, Received> {
        self.received.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The request and dependency items of one trace.
    pub fn operation(&self, trace_id: &str) -> Vec<Item> {
        let received = self.received();
        received
            .items
            .iter()
            .filter(|item| item.operation_id == trace_id)
            .cloned()
            .collect()
    }

    /// The sum of every value exported for metric `name` with these properties (among others).
    pub fn metric(&self, name: &str, properties: &[(&str, &str)]) -> f64 {
        self.received()
            .metrics
            .iter()
            .filter(|((metric, held), _)| {
                metric == name
                    && properties
                        .iter()
                        .all(|(key, value)| held.get(*key).map(String::as_str) == Some(*value))
            })
            .map(|(_, value)| value)
            .sum()
    }

    pub fn refusals(&self) -> Vec<String> {
        self.received().refusals.clone()
    }

    fn refuse(&self, status: StatusCode, reason: String) -> Response {
        self.received().refusals.push(reason.clone());
        (status, reason).into_response()
    }
}

async fn track(
    State(ingestion): State<Arc<Ingestion>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    if let Err(error) = ingestion.validator.validate_header(authorization).await {
        return ingestion.refuse(StatusCode::UNAUTHORIZED, format!("token: {error:?}"));
    }
    if headers.get(header::CONTENT_ENCODING).map(|v| v.as_bytes()) != Some(b"gzip") {
        return ingestion.refuse(StatusCode::BAD_REQUEST, "not gzip".into());
    }
    let mut text = String::new();
    if flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .is_err()
    {
        return ingestion.refuse(StatusCode::BAD_REQUEST, "gzip body unreadable".into());
    }
    let envelopes: Vec<Value> = match serde_json::from_str(&text) {
        Ok(envelopes) => envelopes,
        Err(error) => return ingestion.refuse(StatusCode::BAD_REQUEST, format!("json: {error}")),
    };
    for envelope in &envelopes {
        if let Err(problem) = ingestion.accept(envelope) {
            return ingestion.refuse(StatusCode::BAD_REQUEST, format!("{problem}: {envelope}"));
        }
    }
    let count = envelopes.len();
    axum::Json(json!({"itemsReceived": count, "itemsAccepted": count, "errors": []}))
        .into_response()
}

impl Ingestion {
    /// Checks one envelope's shape and keeps what the tests read.
    fn accept(&self, envelope: &Value) -> Result<(), &'static str> {
        let text = |value: &Value| value.as_str().map(str::to_owned);
        if envelope["iKey"] != INSTRUMENTATION_KEY {
            return Err("iKey is not the connection string's");
        }
        text(&envelope["name"]).ok_or("no name")?;
        text(&envelope["time"]).ok_or("no time")?;
        let tags = envelope["tags"].as_object().ok_or("no tags")?;
        let base_type = text(&envelope["data"]["baseType"]).ok_or("no baseType")?;
        let data = envelope["data"]["baseData"]
            .as_object()
            .ok_or("no baseData")?;
        let mut received = self.received();
        match base_type.as_str() {
            "RequestData" | "RemoteDependencyData" => received.items.push(Item {
                base_type,
                name: data.get("name").and_then(text).ok_or("no item name")?,
                operation_id: tags
                    .get("ai.operation.id")
                    .and_then(text)
                    .ok_or("no operation id")?,
                parent_id: tags.get("ai.operation.parentId").and_then(text),
                id: data.get("id").and_then(text),
                dependency_type: data.get("type").and_then(text),
                response_code: data
                    .get("responseCode")
                    .or_else(|| data.get("resultCode"))
                    .and_then(text),
            }),
            "MetricData" => {
                let properties: BTreeMap<String, String> = data
                    .get("properties")
                    .and_then(Value::as_object)
                    .map(|properties| {
                        properties
                            .iter()
                            .filter_map(|(key, value)| Some((key.clone(), text(value)?)))
                            .collect()
                    })
                    .unwrap_or_default();
                for metric in data
                    .get("metrics")
                    .and_then(Value::as_array)
                    .ok_or("no metrics")?
                {
                    let name = text(&metric["name"]).ok_or("no metric name")?;
                    let value = metric["value"].as_f64().ok_or("no metric value")?;
                    *received
                        .metrics
                        .entry((name, properties.clone()))
                        .or_default() += value;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

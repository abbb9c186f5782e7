//! Logs, traces and metrics. Called once by the handler (and once by the test harness).
//!
//! Logs are JSON lines, each carrying the OpenTelemetry trace and span id of the request it
//! belongs to (`openTelemetry.traceId` / `spanId`). The Functions host reads a custom handler's
//! stdout as Information and guesses a level for each stderr line from words in it ("warn" →
//! Warning; "error", "fail", "severe" → Error; anything else Information;
//! `WorkerProcess.ParseErrorMessageAndLog`). So info and below go to stdout, where an info line
//! that mentions a failure stays Information, and warnings and errors go to stderr, where the
//! JSON `"level":"WARN"` / `"level":"ERROR"` field gives the host the right word.
//!
//! Traces: every `tracing` span at info or above is an OpenTelemetry span (`otel.kind`,
//! `otel.name` and semantic-convention fields shape it); each SQL statement becomes a client
//! span of its own, and the pool's waits are measured ([`sqlx_events`]). With an Application Insights connection string they and the
//! [`metrics`] go to its ingestion endpoint with the app's Entra token ([`export`]); without one
//! nothing is sampled or sent, and the ids still tie a request's log lines together.

mod export;
pub mod metrics;
mod sampler;
mod sqlx_events;

use std::sync::Arc;
use std::time::Duration;

use azure_clients::entra::TokenCredential;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_application_insights::Exporter;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, Tracer};
use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, FilterFn};
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use export::EntraClient;
pub use export::{INGESTION_SCOPE, upload_client};

/// The role name Application Insights files this app's telemetry under.
const SERVICE_NAME: &str = "codeconnect-api";

/// Where traces and metrics go: Application Insights, authenticated with an Entra token.
pub struct Export {
    /// `APPLICATIONINSIGHTS_CONNECTION_STRING` (its `IngestionEndpoint` and key).
    pub connection_string: String,
    /// The app's identity; tokens for [`INGESTION_SCOPE`].
    pub credential: Arc<dyn TokenCredential>,
    /// How often metrics are sent.
    pub metric_interval: Duration,
    /// Traces that start here recorded per second, at most (see [`sampler`]).
    pub traces_per_second: u64,
    /// The client uploads go through ([`upload_client`], or one trusting a test certificate).
    pub http: reqwest::Client,
    /// The runtime uploads run on; it must outlive the telemetry.
    pub runtime: tokio::runtime::Handle,
}

/// The installed providers, to flush on shutdown.
pub struct Telemetry {
    tracer: SdkTracerProvider,
    meter: Option<SdkMeterProvider>,
}

impl Telemetry {
    /// Sends what is still buffered; called once the server has stopped.
    pub async fn shutdown(self) {
        // The providers block until their exporters finish, and those run on this runtime.
        let _ = tokio::task::spawn_blocking(move || {
            let _ = self.tracer.shutdown();
            if let Some(meter) = self.meter {
                let _ = meter.shutdown();
            }
        })
        .await;
    }
}

/// Installs logging at `filter` and, with `export`, trace and metric export. The first call
/// wins; later calls (tests, operator commands) change nothing and return `None`.
pub fn init(filter: &str, export: Option<Export>) -> anyhow::Result<Option<Telemetry>> {
    let resource = Resource::builder()
        .with_service_name(SERVICE_NAME)
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let exporter = export.as_ref().map(export::exporter).transpose()?;
    let tracer = tracer_provider(&resource, exporter.clone().zip(export.as_ref()));
    let meter = exporter.zip(export.as_ref()).map(|(exporter, export)| {
        SdkMeterProvider::builder()
            .with_resource(resource)
            .with_reader(
                PeriodicReader::builder(exporter)
                    .with_interval(export.metric_interval)
                    .build(),
            )
            .build()
    });
    if !install_subscriber(filter, tracer.tracer("codeconnect"), export.is_some()) {
        return Ok(None);
    }
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    if let Some(meter) = &meter {
        opentelemetry::global::set_meter_provider(meter.clone());
    }
    Ok(Some(Telemetry { tracer, meter }))
}

/// Spans exported in batches, traces sampled as [`sampler`] says; without export, created
/// unsampled (ids only, nothing recorded).
fn tracer_provider(
    resource: &Resource,
    export: Option<(Exporter<EntraClient>, &Export)>,
) -> SdkTracerProvider {
    let tracer = SdkTracerProvider::builder().with_resource(resource.clone());
    match export {
        Some((exporter, export)) => tracer
            .with_sampler(Sampler::ParentBased(Box::new(sampler::PerSecond::new(
                export.traces_per_second,
            ))))
            .with_batch_exporter(exporter),
        None => tracer.with_sampler(Sampler::AlwaysOff),
    }
    .build()
}

/// The global subscriber: JSON logs at `filter`; spans at info and above as OpenTelemetry spans
/// (events only as warnings and errors: the rest are in the logs); sqlx's events while
/// `exporting` (without export they would make nothing, and listening for them makes sqlx
/// describe every statement). False when one was installed already.
fn install_subscriber(filter: &str, tracer: Tracer, exporting: bool) -> bool {
    let logs = json_logs(json_subscriber::JsonLayer::new(
        std::io::stderr
            .with_max_level(Level::WARN)
            .or_else(std::io::stdout),
    ))
    .with_filter(EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info")));
    let spans = tracing_opentelemetry::layer()
        .with_tracer(tracer.clone())
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_filter(
            FilterFn::new(|meta| {
                let most_detailed = if meta.is_span() {
                    Level::INFO
                } else {
                    Level::WARN
                };
                *meta.level() <= most_detailed
            })
            .with_max_level_hint(Level::INFO),
        );
    let sqlx = exporting.then(|| sqlx_events::SqlxEvents::new(tracer));
    let sqlx_installed = sqlx.as_ref().map(sqlx_events::SqlxEvents::installed_in);
    let installed = Registry::default()
        .with(logs)
        .with(spans)
        .with(sqlx.map(|sqlx| sqlx.with_filter(sqlx_events::targets())))
        .try_init()
        .is_ok();
    if let (true, Some(sqlx_installed)) = (installed, sqlx_installed) {
        tracing::dispatcher::get_default(sqlx_installed);
    }
    installed
}

/// The line format: time, level, target, the event's fields, the current span's fields and the
/// trace and span ids.
fn json_logs<S, W>(mut layer: json_subscriber::JsonLayer<S, W>) -> json_subscriber::JsonLayer<S, W>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    layer
        .with_timer("timestamp", tracing_subscriber::fmt::time::SystemTime)
        .with_level("level")
        .with_target("target")
        .with_flattened_event()
        .with_current_span("span")
        .with_opentelemetry_ids(true);
    layer
}

/// The trace context a request arrived with (`traceparent`, which the Functions host forwards),
/// to continue in its span.
pub fn remote_context(headers: &axum::http::HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&opentelemetry_http::HeaderExtractor(headers))
    })
}

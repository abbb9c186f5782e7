//! The app's metrics, one instrument each, made on first use from the meter provider [`super::init`]
//! installed (none without export: then every record is a no-op).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock};
use std::time::Duration;

use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, ObservableGauge};
use opentelemetry::{KeyValue, StringValue, Value};

/// Every instrument of the app.
pub struct Metrics {
    requests: Histogram<f64>,
    cache_lookups: Counter<u64>,
    pool_acquire_wait: Histogram<f64>,
    hashing_wait: Histogram<f64>,
    outbox_pending: Gauge<u64>,
    outbox_oldest_age: Gauge<f64>,
    timer_runs: Histogram<f64>,
    upload_bytes: Counter<u64>,
}

fn meter() -> Meter {
    opentelemetry::global::meter("codeconnect")
}

/// The instruments.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics::new(&meter()));
    &METRICS
}

/// Reports `read()` as the gauge `name` at every export, for the rest of the process's life.
pub fn observe(
    name: &'static str,
    description: &'static str,
    read: impl Fn() -> u64 + Send + Sync + 'static,
) {
    static OBSERVED: Mutex<Vec<ObservableGauge<u64>>> = Mutex::new(Vec::new());
    let gauge = meter()
        .u64_observable_gauge(name)
        .with_description(description)
        .with_callback(move |observer| observer.observe(read(), &[]))
        .build();
    OBSERVED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(gauge);
}

impl Metrics {
    fn new(meter: &Meter) -> Self {
        Self {
            requests: meter
                .f64_histogram("http.server.request.duration")
                .with_unit("s")
                .with_description("Requests by route, method and status")
                .build(),
            cache_lookups: meter
                .u64_counter("cache.lookups")
                .with_description("Cache reads by cache and result (hit or miss)")
                .build(),
            pool_acquire_wait: meter
                .f64_histogram("db.client.connection.wait_time")
                .with_unit("s")
                .with_description("Wait for a database connection from the pool")
                .build(),
            hashing_wait: meter
                .f64_histogram("auth.hashing.wait_time")
                .with_unit("s")
                .with_description("Wait of a password hash for a hashing thread, by outcome")
                .build(),
            outbox_pending: meter
                .u64_gauge("outbox.pending")
                .with_description("E-mails waiting to be sent")
                .build(),
            outbox_oldest_age: meter
                .f64_gauge("outbox.oldest_pending_age")
                .with_unit("s")
                .with_description("Age of the oldest e-mail waiting to be sent")
                .build(),
            timer_runs: meter
                .f64_histogram("timer.duration")
                .with_unit("s")
                .with_description("Timer runs by timer and outcome")
                .build(),
            upload_bytes: meter
                .u64_counter("uploads.bytes")
                .with_unit("By")
                .with_description("Bytes of completed uploads by kind")
                .build(),
        }
    }

    pub fn request(&self, route: &str, method: &axum::http::Method, status: u16, took: Duration) {
        self.requests.record(
            took.as_secs_f64(),
            &[
                KeyValue::new("http.route", interned(route)),
                KeyValue::new("http.request.method", method_name(method)),
                KeyValue::new("http.response.status_code", i64::from(status)),
            ],
        );
    }

    /// A read of `key`: its cache is the key's first segment (`mentors`, `availability`, …).
    pub fn cache_lookup(&self, key: &str, hit: bool) {
        let cache = key.split(':').next().unwrap_or(key);
        self.cache_lookups.add(
            1,
            &[
                KeyValue::new("cache", interned(cache)),
                KeyValue::new("result", if hit { "hit" } else { "miss" }),
            ],
        );
    }

    pub fn pool_acquire(&self, waited: Duration) {
        self.pool_acquire_wait.record(waited.as_secs_f64(), &[]);
    }

    /// A password job's wait in the queue; `served` false when it was refused as busy.
    pub fn hashing(&self, waited: Duration, served: bool) {
        let outcome = if served { "served" } else { "busy" };
        self.hashing_wait
            .record(waited.as_secs_f64(), &[KeyValue::new("outcome", outcome)]);
    }

    pub fn outbox(&self, pending: u64, oldest_age: Duration) {
        self.outbox_pending.record(pending, &[]);
        self.outbox_oldest_age.record(oldest_age.as_secs_f64(), &[]);
    }

    pub fn timer_run(&self, timer: &str, outcome: &'static str, took: Duration) {
        self.timer_runs.record(
            took.as_secs_f64(),
            &[
                KeyValue::new("timer", interned(timer)),
                KeyValue::new("outcome", outcome),
            ],
        );
    }

    pub fn upload(&self, kind: &str, bytes: u64) {
        self.upload_bytes
            .add(bytes, &[KeyValue::new("kind", interned(kind))]);
    }
}

/// `text` as an attribute value, allocated once per distinct text (routes, cache and timer
/// names: a few dozen), so recording a measurement allocates nothing.
fn interned(text: &str) -> Value {
    static SEEN: LazyLock<RwLock<HashMap<Box<str>, Arc<str>>>> = LazyLock::new(RwLock::default);
    /// More distinct texts than the app has routes and names: stop keeping them.
    const MOST: usize = 1024;
    let seen = SEEN.read().unwrap_or_else(PoisonError::into_inner);
    if let Some(value) = seen.get(text) {
        return StringValue::from(value.clone()).into();
    }
    drop(seen);
    let mut seen = SEEN.write().unwrap_or_else(PoisonError::into_inner);
    if seen.len() >= MOST {
        return Value::from(text.to_owned());
    }
    let value = seen.entry(text.into()).or_insert_with(|| Arc::from(text));
    StringValue::from(value.clone()).into()
}

/// The method's name as OpenTelemetry's conventions spell it (`_OTHER` for any other).
fn method_name(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "_OTHER",
    }
}

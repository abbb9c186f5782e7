//! Structured JSON logs. Called once by the handler (and once by the test harness).

use tracing_subscriber::EnvFilter;

/// Installs the global JSON subscriber; later calls are no-ops.
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // A second call (tests) finds a subscriber installed already; that is fine.
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

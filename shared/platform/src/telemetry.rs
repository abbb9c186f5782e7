//! Structured JSON logs. Called once by the handler (and once by the test harness).
//!
//! The Functions host reads a custom handler's stdout as Information and guesses a level for
//! each stderr line from words in it ("warn" → Warning; "error", "fail", "severe" → Error;
//! anything else Information; `WorkerProcess.ParseErrorMessageAndLog`). So info and below go
//! to stdout, where an info line that mentions a failure stays Information, and warnings and
//! errors go to stderr, where the JSON `"level":"WARN"` / `"level":"ERROR"` field gives the host
//! the right word.

use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// Installs the global JSON subscriber; later calls are no-ops.
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let writer = std::io::stderr
        .with_max_level(Level::WARN)
        .or_else(std::io::stdout);
    // A second call (tests) finds a subscriber installed already; that is fine.
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .try_init();
}

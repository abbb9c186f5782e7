//! `handler replay`: the fitting ceiling of the load tests' discovery phase. It captures the
//! answers of a running handler to the given paths once, then serves them from memory behind
//! the handler's own request path (the HTTP loop, the middleware, the request budgets), so a
//! load test comparing the two measures what the handler adds beyond its caches.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use axum::http::header;
use platform::config::Config;

use crate::routes::Replayed;

/// Captures `source`'s answers to the paths listed in `paths_file` (one per line, with their
/// queries) and serves them until SIGTERM.
pub async fn replay(config: Config, source: &str, paths_file: &Path) -> anyhow::Result<()> {
    let paths = std::fs::read_to_string(paths_file)
        .with_context(|| format!("read {}", paths_file.display()))?;
    let client = reqwest::Client::new();
    let mut responses = HashMap::new();
    for path in paths.lines().filter(|line| !line.is_empty()) {
        let response = client
            .get(format!("{source}{path}"))
            .send()
            .await?
            .error_for_status()
            .with_context(|| format!("capture {path}"))?;
        let header = |name| response.headers().get(name).cloned();
        let replayed = Replayed {
            content_type: header(header::CONTENT_TYPE),
            cache_control: header(header::CACHE_CONTROL),
            etag: header(header::ETAG),
            body: Default::default(),
        };
        let body = response.bytes().await?;
        responses.insert(path.to_owned(), Replayed { body, ..replayed });
    }
    let responses = Arc::new(responses);
    let app = crate::build_with(config, |state| {
        crate::routes::replay_router(state, responses)
    })
    .await?;
    tracing::info!(port = app.port(), "replaying");
    app.run().await.context("serve")
}

//! `--base-url`: the discovery phase against a deployment, for the last deploy step. Only
//! public, read-only calls (the mentor list with and without filters, a mentor's detail and
//! availability), no account and no seeding; bounded to 200 connections and 120 seconds, and
//! never the default. The deployment's per-address budget applies: a `429` is a refusal the
//! run expects, and its user waits `Retry-After` (at most 5 s) as a client would. Prints one
//! line; nothing is written.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::Value;
use uuid::Uuid;

use crate::Options;
use crate::phases::{self, StepResult, VirtualUser, http::discovery_url};

pub const MAX_CONNECTIONS: usize = 200;
pub const MAX_SECONDS: u64 = 120;

const RATE_LIMITED: &str = "429 over the address's budget (waited Retry-After)";
const LONGEST_WAIT: Duration = Duration::from_secs(5);

struct Reader {
    client: reqwest::Client,
    base: String,
    mentors: Arc<Vec<Uuid>>,
    /// The last 429's `Retry-After`, waited before the next step.
    wait: Duration,
}

impl VirtualUser for Reader {
    async fn think(&mut self) {
        tokio::time::sleep(std::mem::take(&mut self.wait)).await;
    }

    async fn step(&mut self) -> StepResult {
        let url = discovery_url(&self.base, &self.mentors);
        let response = self.client.get(url).send().await;
        if let Ok(refused) = &response
            && refused.status() == reqwest::StatusCode::TOO_MANY_REQUESTS
        {
            let seconds = refused
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok()?.parse().ok())
                .unwrap_or(1);
            self.wait = Duration::from_secs(seconds).min(LONGEST_WAIT);
            return Ok(Some(RATE_LIMITED.to_owned()));
        }
        phases::expect_ok(response)
    }
}

pub async fn run(options: &Options, base: &str, client: reqwest::Client) -> anyhow::Result<()> {
    ensure!(
        options.connections <= MAX_CONNECTIONS && options.duration.as_secs() <= MAX_SECONDS,
        "against a deployment: at most {MAX_CONNECTIONS} connections for {MAX_SECONDS} s"
    );
    ensure!(
        !options.export_telemetry,
        "--export-telemetry is for local runs"
    );
    let base = base.trim_end_matches('/').to_owned();
    let listed: Value = client
        .get(format!("{base}/api/mentors?limit=100"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let mentors: Vec<Uuid> = listed["items"]
        .as_array()
        .context("the mentor list has no items")?
        .iter()
        .filter_map(|card| card["mentorId"].as_str()?.parse().ok())
        .collect();
    ensure!(!mentors.is_empty(), "{base} lists no mentor to read");
    eprintln!(
        "discovery against {base}: {} connections, {} s, {} mentors",
        options.connections,
        options.duration.as_secs(),
        mentors.len()
    );
    let mentors = Arc::new(mentors);
    let users = (0..options.connections)
        .map(|_| {
            Ok(Reader {
                client: client.clone(),
                base: base.clone(),
                mentors: mentors.clone(),
                wait: Duration::ZERO,
            })
        })
        .collect();
    let outcome = phases::closed_loop(options, &[], users).await;
    let percentile = |q| outcome.latency.value_at_quantile(q) as f64 / 1000.0;
    let limited = outcome.expected.get(RATE_LIMITED).copied().unwrap_or(0);
    let served = outcome.successes - limited;
    println!(
        "discovery: {} requests, {served} served ({:.0}/s), {limited} rate limited, errors {:?}; \
         p50 {:.1} ms, p97.5 {:.1} ms, p99 {:.1} ms",
        outcome.requests,
        served as f64 / outcome.elapsed.as_secs_f64(),
        outcome.errors,
        percentile(0.5),
        percentile(0.975),
        percentile(0.99),
    );
    ensure!(outcome.errors.is_empty(), "errors against {base}");
    Ok(())
}

//! The deployment as a client sees it: HTTP calls with a per-call timeout under a fixed
//! budget of requests, and the log of checklist steps.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::{Method, StatusCode};
use serde_json::Value;

const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// The API under `base_url`, at most `limit` requests (storage and read URLs included).
pub struct Api {
    client: reqwest::Client,
    base_url: String,
    sent: AtomicUsize,
    limit: AtomicUsize,
}

impl Api {
    pub fn new(base_url: &str, limit: usize) -> anyhow::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(CALL_TIMEOUT)
                .user_agent(concat!("codeconnect-smoke/", env!("CARGO_PKG_VERSION")))
                .build()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            sent: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit),
        })
    }

    /// Requests sent so far.
    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::Relaxed)
    }

    /// Raises the budget by `extra` (the clean-up's own allowance).
    pub fn allow(&self, extra: usize) {
        self.limit.fetch_add(extra, Ordering::Relaxed);
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<Value> {
        self.call(Method::GET, path, None, token, StatusCode::OK)
            .await
    }

    /// Sends `body` to `path` and expects `status`; the answer's JSON (`null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
        status: StatusCode,
    ) -> anyhow::Result<Value> {
        let (answered, json) = self.respond(method.clone(), path, body, token).await?;
        if answered != status {
            bail!(
                "{method} {path}: expected {status}, got {answered}{}",
                problem(&json)
            );
        }
        Ok(json)
    }

    /// Sends `body` to `path`: the status and the answer's JSON (`null` when there is none).
    pub async fn respond(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base_url));
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = self
            .send(request)
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// Sends a request built elsewhere (storage, read URLs) under the same budget.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        if self.sent.fetch_add(1, Ordering::Relaxed) >= self.limit.load(Ordering::Relaxed) {
            bail!("the request budget is spent");
        }
        // Errors drop their URL: a storage URL carries its SAS signature.
        request
            .send()
            .await
            .map_err(|error| error.without_url().into())
    }

    pub fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        self.client.request(method, url)
    }
}

/// `: CODE detail` from a problem+json answer, else nothing.
fn problem(json: &Value) -> String {
    match (json["code"].as_str(), json["detail"].as_str()) {
        (Some(code), Some(detail)) => format!(": {code} {detail}"),
        (Some(code), None) => format!(": {code}"),
        _ => String::new(),
    }
}

/// One checklist step and how it went.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: &'static str,
    /// What was seen, or why the step failed.
    pub outcome: Result<String, String>,
    pub elapsed: Duration,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (mark, text) = match &self.outcome {
            Ok(seen) => ("ok  ", seen),
            Err(why) => ("FAIL", why),
        };
        let millis = self.elapsed.as_millis();
        write!(f, "{mark} {:<22} {millis:>6} ms  {text}", self.name)
    }
}

/// The checklist stopped at a failed step.
#[derive(Debug)]
pub struct Stopped;

/// The steps taken so far, each handed to `print` as it ends.
pub struct Log<'p> {
    pub steps: Vec<Step>,
    print: &'p mut (dyn FnMut(&Step) + Send),
}

impl<'p> Log<'p> {
    pub fn new(print: &'p mut (dyn FnMut(&Step) + Send)) -> Self {
        Self {
            steps: Vec::new(),
            print,
        }
    }

    /// Runs one step: `work` answers with its result and a short note of what it saw.
    pub async fn step<T>(
        &mut self,
        name: &'static str,
        work: impl Future<Output = anyhow::Result<(T, String)>>,
    ) -> Result<T, Stopped> {
        let started = Instant::now();
        let result = work.await;
        let (value, outcome) = match result {
            Ok((value, seen)) => (Some(value), Ok(seen)),
            Err(error) => (None, Err(format!("{error:#}"))),
        };
        self.record(Step {
            name,
            outcome,
            elapsed: started.elapsed(),
        });
        value.ok_or(Stopped)
    }

    pub fn record(&mut self, step: Step) {
        (self.print)(&step);
        self.steps.push(step);
    }
}

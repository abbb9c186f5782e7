//! Azure Functions custom-handler contract: the function definitions each group ships, and the
//! invocation JSON the host POSTs to `/{functionName}` for timers (and the answer it expects).

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use tracing::Instrument;

use crate::error::Result;
use crate::state::AppState;
use crate::telemetry::metrics::metrics;

/// One Azure function: its folder name in the deployed app and its `function.json`.
#[derive(Debug, Clone, Copy)]
pub struct FunctionDefinition {
    pub name: &'static str,
    pub function_json: &'static str,
}

pub type TimerFuture = Pin<Box<dyn Future<Output = Result<Vec<String>>> + Send>>;

/// A timer function's code. It returns the lines the host logs for the invocation.
#[derive(Clone, Copy)]
pub struct TimerFunction {
    pub name: &'static str,
    pub run: fn(AppState, TimerInfo) -> TimerFuture,
}

impl TimerFunction {
    /// Runs the timer in a span of its own (inside the host's request span when the host fired
    /// it), logs how it ended and records its duration and outcome.
    pub async fn run_traced(&self, state: AppState, info: TimerInfo) -> Result<Vec<String>> {
        let span = tracing::info_span!(
            "timer",
            otel.name = format!("timer {}", self.name),
            function = self.name,
            past_due = info.is_past_due,
        );
        let started = std::time::Instant::now();
        let result = (self.run)(state, info).instrument(span.clone()).await;
        let outcome = match &result {
            Ok(logs) => {
                span.in_scope(|| tracing::info!(?logs, "timer finished"));
                "succeeded"
            }
            Err(error) => {
                span.in_scope(|| tracing::error!(error = %error, "timer failed"));
                "failed"
            }
        };
        metrics().timer_run(self.name, outcome, started.elapsed());
        result
    }
}

/// What the host POSTs for a non-HTTP invocation.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvocationRequest {
    #[serde(default)]
    pub data: Map<String, Value>,
    #[serde(default)]
    pub metadata: Value,
}

/// The host's `TimerInfo`, under the trigger binding's name in `Data`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TimerInfo {
    #[serde(default)]
    pub schedule_status: Option<ScheduleStatus>,
    #[serde(default)]
    pub is_past_due: bool,
}

/// `null` when the timer runs without the schedule monitor.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduleStatus {
    #[serde(default, deserialize_with = "lenient_time")]
    pub last: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub next: Option<DateTime<Utc>>,
}

/// The answer the host expects: 200, `application/json`, these three keys.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvocationResponse {
    pub outputs: Map<String, Value>,
    pub logs: Vec<String>,
    pub return_value: Value,
}

impl InvocationRequest {
    /// The timer binding's payload: the one `Data` entry that reads as a `TimerInfo`.
    pub fn timer_info(&self) -> Option<TimerInfo> {
        self.data
            .values()
            .filter(|value| value.is_object())
            .find_map(|value| serde_json::from_value(value.clone()).ok())
    }
}

/// The host may send `0001-01-01T00:00:00` without an offset (host issue #7391); anything
/// unparseable reads as "unknown" rather than failing the invocation.
fn lenient_time<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    let raw: Option<String> = Option::deserialize(deserializer)?;
    Ok(raw.and_then(|text| {
        DateTime::parse_from_rfc3339(&text)
            .map(|time| time.with_timezone(&Utc))
            .ok()
            .or_else(|| {
                NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f")
                    .ok()
                    .map(|naive| naive.and_utc())
            })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_timer_payload_parses_including_its_quirks() {
        let request: InvocationRequest = serde_json::from_str(
            r#"{
              "Data": { "myTimer": {
                "Schedule": { "AdjustForDST": true },
                "ScheduleStatus": { "Last": "0001-01-01T00:00:00", "Next": "2026-11-22T10:05:00+00:00",
                                    "LastUpdated": "2026-11-22T10:00:00.0153+00:00" },
                "IsPastDue": true } },
              "Metadata": { "sys": { "MethodName": "auth-cleanup", "UtcNow": "2026-11-22T10:05:00.01Z" } }
            }"#,
        )
        .unwrap();
        let timer = request.timer_info().unwrap();
        assert!(timer.is_past_due);
        let status = timer.schedule_status.unwrap();
        assert_eq!(
            status.last.unwrap().to_rfc3339(),
            "0001-01-01T00:00:00+00:00"
        );
        assert_eq!(
            status.next.unwrap().to_rfc3339(),
            "2026-11-22T10:05:00+00:00"
        );
    }

    #[test]
    fn a_null_schedule_status_is_accepted() {
        let request: InvocationRequest = serde_json::from_str(
            r#"{"Data":{"t":{"ScheduleStatus":null,"IsPastDue":false}},"Metadata":{}}"#,
        )
        .unwrap();
        assert!(request.timer_info().unwrap().schedule_status.is_none());
    }
}

//! Which traces that start here are recorded: at most a set number a second per instance, so
//! everything while traffic is light and a steady sample under load (recording every span of
//! 20,000 requests a second would cost the handler a share of its CPU and Application Insights
//! a bill by volume). A caller's decision (`traceparent`'s sampled flag, the Functions host's
//! own sampling) stands: this only decides for traces without one (`Sampler::ParentBased`).
//! Request counts and durations come from the metrics, which are never sampled.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult, ShouldSample};

#[derive(Debug, Clone)]
pub(super) struct PerSecond {
    limit: u64,
    started: Instant,
    /// The current second since `started` and the traces recorded in it.
    window: Arc<Mutex<(u64, u64)>>,
}

impl PerSecond {
    pub(super) fn new(limit: u64) -> Self {
        Self {
            limit,
            started: Instant::now(),
            window: Arc::default(),
        }
    }

    fn take(&self) -> bool {
        let second = self.started.elapsed().as_secs();
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        if window.0 != second {
            *window = (second, 0);
        }
        let sampled = window.1 < self.limit;
        window.1 += u64::from(sampled);
        sampled
    }
}

impl ShouldSample for PerSecond {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        _: TraceId,
        _: &str,
        _: &SpanKind,
        _: &[KeyValue],
        _: &[Link],
    ) -> SamplingResult {
        SamplingResult {
            decision: if self.take() {
                SamplingDecision::RecordAndSample
            } else {
                SamplingDecision::Drop
            },
            attributes: Vec::new(),
            trace_state: parent_context
                .map(|parent| parent.span().span_context().trace_state().clone())
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_the_limit_of_new_traces_a_second_are_recorded() {
        let sampler = PerSecond::new(3);
        let decisions: Vec<bool> = (0..10).map(|_| sampler.take()).collect();
        // The ten calls take microseconds: one second's window, unless it just turned.
        let recorded = decisions.iter().filter(|sampled| **sampled).count();
        assert!((3..=6).contains(&recorded), "{decisions:?}");
        assert!(decisions[..3].iter().all(|sampled| *sampled));
    }
}

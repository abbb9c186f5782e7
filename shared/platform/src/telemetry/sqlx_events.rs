//! What sqlx reports as events, as telemetry. Every statement it ran (target `sqlx::query`, at
//! debug, with its text and duration) becomes a finished client span under the span it ran in,
//! so every query of every route is traced without a wrapper at its call site (statements
//! outside any traced span, such as migrations, are skipped). Every connection taken from the
//! pool (`sqlx::pool::acquire`) records its wait.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::Tracer;
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Level, Subscriber};
use tracing_subscriber::Registry;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;

/// The target of sqlx's statement events.
const STATEMENTS: &str = "sqlx::query";
/// The target of the pool's acquire events.
const ACQUIRES: &str = "sqlx::pool::acquire";

/// The events this layer reads.
pub(super) fn targets() -> Targets {
    Targets::new()
        .with_target(STATEMENTS, Level::DEBUG)
        .with_target(ACQUIRES, Level::DEBUG)
}

pub(super) struct SqlxEvents {
    tracer: Tracer,
    /// The subscriber this layer is part of, to find the OpenTelemetry context of a span; set
    /// once it is installed ([`SqlxEvents::installed_in`]), since a filtered layer is not told.
    dispatch: Arc<OnceLock<WeakDispatch>>,
}

impl SqlxEvents {
    pub(super) fn new(tracer: Tracer) -> Self {
        Self {
            tracer,
            dispatch: Arc::default(),
        }
    }

    /// A hook to call with the installed subscriber.
    pub(super) fn installed_in(&self) -> impl Fn(&Dispatch) + use<> {
        let slot = self.dispatch.clone();
        move |dispatch| {
            let _ = slot.set(dispatch.downgrade());
        }
    }

    /// The OpenTelemetry context of the innermost traced span around `event`. Looked up in the
    /// registry itself: this layer's own context shows only the spans its filter lets through.
    fn parent(&self, event: &Event<'_>) -> Option<Context> {
        let dispatch = self.dispatch.get()?.upgrade()?;
        let registry = dispatch.downcast_ref::<Registry>()?;
        let id = match event.parent() {
            Some(id) => id.clone(),
            None => registry.current_span().id()?.clone(),
        };
        registry
            .span(&id)?
            .scope()
            .find_map(|span| tracing_opentelemetry::get_otel_context(&span.id(), &dispatch))
    }
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for SqlxEvents {
    fn on_event(&self, event: &Event<'_>, _: LayerContext<'_, S>) {
        if event.metadata().target() == ACQUIRES {
            let mut acquire = Acquire::default();
            event.record(&mut acquire);
            super::metrics::metrics().pool_acquire(acquire.waited);
            return;
        }
        // Unsampled (export off, or the caller's choice): nothing to record.
        let Some(parent) = self
            .parent(event)
            .filter(|parent| parent.span().span_context().is_sampled())
        else {
            return;
        };
        let mut statement = Statement::default();
        event.record(&mut statement);
        let end = SystemTime::now();
        let start = end.checked_sub(statement.elapsed).unwrap_or(end);
        let text = statement.text().to_owned();
        let mut span = self
            .tracer
            .span_builder(Cow::Owned(statement.summary))
            .with_kind(SpanKind::Client)
            .with_start_time(start)
            .with_attributes([
                KeyValue::new("db.system.name", "postgresql"),
                KeyValue::new("db.query.text", text),
                KeyValue::new("db.response.returned_rows", statement.rows as i64),
            ])
            .start_with_context(&self.tracer, &parent);
        span.end_with_timestamp(end);
    }
}

/// The fields of one statement event.
#[derive(Default)]
struct Statement {
    /// The first words, `…`-ended when cut.
    summary: String,
    /// The whole text when the summary is cut, else empty.
    full: String,
    elapsed: Duration,
    rows: u64,
}

impl Statement {
    fn text(&self) -> &str {
        match self.full.trim() {
            "" => &self.summary,
            full => full,
        }
    }
}

impl Visit for Statement {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => value.clone_into(&mut self.summary),
            "db.statement" => value.clone_into(&mut self.full),
            _ => {}
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.elapsed = Duration::try_from_secs_f64(value).unwrap_or_default();
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if matches!(field.name(), "rows_returned" | "rows_affected") {
            self.rows += value;
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

/// The fields of one acquire event.
#[derive(Default)]
struct Acquire {
    waited: Duration,
}

impl Visit for Acquire {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // sqlx spells it so.
        if field.name() == "aquired_after_secs" {
            self.waited = Duration::try_from_secs_f64(value).unwrap_or_default();
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

//! WebRTC quality data (product-spec §6): each participant's client posts samples every 3 s and
//! notable events (ICE restarts, degraded quality, fallback used) in batches; both are appended
//! in one statement per batch. Admins read a summary per connection type.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use platform::auth::{AdminUser, CurrentUser};
use platform::validation::Validator;
use platform::{AppState, Json, Query, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::participants;

const MAX_BATCH: usize = 100;
/// Round-trip time and jitter past a minute are not a call's measurements.
const MAX_DELAY_MS: f32 = 60_000.0;
/// 10 Gbit/s: above any link a class runs over.
const MAX_BITRATE_KBPS: f32 = 10_000_000.0;
/// How old a sample or event may be when it arrives (clients send batches as they go; one
/// held back by a reconnect is minutes late, not days), and how far ahead a skewed clock may be.
const MAX_AGE: Duration = Duration::hours(24);
const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);
const CONNECTION_TYPES: [&str; 4] = ["host", "srflx", "prflx", "relay"];

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatsBatch {
    booking_id: Uuid,
    /// 1 to 100 samples.
    samples: Vec<Sample>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// Within the last 24 hours (5 minutes ahead allowed for clock skew).
    recorded_at: DateTime<Utc>,
    /// The selected ICE candidate pair's type: `host`, `srflx`, `prflx` or `relay` (TURN).
    connection_type: String,
    /// Fraction 0 to 1.
    #[schema(minimum = 0, maximum = 1)]
    packet_loss: Option<f32>,
    /// 0 to 60,000.
    #[schema(minimum = 0, maximum = 60000)]
    rtt_ms: Option<f32>,
    /// 0 to 60,000.
    #[schema(minimum = 0, maximum = 60000)]
    jitter_ms: Option<f32>,
    /// 0 to 10,000,000 (10 Gbit/s).
    #[schema(minimum = 0, maximum = 10000000)]
    bitrate_in_kbps: Option<f32>,
    /// 0 to 10,000,000 (10 Gbit/s).
    #[schema(minimum = 0, maximum = 10000000)]
    bitrate_out_kbps: Option<f32>,
    /// 0 to 100.
    #[schema(minimum = 0, maximum = 100)]
    health_score: Option<f32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventBatch {
    booking_id: Uuid,
    /// 1 to 100 events.
    events: Vec<ClientEvent>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientEvent {
    /// Within the last 24 hours (5 minutes ahead allowed for clock skew).
    occurred_at: DateTime<Utc>,
    /// e.g. `ice_restart`, `quality_degraded`, `fallback_used` (lowercase, at most 50).
    kind: String,
    #[schema(value_type = Option<Object>)]
    detail: Option<Value>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// The last this many days, 1 to 90 (default 7).
    days: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    since: DateTime<Utc>,
    connection_types: Vec<ConnectionTypeSummary>,
    events: Vec<EventCount>,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionTypeSummary {
    connection_type: String,
    samples: i64,
    classes: i64,
    avg_packet_loss: Option<f64>,
    avg_rtt_ms: Option<f64>,
    avg_jitter_ms: Option<f64>,
    avg_health_score: Option<f64>,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct EventCount {
    kind: String,
    count: i64,
}

/// Report WebRTC statistics
///
/// A participant's client posts quality samples in batches (every 3 s in the product's client);
/// they feed the admin quality summary.
#[utoipa::path(
    post, path = "/webrtc/stats", tag = "video",
    security(("session" = [])),
    request_body = StatsBatch,
    responses((status = 202, description = "Stored"), (status = 403, description = "NOT_A_PARTICIPANT"), (status = 422, description = "VALIDATION_FAILED"))
)]
pub async fn post_stats(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(batch): Json<StatsBatch>,
) -> Result<StatusCode> {
    let mut validator = Validator::new();
    validator.check(
        (1..=MAX_BATCH).contains(&batch.samples.len()),
        "samples",
        "1 to 100 samples",
    );
    let now = Utc::now();
    for sample in &batch.samples {
        validator
            .check(
                recent(sample.recorded_at, now),
                "samples.recordedAt",
                "within the last 24 hours",
            )
            .check(
                CONNECTION_TYPES.contains(&sample.connection_type.as_str()),
                "samples.connectionType",
                "host, srflx, prflx or relay",
            );
        for (value, max, field, range) in [
            (
                sample.packet_loss,
                1.0,
                "samples.packetLoss",
                "a fraction from 0 to 1",
            ),
            (sample.rtt_ms, MAX_DELAY_MS, "samples.rttMs", "0 to 60000"),
            (
                sample.jitter_ms,
                MAX_DELAY_MS,
                "samples.jitterMs",
                "0 to 60000",
            ),
            (
                sample.bitrate_in_kbps,
                MAX_BITRATE_KBPS,
                "samples.bitrateInKbps",
                "0 to 10000000",
            ),
            (
                sample.bitrate_out_kbps,
                MAX_BITRATE_KBPS,
                "samples.bitrateOutKbps",
                "0 to 10000000",
            ),
            (
                sample.health_score,
                100.0,
                "samples.healthScore",
                "0 to 100",
            ),
        ] {
            validator.check(within(value, max), field, range);
        }
    }
    validator.finish()?;
    participants::booking_of(&state, batch.booking_id, user.user_id).await?;
    let column =
        |get: fn(&Sample) -> Option<f32>| batch.samples.iter().map(get).collect::<Vec<_>>();
    sqlx::query(
        r#"INSERT INTO webrtc_stats (booking_id, user_id, recorded_at, connection_type, packet_loss, rtt_ms,
                                     jitter_ms, bitrate_in_kbps, bitrate_out_kbps, health_score)
           SELECT $1, $2, * FROM unnest($3::timestamptz[], $4::text[], $5::real[], $6::real[], $7::real[],
                                        $8::real[], $9::real[], $10::real[])"#,
    )
    .bind(batch.booking_id)
    .bind(user.user_id)
    .bind(batch.samples.iter().map(|s| s.recorded_at).collect::<Vec<_>>())
    .bind(batch.samples.iter().map(|s| s.connection_type.clone()).collect::<Vec<_>>())
    .bind(column(|s| s.packet_loss))
    .bind(column(|s| s.rtt_ms))
    .bind(column(|s| s.jitter_ms))
    .bind(column(|s| s.bitrate_in_kbps))
    .bind(column(|s| s.bitrate_out_kbps))
    .bind(column(|s| s.health_score))
    .execute(&state.db)
    .await?;
    Ok(StatusCode::ACCEPTED)
}

/// Report WebRTC events
///
/// A participant's client posts notable events in batches: ICE restarts, degraded quality, the
/// fallback link used.
#[utoipa::path(
    post, path = "/webrtc/events", tag = "video",
    security(("session" = [])),
    request_body = EventBatch,
    responses((status = 202, description = "Stored"), (status = 403, description = "NOT_A_PARTICIPANT"), (status = 422, description = "VALIDATION_FAILED"))
)]
pub async fn post_events(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(batch): Json<EventBatch>,
) -> Result<StatusCode> {
    let mut validator = Validator::new();
    validator.check(
        (1..=MAX_BATCH).contains(&batch.events.len()),
        "events",
        "1 to 100 events",
    );
    let now = Utc::now();
    for event in &batch.events {
        validator
            .check(
                recent(event.occurred_at, now),
                "events.occurredAt",
                "within the last 24 hours",
            )
            .check(
                !event.kind.is_empty()
                    && event.kind.len() <= 50
                    && event
                        .kind
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'_'),
                "events.kind",
                "lowercase letters and underscores, at most 50",
            )
            .check(
                event
                    .detail
                    .as_ref()
                    .is_none_or(|detail| detail.to_string().len() <= 2000),
                "events.detail",
                "at most 2000 characters of JSON",
            );
    }
    validator.finish()?;
    participants::booking_of(&state, batch.booking_id, user.user_id).await?;
    sqlx::query(
        r#"INSERT INTO webrtc_events (booking_id, user_id, occurred_at, kind, detail)
           SELECT $1, $2, * FROM unnest($3::timestamptz[], $4::text[], $5::jsonb[])"#,
    )
    .bind(batch.booking_id)
    .bind(user.user_id)
    .bind(
        batch
            .events
            .iter()
            .map(|e| e.occurred_at)
            .collect::<Vec<_>>(),
    )
    .bind(
        batch
            .events
            .iter()
            .map(|e| e.kind.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        batch
            .events
            .iter()
            .map(|e| e.detail.clone())
            .collect::<Vec<_>>(),
    )
    .execute(&state.db)
    .await?;
    Ok(StatusCode::ACCEPTED)
}

/// Call quality summary
///
/// Admin only. WebRTC quality over the last days (7 by default, up to 90): samples per
/// connection type and event counts.
#[utoipa::path(
    get, path = "/admin/webrtc/summary", tag = "admin",
    security(("session" = [])),
    params(SummaryQuery),
    responses((status = 200, body = Summary), (status = 403, description = "FORBIDDEN_ROLE"))
)]
pub async fn summary(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(query): Query<SummaryQuery>,
) -> Result<Json<Summary>> {
    let days = query.days.unwrap_or(7);
    Validator::new()
        .check((1..=90).contains(&days), "days", "1 to 90")
        .finish()?;
    let since = Utc::now() - Duration::days(days);
    let connection_types = sqlx::query_as(
        r#"SELECT connection_type, count(*) AS samples, count(DISTINCT booking_id) AS classes,
                  avg(packet_loss)::float8 AS avg_packet_loss, avg(rtt_ms)::float8 AS avg_rtt_ms,
                  avg(jitter_ms)::float8 AS avg_jitter_ms, avg(health_score)::float8 AS avg_health_score
           FROM webrtc_stats WHERE recorded_at >= $1
           GROUP BY connection_type ORDER BY samples DESC"#,
    )
    .bind(since)
    .fetch_all(&state.db)
    .await?;
    let events = sqlx::query_as(
        "SELECT kind, count(*) AS count FROM webrtc_events WHERE occurred_at >= $1 GROUP BY kind ORDER BY count DESC",
    )
    .bind(since)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(Summary {
        since,
        connection_types,
        events,
    }))
}

/// A measurement absent, or from 0 to `max` (a NaN or an infinity is neither).
fn within(value: Option<f32>, max: f32) -> bool {
    value.is_none_or(|value| (0.0..=max).contains(&value))
}

/// Whether `at` is a time a live client could report now.
fn recent(at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    at >= now - MAX_AGE && at <= now + MAX_CLOCK_SKEW
}

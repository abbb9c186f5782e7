//! `GET /api/mentors/{id}/availability?date=&sessionType=`: the start times a student could book
//! on a day of the mentor's calendar: weekly slots in the mentor's time zone, minus active
//! bookings and holds (widened by the buffer), within the booking window (1 hour to 60 days).
//!
//! Answers are cached for a minute under the generations of the mentor list (slots, profile)
//! and of the mentor's bookings, so any booking change or slot edit shows at once; starts that
//! have since come within the 1-hour lead are dropped when serving. Browsers and CDNs must
//! revalidate every time (`no-cache`), which the ETag makes a 304 while nothing changed.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use domain::platform_settings::{self, BookingLimits};
use domain::schedule::{self, Busy, SessionType, WeeklySlot, Window};
use platform::cache::{MENTOR_LIST, bookings_of};
use platform::{AppState, Error, Json, Path, Query, Result};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::discovery::ensure_visible;

const MIN_LEAD: Duration = Duration::hours(1);
const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);
const MAX_AHEAD: Duration = Duration::days(60);
/// Public, but never served from a cache unchecked: a booking must take its start away at once.
const REVALIDATE: (header::HeaderName, &str) = (header::CACHE_CONTROL, "public, no-cache");

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AvailabilityQuery {
    /// A day of the mentor's calendar, `YYYY-MM-DD`.
    #[param(value_type = String, format = Date)]
    date: NaiveDate,
    /// `regular` (55 min, the default) or `demo` (40 min).
    session_type: Option<SessionType>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "date": "2026-12-10", "timeZone": "Asia/Kolkata", "sessionType": "regular",
    "durationMinutes": 55,
    "starts": [
        {"startUtc": "2026-12-10T03:30:00Z", "endUtc": "2026-12-10T04:25:00Z",
         "startLocal": "2026-12-10T09:00", "endLocal": "2026-12-10T09:55"},
        {"startUtc": "2026-12-10T03:45:00Z", "endUtc": "2026-12-10T04:40:00Z",
         "startLocal": "2026-12-10T09:15", "endLocal": "2026-12-10T10:10"}
    ]
}))]
pub struct Availability {
    #[schema(value_type = String, format = Date)]
    date: NaiveDate,
    time_zone: String,
    session_type: SessionType,
    duration_minutes: i64,
    starts: Vec<BookableStart>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookableStart {
    start_utc: DateTime<Utc>,
    end_utc: DateTime<Utc>,
    /// Wall-clock time in the mentor's time zone, `YYYY-MM-DDTHH:MM`.
    start_local: String,
    end_local: String,
}

/// A mentor's bookable starts on a day
///
/// The starts a student could book on `date` in the mentor's calendar (weekly slots in the
/// mentor's time zone, minus booked classes), for a regular class or a demo, each with its UTC
/// start and end. No sign-in needed.
#[utoipa::path(
    get, path = "/mentors/{mentor_id}/availability", tag = "mentors",
    params(("mentor_id" = Uuid, Path), AvailabilityQuery),
    responses(
        (status = 200, body = Availability),
        (status = 404, description = "MENTOR_NOT_FOUND"),
        (status = 409, description = "DEMO_NOT_OFFERED"),
    )
)]
pub async fn availability(
    State(state): State<AppState>,
    Path(mentor_id): Path<Uuid>,
    Query(query): Query<AvailabilityQuery>,
) -> Result<Response> {
    let session_type = query.session_type.unwrap_or(SessionType::Regular);
    let bookings = bookings_of(mentor_id);
    let (list_generation, bookings_generation) = tokio::join!(
        state.cache.generation(MENTOR_LIST),
        state.cache.generation(&bookings)
    );
    let key = format!(
        "availability:{mentor_id}:{}:{session_type:?}:{list_generation}:{bookings_generation}",
        query.date
    );
    let cached = state
        .cache
        .get_or_fill_snapshot(&key, CACHE_TTL, || async {
            let availability = compute(&state, mentor_id, query.date, session_type).await?;
            Ok(serde_json::to_string(&availability)?)
        })
        .await?;
    let earliest = Utc::now() + MIN_LEAD;
    if day_starts_after(query.date, earliest) {
        // Nothing on this day can have come within the lead: the cached answer stands as is.
        let headers = [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(REVALIDATE.1),
            ),
            (header::ETAG, cached.etag),
        ];
        return Ok((headers, cached.body).into_response());
    }
    let mut availability: Availability = serde_json::from_slice(&cached.body)?;
    availability
        .starts
        .retain(|start| start.start_utc >= earliest);
    // The ETag comes from the filtered body (the conditional-GET middleware).
    Ok(([REVALIDATE], Json(availability)).into_response())
}

/// Whether `date` begins after `instant` in every time zone (UTC+14 is the earliest).
fn day_starts_after(date: NaiveDate, instant: DateTime<Utc>) -> bool {
    date.and_time(NaiveTime::MIN).and_utc() - Duration::hours(14) > instant
}

async fn compute(
    state: &AppState,
    mentor_id: Uuid,
    date: NaiveDate,
    session_type: SessionType,
) -> Result<Availability> {
    ensure_visible(state, mentor_id).await?;
    let (time_zone, demo_enabled): (String, bool) =
        sqlx::query_as("SELECT time_zone, demo_enabled FROM mentor_profiles WHERE user_id = $1")
            .bind(mentor_id)
            .fetch_one(&state.db)
            .await?;
    if matches!(session_type, SessionType::Demo) && !demo_enabled {
        return Err(Error::conflict(
            "DEMO_NOT_OFFERED",
            "This mentor does not offer demo classes.",
        ));
    }
    let zone: Tz = time_zone
        .parse()
        .map_err(|_| anyhow::Error::msg(format!("stored time zone {time_zone:?} is invalid")))?;

    let slots = weekly_slots(state, mentor_id).await?;
    let busy = busy_around(state, mentor_id, date).await?;
    let duration = session_type.duration();
    let now = Utc::now();
    let window = Window {
        earliest: now + MIN_LEAD,
        latest: now + MAX_AHEAD,
    };
    let limits = platform_settings::load::<BookingLimits>(state).await?;
    let buffer = Duration::minutes(limits.buffer_minutes);
    let starts = schedule::bookable_starts(date, zone, &slots, &busy, duration, buffer, window)
        .into_iter()
        .map(|start| BookableStart {
            start_utc: start,
            end_utc: start + duration,
            start_local: local(start, zone),
            end_local: local(start + duration, zone),
        })
        .collect();
    Ok(Availability {
        date,
        time_zone,
        session_type,
        duration_minutes: duration.num_minutes(),
        starts,
    })
}

async fn weekly_slots(state: &AppState, mentor_id: Uuid) -> Result<Vec<WeeklySlot>> {
    let rows: Vec<(i32, i32, i32)> = sqlx::query_as(
        "SELECT day_of_week, start_minute, end_minute FROM time_slots WHERE mentor_id = $1 AND NOT is_blocked",
    )
    .bind(mentor_id)
    .fetch_all(&state.db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(day_of_week, start_minute, end_minute)| WeeklySlot {
            day_of_week: day_of_week as u32,
            start_minute: start_minute as u32,
            end_minute: end_minute as u32,
        })
        .collect())
}

/// Active bookings and holds within a day either side of `date` (covers every time zone).
async fn busy_around(state: &AppState, mentor_id: Uuid, date: NaiveDate) -> Result<Vec<Busy>> {
    let midnight = date.and_time(NaiveTime::MIN).and_utc();
    let rows: Vec<(DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        r#"SELECT scheduled_at, blocked_until FROM bookings
           WHERE mentor_id = $1 AND status IN ('pending_payment', 'confirmed')
             AND tstzrange(scheduled_at, blocked_until) && tstzrange($2, $3)"#,
    )
    .bind(mentor_id)
    .bind(midnight - Duration::days(1))
    .bind(midnight + Duration::days(2))
    .fetch_all(&state.db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(from, until)| Busy { from, until })
        .collect())
}

fn local(instant: DateTime<Utc>, zone: Tz) -> String {
    instant
        .with_timezone(&zone)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_starts_after_an_instant_only_once_it_has_begun_nowhere() {
        let date = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        // 5 December begins at 10:00 UTC on 4 December in UTC+14 (Kiribati).
        let first_midnight = "2026-12-04T10:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert!(day_starts_after(
            date,
            first_midnight - Duration::seconds(1)
        ));
        assert!(!day_starts_after(date, first_midnight));
        assert!(!day_starts_after(
            date,
            first_midnight + Duration::hours(20)
        ));
    }
}

//! Admin oversight of bookings: every booking, newest class first, filtered by a person (as
//! student or mentor), a mentor, a status and a date range, a page at a time.

use axum::extract::State;
use chrono::{DateTime, Utc};
use domain::booking_status::BookingStatus;
use platform::auth::AdminUser;
use platform::pagination::{Page, PageQuery, TimeCursor};
use platform::validation::Validator;
use platform::{AppState, Json, Query, Result};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::view::{BookingView, SELECT_VIEW};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct BookingSearch {
    /// Bookings this person takes part in, as student or mentor.
    person: Option<Uuid>,
    /// Bookings with this mentor.
    mentor_id: Option<Uuid>,
    status: Option<BookingStatus>,
    /// Classes starting at or after this time.
    from: Option<DateTime<Utc>>,
    /// Classes starting before this time.
    to: Option<DateTime<Utc>>,
}

/// Search bookings
///
/// Admin only. Every booking, newest class first, narrowed by a person (student or mentor),
/// a mentor, a status and a start range (`from` inclusive, `to` exclusive), a page at a time.
#[utoipa::path(
    get, path = "/admin/bookings", tag = "admin",
    security(("session" = [])),
    params(BookingSearch, PageQuery),
    responses(
        (status = 200, description = "Newest class first", body = Page<BookingView>),
        (status = 403, description = "FORBIDDEN_ROLE"),
        (status = 422, description = "VALIDATION_FAILED: `from` after `to`")
    )
)]
pub async fn search_bookings(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(search): Query<BookingSearch>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<BookingView>>> {
    let limit = page.limit()?;
    let cursor = page.cursor::<TimeCursor>()?;
    if let (Some(from), Some(to)) = (search.from, search.to) {
        Validator::new()
            .check(from <= to, "from", "must not be after `to`")
            .finish()?;
    }
    let rows: Vec<BookingView> = sqlx::query_as(&format!(
        r#"{SELECT_VIEW}
           WHERE ($1::uuid IS NULL OR b.student_id = $1 OR b.mentor_id = $1)
             AND ($2::uuid IS NULL OR b.mentor_id = $2)
             AND ($3::text IS NULL OR b.status = $3)
             AND ($4::timestamptz IS NULL OR b.scheduled_at >= $4)
             AND ($5::timestamptz IS NULL OR b.scheduled_at < $5)
             AND ($6::timestamptz IS NULL OR (b.scheduled_at, b.booking_id) < ($6, $7))
           ORDER BY b.scheduled_at DESC, b.booking_id DESC
           LIMIT $8"#
    ))
    .bind(search.person)
    .bind(search.mentor_id)
    .bind(search.status)
    .bind(search.from)
    .bind(search.to)
    .bind(cursor.map(|c| c.time))
    .bind(cursor.map(|c| c.id))
    .bind(i64::from(limit) + 1)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(Page::from_rows(rows, limit, |booking| TimeCursor {
        time: booking.scheduled_at,
        id: booking.booking_id,
    })))
}

//! `GET /api/bookings` (mine, as student or mentor; cached 2 minutes per person) and
//! `GET /api/bookings/{id}` (participants and admins).

use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use domain::booking_status::BookingStatus;
use platform::auth::{CurrentUser, Role};
use platform::cache::bookings_of;
use platform::pagination::{Page, PageQuery, TimeCursor};
use platform::{AppState, Json, Path, Query, Result};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::view::{self, BookingView, SELECT_VIEW};

const LIST_TTL: Duration = Duration::from_secs(2 * 60);

#[derive(Debug, Serialize, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct BookingFilter {
    /// `upcoming` (default; soonest first) or `past` (latest first).
    #[param(inline)]
    when: Option<When>,
    /// Only this status.
    status: Option<BookingStatus>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum When {
    Upcoming,
    Past,
}

/// My classes
///
/// The signed-in student's or mentor's bookings: `upcoming` (soonest first, the default) or
/// `past` (latest first), optionally of one status, a page at a time.
#[utoipa::path(
    get, path = "/bookings", tag = "bookings",
    security(("session" = [])),
    params(BookingFilter, PageQuery),
    responses((status = 200, body = Page<BookingView>))
)]
pub async fn list_bookings(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(filter): Query<BookingFilter>,
    Query(page): Query<PageQuery>,
) -> Result<impl IntoResponse> {
    let limit = page.limit()?;
    let cursor = page.cursor::<TimeCursor>()?;
    let generation = state.cache.generation(&bookings_of(user.user_id)).await;
    let key = format!(
        "bookings:{}:{generation}:{}:{limit}:{}",
        user.user_id,
        serde_json::to_string(&filter)?,
        page.cursor.as_deref().unwrap_or("")
    );
    let body = state
        .cache
        .get_or_fill_raw(&key, LIST_TTL, || async {
            let page = query_page(&state, &user, &filter, limit, cursor).await?;
            Ok(serde_json::to_string(&page)?)
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body))
}

/// One class
///
/// A booking of the caller's (admins: any).
#[utoipa::path(
    get, path = "/bookings/{booking_id}", tag = "bookings",
    security(("session" = [])),
    params(("booking_id" = Uuid, Path)),
    responses((status = 200, body = BookingView), (status = 404, description = "BOOKING_NOT_FOUND"))
)]
pub async fn booking_detail(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(booking_id): Path<Uuid>,
) -> Result<Json<BookingView>> {
    Ok(Json(view::load_for(&state.db, booking_id, &user).await?))
}

async fn query_page(
    state: &AppState,
    user: &CurrentUser,
    filter: &BookingFilter,
    limit: u32,
    cursor: Option<TimeCursor>,
) -> Result<Page<BookingView>> {
    let side = match user.role {
        Role::Mentor => "b.mentor_id",
        Role::Student | Role::Admin => "b.student_id",
    };
    let when = filter.when.unwrap_or(When::Upcoming);
    let (period, order, after) = match when {
        When::Upcoming => ("b.ends_at > now()", "ASC", ">"),
        When::Past => ("b.ends_at <= now()", "DESC", "<"),
    };
    let rows: Vec<BookingView> = sqlx::query_as(&format!(
        r#"{SELECT_VIEW}
           WHERE {side} = $1 AND {period}
             AND ($2::text IS NULL OR b.status = $2)
             AND ($3::timestamptz IS NULL OR (b.scheduled_at, b.booking_id) {after} ($3, $4))
           ORDER BY b.scheduled_at {order}, b.booking_id {order}
           LIMIT $5"#
    ))
    .bind(user.user_id)
    .bind(filter.status)
    .bind(cursor.map(|c| c.time))
    .bind(cursor.map(|c| c.id))
    .bind(i64::from(limit) + 1)
    .fetch_all(&state.db)
    .await?;
    Ok(Page::from_rows(rows, limit, |booking| TimeCursor {
        time: booking.scheduled_at,
        id: booking.booking_id,
    }))
}

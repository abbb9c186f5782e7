//! Weekly time slots in the mentor's time zone. Overlaps are refused by an exclusion
//! constraint; a slot that a future booking falls in can't be moved away from it or deleted.

use axum::extract::State;
use axum::http::StatusCode;
use domain::schedule::{SessionType, format_clock, parse_clock};
use platform::auth::MentorUser;
use platform::error::ConstraintExt;
use platform::validation::Validator;
use platform::{AppState, Error, Json, Path, Result};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::profile::changed;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlotView {
    slot_id: Uuid,
    /// ISO day of week: 1 = Monday … 7 = Sunday.
    day_of_week: i32,
    /// `HH:MM` in the mentor's time zone.
    start: String,
    end: String,
    is_blocked: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlotInput {
    /// ISO day of week: 1 = Monday … 7 = Sunday.
    #[schema(minimum = 1, maximum = 7)]
    day_of_week: i32,
    /// `HH:MM` (00:00 to 23:59) in the mentor's time zone.
    #[schema(example = "09:00")]
    start: String,
    /// `HH:MM` (up to 24:00), at least 40 minutes (the shortest class) after `start`.
    #[schema(example = "12:30")]
    end: String,
    #[serde(default)]
    is_blocked: bool,
}

#[derive(Debug, Clone, Copy, sqlx::FromRow)]
struct SlotRow {
    time_slot_id: Uuid,
    day_of_week: i32,
    start_minute: i32,
    end_minute: i32,
    is_blocked: bool,
}

const SLOT_COLUMNS: &str = "time_slot_id, day_of_week, start_minute, end_minute, is_blocked";

/// My weekly slots
///
/// The mentor's recurring weekly availability, in their time zone.
#[utoipa::path(
    get, path = "/mentors/me/slots", tag = "mentors",
    security(("session" = [])),
    responses((status = 200, body = Vec<SlotView>))
)]
pub async fn list_slots(
    State(state): State<AppState>,
    MentorUser(mentor): MentorUser,
) -> Result<Json<Vec<SlotView>>> {
    let rows: Vec<SlotRow> = sqlx::query_as(&format!(
        "SELECT {SLOT_COLUMNS} FROM time_slots WHERE mentor_id = $1 ORDER BY day_of_week, start_minute"
    ))
    .bind(mentor.user_id)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(rows.into_iter().map(SlotView::from).collect()))
}

/// Add a weekly slot
///
/// A day of the week (1 = Monday) and a start and end time in the mentor's time zone; slots of
/// one day may not overlap.
#[utoipa::path(
    post, path = "/mentors/me/slots", tag = "mentors",
    security(("session" = [])),
    request_body = SlotInput,
    responses((status = 201, body = SlotView), (status = 409, description = "SLOT_OVERLAP"), (status = 422, description = "VALIDATION_FAILED"))
)]
pub async fn add_slot(
    State(state): State<AppState>,
    MentorUser(mentor): MentorUser,
    Json(request): Json<SlotInput>,
) -> Result<(StatusCode, Json<SlotView>)> {
    let (start, end) = validate(&request)?;
    let row: SlotRow = sqlx::query_as(&format!(
        r#"INSERT INTO time_slots (time_slot_id, mentor_id, day_of_week, start_minute, end_minute, is_blocked)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING {SLOT_COLUMNS}"#
    ))
    .bind(Uuid::new_v4())
    .bind(mentor.user_id)
    .bind(request.day_of_week)
    .bind(start)
    .bind(end)
    .bind(request.is_blocked)
    .fetch_one(&state.db)
    .await
    .on_constraint("time_slots_no_overlap", overlap)?;
    changed(&state).await;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// Change a weekly slot
///
/// Refused while a booked class depends on the part of the slot that would go.
#[utoipa::path(
    put, path = "/mentors/me/slots/{slot_id}", tag = "mentors",
    security(("session" = [])),
    params(("slot_id" = Uuid, Path)),
    request_body = SlotInput,
    responses(
        (status = 200, body = SlotView),
        (status = 404, description = "SLOT_NOT_FOUND"),
        (status = 409, description = "SLOT_OVERLAP, SLOT_IN_USE"),
    )
)]
pub async fn update_slot(
    State(state): State<AppState>,
    MentorUser(mentor): MentorUser,
    Path(slot_id): Path<Uuid>,
    Json(request): Json<SlotInput>,
) -> Result<Json<SlotView>> {
    let (start, end) = validate(&request)?;
    let replacement = SlotRow {
        time_slot_id: slot_id,
        day_of_week: request.day_of_week,
        start_minute: start,
        end_minute: end,
        is_blocked: request.is_blocked,
    };
    let mut transaction = state.db.begin().await?;
    let current = lock_slot(&mut transaction, mentor.user_id, slot_id).await?;
    ensure_not_stranding_bookings(
        &mut transaction,
        mentor.user_id,
        &current,
        Some(&replacement),
    )
    .await?;
    let row: SlotRow = sqlx::query_as(&format!(
        r#"UPDATE time_slots SET day_of_week = $2, start_minute = $3, end_minute = $4, is_blocked = $5, updated_at = now()
           WHERE time_slot_id = $1 RETURNING {SLOT_COLUMNS}"#
    ))
    .bind(slot_id)
    .bind(request.day_of_week)
    .bind(start)
    .bind(end)
    .bind(request.is_blocked)
    .fetch_one(&mut *transaction)
    .await
    .on_constraint("time_slots_no_overlap", overlap)?;
    transaction.commit().await?;
    changed(&state).await;
    Ok(Json(row.into()))
}

/// Delete a weekly slot
///
/// Refused while a booked class depends on it.
#[utoipa::path(
    delete, path = "/mentors/me/slots/{slot_id}", tag = "mentors",
    security(("session" = [])),
    params(("slot_id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "SLOT_NOT_FOUND"), (status = 409, description = "SLOT_IN_USE"))
)]
pub async fn delete_slot(
    State(state): State<AppState>,
    MentorUser(mentor): MentorUser,
    Path(slot_id): Path<Uuid>,
) -> Result<StatusCode> {
    let mut transaction = state.db.begin().await?;
    let current = lock_slot(&mut transaction, mentor.user_id, slot_id).await?;
    ensure_not_stranding_bookings(&mut transaction, mentor.user_id, &current, None).await?;
    sqlx::query("DELETE FROM time_slots WHERE time_slot_id = $1")
        .bind(slot_id)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    changed(&state).await;
    Ok(StatusCode::NO_CONTENT)
}

impl From<SlotRow> for SlotView {
    fn from(row: SlotRow) -> Self {
        SlotView {
            slot_id: row.time_slot_id,
            day_of_week: row.day_of_week,
            start: format_clock(row.start_minute as u32),
            end: format_clock(row.end_minute as u32),
            is_blocked: row.is_blocked,
        }
    }
}

fn validate(request: &SlotInput) -> Result<(i32, i32)> {
    let start = parse_clock(&request.start).filter(|minute| *minute < 24 * 60);
    let end = parse_clock(&request.end);
    let mut validator = Validator::new();
    validator
        .check(
            (1..=7).contains(&request.day_of_week),
            "dayOfWeek",
            "must be 1 (Monday) to 7 (Sunday)",
        )
        .check(start.is_some(), "start", "must be HH:MM (00:00 to 23:59)")
        .check(end.is_some(), "end", "must be HH:MM (00:01 to 24:00)");
    if let (Some(start), Some(end)) = (start, end) {
        validator.check(
            end >= start + shortest_class_minutes(),
            "end",
            "must be at least 40 minutes after start (the shortest class)",
        );
    }
    validator.finish()?;
    Ok((
        start.unwrap_or_default() as i32,
        end.unwrap_or_default() as i32,
    ))
}

/// A slot shorter than the shortest class could never be booked.
fn shortest_class_minutes() -> u32 {
    SessionType::Demo.duration().num_minutes() as u32
}

/// Locks the mentor's slot for the rest of the transaction (a concurrent booking reads it).
async fn lock_slot(
    connection: &mut PgConnection,
    mentor_id: Uuid,
    slot_id: Uuid,
) -> Result<SlotRow> {
    sqlx::query_as(&format!(
        "SELECT {SLOT_COLUMNS} FROM time_slots WHERE time_slot_id = $1 AND mentor_id = $2 FOR UPDATE"
    ))
    .bind(slot_id)
    .bind(mentor_id)
    .fetch_optional(connection)
    .await?
    .ok_or_else(|| Error::not_found("SLOT_NOT_FOUND", "No such slot of yours."))
}

/// Refuses the change when an upcoming active booking starts inside `current` and would not be
/// covered by `replacement` (deleting: no replacement).
async fn ensure_not_stranding_bookings(
    connection: &mut PgConnection,
    mentor_id: Uuid,
    current: &SlotRow,
    replacement: Option<&SlotRow>,
) -> Result<()> {
    let stranded: bool = sqlx::query_scalar(
        r#"WITH upcoming AS (
               SELECT extract(isodow FROM b.scheduled_at AT TIME ZONE p.time_zone)::int AS day_of_week,
                      (extract(epoch FROM (b.scheduled_at AT TIME ZONE p.time_zone)::time) / 60)::int AS start_minute,
                      (extract(epoch FROM (b.scheduled_at AT TIME ZONE p.time_zone)::time) / 60
                        + extract(epoch FROM b.ends_at - b.scheduled_at) / 60)::int AS end_minute
               FROM bookings b JOIN mentor_profiles p ON p.user_id = b.mentor_id
               WHERE b.mentor_id = $1 AND b.status IN ('pending_payment', 'confirmed') AND b.scheduled_at > now()
           )
           SELECT EXISTS (
               SELECT 1 FROM upcoming
               WHERE day_of_week = $2 AND start_minute >= $3 AND start_minute < $4
                 AND NOT (NOT $5 AND day_of_week = $6 AND start_minute >= $7 AND end_minute <= $8)
           )"#,
    )
    .bind(mentor_id)
    .bind(current.day_of_week)
    .bind(current.start_minute)
    .bind(current.end_minute)
    .bind(replacement.is_none_or(|slot| slot.is_blocked))
    .bind(replacement.map(|slot| slot.day_of_week))
    .bind(replacement.map(|slot| slot.start_minute))
    .bind(replacement.map(|slot| slot.end_minute))
    .fetch_one(connection)
    .await?;
    if stranded {
        return Err(Error::conflict(
            "SLOT_IN_USE",
            "An upcoming booking falls in this slot; cancel or reschedule it first.",
        ));
    }
    Ok(())
}

fn overlap() -> Error {
    Error::conflict(
        "SLOT_OVERLAP",
        "This slot overlaps another of your slots on that day.",
    )
}

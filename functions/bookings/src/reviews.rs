//! `POST /api/bookings/{id}/review` by the booking's student once the class is completed, and
//! the hourly `rating-recalc` timer that recomputes every mentor's figures from scratch.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use domain::booking_status::BookingStatus;
use domain::notifications::{self, Notice};
use platform::auth::StudentUser;
use platform::cache::MENTOR_LIST;
use platform::error::ConstraintExt;
use platform::invocation::{TimerFunction, TimerInfo};
use platform::validation::Validator;
use platform::{AppState, Error, Json, Path, Result};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::view;

pub const RATING_TIMER: TimerFunction = TimerFunction {
    name: "rating-recalc",
    run: |state, info| Box::pin(recalculate_ratings(state, info)),
};

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReviewInput {
    /// 1 to 5.
    rating: i32,
    /// At most 2000 characters.
    comment: Option<String>,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewView {
    review_id: Uuid,
    booking_id: Uuid,
    rating: i32,
    comment: Option<String>,
    created_at: DateTime<Utc>,
}

/// Review a class
///
/// The student rates a completed class (1 to 5) with an optional comment, once. It counts in
/// the mentor's rating at the next recalculation.
#[utoipa::path(
    post, path = "/bookings/{booking_id}/review", tag = "bookings",
    security(("session" = [])),
    params(("booking_id" = Uuid, Path)),
    request_body = ReviewInput,
    responses(
        (status = 201, body = ReviewView),
        (status = 404, description = "BOOKING_NOT_FOUND"),
        (status = 409, description = "REVIEW_NOT_ALLOWED (class not completed), REVIEW_EXISTS"),
        (status = 422, description = "VALIDATION_FAILED"),
    )
)]
pub async fn review_booking(
    State(state): State<AppState>,
    StudentUser(student): StudentUser,
    Path(booking_id): Path<Uuid>,
    Json(request): Json<ReviewInput>,
) -> Result<(StatusCode, Json<ReviewView>)> {
    let comment = request
        .comment
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    Validator::new()
        .check(
            (1..=5).contains(&request.rating),
            "rating",
            "must be 1 to 5",
        )
        .check(
            comment.is_none_or(|c| c.chars().count() <= 2000),
            "comment",
            "at most 2000 characters",
        )
        .finish()?;
    let mut transaction = state.db.begin().await?;
    let booking: Option<(Uuid, BookingStatus, String)> = sqlx::query_as(
        "SELECT mentor_id, status, subject FROM bookings WHERE booking_id = $1 AND student_id = $2 FOR UPDATE",
    )
    .bind(booking_id)
    .bind(student.user_id)
    .fetch_optional(&mut *transaction)
    .await?;
    let (mentor_id, status, subject) = booking.ok_or_else(view::not_found)?;
    if status != BookingStatus::Completed {
        return Err(Error::conflict(
            "REVIEW_NOT_ALLOWED",
            "Only a completed class can be reviewed.",
        ));
    }
    let review: ReviewView = sqlx::query_as(
        r#"INSERT INTO reviews (review_id, booking_id, mentor_id, student_id, rating, comment)
           VALUES ($1, $2, $3, $4, $5, $6)
           RETURNING review_id, booking_id, rating, comment, created_at"#,
    )
    .bind(Uuid::new_v4())
    .bind(booking_id)
    .bind(mentor_id)
    .bind(student.user_id)
    .bind(request.rating)
    .bind(comment)
    .fetch_one(&mut *transaction)
    .await
    .on_constraint("reviews_booking_key", || {
        Error::conflict("REVIEW_EXISTS", "This class is already reviewed.")
    })?;
    refresh_mentor_figures(&mut transaction, Some(mentor_id)).await?;
    let body = format!("A student rated your {subject} class {}/5.", request.rating);
    notifications::notify(
        &mut transaction,
        &Notice {
            user_id: mentor_id,
            kind: "review_received",
            title: "New review",
            body: &body,
            booking_id: Some(booking_id),
            email_category: Some("review"),
        },
    )
    .await?;
    transaction.commit().await?;
    state.cache.bump_generation(MENTOR_LIST).await;
    Ok((StatusCode::CREATED, Json(review)))
}

/// Recomputes rating (mean of reviews, 2 places), review count and distinct students taught,
/// for one mentor or (with `None`) every mentor. Returns how many profiles changed.
pub async fn refresh_mentor_figures(
    connection: &mut PgConnection,
    mentor_id: Option<Uuid>,
) -> Result<u64> {
    let updated = sqlx::query(
        r#"UPDATE mentor_profiles p
           SET rating = figures.rating, review_count = figures.review_count,
               student_count = figures.student_count, updated_at = now()
           FROM (
               SELECT p2.user_id,
                      coalesce((SELECT round(avg(r.rating)::numeric, 2) FROM reviews r WHERE r.mentor_id = p2.user_id), 0) AS rating,
                      (SELECT count(*) FROM reviews r WHERE r.mentor_id = p2.user_id)::int AS review_count,
                      (SELECT count(DISTINCT b.student_id) FROM bookings b
                        WHERE b.mentor_id = p2.user_id AND b.status = 'completed')::int AS student_count
               FROM mentor_profiles p2
               WHERE $1::uuid IS NULL OR p2.user_id = $1
           ) figures
           WHERE p.user_id = figures.user_id
             AND (p.rating, p.review_count, p.student_count)
                 IS DISTINCT FROM (figures.rating, figures.review_count, figures.student_count)"#,
    )
    .bind(mentor_id)
    .execute(connection)
    .await?;
    Ok(updated.rows_affected())
}

async fn recalculate_ratings(state: AppState, _info: TimerInfo) -> Result<Vec<String>> {
    let mut connection = state.db.acquire().await?;
    let changed = refresh_mentor_figures(&mut connection, None).await?;
    state.cache.bump_generation(MENTOR_LIST).await;
    Ok(vec![format!(
        "recalculated mentor figures; {changed} changed"
    )])
}

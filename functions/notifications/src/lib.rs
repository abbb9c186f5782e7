//! In-app notifications (product-spec §8) under `/api/notifications/*`, and the `outbox` timer
//! that delivers queued emails through SendGrid. Notices themselves are written by the groups
//! whose events cause them (`domain::notifications::notify`, in their transactions).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use platform::auth::CurrentUser;
use platform::invocation::{FunctionDefinition, TimerFunction, TimerInfo};
use platform::pagination::{Page, PageQuery, TimeCursor};
use platform::{AppState, Error, Json, Path, Query, Result};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub const FUNCTIONS: &[FunctionDefinition] = &[
    FunctionDefinition {
        name: "notifications",
        function_json: include_str!("../azure/notifications/function.json"),
    },
    FunctionDefinition {
        name: "outbox",
        function_json: include_str!("../azure/outbox/function.json"),
    },
];

pub const TIMERS: &[TimerFunction] = &[TimerFunction {
    name: "outbox",
    run: |state, info| Box::pin(deliver(state, info)),
}];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_notifications))
        .routes(routes!(unread_count))
        .routes(routes!(mark_read))
        .routes(routes!(mark_all_read))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationFilter {
    /// Only unread notifications.
    unread: Option<bool>,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationView {
    notification_id: Uuid,
    /// e.g. `booking_confirmed`, `booking_cancelled`, `class_reminder`, `refund_issued`.
    kind: String,
    title: String,
    body: String,
    booking_id: Option<Uuid>,
    read_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadCount {
    unread: i64,
}

/// My notifications
///
/// In-app notices (confirmations, reminders, cancellations, payouts), newest first, optionally
/// unread only, a page at a time.
#[utoipa::path(
    get, path = "/notifications", tag = "notifications",
    security(("session" = [])),
    params(NotificationFilter, PageQuery),
    responses((status = 200, body = Page<NotificationView>))
)]
pub async fn list_notifications(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(filter): Query<NotificationFilter>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<NotificationView>>> {
    let limit = page.limit()?;
    let cursor = page.cursor::<TimeCursor>()?;
    let rows: Vec<NotificationView> = sqlx::query_as(
        r#"SELECT notification_id, kind, title, body, booking_id, read_at, created_at
           FROM notifications
           WHERE user_id = $1 AND (NOT $2 OR read_at IS NULL)
             AND ($3::timestamptz IS NULL OR (created_at, notification_id) < ($3, $4))
           ORDER BY created_at DESC, notification_id DESC
           LIMIT $5"#,
    )
    .bind(user.user_id)
    .bind(filter.unread.unwrap_or(false))
    .bind(cursor.map(|c| c.time))
    .bind(cursor.map(|c| c.id))
    .bind(i64::from(limit) + 1)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(Page::from_rows(rows, limit, |n| TimeCursor {
        time: n.created_at,
        id: n.notification_id,
    })))
}

/// How many notifications are unread
///
/// For the badge on the bell.
#[utoipa::path(
    get, path = "/notifications/unread-count", tag = "notifications",
    security(("session" = [])),
    responses((status = 200, body = UnreadCount))
)]
pub async fn unread_count(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<UnreadCount>> {
    let unread = sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL",
    )
    .bind(user.user_id)
    .fetch_one(&state.db)
    .await?;
    Ok(Json(UnreadCount { unread }))
}

/// Mark a notification read
///
/// Only the caller's own notifications.
#[utoipa::path(
    post, path = "/notifications/{notification_id}/read", tag = "notifications", operation_id = "mark_notification_read",
    security(("session" = [])),
    params(("notification_id" = Uuid, Path)),
    responses((status = 204, description = "Marked read"), (status = 404, description = "NOTIFICATION_NOT_FOUND"))
)]
pub async fn mark_read(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(notification_id): Path<Uuid>,
) -> Result<StatusCode> {
    let marked = sqlx::query(
        "UPDATE notifications SET read_at = coalesce(read_at, now()) WHERE notification_id = $1 AND user_id = $2",
    )
    .bind(notification_id)
    .bind(user.user_id)
    .execute(&state.db)
    .await?;
    if marked.rows_affected() == 0 {
        return Err(Error::not_found(
            "NOTIFICATION_NOT_FOUND",
            "No such notification of yours.",
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Mark every notification read
///
/// All of the caller's notifications.
#[utoipa::path(
    post, path = "/notifications/read-all", tag = "notifications",
    security(("session" = [])),
    responses((status = 204, description = "All marked read"))
)]
pub async fn mark_all_read(State(state): State<AppState>, user: CurrentUser) -> Result<StatusCode> {
    sqlx::query("UPDATE notifications SET read_at = now() WHERE user_id = $1 AND read_at IS NULL")
        .bind(user.user_id)
        .execute(&state.db)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn deliver(state: AppState, info: TimerInfo) -> Result<Vec<String>> {
    let delivery = platform::mailer::deliver_due(&state).await?;
    platform::mailer::record_backlog(&state).await?;
    let mut logs = vec![match state.config.mail.sendgrid {
        Some(_) => format!(
            "sent {}, retrying {}, failed {}",
            delivery.sent, delivery.retrying, delivery.failed
        ),
        None => "no SendGrid key configured; emails stay in the outbox".to_owned(),
    }];
    if info.is_past_due {
        logs.push("ran late (past due); caught up".into());
    }
    Ok(logs)
}

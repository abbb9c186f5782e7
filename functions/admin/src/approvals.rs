//! The mentor approval queue: pending mentors, approve, reject with a reason. Each decision
//! emails the mentor through the outbox in the same transaction; a rejection also ends the
//! mentor's sessions.

use axum::extract::State;
use domain::users::{self, ApprovalStatus, USER_VIEW_COLUMNS, UserView};
use platform::auth::{self, AdminUser, session};
use platform::cache::MENTOR_LIST;
use platform::outbox::{self, Email};
use platform::pagination::{Page, PageQuery, TimeCursor};
use platform::validation::Validator;
use platform::{AppState, Error, Json, Path, Query, Result};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
pub struct Rejection {
    reason: String,
}

/// Mentors awaiting approval
///
/// Admin only. Mentor accounts that signed up and wait for review, oldest first, a page at a
/// time. A pending mentor can't sign in until approved.
#[utoipa::path(
    get, path = "/admin/mentors/pending", tag = "admin",
    security(("session" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<UserView>))
)]
pub async fn pending_mentors(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<UserView>>> {
    let limit = page.limit()?;
    let cursor = page.cursor::<TimeCursor>()?;
    let rows: Vec<UserView> = sqlx::query_as(&format!(
        r#"SELECT {USER_VIEW_COLUMNS} FROM users u
           WHERE u.role = 'mentor' AND u.approval_status = 'pending'
             AND ($1::timestamptz IS NULL OR (u.created_at, u.user_id) < ($1, $2))
           ORDER BY u.created_at DESC, u.user_id DESC
           LIMIT $3"#
    ))
    .bind(cursor.map(|c| c.time))
    .bind(cursor.map(|c| c.id))
    .bind(i64::from(limit) + 1)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(Page::from_rows(rows, limit, |user| TimeCursor {
        time: user.created_at,
        id: user.user_id,
    })))
}

/// Approve a mentor
///
/// Admin only. The mentor is e-mailed and may sign in (enrolling 2FA first); they appear in
/// Find Mentors once their profile is complete.
#[utoipa::path(
    post, path = "/admin/mentors/{user_id}/approve", tag = "admin",
    security(("session" = [])),
    params(("user_id" = Uuid, Path)),
    responses((status = 200, body = UserView), (status = 404, description = "MENTOR_NOT_FOUND"))
)]
pub async fn approve_mentor(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(user_id): Path<Uuid>,
) -> Result<Json<UserView>> {
    decide(
        &state,
        user_id,
        ApprovalStatus::Approved,
        None,
        "Your CodeConnect mentor profile is approved. Set up two-factor sign-in on your first login.",
    )
    .await
}

/// Reject a mentor
///
/// Admin only. Records the reason, e-mails the mentor and ends their sessions; they see the
/// reason when they try to sign in.
#[utoipa::path(
    post, path = "/admin/mentors/{user_id}/reject", tag = "admin",
    security(("session" = [])),
    params(("user_id" = Uuid, Path)),
    request_body = Rejection,
    responses((status = 200, body = UserView), (status = 404, description = "MENTOR_NOT_FOUND"), (status = 422, description = "VALIDATION_FAILED"))
)]
pub async fn reject_mentor(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(user_id): Path<Uuid>,
    Json(request): Json<Rejection>,
) -> Result<Json<UserView>> {
    Validator::new()
        .length(&request.reason, "reason", 1, 1000)
        .finish()?;
    let reason = request.reason.trim();
    let message = format!("Your CodeConnect mentor application was not approved. Reason: {reason}");
    decide(
        &state,
        user_id,
        ApprovalStatus::Rejected,
        Some(reason),
        &message,
    )
    .await
}

async fn decide(
    state: &AppState,
    user_id: Uuid,
    status: ApprovalStatus,
    reason: Option<&str>,
    message: &str,
) -> Result<Json<UserView>> {
    let mut transaction = state.db.begin().await?;
    let email: Option<String> = sqlx::query_scalar(
        r#"UPDATE users SET approval_status = $2, rejection_reason = $3, updated_at = now()
           WHERE user_id = $1 AND role = 'mentor' RETURNING email"#,
    )
    .bind(user_id)
    .bind(status)
    .bind(reason)
    .fetch_optional(&mut *transaction)
    .await?;
    let email = email.ok_or_else(|| Error::not_found("MENTOR_NOT_FOUND", "No such mentor."))?;
    outbox::enqueue_email(
        &mut transaction,
        &Email {
            recipient: email.clone(),
            subject: "Your CodeConnect mentor application".into(),
            body_text: message.to_owned(),
            category: "mentor_approval",
        },
    )
    .await?;
    let revoked = match status {
        ApprovalStatus::Rejected => session::revoke_all(&mut transaction, user_id, None).await?,
        ApprovalStatus::Approved | ApprovalStatus::Pending => Vec::new(),
    };
    let user = users::find(&mut *transaction, user_id).await?;
    transaction.commit().await?;
    session::forget(state, revoked).await;
    state.cache.bump_generation(MENTOR_LIST).await;
    state
        .cache
        .invalidate(&[auth::user_by_email_key(&email)], auth::USER_BY_EMAIL_TTL)
        .await;
    Ok(Json(user))
}

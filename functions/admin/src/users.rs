//! Accounts: list, create admins, deactivate (which ends every session at once), reactivate.

use axum::extract::State;
use axum::http::StatusCode;
use domain::users::{self, ApprovalStatus, NewUser, USER_VIEW_COLUMNS, UserView};
use platform::auth::{self, AdminUser, Role, password, session};
use platform::cache::MENTOR_LIST;
use platform::pagination::{Page, PageQuery, TimeCursor};
use platform::validation::Validator;
use platform::{AppState, Error, Json, Path, Query, Result};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserFilter {
    role: Option<Role>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateAdmin {
    email: String,
    password: String,
    first_name: String,
    last_name: String,
}

/// List accounts
///
/// Admin only. Every account, newest first, optionally of one role, a page at a time.
#[utoipa::path(
    get, path = "/admin/users", tag = "admin",
    security(("session" = [])),
    params(UserFilter, PageQuery),
    responses((status = 200, body = Page<UserView>), (status = 403, description = "FORBIDDEN_ROLE"))
)]
pub async fn list_users(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(filter): Query<UserFilter>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<UserView>>> {
    let limit = page.limit()?;
    let cursor = page.cursor::<TimeCursor>()?;
    let rows: Vec<UserView> = sqlx::query_as(&format!(
        r#"SELECT {USER_VIEW_COLUMNS} FROM users u
           WHERE ($1::text IS NULL OR u.role = $1)
             AND ($2::timestamptz IS NULL OR (u.created_at, u.user_id) < ($2, $3))
           ORDER BY u.created_at DESC, u.user_id DESC
           LIMIT $4"#
    ))
    .bind(filter.role)
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

/// Create an admin
///
/// Admin only. A new admin account with the password given (the password rules of sign-up
/// apply).
#[utoipa::path(
    post, path = "/admin/users", tag = "admin",
    security(("session" = [])),
    request_body = CreateAdmin,
    responses((status = 201, body = UserView), (status = 409, description = "EMAIL_TAKEN"), (status = 422, description = "VALIDATION_FAILED"))
)]
pub async fn create_admin(
    State(state): State<AppState>,
    _admin: AdminUser,
    Json(request): Json<CreateAdmin>,
) -> Result<(StatusCode, Json<UserView>)> {
    let mut validator = Validator::new();
    validator
        .email(&request.email, "email")
        .length(&request.first_name, "firstName", 1, 100)
        .length(&request.last_name, "lastName", 1, 100);
    if let Some(weakness) = password::weakness(&request.password) {
        validator.check(false, "password", weakness);
    }
    validator.finish()?;
    let email = auth::normalize_email(&request.email);
    let password_hash = password::hash(request.password).await?;
    let mut connection = state.db.acquire().await?;
    let user_id = users::insert(
        &mut connection,
        &NewUser {
            email: &email,
            password_hash: &password_hash,
            first_name: &request.first_name,
            last_name: &request.last_name,
            role: Role::Admin,
            country: None,
            approval_status: ApprovalStatus::Approved,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(users::find(&mut *connection, user_id).await?),
    ))
}

/// Deactivate an account
///
/// Admin only. The account can't sign in and every session it has ends at once; a mentor leaves
/// Find Mentors. An admin can't deactivate themselves.
#[utoipa::path(
    post, path = "/admin/users/{user_id}/deactivate", tag = "admin",
    security(("session" = [])),
    params(("user_id" = Uuid, Path)),
    responses((status = 200, body = UserView), (status = 404, description = "USER_NOT_FOUND"), (status = 409, description = "CANNOT_DEACTIVATE_SELF"))
)]
pub async fn deactivate_user(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(user_id): Path<Uuid>,
) -> Result<Json<UserView>> {
    if user_id == admin.user_id {
        return Err(Error::conflict(
            "CANNOT_DEACTIVATE_SELF",
            "Admins can't deactivate their own account.",
        ));
    }
    set_active(&state, user_id, false).await
}

/// Reactivate an account
///
/// Admin only. The account may sign in again.
#[utoipa::path(
    post, path = "/admin/users/{user_id}/reactivate", tag = "admin",
    security(("session" = [])),
    params(("user_id" = Uuid, Path)),
    responses((status = 200, body = UserView), (status = 404, description = "USER_NOT_FOUND"))
)]
pub async fn reactivate_user(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(user_id): Path<Uuid>,
) -> Result<Json<UserView>> {
    set_active(&state, user_id, true).await
}

async fn set_active(state: &AppState, user_id: Uuid, active: bool) -> Result<Json<UserView>> {
    let mut transaction = state.db.begin().await?;
    let email: Option<String> = sqlx::query_scalar(
        "UPDATE users SET is_active = $2, updated_at = now() WHERE user_id = $1 RETURNING email",
    )
    .bind(user_id)
    .bind(active)
    .fetch_optional(&mut *transaction)
    .await?;
    let email = email.ok_or_else(|| Error::not_found("USER_NOT_FOUND", "No such user."))?;
    let revoked = if active {
        Vec::new()
    } else {
        session::revoke_all(&mut transaction, user_id, None).await?
    };
    let user = users::find(&mut *transaction, user_id).await?;
    transaction.commit().await?;

    session::forget(state, revoked).await;
    state
        .cache
        .invalidate(&[auth::user_by_email_key(&email)], auth::USER_BY_EMAIL_TTL)
        .await;
    // A mentor's (de)activation changes Find Mentors.
    state.cache.bump_generation(MENTOR_LIST).await;
    Ok(Json(user))
}

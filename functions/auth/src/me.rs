//! `GET /api/auth/me`.

use axum::extract::State;
use domain::users::{self, UserView};
use platform::auth::CurrentUser;
use platform::{AppState, Json, Result};

/// The signed-in account
///
/// The account behind the session token or cookie.
#[utoipa::path(
    get, path = "/auth/me", tag = "auth",
    security(("session" = [])),
    responses((status = 200, body = UserView), (status = 401, description = "UNAUTHENTICATED, SESSION_REVOKED, SESSION_EXPIRED"))
)]
pub async fn me(State(state): State<AppState>, user: CurrentUser) -> Result<Json<UserView>> {
    Ok(Json(users::find(&state.db, user.user_id).await?))
}

//! `POST /api/auth/logout`: ends the calling session everywhere at once.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use platform::auth::{CurrentUser, session};
use platform::{AppState, Result};

use crate::cookie;

/// Sign out
///
/// Ends the current session (its token stops working at once) and clears the session cookie.
#[utoipa::path(
    post, path = "/auth/logout", tag = "auth",
    security(("session" = [])),
    responses((status = 204, description = "Signed out"), (status = 401, description = "UNAUTHENTICATED"))
)]
pub async fn logout(State(state): State<AppState>, user: CurrentUser) -> Result<impl IntoResponse> {
    let mut connection = state.db.acquire().await?;
    let revoked = session::revoke(&mut connection, user.session_id).await?;
    drop(connection);
    session::forget(&state, revoked).await;
    Ok((cookie::clear(), StatusCode::NO_CONTENT))
}

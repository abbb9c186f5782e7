//! Request extractors: who is calling (`CurrentUser`) and role guards built on it.

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE, ORIGIN};
use axum::http::request::Parts;
use uuid::Uuid;

use super::Role;
use super::session::{self, COOKIE_NAME, SessionKind};
use crate::error::Error;
use crate::state::AppState;

/// The signed-in user, from `Authorization: Bearer <token>` or the session cookie.
#[derive(Debug, Clone, Copy)]
pub struct CurrentUser {
    pub user_id: Uuid,
    pub role: Role,
    pub session_id: Uuid,
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)
            .ok_or_else(|| Error::unauthorized("UNAUTHENTICATED", "Sign in to continue."))?;
        check_cookie_origin(parts, state)?;
        let session = session::resolve(state, &token, &[SessionKind::Session]).await?;
        tracing::Span::current().record("user_id", tracing::field::display(session.user_id));
        Ok(CurrentUser {
            user_id: session.user_id,
            role: session.role,
            session_id: session.session_id,
        })
    }
}

/// A browser attaches the session cookie to requests other sites make, so a request that
/// changes something and is authenticated by the cookie alone must come from one of our
/// origins (`API_ALLOWED_ORIGINS`): 403 `ORIGIN_NOT_ALLOWED` otherwise. Requests without an
/// `Origin` (not sent by a browser across sites) and bearer-authenticated ones pass.
fn check_cookie_origin(parts: &Parts, state: &AppState) -> Result<(), Error> {
    if parts.method.is_safe() || bearer_header(parts).is_some() {
        return Ok(());
    }
    let Some(origin) = parts.headers.get(ORIGIN) else {
        return Ok(());
    };
    let allowed = origin.to_str().is_ok_and(|origin| {
        state
            .config
            .cors_allowed_origins
            .iter()
            .any(|allowed| allowed == origin)
    });
    if allowed {
        Ok(())
    } else {
        Err(Error::forbidden(
            "ORIGIN_NOT_ALLOWED",
            "This change was requested from a site that may not act for you.",
        ))
    }
}

fn bearer_header(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        })
}

/// The token a request carries: the bearer header first, then the cookie.
pub fn bearer_token(parts: &Parts) -> Option<String> {
    bearer_header(parts)
        .or_else(|| {
            parts
                .headers
                .get_all(COOKIE)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(';'))
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(name, _)| *name == COOKIE_NAME)
                .map(|(_, token)| token.to_owned())
        })
        .filter(|token| !token.is_empty())
}

macro_rules! role_guard {
    ($(#[$doc:meta])* $name:ident, $role:expr, $label:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name(pub CurrentUser);

        impl FromRequestParts<AppState> for $name {
            type Rejection = Error;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, Self::Rejection> {
                let user = CurrentUser::from_request_parts(parts, state).await?;
                if user.role == $role {
                    Ok($name(user))
                } else {
                    Err(Error::forbidden(
                        "FORBIDDEN_ROLE",
                        concat!("Only ", $label, " may do this."),
                    ))
                }
            }
        }
    };
}

role_guard!(
    /// A signed-in admin; anyone else gets 403 `FORBIDDEN_ROLE`.
    AdminUser, Role::Admin, "admins"
);
role_guard!(
    /// A signed-in mentor; anyone else gets 403 `FORBIDDEN_ROLE`.
    MentorUser, Role::Mentor, "mentors"
);
role_guard!(
    /// A signed-in student; anyone else gets 403 `FORBIDDEN_ROLE`.
    StudentUser, Role::Student, "students"
);

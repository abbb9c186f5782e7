//! The session cookie: the same token as the bearer header, for browser clients.

use axum::http::header::SET_COOKIE;
use axum::http::{HeaderName, HeaderValue};
use axum::response::AppendHeaders;
use chrono::{DateTime, Utc};
use platform::auth::session::COOKIE_NAME;

pub type SetCookie = AppendHeaders<[(HeaderName, HeaderValue); 1]>;

/// `Set-Cookie` for a new session, expiring with it.
pub fn set(token: &str, expires_at: DateTime<Utc>) -> SetCookie {
    let max_age = (expires_at - Utc::now()).num_seconds().max(0);
    header(format!(
        "{COOKIE_NAME}={token}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax"
    ))
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear() -> SetCookie {
    header(format!(
        "{COOKIE_NAME}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
    ))
}

fn header(value: String) -> SetCookie {
    // Tokens are base64url, so the value is always a valid header.
    let value = HeaderValue::try_from(value).unwrap_or(HeaderValue::from_static(""));
    AppendHeaders([(SET_COOKIE, value)])
}

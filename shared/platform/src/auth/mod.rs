//! Authentication: argon2id passwords, opaque session tokens stored hashed, and the extractors
//! (`CurrentUser` and the role guards) every route uses to learn who is calling.

mod extract;
mod hashing_threads;
pub mod password;
pub mod session;
pub mod token;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use extract::{AdminUser, CurrentUser, MentorUser, StudentUser, bearer_token};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Student,
    Mentor,
    Admin,
}

/// Cache key of the login lookup by email (§11: 5 minutes, dropped on any change to the user).
pub fn user_by_email_key(email: &str) -> String {
    format!("user-by-email:{email}")
}

pub const USER_BY_EMAIL_TTL: Duration = Duration::from_secs(5 * 60);

/// Normalises an email for storage and lookup: trimmed and lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

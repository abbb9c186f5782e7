//! A class package's states, the one type for `packages.status`, responses and checks.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum PackageStatus {
    /// Bought but not yet paid.
    PendingPayment,
    /// Paid, with credits left.
    Active,
    /// Every credit used.
    Exhausted,
    Cancelled,
    /// Never paid.
    Expired,
}

//! A booking's states, the one type for the `status` column, responses and filters.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum BookingStatus {
    /// Held for its payment until `holdExpiresAt`.
    PendingPayment,
    Confirmed,
    Completed,
    Cancelled,
    /// Its hold lapsed unpaid.
    Expired,
    /// The mentor did not join.
    NoShow,
}

impl BookingStatus {
    /// Still holds its time: it can be cancelled or rescheduled.
    pub fn is_active(self) -> bool {
        matches!(self, Self::PendingPayment | Self::Confirmed)
    }

    /// The class takes place (or took place): it can be recorded.
    pub fn takes_place(self) -> bool {
        matches!(self, Self::Confirmed | Self::Completed)
    }

    /// Called off before it took place: cancelled, or its hold lapsed unpaid.
    pub fn is_called_off(self) -> bool {
        matches!(self, Self::Cancelled | Self::Expired)
    }

    /// The name stored and sent, such as `pending_payment`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingPayment => "pending_payment",
            Self::Confirmed => "confirmed",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::NoShow => "no_show",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serialised_ones() {
        for status in [
            BookingStatus::PendingPayment,
            BookingStatus::Confirmed,
            BookingStatus::Completed,
            BookingStatus::Cancelled,
            BookingStatus::Expired,
            BookingStatus::NoShow,
        ] {
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::Value::from(status.as_str())
            );
        }
    }
}

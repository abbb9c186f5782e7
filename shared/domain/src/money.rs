//! Money and other fixed-point values travel as decimal strings with exactly two places
//! (`"500.00"`), whatever scale Postgres hands back.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serializer;

/// `serialize_with` for a `Decimal` shown with two places.
pub fn two_places<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&format_args!(
        "{:.2}",
        value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
    ))
}

/// `serialize_with` for an optional `Decimal` shown with two places.
pub fn two_places_option<S: Serializer>(
    value: &Option<Decimal>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => two_places(value, serializer),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Amount(#[serde(serialize_with = "two_places")] Decimal);

    #[test]
    fn always_two_places() {
        for (value, expected) in [
            (Decimal::ZERO, "\"0.00\""),
            (Decimal::new(5, 0), "\"5.00\""),
            (Decimal::new(4125, 3), "\"4.13\""),
        ] {
            assert_eq!(serde_json::to_string(&Amount(value)).unwrap(), expected);
        }
    }
}

//! The fee split snapshotted on every paid booking: platform fee = fee × platform %, GST =
//! platform fee × GST %, mentor payout = the rest; each rounded half-up to 0.01.

use rust_decimal::{Decimal, RoundingStrategy};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeSplit {
    pub class_fee: Decimal,
    pub platform_fee: Decimal,
    pub gst: Decimal,
    pub mentor_payout: Decimal,
}

pub fn split(class_fee: Decimal, platform_percent: Decimal, gst_percent: Decimal) -> FeeSplit {
    let hundred = Decimal::ONE_HUNDRED;
    let platform_fee = cents(class_fee * platform_percent / hundred);
    let gst = cents(platform_fee * gst_percent / hundred);
    FeeSplit {
        class_fee,
        platform_fee,
        gst,
        mentor_payout: class_fee - platform_fee - gst,
    }
}

/// `percent` of `amount`, rounded half-up to 0.01 (refunds).
pub fn percent_of(amount: Decimal, percent: u32) -> Decimal {
    cents(amount * Decimal::from(percent) / Decimal::ONE_HUNDRED)
}

fn cents(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// The SQL condition, on `bookings b`, of a class whose mentor payout has come due (recorded or
/// not): a paid class completed at least 24 hours ago.
pub const PAYOUT_DUE: &str = "b.status = 'completed' AND b.completed_at <= now() - interval '24 hours' AND b.mentor_payout > 0";

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn the_spec_table_and_amounts_that_need_rounding() {
        for (fee, platform, gst, payout) in [
            ("500.00", "75.00", "13.50", "411.50"),
            ("1000.00", "150.00", "27.00", "823.00"),
            ("333.33", "50.00", "9.00", "274.33"),
            ("999.99", "150.00", "27.00", "822.99"),
            ("1.00", "0.15", "0.03", "0.82"),
            ("0.10", "0.02", "0.00", "0.08"),
            ("123.45", "18.52", "3.33", "101.60"),
        ] {
            let split = split(d(fee), d("15"), d("18"));
            assert_eq!(
                (split.platform_fee, split.gst, split.mentor_payout),
                (d(platform), d(gst), d(payout)),
                "fee {fee}"
            );
            assert_eq!(
                split.platform_fee + split.gst + split.mentor_payout,
                d(fee),
                "fee {fee} adds up"
            );
        }
    }

    #[test]
    fn refunds_round_half_up() {
        assert_eq!(percent_of(d("411.25"), 50), d("205.63"));
        assert_eq!(percent_of(d("500.00"), 100), d("500.00"));
        assert_eq!(percent_of(d("500.00"), 0), d("0.00"));
    }
}

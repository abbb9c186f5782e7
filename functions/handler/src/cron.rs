//! NCRONTAB, the schedule syntax of Azure timer triggers: `{second} {minute} {hour} {day}
//! {month} {day-of-week}` (a 5-field form without seconds is accepted too), evaluated in UTC,
//! parsed and stepped by `croner` set up as NCrontab (which the Functions host uses) reads it:
//! when both day fields are restricted a time must match both, and months and weekdays take
//! names (`JAN`, `MON`). croner also takes a few extensions NCrontab lacks (`L`, `W`, `#`);
//! our schedules do not use them.

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};

#[derive(Debug, Clone)]
pub struct Schedule(Cron);

impl Schedule {
    pub fn parse(expression: &str) -> Result<Self, String> {
        CronParser::builder()
            .seconds(Seconds::Optional)
            .dom_and_dow(true)
            .build()
            .parse(expression)
            .map(Self)
            .map_err(|error| format!("{expression:?} is not an NCRONTAB schedule: {error}"))
    }

    /// The first time strictly after `after` that the schedule fires.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.0.find_next_occurrence(&after, false).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn next(expression: &str, after: &str) -> String {
        Schedule::parse(expression)
            .unwrap()
            .next_after(at(after))
            .unwrap()
            .to_rfc3339()
    }

    #[test]
    fn the_schedules_of_our_timers() {
        // booking-lifecycle: every minute at second 0.
        assert_eq!(
            next("0 * * * * *", "2026-11-22T10:00:00Z"),
            "2026-11-22T10:01:00+00:00"
        );
        assert_eq!(
            next("0 * * * * *", "2026-11-22T10:00:59.9Z"),
            "2026-11-22T10:01:00+00:00"
        );
        // reminders: every 5 minutes.
        assert_eq!(
            next("0 */5 * * * *", "2026-11-22T10:03:12Z"),
            "2026-11-22T10:05:00+00:00"
        );
        // recordings: second 45 of every fifth minute.
        assert_eq!(
            next("45 */5 * * * *", "2026-11-22T10:05:45Z"),
            "2026-11-22T10:10:45+00:00"
        );
        // outbox: second 15 of every minute.
        assert_eq!(
            next("15 * * * * *", "2026-11-22T10:00:14Z"),
            "2026-11-22T10:00:15+00:00"
        );
        // hourly, across midnight and a year end.
        assert_eq!(
            next("0 0 * * * *", "2026-12-31T23:30:00Z"),
            "2027-01-01T00:00:00+00:00"
        );
    }

    #[test]
    fn ranges_lists_steps_and_days() {
        assert_eq!(
            next("0 30 9-17/4 * * *", "2026-11-22T10:00:00Z"),
            "2026-11-22T13:30:00+00:00"
        );
        assert_eq!(
            next("0 0 0 1,15 * *", "2026-11-16T00:00:00Z"),
            "2026-12-01T00:00:00+00:00"
        );
        // 2026-11-22 is a Sunday: next Monday 08:00; Sunday as 7 too.
        assert_eq!(
            next("0 0 8 * * 1", "2026-11-22T09:00:00Z"),
            "2026-11-23T08:00:00+00:00"
        );
        assert_eq!(
            next("0 0 8 * * 7", "2026-11-22T07:00:00Z"),
            "2026-11-22T08:00:00+00:00"
        );
        // The 31st skips short months; 29 February waits for a leap year.
        assert_eq!(
            next("0 0 0 31 * *", "2026-11-01T00:00:00Z"),
            "2026-12-31T00:00:00+00:00"
        );
        assert_eq!(
            next("0 0 0 29 2 *", "2026-03-01T00:00:00Z"),
            "2028-02-29T00:00:00+00:00"
        );
        // Names, in any case.
        assert_eq!(
            next("0 0 8 * * mon", "2026-11-22T09:00:00Z"),
            "2026-11-23T08:00:00+00:00"
        );
        assert_eq!(
            next("0 0 0 1 JAN *", "2026-11-22T00:00:00Z"),
            "2027-01-01T00:00:00+00:00"
        );
        // Both day fields restricted: NCrontab wants both (the 13th that is a Friday), where
        // cron would take either. The next Friday the 13th after 2026-11-22 is in August 2027.
        assert_eq!(
            next("0 0 0 13 * FRI", "2026-11-22T00:00:00Z"),
            "2027-08-13T00:00:00+00:00"
        );
        assert_eq!(
            next("0 0 12 1-7 * MON", "2026-11-22T00:00:00Z"),
            "2026-12-07T12:00:00+00:00"
        );
        // Five fields: minutes first.
        assert_eq!(
            next("*/10 * * * *", "2026-11-22T10:01:00Z"),
            "2026-11-22T10:10:00+00:00"
        );
    }

    #[test]
    fn malformed_schedules_are_refused() {
        for bad in [
            "",
            "* * * *",
            "60 * * * * *",
            "* * 24 * * *",
            "* * * 0 * *",
            "* * * * 13 *",
            "* * * * * 8",
            "*/0 * * * * *",
            "5-1 * * * * *",
            "a * * * * *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}

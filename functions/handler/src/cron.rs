//! NCRONTAB, the schedule syntax of Azure timer triggers: `{second} {minute} {hour} {day}
//! {month} {day-of-week}` (a 5-field form without seconds is accepted too), evaluated in UTC.
//! Fields take `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, and lists `a,b`; day of
//! week runs 0-6 from Sunday (7 is Sunday too). As in cron, when both day fields are
//! restricted a time matches either.

use chrono::{DateTime, Datelike, Duration, DurationRound, Timelike, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    seconds: u64,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_restricted: bool,
    weekdays_restricted: bool,
}

impl Schedule {
    pub fn parse(expression: &str) -> Result<Self, String> {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let fields = match fields.len() {
            6 => fields,
            5 => [&["0"], fields.as_slice()].concat(),
            n => {
                return Err(format!(
                    "{expression:?} has {n} fields; NCRONTAB needs 6 (or 5)"
                ));
            }
        };
        let weekdays = field(fields[5], 0, 7)?;
        Ok(Self {
            seconds: field(fields[0], 0, 59)?,
            minutes: field(fields[1], 0, 59)?,
            hours: field(fields[2], 0, 23)?,
            days: field(fields[3], 1, 31)?,
            months: field(fields[4], 1, 12)?,
            // Sunday is both 0 and 7.
            weekdays: (weekdays | (weekdays >> 7)) & 0x7F,
            days_restricted: fields[3] != "*",
            weekdays_restricted: fields[5] != "*",
        })
    }

    /// The first time strictly after `after` that the schedule fires (within about four years).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = after.duration_trunc(Duration::seconds(1)).ok()? + Duration::seconds(1);
        let mut minute = start.duration_trunc(Duration::minutes(1)).ok()?;
        let mut first_second = start.second();
        for _ in 0..(4 * 366 * 24 * 60) {
            if self.minute_matches(minute)
                && let Some(second) = (first_second..60).find(|s| has(self.seconds, *s))
            {
                return Some(minute + Duration::seconds(i64::from(second)));
            }
            minute += Duration::minutes(1);
            first_second = 0;
        }
        None
    }

    fn minute_matches(&self, at: DateTime<Utc>) -> bool {
        let day = has(self.days, at.day());
        let weekday = has(self.weekdays, at.weekday().num_days_from_sunday());
        let date = match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => day || weekday,
            _ => day && weekday,
        };
        date && has(self.months, at.month())
            && has(self.hours, at.hour())
            && has(self.minutes, at.minute())
    }
}

fn has(set: u64, value: u32) -> bool {
    set & (1 << value) != 0
}

/// The values a field allows, as a bit set.
fn field(text: &str, min: u32, max: u32) -> Result<u64, String> {
    let mut set = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (
                range,
                step.parse::<u32>()
                    .ok()
                    .filter(|step| *step > 0)
                    .ok_or_else(|| format!("bad step in {part:?}"))?,
            ),
            None => (part, 1),
        };
        let number = |text: &str| {
            text.parse::<u32>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| format!("{text:?} is not a number from {min} to {max}"))
        };
        let (low, high) = match range {
            "*" => (min, max),
            _ => match range.split_once('-') {
                Some((low, high)) => (number(low)?, number(high)?),
                // `5/15` means from 5 to the end in steps of 15.
                None if step > 1 => (number(range)?, max),
                None => (number(range)?, number(range)?),
            },
        };
        if low > high {
            return Err(format!("empty range {part:?}"));
        }
        for value in (low..=high).step_by(step as usize) {
            set |= 1 << value;
        }
    }
    Ok(set)
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

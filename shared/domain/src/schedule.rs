//! Class-time maths shared by discovery (availability) and bookings: weekly slots in the
//! mentor's IANA time zone, turned into concrete UTC start times.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Start times are offered on this grid (minutes past the slot's start).
pub const START_STEP_MINUTES: u32 = 15;

/// A class's kind: `demo` (40 minutes, free) or `regular` (55 minutes, paid); the one type for
/// requests, responses and the `session_type` column.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
    sqlx::Type,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum SessionType {
    Demo,
    Regular,
}

impl SessionType {
    pub fn duration(self) -> Duration {
        match self {
            SessionType::Demo => Duration::minutes(40),
            SessionType::Regular => Duration::minutes(55),
        }
    }
}

/// A recurring weekly slot: ISO weekday (1 = Monday) and minutes since local midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeeklySlot {
    pub day_of_week: u32,
    pub start_minute: u32,
    pub end_minute: u32,
}

/// Time a mentor is already taken: `[from, until)`, until including the buffer.
#[derive(Debug, Clone, Copy)]
pub struct Busy {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// Where a class stands against the mentor's weekly slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// No slot holds the whole class.
    Outside,
    /// A slot holds it, but it does not start on that slot's grid of [`START_STEP_MINUTES`].
    OffGrid,
    /// A start availability offers: inside a slot, on its grid.
    Offered,
}

/// Where a class of `duration` starting at `start` stands against `slots`, read in the mentor's
/// time zone (so DST shifts are honoured).
pub fn placement(
    start: DateTime<Utc>,
    duration: Duration,
    zone: Tz,
    slots: &[WeeklySlot],
) -> Placement {
    let local_start = start.with_timezone(&zone).naive_local();
    let local_end = (start + duration).with_timezone(&zone).naive_local();
    let date = local_start.date();
    let grid = Duration::minutes(i64::from(START_STEP_MINUTES));
    slots
        .iter()
        .filter(|slot| {
            slot.day_of_week == date.weekday().number_from_monday()
                && local_start >= at_minute(date, slot.start_minute)
                && local_end <= at_minute(date, slot.end_minute)
        })
        .map(|slot| {
            let offset = local_start - at_minute(date, slot.start_minute);
            match (offset.num_nanoseconds(), grid.num_nanoseconds()) {
                (Some(offset), Some(step)) if offset % step == 0 => Placement::Offered,
                _ => Placement::OffGrid,
            }
        })
        .max_by_key(|placement| *placement == Placement::Offered)
        .unwrap_or(Placement::Outside)
}

/// The instants a class may start: `[earliest, latest]`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub earliest: DateTime<Utc>,
    pub latest: DateTime<Utc>,
}

/// Every start time on local `date` (in `zone`) where a class of `duration` fits in a slot,
/// lies in `window`, and keeps `buffer` clear of every `busy` range.
pub fn bookable_starts(
    date: NaiveDate,
    zone: Tz,
    slots: &[WeeklySlot],
    busy: &[Busy],
    duration: Duration,
    buffer: Duration,
    window: Window,
) -> Vec<DateTime<Utc>> {
    let weekday = date.weekday().number_from_monday();
    let mut starts: Vec<DateTime<Utc>> = slots
        .iter()
        .filter(|slot| slot.day_of_week == weekday)
        .flat_map(|slot| {
            (slot.start_minute..slot.end_minute)
                .step_by(START_STEP_MINUTES as usize)
                .filter_map(move |minute| {
                    // A local time skipped by a DST jump has no instant; a repeated one takes
                    // its first occurrence.
                    zone.from_local_datetime(&at_minute(date, minute))
                        .earliest()
                        .map(|start| start.with_timezone(&Utc))
                })
        })
        .filter(|&start| start >= window.earliest && start <= window.latest)
        .filter(|&start| placement(start, duration, zone, slots) == Placement::Offered)
        .filter(|&start| {
            let until = start + duration + buffer;
            busy.iter()
                .all(|taken| until <= taken.from || start >= taken.until)
        })
        .collect();
    starts.sort();
    starts.dedup();
    starts
}

/// `HH:MM` (24 h) to minutes since midnight; `24:00` is the end of the day.
pub fn parse_clock(text: &str) -> Option<u32> {
    if text == "24:00" {
        return Some(24 * 60);
    }
    let time = NaiveTime::parse_from_str(text, "%H:%M").ok()?;
    (text.len() == 5).then(|| time.hour_minute())
}

/// Minutes since midnight as `HH:MM`.
pub fn format_clock(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn at_minute(date: NaiveDate, minute: u32) -> chrono::NaiveDateTime {
    date.and_time(NaiveTime::MIN) + Duration::minutes(i64::from(minute))
}

trait HourMinute {
    fn hour_minute(&self) -> u32;
}

impl HourMinute for NaiveTime {
    fn hour_minute(&self) -> u32 {
        use chrono::Timelike;
        self.hour() * 60 + self.minute()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn open_window() -> Window {
        Window {
            earliest: DateTime::<Utc>::MIN_UTC,
            latest: DateTime::<Utc>::MAX_UTC,
        }
    }

    #[test]
    fn clocks_parse_strictly() {
        assert_eq!(parse_clock("09:30"), Some(570));
        assert_eq!(parse_clock("24:00"), Some(1440));
        for bad in ["9:30", "24:01", "09:60", "0930", "", "09:30:00"] {
            assert_eq!(parse_clock(bad), None, "{bad}");
        }
        assert_eq!(format_clock(570), "09:30");
    }

    #[test]
    fn starts_are_on_the_grid_and_the_class_ends_inside_the_slot() {
        // Monday 2026-11-23 in India (UTC+5:30), slot 10:00-11:30.
        let slots = [WeeklySlot {
            day_of_week: 1,
            start_minute: 600,
            end_minute: 690,
        }];
        let window = open_window();
        let date = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();

        let starts = bookable_starts(
            date,
            chrono_tz::Asia::Kolkata,
            &slots,
            &[],
            SessionType::Regular.duration(),
            Duration::minutes(5),
            window,
        );

        // 55-minute classes: 10:00, 10:15, 10:30 local (10:45 would end at 11:40).
        assert_eq!(
            starts,
            vec![
                utc("2026-11-23T04:30:00Z"),
                utc("2026-11-23T04:45:00Z"),
                utc("2026-11-23T05:00:00Z")
            ]
        );
    }

    #[test]
    fn a_start_inside_a_slot_but_off_its_grid_is_not_offered() {
        // Monday 2026-11-23, slots 10:00-11:30 and 14:10-16:00 in Kolkata (UTC+5:30).
        let slots = [
            WeeklySlot {
                day_of_week: 1,
                start_minute: 600,
                end_minute: 690,
            },
            WeeklySlot {
                day_of_week: 1,
                start_minute: 850,
                end_minute: 960,
            },
        ];
        let at = |text| {
            placement(
                utc(text),
                SessionType::Regular.duration(),
                chrono_tz::Asia::Kolkata,
                &slots,
            )
        };
        assert_eq!(at("2026-11-23T04:45:00Z"), Placement::Offered, "10:15");
        assert_eq!(
            at("2026-11-23T08:55:00Z"),
            Placement::Offered,
            "14:25, the second slot's grid"
        );
        assert_eq!(at("2026-11-23T04:52:00Z"), Placement::OffGrid, "10:22");
        assert_eq!(at("2026-11-23T04:45:13Z"), Placement::OffGrid, "10:15:13");
        assert_eq!(
            at("2026-11-23T08:45:00Z"),
            Placement::OffGrid,
            "14:15 is off 14:10's grid"
        );
        assert_eq!(
            at("2026-11-23T05:30:00Z"),
            Placement::Outside,
            "11:00 ends past 11:30"
        );
    }

    #[test]
    fn the_mentors_local_day_decides_not_utc() {
        // Monday 00:00-01:00 in Kolkata is Sunday 18:30-19:30 UTC.
        let slots = [WeeklySlot {
            day_of_week: 1,
            start_minute: 0,
            end_minute: 60,
        }];
        let window = open_window();
        let monday = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();

        let starts = bookable_starts(
            monday,
            chrono_tz::Asia::Kolkata,
            &slots,
            &[],
            SessionType::Demo.duration(),
            Duration::zero(),
            window,
        );

        assert_eq!(
            starts,
            vec![utc("2026-11-22T18:30:00Z"), utc("2026-11-22T18:45:00Z")]
        );
        assert_eq!(
            placement(
                utc("2026-11-22T18:30:00Z"),
                SessionType::Demo.duration(),
                chrono_tz::Asia::Kolkata,
                &slots
            ),
            Placement::Offered
        );
        assert_eq!(
            placement(
                utc("2026-11-22T18:30:00Z"),
                SessionType::Demo.duration(),
                chrono_tz::UTC,
                &slots
            ),
            Placement::Outside
        );
    }

    #[test]
    fn a_dst_spring_forward_skips_missing_local_times_and_shortens_the_slot() {
        // New York, Sunday 2027-03-14: 02:00-03:00 does not exist. Slot 01:00-04:00 local.
        let slots = [WeeklySlot {
            day_of_week: 7,
            start_minute: 60,
            end_minute: 240,
        }];
        let window = open_window();
        let date = NaiveDate::from_ymd_opt(2027, 3, 14).unwrap();

        let starts = bookable_starts(
            date,
            chrono_tz::America::New_York,
            &slots,
            &[],
            SessionType::Regular.duration(),
            Duration::zero(),
            window,
        );

        let local: Vec<String> = starts
            .iter()
            .map(|s| {
                s.with_timezone(&chrono_tz::America::New_York)
                    .format("%H:%M")
                    .to_string()
            })
            .collect();
        // 01:00 +55 min = 01:55 EST fits; 01:15 would end at 03:10 EDT local: still before 04:00.
        assert!(local.contains(&"01:00".to_owned()), "{local:?}");
        assert!(
            !local.iter().any(|t| t.starts_with("02:")),
            "no start in the skipped hour: {local:?}"
        );
        assert!(local.contains(&"03:00".to_owned()));
        assert!(
            !local.contains(&"03:15".to_owned()),
            "03:15 + 55 min = 04:10, past the slot"
        );
    }

    #[test]
    fn a_dst_fall_back_takes_the_first_occurrence_of_a_repeated_time() {
        // New York, Sunday 2026-11-01: 01:00-02:00 happens twice.
        let slots = [WeeklySlot {
            day_of_week: 7,
            start_minute: 60,
            end_minute: 180,
        }];
        let window = open_window();
        let date = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();

        let starts = bookable_starts(
            date,
            chrono_tz::America::New_York,
            &slots,
            &[],
            SessionType::Demo.duration(),
            Duration::zero(),
            window,
        );

        assert_eq!(
            starts.first(),
            Some(&utc("2026-11-01T05:00:00Z")),
            "01:00 EDT"
        );
        // 01:00 EDT + 40 min ends 01:40 EDT; every start lies inside 01:00-03:00 local.
        assert!(starts.iter().all(|s| placement(
            *s,
            SessionType::Demo.duration(),
            chrono_tz::America::New_York,
            &slots
        ) == Placement::Offered));
    }

    #[test]
    fn busy_time_and_the_buffer_remove_starts_on_both_sides() {
        // Monday slot 09:00-13:00 UTC; a booking 11:00-11:55 (+5 buffer => until 12:00).
        let slots = [WeeklySlot {
            day_of_week: 1,
            start_minute: 540,
            end_minute: 780,
        }];
        let busy = [Busy {
            from: utc("2026-11-23T11:00:00Z"),
            until: utc("2026-11-23T12:00:00Z"),
        }];
        let window = open_window();
        let date = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();

        let starts = bookable_starts(
            date,
            chrono_tz::UTC,
            &slots,
            &busy,
            SessionType::Regular.duration(),
            Duration::minutes(5),
            window,
        );

        let times: Vec<String> = starts
            .iter()
            .map(|s| s.format("%H:%M").to_string())
            .collect();
        // 10:00 + 55 + 5 = 11:00 touches the booking's start: allowed. 10:15 would overlap.
        assert_eq!(
            times,
            vec!["09:00", "09:15", "09:30", "09:45", "10:00", "12:00"]
        );
    }

    #[test]
    fn the_booking_window_bounds_starts() {
        let slots = [WeeklySlot {
            day_of_week: 1,
            start_minute: 540,
            end_minute: 720,
        }];
        let date = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();

        let starts = bookable_starts(
            date,
            chrono_tz::UTC,
            &slots,
            &[],
            SessionType::Demo.duration(),
            Duration::zero(),
            Window {
                earliest: utc("2026-11-23T10:00:00Z"),
                latest: utc("2026-11-23T10:30:00Z"),
            },
        );

        let times: Vec<String> = starts
            .iter()
            .map(|s| s.format("%H:%M").to_string())
            .collect();
        assert_eq!(times, vec!["10:00", "10:15", "10:30"]);
    }
}

//! Phase 5: students race for the same slots while others read their bookings. Virtual users
//! go in groups of [`RACERS`] through one shared sequence of slots, so every slot is wanted by
//! several students at nearly the same moment: one wins (201), the others are refused with the
//! rule that stopped them (409 SLOT_TAKEN, or STUDENT_CONFLICT/LIMIT_* for their own bookings),
//! which the phase expects. Afterwards the database must show no slot held twice and exactly
//! one stored booking per 201.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Asia::Kolkata;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

use super::{Outcome, StepResult, Target, VirtualUser, expect_ok, transport_error};

/// Students racing for each slot.
const RACERS: usize = 4;
/// Seeded weekly slots run 09:00-21:00 in the mentors' zone (Asia/Kolkata); classes take 55 min.
const FIRST_HOUR: u32 = 9;
const HOURS: usize = 12;
/// Slots are between 2 and 2 + DAYS days ahead (inside the 60-day horizon).
const DAYS: usize = 50;

pub struct User {
    target: Arc<Target>,
    user: usize,
    round: usize,
    step: u64,
    wins: Arc<AtomicU64>,
}

/// The phase's users and the shared count of bookings they won.
pub fn users(target: &Arc<Target>) -> (Vec<Result<User, String>>, Arc<AtomicU64>) {
    let wins = Arc::new(AtomicU64::new(0));
    let users = (0..target.connections)
        .map(|user| {
            Ok(User {
                target: target.clone(),
                user,
                round: 0,
                step: 0,
                wins: wins.clone(),
            })
        })
        .collect();
    (users, wins)
}

impl VirtualUser for User {
    async fn step(&mut self) -> StepResult {
        self.step += 1;
        let Target {
            client,
            base,
            data,
            connections,
        } = &*self.target;
        let token = &data.student_tokens[self.user % data.student_tokens.len()];
        if self.step.is_multiple_of(2) {
            return expect_ok(
                client
                    .get(format!("{base}/api/bookings?when=upcoming"))
                    .bearer_auth(token)
                    .send()
                    .await,
            );
        }
        let groups = connections.div_ceil(RACERS);
        let slot = self.user / RACERS + groups * self.round;
        self.round += 1;
        let mentor = data.mentor_ids[slot % data.mentor_ids.len()];
        let response = client
            .post(format!("{base}/api/bookings"))
            .bearer_auth(token)
            .json(&json!({
                "mentorId": mentor,
                "subject": "Physics",
                "sessionType": "regular",
                "scheduledAt": start_of(slot / data.mentor_ids.len()),
                "idempotencyKey": format!("load-{}-{}", self.user, self.round),
            }))
            .send()
            .await
            .map_err(|error| transport_error(&error))?;
        let status = response.status();
        if status == reqwest::StatusCode::CREATED {
            self.wins.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        let body: Value = response.json().await.unwrap_or_default();
        let code = body["code"].as_str().unwrap_or("");
        let expected = status == reqwest::StatusCode::CONFLICT
            && (matches!(code, "SLOT_TAKEN" | "STUDENT_CONFLICT") || code.starts_with("LIMIT_"));
        let kind = format!("HTTP {} {code}", status.as_u16());
        if expected { Ok(Some(kind)) } else { Err(kind) }
    }
}

/// The `index`-th slot of a mentor: hour by hour through the day, then day by day.
fn start_of(index: usize) -> DateTime<Utc> {
    let hour = FIRST_HOUR + (index % HOURS) as u32;
    at_hour_in_kolkata(2 + (index / HOURS) % DAYS, hour)
}

/// `hour`:00 in the seeded mentors' zone (Asia/Kolkata), `days` days from today there.
pub fn at_hour_in_kolkata(days: usize, hour: u32) -> DateTime<Utc> {
    let date = (Utc::now().with_timezone(&Kolkata) + Duration::days(days as i64)).date_naive();
    let local = date.and_time(NaiveTime::from_hms_opt(hour, 0, 0).expect("hour"));
    Kolkata
        .from_local_datetime(&local)
        .single()
        .expect("Asia/Kolkata has no DST")
        .with_timezone(&Utc)
}

/// Pairs of active bookings whose blocked times overlap for one mentor or one student (what the
/// exclusion constraints forbid).
pub async fn overlapping_pairs(db: &mut PgConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        r#"SELECT count(*) FROM bookings a JOIN bookings b
             ON a.booking_id < b.booking_id
            AND (a.mentor_id = b.mentor_id OR a.student_id = b.student_id)
            AND tstzrange(a.scheduled_at, a.blocked_until) && tstzrange(b.scheduled_at, b.blocked_until)
           WHERE a.status IN ('pending_payment', 'confirmed') AND b.status IN ('pending_payment', 'confirmed')"#,
    )
    .fetch_one(db)
    .await
}

/// What the database says after the race: no slot held by two bookings, one row per 201.
pub async fn check(
    target: &Target,
    started: DateTime<Utc>,
    outcome: &Outcome,
    wins: &AtomicU64,
) -> Vec<String> {
    let mut checks = Vec::new();
    let Ok(mut db) = PgConnection::connect(&target.data.direct_url).await else {
        return vec!["FAILED: could not read the database to check the race".into()];
    };
    let overlapping = overlapping_pairs(&mut db).await.unwrap_or(-1);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings WHERE created_at >= $1")
        .bind(started)
        .fetch_one(&mut db)
        .await
        .unwrap_or(-1);
    let won = wins.load(Ordering::Relaxed) as i64;
    let lost = outcome
        .expected
        .iter()
        .filter(|(kind, _)| kind.contains("SLOT_TAKEN"))
        .map(|(_, count)| count)
        .sum::<u64>();
    checks.push(format!(
        "{}: {overlapping} pairs of active bookings overlap for one mentor or student",
        verdict(overlapping == 0)
    ));
    checks.push(format!(
        "{}: {won} bookings answered 201, {stored} stored ({lost} attempts lost a race with 409 SLOT_TAKEN)",
        verdict(won == stored)
    ));
    checks
}

fn verdict(passed: bool) -> &'static str {
    if passed { "passed" } else { "FAILED" }
}

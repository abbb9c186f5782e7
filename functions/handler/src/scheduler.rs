//! Timers fired in-process when the handler runs alone (`TIMERS_IN_PROCESS`), on the schedules
//! of the timers' own `function.json` files, so a local run behaves as under the Functions host.
//! Like the host's schedule monitor, the last scheduled run of each timer is kept (`timer_runs`):
//! after downtime a missed timer runs once at start with `IsPastDue`. Each timer runs one tick
//! at a time; ticks that pass while it runs are skipped.

use std::time::Duration as StdDuration;

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};
use platform::AppState;
use platform::invocation::{ScheduleStatus, TimerFunction, TimerInfo};
use serde_json::Value;

use crate::cron::Schedule;

/// Waits this long before trying again when Postgres is unreachable.
const RETRY_AFTER: StdDuration = StdDuration::from_secs(30);

/// Starts one task per timer. Fails (before starting any) if a schedule can't be read.
pub fn start(state: &AppState) -> anyhow::Result<()> {
    let mut timers = Vec::new();
    for timer in crate::timer_functions() {
        let schedule = schedule_of(timer.name)?;
        timers.push((*timer, schedule));
    }
    for (timer, schedule) in timers {
        tokio::spawn(run_forever(state.clone(), timer, schedule));
    }
    Ok(())
}

/// The schedule in the timer's `function.json`.
pub fn schedule_of(name: &str) -> anyhow::Result<Schedule> {
    let definition = crate::functions()
        .find(|function| function.name == name)
        .with_context(|| format!("timer {name} has no function.json"))?;
    let json: Value = serde_json::from_str(definition.function_json)
        .with_context(|| format!("{name}/function.json"))?;
    let expression = json["bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|binding| binding["type"] == "timerTrigger")
        .and_then(|binding| binding["schedule"].as_str())
        .with_context(|| format!("{name}/function.json has no timerTrigger schedule"))?;
    Schedule::parse(expression).map_err(|problem| anyhow!("{name}/function.json: {problem}"))
}

async fn run_forever(state: AppState, timer: TimerFunction, schedule: Schedule) {
    loop {
        let last = match last_run(&state, timer.name).await {
            Ok(last) => last,
            Err(error) => {
                tracing::warn!(
                    timer = timer.name,
                    error = format!("{error:#}"),
                    "timer schedule unavailable"
                );
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            }
        };
        let now = Utc::now();
        let Some(due) = schedule.next_after(last.unwrap_or(now)) else {
            tracing::error!(timer = timer.name, "schedule never fires");
            return;
        };
        let past_due = due < now;
        if !past_due {
            tokio::time::sleep((due - now).to_std().unwrap_or_default()).await;
        }
        let info = TimerInfo {
            schedule_status: Some(ScheduleStatus {
                last,
                next: schedule.next_after(due.max(now)),
            }),
            is_past_due: past_due,
        };
        // Its outcome is logged and measured by `run_traced`.
        let _ = timer.run_traced(state.clone(), info).await;
        // A past-due run stands for every missed tick: record now, not the oldest missed one.
        let ran_for = if past_due { now } else { due };
        if let Err(error) = record_run(&state, timer.name, ran_for).await {
            tracing::warn!(
                timer = timer.name,
                error = format!("{error:#}"),
                "could not record the timer run"
            );
        }
    }
}

async fn last_run(state: &AppState, name: &str) -> anyhow::Result<Option<DateTime<Utc>>> {
    Ok(
        sqlx::query_scalar("SELECT last_run_at FROM timer_runs WHERE name = $1")
            .bind(name)
            .fetch_optional(&state.db)
            .await?,
    )
}

async fn record_run(state: &AppState, name: &str, at: DateTime<Utc>) -> anyhow::Result<()> {
    sqlx::query(
        r#"INSERT INTO timer_runs (name, last_run_at) VALUES ($1, $2)
           ON CONFLICT (name) DO UPDATE SET last_run_at = greatest(timer_runs.last_run_at, EXCLUDED.last_run_at)"#,
    )
    .bind(name)
    .bind(at)
    .execute(&state.db)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_timer_has_a_readable_schedule() {
        for timer in crate::timer_functions() {
            let schedule = super::schedule_of(timer.name).unwrap();
            assert!(
                schedule.next_after(chrono::Utc::now()).is_some(),
                "{}",
                timer.name
            );
        }
    }
}

//! Faults injected under load into the scaled-out deployment (`--faults`): each fault alone, then
//! all in one run. A mixed workload runs throughout (`workload`: demo bookings racing in pairs,
//! chat between class participants with the mentors' reliable Web PubSub clients listening,
//! discovery reads); every attempt is logged with its time and classified. Afterwards the
//! invariants are checked from the database and the SendGrid mock (`invariants`), and the errors
//! are split into those inside each fault's window and those outside it.

mod invariants;
mod subscriber;
mod workload;

use std::fmt::Write;
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::seed::LoadData;
use crate::sendgrid::SendGrid;

pub use workload::Class as AnswerClass;

/// The faults, in the order a combined run injects them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `kill -9` one handler instance (revived 15 s later).
    KillInstance,
    /// Redis stopped for 15 s, then started empty.
    RedisOutage,
    /// PgBouncer stopped at once (in-flight transactions cut) and started again.
    PgBouncerRestart,
    /// The machine's Postgres restarted with a fast shutdown.
    PostgresRestart,
    /// Every mentor's Web PubSub connection dropped; each reconnects with recovery.
    HubClientDrop,
}

impl Fault {
    pub const ALL: [Fault; 5] = [
        Fault::KillInstance,
        Fault::RedisOutage,
        Fault::PgBouncerRestart,
        Fault::PostgresRestart,
        Fault::HubClientDrop,
    ];

    pub fn parse(name: &str) -> Result<Vec<Fault>, String> {
        Ok(match name {
            "kill" => vec![Fault::KillInstance],
            "redis" => vec![Fault::RedisOutage],
            "pgbouncer" => vec![Fault::PgBouncerRestart],
            "postgres" => vec![Fault::PostgresRestart],
            "hub" => vec![Fault::HubClientDrop],
            "all" => Fault::ALL.to_vec(),
            other => {
                return Err(format!(
                    "unknown fault {other}: kill, redis, pgbouncer, postgres, hub or all"
                ));
            }
        })
    }

    fn describe(self) -> &'static str {
        match self {
            Fault::KillInstance => "kill -9 of instance h0 (started again 15 s later)",
            Fault::RedisOutage => "Redis stopped for 15 s, then started empty",
            Fault::PgBouncerRestart => "PgBouncer stopped at once (SIGQUIT) and started",
            Fault::PostgresRestart => "Postgres restarted (fast shutdown)",
            Fault::HubClientDrop => "every mentor's hub connection dropped, resumed with recovery",
        }
    }
}

/// Steady load before the first fault, and between faults of a combined run.
const STEADY: Duration = Duration::from_secs(10);
/// How long after a fault's end its effects may still show (reconnections, health checks).
const SETTLE: Duration = Duration::from_secs(5);

/// One fault's window in a run, seconds from the run's start.
#[derive(Debug, Clone)]
pub struct Window {
    pub fault: Fault,
    pub injected: f64,
    /// When the fault was over (the dependency back, the instance out of rotation).
    pub over: f64,
}

impl Window {
    fn end(&self) -> f64 {
        self.over + SETTLE.as_secs_f64()
    }

    fn contains(&self, sent: f64, done: f64) -> bool {
        sent <= self.end() && done >= self.injected
    }
}

/// Students to seed for `faults` run alone and then together: the classes' students, then fresh
/// bookers for every run.
pub fn students_needed(connections: usize, faults: usize) -> usize {
    let runs = if faults > 1 { faults + 1 } else { faults };
    (connections / 2 + runs * (workload::BOOKERS + workload::PAYERS)).max(crate::seed::MIN_STUDENTS)
}

/// Runs each of `faults` alone, then (with more than one) all in one run, and writes
/// `faults.md`. Returns whether every run kept every invariant with no error outside a window.
pub async fn run(
    command: &str,
    faults: &[Fault],
    cluster: &mut Cluster,
    data: &LoadData,
    sendgrid: &SendGrid,
    connections: usize,
    out_dir: &str,
) -> anyhow::Result<bool> {
    let mut schedules: Vec<Vec<Fault>> = faults.iter().map(|fault| vec![*fault]).collect();
    if faults.len() > 1 {
        schedules.push(faults.to_vec());
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(workload::CLIENT_TIMEOUT)
        .build()?;
    let mut report = String::new();
    let _ = writeln!(
        report,
        "# Faults under load: {} handler instances behind HAProxy, {connections} connections\n\n\
         Command: `{command}`\n\n{}",
        cluster.instances(),
        workload::DESCRIPTION
    );
    let mut all_passed = true;
    for (index, schedule) in schedules.iter().enumerate() {
        eprintln!("fault run {}: {schedule:?}", index + 1);
        let load = workload::Workload::start(
            client.clone(),
            cluster.base_url.clone(),
            data,
            connections,
            index,
        )
        .await?;
        let started = load.started();
        let mut windows = Vec::new();
        for fault in schedule {
            tokio::time::sleep(STEADY).await;
            eprintln!(
                "  {:>5.1} s: {}",
                started.elapsed().as_secs_f64(),
                fault.describe()
            );
            windows.push(inject(*fault, cluster, &load, started).await?);
        }
        tokio::time::sleep(STEADY + SETTLE).await;
        eprintln!(
            "  {:>5.1} s: stopping the load",
            started.elapsed().as_secs_f64()
        );
        let outcome = load.stop().await;
        eprintln!("  checking the invariants");
        let checks = invariants::check(data, &outcome, sendgrid).await;
        let section = section(index + 1, schedule, &windows, &outcome, &checks);
        all_passed &= section.passed;
        report.push_str(&section.markdown);
    }
    std::fs::create_dir_all(out_dir)?;
    let path = format!("{out_dir}/faults.md");
    std::fs::write(&path, &report)?;
    println!("{report}");
    eprintln!("wrote {path}");
    Ok(all_passed)
}

/// Injects `fault` and waits until it is over; its window.
async fn inject(
    fault: Fault,
    cluster: &mut Cluster,
    load: &workload::Workload,
    started: Instant,
) -> anyhow::Result<Window> {
    let now = || started.elapsed().as_secs_f64();
    let injected = now();
    let over = match fault {
        Fault::KillInstance => {
            cluster.kill_instance(0);
            // The balancer marks it down after two failed checks 500 ms apart.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let over = now();
            tokio::time::sleep(Duration::from_secs(14)).await;
            cluster.revive_instance(0).await?;
            over
        }
        Fault::RedisOutage => {
            cluster.stop_redis();
            tokio::time::sleep(Duration::from_secs(15)).await;
            cluster.start_redis().await?;
            now()
        }
        Fault::PgBouncerRestart => {
            cluster.restart_pgbouncer().await?;
            now()
        }
        Fault::PostgresRestart => {
            cluster.restart_postgres().await?;
            now()
        }
        Fault::HubClientDrop => {
            load.drop_hub_clients();
            now()
        }
    };
    Ok(Window {
        fault,
        injected,
        over,
    })
}

struct Section {
    markdown: String,
    passed: bool,
}

/// One run's part of `faults.md`: the windows, answers inside and outside them, recovery, the
/// invariants.
fn section(
    number: usize,
    schedule: &[Fault],
    windows: &[Window],
    outcome: &workload::Outcome,
    checks: &[String],
) -> Section {
    let mut out = String::new();
    let title = match schedule {
        [one] => one.describe().to_owned(),
        _ => "all faults in one run".to_owned(),
    };
    let _ = writeln!(out, "\n## Run {number}: {title}\n");
    let _ = writeln!(
        out,
        "{} attempts over {:.0} s ({} operations, {} retried until answered, {} given up).\n",
        outcome.answers.len(),
        outcome.elapsed,
        outcome.operations,
        outcome.retried,
        outcome.given_up
    );
    let _ = writeln!(
        out,
        "| fault | injected at s | over at s | window ends s | attempts in window | successes | expected refusals | 503 problems | other errors | last failure after injection s |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|");
    for window in windows {
        let inside: Vec<&workload::Answer> = outcome
            .answers
            .iter()
            .filter(|answer| window.contains(answer.sent, answer.done))
            .collect();
        let last_failure = inside
            .iter()
            .filter(|answer| answer.class.is_failure())
            .map(|answer| answer.done - window.injected)
            .fold(0.0, f64::max);
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {:.1} |",
            window.fault.describe(),
            window.injected,
            window.over,
            window.end(),
            inside.len(),
            count(&inside, AnswerClass::Success),
            count(&inside, AnswerClass::Refused),
            count(&inside, AnswerClass::Unavailable),
            kinds(
                inside
                    .iter()
                    .copied()
                    .filter(|a| a.class == AnswerClass::Failed)
            ),
            last_failure,
        );
    }
    let outside: Vec<&workload::Answer> = outcome
        .answers
        .iter()
        .filter(|answer| {
            !windows
                .iter()
                .any(|window| window.contains(answer.sent, answer.done))
        })
        .collect();
    let outside_failures = outside.iter().filter(|a| a.class.is_failure()).count();
    let _ = writeln!(
        out,
        "\nOutside the windows: {} attempts, {} successes, {} expected refusals, {} failures ({}).\n",
        outside.len(),
        count(&outside, AnswerClass::Success),
        count(&outside, AnswerClass::Refused),
        outside_failures,
        kinds(outside.iter().copied().filter(|a| a.class.is_failure()))
    );
    let _ = writeln!(
        out,
        "Latency of successful attempts: {}.\n",
        outcome.latency_summary()
    );
    let answers_500 = outcome
        .answers
        .iter()
        .filter(|a| a.kind == "HTTP 500")
        .count();
    let mut all_checks = checks.to_vec();
    all_checks.push(verdict(
        outside_failures == 0,
        format!("{outside_failures} failed attempts outside the fault windows"),
    ));
    all_checks.push(verdict(
        answers_500 == 0,
        format!("{answers_500} answers were 500 (a dependency outage must be a 503 problem)"),
    ));
    all_checks.push(verdict(
        outcome.given_up == 0,
        format!("{} operations given up after retrying", outcome.given_up),
    ));
    for check in &all_checks {
        let _ = writeln!(out, "- {check}");
    }
    Section {
        passed: all_checks.iter().all(|check| check.starts_with("passed")),
        markdown: out,
    }
}

pub fn verdict(passed: bool, text: String) -> String {
    format!("{}: {text}", if passed { "passed" } else { "FAILED" })
}

fn count(answers: &[&workload::Answer], class: AnswerClass) -> usize {
    answers
        .iter()
        .filter(|answer| answer.class == class)
        .count()
}

fn kinds<'a>(answers: impl Iterator<Item = &'a workload::Answer>) -> String {
    let mut counts = std::collections::BTreeMap::<&str, u64>::new();
    for answer in answers {
        *counts.entry(answer.kind.as_str()).or_default() += 1;
    }
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|(kind, n)| format!("{kind}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

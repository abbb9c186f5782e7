//! The results table, as Markdown (for people) and JSON (for tools).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::Options;
use crate::phases::{Kind, Outcome, Parts, Phase};
use crate::server::ServerSummary;

#[derive(Serialize)]
pub struct Report {
    command: String,
    connections: usize,
    /// Handler processes (behind HAProxy when more than one).
    instances: usize,
    duration_seconds: u64,
    server: ServerSummary,
    /// What was started: the executable's size, and its package folder's when it is one.
    handler: HandlerSize,
    hello_world_per_second: f64,
    hello_world_p975_ms: f64,
    /// Errors while measuring the hello-world ceiling (a ceiling with errors is not a ceiling).
    hello_world_errors: BTreeMap<String, u64>,
    argon2_hashes_per_second: f64,
    /// The booking transaction by pgbench through PgBouncer, when the booking phase ran.
    booking_transactions_per_second: Option<f64>,
    /// Discovery's answers from memory behind the handler's request path, when it ran.
    discovery_from_memory_per_second: Option<f64>,
    discovery_from_memory_p975_ms: Option<f64>,
    phases: Vec<Row>,
}

/// The size of the handler a run started.
#[derive(Serialize)]
struct HandlerSize {
    path: String,
    executable_mb: f64,
    /// The folder around it, when it is a package (`infra/package.sh`: `host.json` beside it).
    package_mb: Option<f64>,
}

impl HandlerSize {
    fn of(path: &str) -> Self {
        let path = std::path::Path::new(path);
        let folder = path
            .parent()
            .filter(|folder| folder.join("host.json").is_file());
        HandlerSize {
            path: path.display().to_string(),
            executable_mb: megabytes(std::fs::metadata(path).map_or(0, |meta| meta.len())),
            package_mb: folder.map(|folder| megabytes(bytes_under(folder))),
        }
    }

    fn describe(&self) -> String {
        match self.package_mb {
            Some(package) => format!(
                "a package of {package:.1} MB (the executable {:.1} MB)",
                self.executable_mb
            ),
            None => format!("{:.1} MB (not a package)", self.executable_mb),
        }
    }
}

/// Every file's bytes under `folder`.
fn bytes_under(folder: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => bytes_under(&entry.path()),
            _ => entry.metadata().map_or(0, |meta| meta.len()),
        })
        .sum()
}

fn megabytes(bytes: u64) -> f64 {
    // Binary megabytes, as the RSS columns count them.
    bytes as f64 / 1_048_576.0
}

/// What the phases are measured against.
pub struct Ceilings {
    pub hello: Outcome,
    pub argon2: f64,
    /// The discovery phase against its answers from memory, when it ran.
    pub discovery: Option<Outcome>,
    pub booking_transactions: Option<f64>,
}

#[derive(Serialize)]
struct Row {
    number: u8,
    /// The phase's name, and its part's for a phase of several parts.
    name: String,
    /// `measured`, or `not run` when `--phases` left it out.
    status: &'static str,
    /// What one counted request is, when it is more than one HTTP call.
    unit: &'static str,
    requests: u64,
    successes: u64,
    success_percent: f64,
    per_second: f64,
    p50_ms: f64,
    p975_ms: f64,
    p99_ms: f64,
    errors: BTreeMap<String, u64>,
    /// Refusals the phase expects (a lost booking race), counted as successes.
    expected: BTreeMap<String, u64>,
    /// Facts checked after the phase, each starting with `passed` or `FAILED`.
    checks: Vec<String>,
    peak_rss_mb: f64,
    cpu_percent: f64,
    /// Throughput over its ceiling (argon2id for phases that log in, hello world otherwise).
    ceiling_ratio: f64,
    /// Each instance's share, when there are several.
    per_instance: Vec<InstanceRow>,
}

/// One instance's part of a phase.
#[derive(Serialize)]
struct InstanceRow {
    /// Requests it answered (HAProxy's count; a phase's first part carries the whole phase's).
    requests: u64,
    peak_rss_mb: f64,
    cpu_percent: f64,
}

impl Row {
    fn not_run(phase: &Phase) -> Self {
        Row {
            number: phase.number,
            name: phase.name.to_owned(),
            status: "not run",
            unit: phase.unit,
            requests: 0,
            successes: 0,
            success_percent: 0.0,
            per_second: 0.0,
            p50_ms: 0.0,
            p975_ms: 0.0,
            p99_ms: 0.0,
            errors: BTreeMap::new(),
            expected: BTreeMap::new(),
            checks: Vec::new(),
            peak_rss_mb: 0.0,
            cpu_percent: 0.0,
            ceiling_ratio: 0.0,
            per_instance: Vec::new(),
        }
    }

    fn measured(phase: &Phase, part: &str, outcome: &Outcome, ceiling: f64) -> Self {
        let usage = outcome.usage.unwrap_or_default();
        Row {
            number: phase.number,
            name: if part.is_empty() {
                phase.name.to_owned()
            } else {
                format!("{}: {part}", phase.name)
            },
            status: "measured",
            unit: phase.unit,
            requests: outcome.requests,
            successes: outcome.successes,
            success_percent: percent(outcome.successes, outcome.requests),
            per_second: rate(outcome),
            p50_ms: millis(outcome, 50.0),
            p975_ms: millis(outcome, 97.5),
            p99_ms: millis(outcome, 99.0),
            errors: outcome.errors.clone(),
            expected: outcome.expected.clone(),
            checks: outcome.checks.clone(),
            peak_rss_mb: usage.peak_rss_mb,
            cpu_percent: usage.cpu_percent,
            ceiling_ratio: if ceiling > 0.0 {
                rate(outcome) / ceiling
            } else {
                0.0
            },
            per_instance: outcome
                .per_instance
                .iter()
                .enumerate()
                .map(|(index, usage)| InstanceRow {
                    requests: outcome.instance_requests.get(index).copied().unwrap_or(0),
                    peak_rss_mb: usage.peak_rss_mb,
                    cpu_percent: usage.cpu_percent,
                })
                .collect(),
        }
    }
}

impl Report {
    pub fn new(
        command: &str,
        options: &Options,
        server: ServerSummary,
        ceilings: Ceilings,
        results: Vec<(Phase, Option<Parts>)>,
    ) -> Self {
        let Ceilings {
            hello,
            argon2,
            discovery,
            booking_transactions,
        } = ceilings;
        let discovery_rate = discovery.as_ref().map(rate);
        let hello_rate = rate(&hello);
        let phases = results
            .into_iter()
            .flat_map(|(phase, outcomes)| match outcomes {
                None => vec![Row::not_run(&phase)],
                Some(parts) => parts
                    .into_iter()
                    .map(|(part, outcome)| {
                        let ceiling = match phase.kind {
                            // One argon2id hash per login, and one per authenticated flow.
                            Kind::Login | Kind::AuthenticatedFlow => argon2,
                            // Every other request is a booking: the phase's rate over twice
                            // the transaction's is its bookings over the transaction's.
                            Kind::BookingRace => {
                                booking_transactions.map_or(hello_rate, |tps| 2.0 * tps)
                            }
                            Kind::MentorDiscovery => discovery_rate.unwrap_or(hello_rate),
                            _ => hello_rate,
                        };
                        Row::measured(&phase, part, &outcome, ceiling)
                    })
                    .collect(),
            })
            .collect();
        Report {
            command: command.to_owned(),
            connections: options.connections,
            instances: options.instances.max(1),
            duration_seconds: options.duration.as_secs(),
            server,
            handler: HandlerSize::of(&options.handler),
            hello_world_per_second: hello_rate,
            hello_world_p975_ms: millis(&hello, 97.5),
            hello_world_errors: hello.errors.clone(),
            argon2_hashes_per_second: argon2,
            booking_transactions_per_second: booking_transactions,
            discovery_from_memory_per_second: discovery_rate,
            discovery_from_memory_p975_ms: discovery.as_ref().map(|d| millis(d, 97.5)),
            phases,
        }
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# Load test: {} connections, {} s per phase{}\n",
            self.connections,
            self.duration_seconds,
            match self.instances {
                1 => String::new(),
                n => format!(", {n} handler instances behind HAProxy"),
            }
        );
        let _ = writeln!(out, "Command: `{}`\n", self.command);
        let _ = writeln!(
            out,
            "Ceilings in this run: hello world {:.0} req/s (p97.5 {:.1} ms); argon2id {:.1} hashes/s on all cores.",
            self.hello_world_per_second, self.hello_world_p975_ms, self.argon2_hashes_per_second
        );
        if let (Some(rate), Some(p975)) = (
            self.discovery_from_memory_per_second,
            self.discovery_from_memory_p975_ms,
        ) {
            let _ = writeln!(
                out,
                "Discovery's answers from memory behind the handler's own request path (`handler replay`, as many as the handlers): {rate:.0} req/s (p97.5 {p975:.1} ms); phase 4 is reported against it."
            );
        }
        if let Some(tps) = self.booking_transactions_per_second {
            let _ = writeln!(
                out,
                "Booking transaction without the handler (loadtests/pgbench/booking.sql through PgBouncer): {tps:.0} per second; phase 5 is reported as its bookings (half its requests) against it."
            );
        }
        if !self.hello_world_errors.is_empty() {
            let _ = writeln!(
                out,
                "Hello-world ceiling errors (ceiling not reliable): {:?}.",
                self.hello_world_errors
            );
        }
        let _ = writeln!(
            out,
            "Handler: `{}`, {}; ready {} ms after start; peak RSS over the run {:.1} MB.\n",
            self.handler.path,
            self.handler.describe(),
            self.server.ready_ms,
            self.server.peak_rss_mb
        );
        let _ = writeln!(
            out,
            "| # | phase | requests | successes | success % | req/s | of ceiling | p50 ms | p97.5 ms | p99 ms | errors | expected refusals | peak RSS MB | CPU % |"
        );
        let _ = writeln!(
            out,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|"
        );
        for row in &self.phases {
            if row.status != "measured" {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | | | | | | | | | | | |",
                    row.number, row.name, row.status
                );
                continue;
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.2} | {:.0} | {:.0}% | {:.1} | {:.1} | {:.1} | {} | {} | {:.1} | {:.0} |",
                row.number,
                row.name,
                row.requests,
                row.successes,
                row.success_percent,
                row.per_second,
                row.ceiling_ratio * 100.0,
                row.p50_ms,
                row.p975_ms,
                row.p99_ms,
                kinds(&row.errors),
                kinds(&row.expected),
                row.peak_rss_mb,
                row.cpu_percent
            );
        }
        self.per_instance_table(&mut out);
        let measured = self.phases.iter().filter(|row| row.status == "measured");
        let notes: Vec<String> = measured
            .flat_map(|row| {
                let unit = (!row.unit.is_empty())
                    .then(|| format!("- Phase {}: one request = {}.", row.number, row.unit));
                let checks = row
                    .checks
                    .iter()
                    .map(move |check| format!("- Phase {} check {check}.", row.number));
                unit.into_iter().chain(checks)
            })
            .collect();
        if !notes.is_empty() {
            let _ = writeln!(out, "\n{}", notes.join("\n"));
        }
        out
    }

    /// Each instance's requests, memory and CPU by phase (RSS and CPU above are the largest
    /// instance's peak and the instances' sum).
    fn per_instance_table(&self, out: &mut String) {
        if self.instances < 2 {
            return;
        }
        let _ = writeln!(
            out,
            "\nPer instance (requests as HAProxy counted them; above, peak RSS is the largest instance's and CPU the sum):\n"
        );
        let _ = writeln!(
            out,
            "| # | phase | instance | requests | share | peak RSS MB | CPU % |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
        for row in self
            .phases
            .iter()
            .filter(|row| !row.per_instance.is_empty())
        {
            let total: u64 = row.per_instance.iter().map(|i| i.requests).sum();
            for (index, instance) in row.per_instance.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "| {} | {} | h{index} | {} | {:.1}% | {:.1} | {:.0} |",
                    row.number,
                    row.name,
                    instance.requests,
                    percent(instance.requests, total),
                    instance.peak_rss_mb,
                    instance.cpu_percent
                );
            }
        }
    }

    /// Whether every post-phase check passed.
    pub fn checks_passed(&self) -> bool {
        self.phases
            .iter()
            .flat_map(|row| &row.checks)
            .all(|check| check.starts_with("passed"))
    }

    /// Writes `phases-<connections>.md` and `.json` under `dir` (`scale-out.md` and `.json`
    /// for several instances).
    pub fn write(&self, dir: &str) -> anyhow::Result<(String, String)> {
        std::fs::create_dir_all(dir)?;
        let stem = match self.instances {
            1 => format!("phases-{}", self.connections),
            _ => "scale-out".to_owned(),
        };
        let markdown = format!("{dir}/{stem}.md");
        let json = format!("{dir}/{stem}.json");
        std::fs::write(&markdown, self.markdown())?;
        std::fs::write(&json, serde_json::to_string_pretty(self)?)?;
        Ok((markdown, json))
    }
}

fn kinds(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|(kind, count)| format!("{kind}: {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn rate(outcome: &Outcome) -> f64 {
    outcome.successes as f64 / outcome.elapsed.as_secs_f64().max(0.001)
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

fn millis(outcome: &Outcome, quantile: f64) -> f64 {
    outcome.latency.value_at_percentile(quantile) as f64 / 1000.0
}

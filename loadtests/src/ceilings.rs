//! The ceilings, measured in the same run: a minimal axum JSON endpoint at the same concurrency,
//! argon2id hashes per second on every core with the login's parameters, the discovery answers
//! served from memory behind the handler's own request path (`handler replay`), and the booking
//! transaction run by pgbench without the handler.

use std::time::{Duration, Instant};

use anyhow::Context;
use argon2_ceiling::hashes_per_second;
use axum::Router;
use axum::routing::get;
use sqlx::{Connection, PgConnection};

use crate::Options;
use crate::phases::http;
use crate::phases::{self, Outcome, StepResult, VirtualUser};
use crate::seed::LoadData;

/// Hello world served in-process on its own port, driven like a phase.
pub async fn hello_world(client: &reqwest::Client, options: &Options) -> anyhow::Result<Outcome> {
    // The same accept backlog as the handler's, so the ceiling isn't limited by dropped connects.
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind("127.0.0.1:0".parse()?)?;
    let listener = socket.listen(4096)?;
    let url = format!("http://{}/hello", listener.local_addr()?);
    let router = Router::new().route(
        "/hello",
        get(|| async { axum::Json(serde_json::json!({"hello": "world"})) }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let users = (0..options.connections)
        .map(|_| {
            Ok(HelloUser {
                client: client.clone(),
                url: url.clone(),
            })
        })
        .collect();
    let outcome = phases::closed_loop(options, &[], users).await;
    server.abort();
    Ok(outcome)
}

/// The discovery phase's users against `base`: `handler replay` serving the phase's answers
/// from memory (`cluster::Replay`).
pub async fn discovery(
    client: &reqwest::Client,
    options: &Options,
    base: &str,
    data: &LoadData,
) -> Outcome {
    let target = std::sync::Arc::new(phases::Target {
        client: client.clone(),
        base: base.to_owned(),
        data: std::sync::Arc::new(data.clone()),
        connections: options.connections,
    });
    let users = (0..options.connections)
        .map(|user| {
            Ok(http::User::new(
                target.clone(),
                phases::Kind::MentorDiscovery,
                user,
            ))
        })
        .collect();
    phases::closed_loop(options, &[], users).await
}

struct HelloUser {
    client: reqwest::Client,
    url: String,
}

impl VirtualUser for HelloUser {
    async fn step(&mut self) -> StepResult {
        phases::expect_ok(self.client.get(&self.url).send().await)
    }
}

pub fn argon2_per_second() -> f64 {
    hashes_per_second(Duration::from_secs(5))
}

mod argon2_ceiling {
    use super::*;

    /// Hashes on every core for `duration`, each thread reusing its memory blocks (the fastest
    /// way to run argon2id, as the handler's hashing threads do); returns hashes per second.
    pub fn hashes_per_second(duration: Duration) -> f64 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let started = Instant::now();
        let handles: Vec<_> = (0..cores)
            .map(|_| {
                std::thread::spawn(move || {
                    let hasher = platform::auth::password::hasher();
                    let mut blocks = vec![argon2::Block::default(); hasher.params().block_count()];
                    let mut output = [0u8; 32];
                    let mut count = 0u64;
                    while started.elapsed() < duration {
                        let _ = hasher.hash_password_into_with_memory(
                            b"LoadTest123",
                            b"loadtest-salt-16",
                            &mut output,
                            &mut blocks,
                        );
                        count += 1;
                    }
                    count
                })
            })
            .collect();
        let total: u64 = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
        total as f64 / started.elapsed().as_secs_f64()
    }
}

/// The booking phase's ceiling: the booking transaction's own statements
/// (`loadtests/pgbench/booking.sql`) run by pgbench through the same PgBouncer with one client
/// per pooled server connection (with more, pgbench's prepared statements stalled behind
/// PgBouncer's queue), for the phase's duration; transactions per second, which is what the
/// database sustains without the handler.
pub async fn booking_transactions(
    data: &LoadData,
    pooled_url: &str,
    clients: usize,
    options: &Options,
) -> anyhow::Result<f64> {
    let mut db = PgConnection::connect(&data.direct_url).await?;
    for statement in [
        "DROP TABLE IF EXISTS load_bench_students, load_bench_mentors",
        "CREATE TABLE load_bench_students AS SELECT row_number() OVER (ORDER BY user_id) AS n, user_id FROM users WHERE role = 'student'",
        "CREATE TABLE load_bench_mentors AS SELECT row_number() OVER (ORDER BY user_id) AS n, user_id FROM users WHERE user_id = ANY($1)",
    ] {
        sqlx::query(statement)
            .bind(&data.mentor_ids)
            .execute(&mut db)
            .await?;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/pgbench/booking.sql");
    let output = tokio::process::Command::new("pgbench")
        .args(["--no-vacuum", "--protocol=prepared", "--jobs=2"])
        .arg(format!("--client={clients}"))
        .arg(format!("--time={}", options.duration.as_secs()))
        .arg(format!("--define=students={}", data.student_ids.len()))
        .arg(format!("--define=mentors={}", data.mentor_ids.len()))
        .arg(format!("--file={script}"))
        .arg(pooled_url)
        .output()
        .await
        .context("run pgbench (Debian's postgresql-client)")?;
    for statement in [
        "DELETE FROM bookings WHERE idempotency_key LIKE 'bench-%'",
        "DROP TABLE load_bench_students, load_bench_mentors",
    ] {
        sqlx::query(statement).execute(&mut db).await?;
    }
    let report = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "pgbench failed: {report} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    report
        .lines()
        .find_map(|line| {
            line.strip_prefix("tps = ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .context("no tps in pgbench's report")
}

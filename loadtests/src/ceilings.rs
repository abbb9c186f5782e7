//! The machine's ceilings, measured in the same run: a minimal axum JSON endpoint at the same
//! concurrency, and argon2id hashes per second on every core with the login's parameters.

use std::time::{Duration, Instant};

use argon2_ceiling::hashes_per_second;
use axum::Router;
use axum::routing::get;

use crate::Options;
use crate::phases::{self, Outcome, StepResult, VirtualUser};

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

//! The phases of the production load test, each a closed loop of virtual users that count only
//! the answers the phase expects as successes.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::Rng;
use serde_json::json;

use crate::Options;
use crate::seed::{LoadData, PASSWORD};
use crate::server::{self, Server, Usage};

pub struct Phase {
    pub number: u8,
    pub name: &'static str,
    /// `None`: the feature this phase exercises is not built yet.
    pub run: Option<Kind>,
}

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Login,
    DatabasePool,
    AuthenticatedFlow,
    MentorDiscovery,
}

pub const ALL: [Phase; 8] = [
    Phase {
        number: 1,
        name: "login",
        run: Some(Kind::Login),
    },
    Phase {
        number: 2,
        name: "database pool",
        run: Some(Kind::DatabasePool),
    },
    Phase {
        number: 3,
        name: "authenticated flow",
        run: Some(Kind::AuthenticatedFlow),
    },
    Phase {
        number: 4,
        name: "mentor discovery",
        run: Some(Kind::MentorDiscovery),
    },
    Phase {
        number: 5,
        name: "booking race and reads",
        run: None,
    },
    Phase {
        number: 6,
        name: "video class (join + signalling)",
        run: None,
    },
    Phase {
        number: 7,
        name: "chat",
        run: None,
    },
    Phase {
        number: 8,
        name: "storage (recording upload)",
        run: None,
    },
];

/// What a phase (or a ceiling) measured.
pub struct Outcome {
    pub requests: u64,
    pub successes: u64,
    pub errors: BTreeMap<String, u64>,
    /// Latency in microseconds.
    pub latency: Histogram<u64>,
    pub elapsed: Duration,
    pub usage: Option<Usage>,
}

/// Runs one phase against the handler while sampling its memory and CPU.
pub async fn drive(
    client: &reqwest::Client,
    server: &Server,
    data: &LoadData,
    options: &Options,
    kind: Kind,
) -> Outcome {
    let data = Arc::new(LoadData {
        pooled_url: data.pooled_url.clone(),
        direct_url: data.direct_url.clone(),
        student_ids: data.student_ids.clone(),
        mentor_ids: data.mentor_ids.clone(),
        student_emails: data.student_emails.clone(),
        student_tokens: data.student_tokens.clone(),
    });
    let base = Arc::new(server.base_url.clone());
    let connections = options.connections;
    closed_loop(client, options, Some(server.pid()), move |client, user| {
        let data = data.clone();
        let base = base.clone();
        async move { step(&client, &base, &data, kind, user, connections).await }
    })
    .await
}

/// `connections` virtual users each sending a request, waiting for it, and sending the next,
/// until the duration is over.
pub async fn closed_loop<F, Fut>(
    client: &reqwest::Client,
    options: &Options,
    pid: Option<u32>,
    request: F,
) -> Outcome
where
    F: Fn(reqwest::Client, usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let done = Arc::new(AtomicBool::new(false));
    let sampler = pid.map(|pid| tokio::spawn(server::sample(pid, done.clone())));
    let started = Instant::now();
    let deadline = started + options.duration;
    let users: Vec<_> = (0..options.connections)
        .map(|user| {
            let client = client.clone();
            let request = request.clone();
            tokio::spawn(async move {
                let mut latency = Histogram::<u64>::new(3).expect("histogram");
                let (mut requests, mut successes) = (0u64, 0u64);
                let mut errors: BTreeMap<String, u64> = BTreeMap::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let result = request(client.clone(), user).await;
                    let _ = latency.record(sent.elapsed().as_micros() as u64);
                    requests += 1;
                    match result {
                        Ok(()) => successes += 1,
                        Err(kind) => *errors.entry(kind).or_default() += 1,
                    }
                }
                (requests, successes, errors, latency)
            })
        })
        .collect();
    let mut outcome = Outcome {
        requests: 0,
        successes: 0,
        errors: BTreeMap::new(),
        latency: Histogram::new(3).expect("histogram"),
        elapsed: Duration::ZERO,
        usage: None,
    };
    for user in users {
        if let Ok((requests, successes, errors, latency)) = user.await {
            outcome.requests += requests;
            outcome.successes += successes;
            for (kind, count) in errors {
                *outcome.errors.entry(kind).or_default() += count;
            }
            let _ = outcome.latency.add(latency);
        }
    }
    outcome.elapsed = started.elapsed();
    done.store(true, Ordering::SeqCst);
    if let Some(sampler) = sampler {
        outcome.usage = sampler.await.ok();
    }
    outcome
}

/// Success only for 200; anything else is an error of its kind.
pub fn expect_ok(response: reqwest::Result<reqwest::Response>) -> Result<(), String> {
    match response {
        Ok(response) if response.status() == reqwest::StatusCode::OK => Ok(()),
        Ok(response) => Err(format!("HTTP {}", response.status().as_u16())),
        Err(error) if error.is_timeout() => Err("timeout".into()),
        Err(error) if error.is_connect() => Err("connect error".into()),
        Err(_) => Err("transport error".into()),
    }
}

async fn step(
    client: &reqwest::Client,
    base: &str,
    data: &LoadData,
    kind: Kind,
    user: usize,
    connections: usize,
) -> Result<(), String> {
    let student = random_student(user, connections, data.student_emails.len());
    let mentor = data.mentor_ids[rand::rng().random_range(0..data.mentor_ids.len())];
    match kind {
        Kind::Login => login(client, base, &data.student_emails[student])
            .await
            .map(drop),
        Kind::DatabasePool => {
            let token = &data.student_tokens[user % data.student_tokens.len()];
            let request = match rand::rng().random_range(0..3) {
                0 => client
                    .get(format!("{base}/api/bookings?when=past"))
                    .bearer_auth(token),
                1 => client.get(format!("{base}/api/auth/me")).bearer_auth(token),
                _ => {
                    let min_fee = 100 * rand::rng().random_range(3..=11);
                    client.get(format!("{base}/api/mentors?minFee={min_fee}&limit=20"))
                }
            };
            expect_ok(request.send().await)
        }
        Kind::AuthenticatedFlow => {
            // Students of its own per virtual user, so logins don't revoke each other's sessions.
            let email = &data.student_emails[student];
            let token = login(client, base, email).await?;
            expect_ok(
                client
                    .get(format!("{base}/api/auth/me"))
                    .bearer_auth(&token)
                    .send()
                    .await,
            )?;
            expect_ok(
                client
                    .get(format!("{base}/api/bookings?when=past"))
                    .bearer_auth(&token)
                    .send()
                    .await,
            )
        }
        Kind::MentorDiscovery => {
            let date = (chrono::Utc::now() + chrono::Duration::days(3)).date_naive();
            let url = match rand::rng().random_range(0..4) {
                0 => format!("{base}/api/mentors"),
                1 => format!("{base}/api/mentors?subject=physics&minRating=3.5&experience=3to5"),
                2 => format!("{base}/api/mentors/{mentor}"),
                _ => format!("{base}/api/mentors/{mentor}/availability?date={date}"),
            };
            expect_ok(client.get(url).send().await)
        }
    }
}

/// A random student among those only this virtual user logs in as, so one account never has
/// several logins in flight (which the lockout, counting attempts in flight, would refuse as a
/// guessing burst). With more users than students, two users share each student.
fn random_student(user: usize, connections: usize, students: usize) -> usize {
    if connections >= students {
        return user % students;
    }
    let choices = (students - 1 - user) / connections + 1;
    user + connections * rand::rng().random_range(0..choices)
}

/// Logs in; success only with a 200 carrying a session token.
async fn login(client: &reqwest::Client, base: &str, email: &str) -> Result<String, String> {
    let response = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await;
    let response = match response {
        Ok(response) if response.status() == reqwest::StatusCode::OK => response,
        other => return Err(expect_ok(other).err().unwrap_or_else(|| "HTTP ?".into())),
    };
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|_| "unreadable body".to_owned())?;
    body["sessionToken"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "no session token".to_owned())
}

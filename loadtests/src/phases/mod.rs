//! The phases of the production load test. Each is a set of virtual users in a closed loop
//! (send, wait for the answer, send again) that count only the answers the phase expects as
//! successes: 2xx, or a refusal the phase names as expected (a lost booking race).

pub mod booking;
mod chat;
mod flood;
pub mod http;
mod storage;
mod video;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;

use crate::Options;
use crate::seed::LoadData;
use crate::server::{self, Usage};

pub struct Phase {
    pub number: u8,
    pub name: &'static str,
    pub kind: Kind,
    /// What one counted request is, when it is more than one HTTP call.
    pub unit: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Login,
    DatabasePool,
    AuthenticatedFlow,
    MentorDiscovery,
    BookingRace,
    VideoClass,
    Chat,
    Storage,
    Flood,
}

impl Kind {
    /// Whether the phase acts with the students' seeded session tokens (which logins revoke).
    pub fn uses_sessions(self) -> bool {
        !matches!(
            self,
            Kind::Login | Kind::AuthenticatedFlow | Kind::MentorDiscovery | Kind::Flood
        )
    }
}

pub const ALL: [Phase; 9] = [
    Phase {
        number: 1,
        name: "login",
        kind: Kind::Login,
        unit: "",
    },
    Phase {
        number: 2,
        name: "database pool",
        kind: Kind::DatabasePool,
        unit: "",
    },
    Phase {
        number: 3,
        name: "authenticated flow",
        kind: Kind::AuthenticatedFlow,
        unit: "login + me + bookings",
    },
    Phase {
        number: 4,
        name: "mentor discovery",
        kind: Kind::MentorDiscovery,
        unit: "",
    },
    Phase {
        number: 5,
        name: "booking race and reads",
        kind: Kind::BookingRace,
        unit: "",
    },
    Phase {
        number: 6,
        name: "video class (join + signalling)",
        kind: Kind::VideoClass,
        unit: "offer → answer through Web PubSub",
    },
    Phase {
        number: 7,
        name: "chat",
        kind: Kind::Chat,
        unit: "post → delivered to the other participant",
    },
    Phase {
        number: 8,
        name: "storage (recording upload)",
        kind: Kind::Storage,
        unit: "",
    },
    Phase {
        number: 9,
        name: "flood",
        kind: Kind::Flood,
        unit: "",
    },
];

/// A phase's outcomes, each with its part's label (empty for a phase of one part).
pub type Parts = Vec<(&'static str, Outcome)>;

/// One step's result: `Ok(None)` a success, `Ok(Some(kind))` a refusal the phase expects (it
/// counts as a success and is reported by kind), `Err(kind)` an error of that kind.
pub type StepResult = Result<Option<String>, String>;

/// A virtual user: state prepared before the clock starts, then steps in a closed loop.
pub trait VirtualUser: Send + 'static {
    /// Waits before the next step when the phase paces its users (not counted in latency).
    fn think(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }

    fn step(&mut self) -> impl Future<Output = StepResult> + Send;
}

/// What a phase (or a ceiling) measured.
pub struct Outcome {
    pub requests: u64,
    pub successes: u64,
    pub errors: BTreeMap<String, u64>,
    /// Expected refusals by kind (counted in `successes`).
    pub expected: BTreeMap<String, u64>,
    /// Latency in microseconds.
    pub latency: Histogram<u64>,
    pub elapsed: Duration,
    pub usage: Option<Usage>,
    /// Facts checked after the phase (for example: no slot booked twice).
    pub checks: Vec<String>,
    /// Each sampled handler's usage, when there are several.
    pub per_instance: Vec<Usage>,
    /// Requests each instance answered over the phase (the balancer's count), when there are
    /// several.
    pub instance_requests: Vec<u64>,
}

/// Everything a phase needs to reach the handler.
pub struct Target {
    pub client: reqwest::Client,
    pub base: String,
    pub data: Arc<LoadData>,
    pub connections: usize,
}

/// Prepares the phase's virtual users, runs them while sampling the handler's memory and CPU,
/// and checks what the phase promises afterwards. A phase of several parts (the flood: quiet
/// and flooded stages) gives each part's outcome with its label; the others give one, unlabelled.
/// `pids`: the handler processes to sample (one, or every instance behind the balancer).
pub async fn drive(target: Target, pids: &[u32], options: &Options, kind: Kind) -> Parts {
    let target = Arc::new(target);
    if kind == Kind::Flood {
        return flood::run(target, pids, options).await;
    }
    vec![("", drive_one(target, pids, options, kind).await)]
}

async fn drive_one(target: Arc<Target>, pid: &[u32], options: &Options, kind: Kind) -> Outcome {
    match kind {
        Kind::Login | Kind::DatabasePool | Kind::AuthenticatedFlow | Kind::MentorDiscovery => {
            let users = (0..options.connections)
                .map(|user| Ok(http::User::new(target.clone(), kind, user)))
                .collect();
            closed_loop(options, pid, users).await
        }
        Kind::BookingRace => {
            let started = chrono::Utc::now();
            let (users, wins) = booking::users(&target);
            let mut outcome = closed_loop(options, pid, users).await;
            outcome.checks = booking::check(&target, started, &outcome, &wins).await;
            outcome
        }
        Kind::VideoClass => closed_loop(options, pid, video::users(&target).await).await,
        Kind::Chat => closed_loop(options, pid, chat::users(&target).await).await,
        Kind::Storage => closed_loop(options, pid, storage::users(&target)).await,
        Kind::Flood => unreachable!("the flood has parts"),
    }
}

/// Runs `prepare` for every index with bounded concurrency (setting up thousands of sockets at
/// once would measure the set-up, not the phase).
pub async fn prepare_all<U, F, Fut>(count: usize, prepare: F) -> Vec<Result<U, String>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<U, String>>,
{
    futures::stream::iter((0..count).map(prepare))
        .buffered(64)
        .collect()
        .await
}

/// Every virtual user steps, waits for its answer and steps again until the duration is over.
/// Users that failed to set up count as one error each.
pub async fn closed_loop<U: VirtualUser>(
    options: &Options,
    pids: &[u32],
    users: Vec<Result<U, String>>,
) -> Outcome {
    let mut outcome = Outcome {
        requests: 0,
        successes: 0,
        errors: BTreeMap::new(),
        expected: BTreeMap::new(),
        latency: Histogram::new(3).expect("histogram"),
        elapsed: Duration::ZERO,
        usage: None,
        checks: Vec::new(),
        per_instance: Vec::new(),
        instance_requests: Vec::new(),
    };
    let done = Arc::new(AtomicBool::new(false));
    let sampler =
        (!pids.is_empty()).then(|| tokio::spawn(server::sample_all(pids.to_vec(), done.clone())));
    let started = Instant::now();
    let deadline = started + options.duration;
    let mut running = Vec::new();
    for user in users {
        match user {
            Ok(user) => running.push(tokio::spawn(run_user(user, deadline))),
            Err(kind) => {
                outcome.requests += 1;
                *outcome.errors.entry(format!("setup: {kind}")).or_default() += 1;
            }
        }
    }
    for user in running {
        if let Ok(user) = user.await {
            outcome.requests += user.requests;
            outcome.successes += user.successes;
            merge(&mut outcome.errors, user.errors);
            merge(&mut outcome.expected, user.expected);
            let _ = outcome.latency.add(user.latency);
        }
    }
    outcome.elapsed = started.elapsed();
    done.store(true, Ordering::SeqCst);
    if let Some(sampler) = sampler
        && let Ok(usage) = sampler.await
    {
        outcome.usage = Some(Usage::combined(&usage));
        if usage.len() > 1 {
            outcome.per_instance = usage;
        }
    }
    outcome
}

struct UserTally {
    requests: u64,
    successes: u64,
    errors: BTreeMap<String, u64>,
    expected: BTreeMap<String, u64>,
    latency: Histogram<u64>,
}

async fn run_user(mut user: impl VirtualUser, deadline: Instant) -> UserTally {
    let mut tally = UserTally {
        requests: 0,
        successes: 0,
        errors: BTreeMap::new(),
        expected: BTreeMap::new(),
        latency: Histogram::new(3).expect("histogram"),
    };
    loop {
        user.think().await;
        if Instant::now() >= deadline {
            break;
        }
        let sent = Instant::now();
        let result = user.step().await;
        let _ = tally.latency.record(sent.elapsed().as_micros() as u64);
        tally.requests += 1;
        match result {
            Ok(None) => tally.successes += 1,
            Ok(Some(kind)) => {
                tally.successes += 1;
                *tally.expected.entry(kind).or_default() += 1;
            }
            Err(kind) => *tally.errors.entry(kind).or_default() += 1,
        }
    }
    tally
}

fn merge(into: &mut BTreeMap<String, u64>, from: BTreeMap<String, u64>) {
    for (kind, count) in from {
        *into.entry(kind).or_default() += count;
    }
}

/// Success only for `expected`; anything else is an error of its kind.
pub fn expect_status(
    response: reqwest::Result<reqwest::Response>,
    expected: reqwest::StatusCode,
) -> Result<reqwest::Response, String> {
    match response {
        Ok(response) if response.status() == expected => Ok(response),
        Ok(response) => Err(format!("HTTP {}", response.status().as_u16())),
        Err(error) => Err(transport_error(&error)),
    }
}

/// Success only for 200.
pub fn expect_ok(response: reqwest::Result<reqwest::Response>) -> StepResult {
    expect_status(response, reqwest::StatusCode::OK).map(|_| None)
}

pub fn transport_error(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timeout".into()
    } else if error.is_connect() {
        "connect error".into()
    } else {
        "transport error".into()
    }
}

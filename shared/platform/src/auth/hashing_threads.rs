//! The threads that run argon2id: one per core, each keeping its own memory blocks from hash to
//! hash. A burst of logins queues here instead of allocating and page-faulting 12 MiB per hash;
//! the process holds at most one block set per core while logins come, and none once they stop
//! for [`KEEP_BLOCKS_IDLE`].
//!
//! Admission control: a job waits at most [`MAX_WAIT`] for a thread. A full queue refuses at
//! once and a job still queued at its deadline is dropped unhashed, both as 503 `BUSY` with
//! `Retry-After`, so a flood answers fast instead of queueing every caller for minutes. Checks
//! of existing passwords (sign-ins) go before new hashes (signups, resets), so a signup flood
//! cannot starve honest logins.

use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use argon2::Block;
use axum::http::StatusCode;
use chrono::Utc;
use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::error::{Error, Result};
use crate::telemetry::metrics;

/// How long a hashing thread keeps its blocks without work. Within a burst of logins a thread
/// waits far less than this between jobs, so it keeps them; once sign-ins thin out the blocks
/// go back to the system before other work (a burst of reads after a login storm) needs the
/// memory, and a later hash allocates them afresh.
const KEEP_BLOCKS_IDLE: Duration = Duration::from_millis(250);
/// The longest a job waits for a thread before it is refused.
pub const MAX_WAIT: Duration = Duration::from_secs(2);
/// Jobs each queue holds per thread: a thread hashes about this many in [`MAX_WAIT`] (about
/// 15 ms each), so a fuller queue could not be served in time anyway.
const QUEUED_PER_THREAD: usize = 128;
/// Milliseconds a refused caller is told to wait: `Retry-After` of 1 to 4 s.
const RETRY_SPREAD: std::ops::Range<i64> = 1_500..4_500;

/// Which queue a job waits in; checks are served first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Checking a password against its stored hash (sign-in, password change).
    Check,
    /// Hashing a new password (signup, reset, change, admin creation).
    New,
}

/// A hashing job, given its thread's blocks (grown to the size the job needs, then kept); it
/// answers `None` when it was dropped past its deadline.
type Job = Box<dyn FnOnce(Option<&mut Vec<Block>>) + Send>;

/// Runs `work` on a hashing thread, inside the caller's tracing span, and waits for its answer
/// without blocking the async workers; 503 `BUSY` when no thread can take it within [`MAX_WAIT`].
pub async fn run<T: Send + 'static>(
    priority: Priority,
    work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
) -> Result<T> {
    static THREADS: OnceLock<HashingThreads> = OnceLock::new();
    THREADS
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            let threads = HashingThreads::start(cores, KEEP_BLOCKS_IDLE, cores * QUEUED_PER_THREAD);
            let (checks, new) = (threads.checks.clone(), threads.new.clone());
            metrics::observe(
                "auth.hashing.queued",
                "Password jobs waiting for a hashing thread",
                move || (checks.len() + new.len()) as u64,
            );
            threads
        })
        .run(priority, MAX_WAIT, work)
        .await
}

/// `count` blocks of `memory`, growing it when a stored hash asks for more than it holds.
pub fn blocks(memory: &mut Vec<Block>, count: usize) -> &mut [Block] {
    if memory.len() < count {
        memory.resize(count, Block::default());
    }
    &mut memory[..count]
}

struct HashingThreads {
    checks: Sender<Queued>,
    new: Sender<Queued>,
}

/// A job and the instant it must have started by.
struct Queued {
    job: Job,
    deadline: Instant,
}

impl HashingThreads {
    fn start(threads: usize, keep_blocks_idle: Duration, capacity: usize) -> Self {
        let (checks, queued_checks) = crossbeam_channel::bounded(capacity);
        let (new, queued_new) = crossbeam_channel::bounded(capacity);
        for index in 0..threads {
            let queues = (queued_checks.clone(), queued_new.clone());
            // Without threads the queues' receivers drop and `run` reports it.
            let _ = std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || serve(&queues.0, &queues.1, keep_blocks_idle));
        }
        Self { checks, new }
    }

    async fn run<T: Send + 'static>(
        &self,
        priority: Priority,
        max_wait: Duration,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let span = tracing::Span::current();
        let queued_at = Instant::now();
        let job: Job = Box::new(move |memory| {
            metrics::metrics().hashing(queued_at.elapsed(), memory.is_some());
            let _ = answer.send(memory.map(|memory| span.in_scope(|| work(memory))));
        });
        let queue = match priority {
            Priority::Check => &self.checks,
            Priority::New => &self.new,
        };
        let queued = Queued {
            job,
            deadline: Instant::now() + max_wait,
        };
        match queue.try_send(queued) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                metrics::metrics().hashing(Duration::ZERO, false);
                return Err(busy());
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(anyhow!("the password hashing threads have stopped").into());
            }
        }
        answered
            .await
            .context("a password hashing job panicked")?
            .ok_or_else(busy)
    }
}

/// 503 `BUSY`: every hashing thread is taken for longer than a caller should wait. The retry
/// time is spread over [`RETRY_SPREAD`], so callers refused together do not all come back in
/// the same second and refill the queues at once.
fn busy() -> Error {
    let wait = rand::random_range(RETRY_SPREAD);
    Error::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "BUSY",
        "Sign-ins are busy right now; try again in a moment.",
    )
    .with("retryAt", Utc::now() + chrono::Duration::milliseconds(wait))
}

fn serve(checks: &Receiver<Queued>, new: &Receiver<Queued>, keep_blocks_idle: Duration) {
    let mut memory = Vec::new();
    while let Some(Queued { job, deadline }) = next_job(checks, new, keep_blocks_idle, &mut memory)
    {
        if Instant::now() > deadline {
            job(None);
            continue;
        }
        // A panicking job loses its answer (the caller sees an error), not the thread.
        if std::panic::catch_unwind(AssertUnwindSafe(|| job(Some(&mut memory)))).is_err() {
            memory = Vec::new();
        }
    }
}

/// The next job, a queued check before any new hash, giving the blocks back to the allocator
/// (which returns a block set this large to the system) when none comes for
/// `keep_blocks_idle`; None once the queues are gone.
fn next_job(
    checks: &Receiver<Queued>,
    new: &Receiver<Queued>,
    keep_blocks_idle: Duration,
    memory: &mut Vec<Block>,
) -> Option<Queued> {
    if let Ok(queued) = checks.try_recv() {
        return Some(queued);
    }
    crossbeam_channel::select! {
        recv(checks) -> queued => queued.ok(),
        recv(new) -> queued => queued.ok(),
        default(keep_blocks_idle) => {
            *memory = Vec::new();
            crossbeam_channel::select! {
                recv(checks) -> queued => queued.ok(),
                recv(new) -> queued => queued.ok(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_thread_keeps_its_blocks_between_jobs_and_gives_them_back_when_idle() {
        let threads = HashingThreads::start(1, Duration::from_secs(1), 8);
        let held = |memory: &mut Vec<Block>| memory.len();
        let grown = threads
            .run(Priority::Check, MAX_WAIT, |memory| blocks(memory, 8).len())
            .await
            .unwrap();
        assert_eq!(grown, 8);
        assert_eq!(
            threads.run(Priority::Check, MAX_WAIT, held).await.unwrap(),
            8,
            "kept for the next job"
        );
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(
            threads.run(Priority::Check, MAX_WAIT, held).await.unwrap(),
            0,
            "given back when idle"
        );
        assert_eq!(
            threads
                .run(Priority::Check, MAX_WAIT, |memory| blocks(memory, 4).len())
                .await
                .unwrap(),
            4
        );
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone() {
        let threads = HashingThreads::start(1, KEEP_BLOCKS_IDLE, 8);
        let panicked = threads
            .run(Priority::Check, MAX_WAIT, |_| panic!("job fails"))
            .await;
        assert!(panicked.is_err());
        assert_eq!(
            threads.run(Priority::Check, MAX_WAIT, |_| 7).await.unwrap(),
            7
        );
    }

    /// A job that holds its thread for `duration`.
    fn hold(duration: Duration) -> impl FnOnce(&mut Vec<Block>) + Send + 'static {
        move |_| std::thread::sleep(duration)
    }

    fn is_busy<T>(result: &Result<T>) -> bool {
        matches!(result, Err(error) if error.code() == Some("BUSY"))
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let threads = std::sync::Arc::new(HashingThreads::start(1, KEEP_BLOCKS_IDLE, 1));
        let holding = tokio::spawn({
            let threads = threads.clone();
            async move {
                threads
                    .run(Priority::New, MAX_WAIT, hold(Duration::from_millis(400)))
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let queued = tokio::spawn({
            let threads = threads.clone();
            async move { threads.run(Priority::New, MAX_WAIT, |_| 1).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let refused = threads.run(Priority::New, MAX_WAIT, |_| 2).await;
        assert!(is_busy(&refused));
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "refused at once"
        );
        assert!(holding.await.unwrap().is_ok());
        assert_eq!(queued.await.unwrap().unwrap(), 1);
    }

    #[tokio::test]
    async fn a_job_still_queued_at_its_deadline_is_dropped_unhashed() {
        let threads = std::sync::Arc::new(HashingThreads::start(1, KEEP_BLOCKS_IDLE, 8));
        let holding = tokio::spawn({
            let threads = threads.clone();
            async move {
                threads
                    .run(Priority::New, MAX_WAIT, hold(Duration::from_millis(300)))
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let late = threads
            .run(Priority::Check, Duration::from_millis(100), {
                let ran = ran.clone();
                move |_| ran.store(true, std::sync::atomic::Ordering::SeqCst)
            })
            .await;
        assert!(is_busy(&late));
        assert!(
            !ran.load(std::sync::atomic::Ordering::SeqCst),
            "never hashed"
        );
        assert!(holding.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn queued_checks_run_before_queued_new_hashes() {
        let threads = std::sync::Arc::new(HashingThreads::start(1, KEEP_BLOCKS_IDLE, 8));
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let holding = tokio::spawn({
            let threads = threads.clone();
            async move {
                threads
                    .run(Priority::New, MAX_WAIT, hold(Duration::from_millis(200)))
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut waiting = Vec::new();
        for (priority, label) in [
            (Priority::New, "signup 1"),
            (Priority::New, "signup 2"),
            (Priority::Check, "login"),
        ] {
            let (threads, order) = (threads.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                threads
                    .run(priority, MAX_WAIT, move |_| {
                        order.lock().unwrap().push(label)
                    })
                    .await
            }));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for job in waiting {
            job.await.unwrap().unwrap();
        }
        holding.await.unwrap().unwrap();
        assert_eq!(*order.lock().unwrap(), ["login", "signup 1", "signup 2"]);
    }
}

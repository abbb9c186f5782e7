//! The threads that run argon2id: one per core, each keeping its own memory blocks from hash to
//! hash. A burst of logins queues here (first come, first served) instead of allocating and
//! page-faulting 19 MiB per hash; the process holds at most one block set per core while logins
//! come, and none once they stop for [`KEEP_BLOCKS_IDLE`].

use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, anyhow};
use argon2::Block;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::error::Result;

/// How long a hashing thread keeps its blocks without work: through a burst of logins, but not
/// while the handler serves everything else.
const KEEP_BLOCKS_IDLE: Duration = Duration::from_secs(2);

/// A hashing job, given its thread's blocks (grown to the size the job needs, then kept).
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// Runs `work` on a hashing thread, inside the caller's tracing span, and waits for its answer
/// without blocking the async workers.
pub async fn run<T: Send + 'static>(
    work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
) -> Result<T> {
    static THREADS: OnceLock<HashingThreads> = OnceLock::new();
    THREADS
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            HashingThreads::start(cores, KEEP_BLOCKS_IDLE)
        })
        .run(work)
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
    queue: Sender<Job>,
}

impl HashingThreads {
    fn start(threads: usize, keep_blocks_idle: Duration) -> Self {
        let (queue, jobs) = crossbeam_channel::unbounded();
        for index in 0..threads {
            let jobs = jobs.clone();
            // Without threads the queue's receivers drop and `run` reports it.
            let _ = std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || serve(&jobs, keep_blocks_idle));
        }
        Self { queue }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let span = tracing::Span::current();
        let job: Job = Box::new(move |memory| {
            let _ = answer.send(span.in_scope(|| work(memory)));
        });
        if self.queue.send(job).is_err() {
            return Err(anyhow!("the password hashing threads have stopped").into());
        }
        Ok(answered.await.context("a password hashing job panicked")?)
    }
}

fn serve(jobs: &Receiver<Job>, keep_blocks_idle: Duration) {
    let mut memory = Vec::new();
    while let Some(job) = next_job(jobs, keep_blocks_idle, &mut memory) {
        // A panicking job loses its answer (the caller sees an error), not the thread.
        if std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut memory))).is_err() {
            memory = Vec::new();
        }
    }
}

/// The next job, giving the blocks back to the allocator (which returns a block set this large
/// to the system) when none comes for `keep_blocks_idle`; None once the queue is gone.
fn next_job(
    jobs: &Receiver<Job>,
    keep_blocks_idle: Duration,
    memory: &mut Vec<Block>,
) -> Option<Job> {
    match jobs.recv_timeout(keep_blocks_idle) {
        Ok(job) => Some(job),
        Err(RecvTimeoutError::Timeout) => {
            *memory = Vec::new();
            jobs.recv().ok()
        }
        Err(RecvTimeoutError::Disconnected) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_thread_keeps_its_blocks_between_jobs_and_gives_them_back_when_idle() {
        let threads = HashingThreads::start(1, Duration::from_secs(1));
        let held = |memory: &mut Vec<Block>| memory.len();
        let grown = threads.run(|memory| blocks(memory, 8).len()).await.unwrap();
        assert_eq!(grown, 8);
        assert_eq!(threads.run(held).await.unwrap(), 8, "kept for the next job");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(threads.run(held).await.unwrap(), 0, "given back when idle");
        assert_eq!(
            threads.run(|memory| blocks(memory, 4).len()).await.unwrap(),
            4
        );
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone() {
        let threads = HashingThreads::start(1, KEEP_BLOCKS_IDLE);
        let panicked = threads.run(|_| panic!("job fails")).await;
        assert!(panicked.is_err());
        assert_eq!(threads.run(|_| 7).await.unwrap(), 7);
    }
}

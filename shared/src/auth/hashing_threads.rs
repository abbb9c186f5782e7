//! The threads that run argon2id: one per core, each keeping its own memory blocks from hash to
//! hash. A burst of logins queues here (first come, first served) instead of allocating and
//! page-faulting 19 MiB per hash, and the process never holds more than one block set per core.

use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;

use anyhow::{Context, anyhow};
use argon2::Block;
use crossbeam_channel::{Receiver, Sender};

use crate::error::Result;

/// A hashing job, given its thread's blocks (grown to the size the job needs, then kept).
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// Runs `work` on a hashing thread, inside the caller's tracing span, and waits for its answer
/// without blocking the async workers.
pub async fn run<T: Send + 'static>(
    work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
) -> Result<T> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    let span = tracing::Span::current();
    let job: Job = Box::new(move |memory| {
        let _ = answer.send(span.in_scope(|| work(memory)));
    });
    if queue().send(job).is_err() {
        return Err(anyhow!("the password hashing threads have stopped").into());
    }
    Ok(answered.await.context("a password hashing job panicked")?)
}

/// `count` blocks of `memory`, growing it when a stored hash asks for more than it holds.
pub fn blocks(memory: &mut Vec<Block>, count: usize) -> &mut [Block] {
    if memory.len() < count {
        memory.resize(count, Block::default());
    }
    &mut memory[..count]
}

fn queue() -> &'static Sender<Job> {
    static QUEUE: OnceLock<Sender<Job>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (queue, jobs) = crossbeam_channel::unbounded();
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        for index in 0..cores {
            let jobs = jobs.clone();
            // Without threads the queue's receivers drop and `run` reports it.
            let _ = std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || serve(&jobs));
        }
        queue
    })
}

fn serve(jobs: &Receiver<Job>) {
    let mut memory = Vec::new();
    for job in jobs {
        // A panicking job loses its answer (the caller sees an error), not the thread.
        if std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut memory))).is_err() {
            memory = Vec::new();
        }
    }
}

//! Redis calls batched by arrival: while one call of a kind is in flight, the requests that
//! arrive queue up and go together in the next one. Under load one round trip serves many
//! requests (a round trip costs Redis, on the same cores as the handler at its busiest, more
//! than the work it carries), and at rest a request goes at once.
//!
//! A request never joins a call sent before it arrived, so it sees every write that finished
//! before it was made, as an unbatched call would.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use super::redis::{RedisCache, Unavailable};

/// One Redis call for a batch of requests: one answer per request, in order.
pub(super) type Call<R, A> =
    for<'a> fn(&'a RedisCache, &'a [R]) -> Pin<Box<dyn Future<Output = Answers<A>> + Send + 'a>>;

type Answers<A> = Result<Vec<A>, Unavailable>;

type Reply<A> = oneshot::Sender<Result<A, Unavailable>>;

/// The requests of one kind waiting for the next call, and whether a sender is running.
pub(super) struct Batches<R, A> {
    queue: Mutex<Queue<R, A>>,
    call: Call<R, A>,
    /// Most requests one call carries.
    max: usize,
}

struct Queue<R, A> {
    waiting: Vec<(R, Reply<A>)>,
    sending: bool,
}

impl<R, A> Batches<R, A> {
    pub(super) fn new(call: Call<R, A>, max: usize) -> Self {
        Self {
            queue: Mutex::new(Queue {
                waiting: Vec::new(),
                sending: false,
            }),
            call,
            max,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue<R, A>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Sends `request` in the next call of the kind `batches` picks out of `redis`.
pub(super) async fn submit<R, A>(
    redis: &Arc<RedisCache>,
    batches: fn(&RedisCache) -> &Batches<R, A>,
    request: R,
) -> Result<A, Unavailable>
where
    R: Send + 'static,
    A: Send + 'static,
{
    let (reply, answer) = oneshot::channel();
    let start_sender = {
        let mut queue = batches(redis).lock();
        queue.waiting.push((request, reply));
        !std::mem::replace(&mut queue.sending, true)
    };
    if start_sender {
        // A task of its own, so a request that goes away cannot strand the others' answers.
        tokio::spawn(send_all(Arc::clone(redis), batches));
    }
    answer.await.unwrap_or(Err(Unavailable))
}

/// Sends what is queued, batch after batch, until the queue is empty.
async fn send_all<R, A>(redis: Arc<RedisCache>, batches: fn(&RedisCache) -> &Batches<R, A>) {
    let batches = batches(&redis);
    loop {
        let batch: Vec<_> = {
            let mut queue = batches.lock();
            if queue.waiting.is_empty() {
                queue.sending = false;
                return;
            }
            let take = queue.waiting.len().min(batches.max);
            queue.waiting.drain(..take).collect()
        };
        let (requests, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        match (batches.call)(&redis, &requests).await {
            // A reply without its answer (a short reply) is dropped: that request is Unavailable.
            Ok(answers) => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(Ok(answer));
                }
            }
            Err(Unavailable) => {
                for reply in replies {
                    let _ = reply.send(Err(Unavailable));
                }
            }
        }
    }
}

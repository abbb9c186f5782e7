//! The shared cache in Redis, with a short circuit breaker: after a failure the instance stops
//! asking Redis for [`RETRY_AFTER`], so a dead Redis costs one timeout, not one per request.

use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tracing::{Instrument, Span, field};

use super::Counter;
use super::batch::{self, Batches};
use super::entra::TokenCredentials;
use super::spend_batch::{self, SpendBatches};

const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Most generation counters one MGET reads.
const MAX_GENERATIONS: usize = 512;

pub(super) struct RedisCache {
    client: redis::Client,
    /// With Entra auth: the identity's token, for every connection and each renewal.
    credentials: Option<TokenCredentials>,
    connection: tokio::sync::Mutex<Option<ConnectionManager>>,
    down_until: Mutex<Option<Instant>>,
    timeout: Duration,
    /// Request budgets waiting for the next batched script call.
    pub(super) spends: SpendBatches,
    /// Generation reads waiting for the next batched MGET.
    generations: Batches<String, u64>,
}

/// Redis did not answer (the failure is logged here; callers fall back).
#[derive(Debug)]
pub(super) struct Unavailable;

impl RedisCache {
    pub(super) fn new(
        url: &str,
        timeout: Duration,
        credentials: Option<TokenCredentials>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            client: redis::Client::open(url)
                .map_err(|_| anyhow::anyhow!("REDIS_URL is not a valid Redis URL"))?,
            credentials,
            connection: tokio::sync::Mutex::new(None),
            down_until: Mutex::new(None),
            timeout,
            spends: spend_batch::batches(),
            generations: Batches::new(
                |redis, keys| Box::pin(redis.get_generations(keys)),
                MAX_GENERATIONS,
            ),
        })
    }

    pub(super) async fn get(&self, key: &str) -> Result<Option<String>, Unavailable> {
        let mut connection = self.connection().await?;
        self.finish("GET", connection.get(key)).await
    }

    pub(super) async fn set(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), Unavailable> {
        let mut connection = self.connection().await?;
        self.finish("PSETEX", connection.pset_ex(key, value, millis(ttl)))
            .await
    }

    pub(super) async fn set_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), Unavailable> {
        let mut connection = self.connection().await?;
        let command = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .to_owned();
        self.finish(
            "SET NX",
            command.query_async::<Option<String>>(&mut connection),
        )
        .await
        .map(drop)
    }

    pub(super) async fn delete(&self, keys: &[String]) -> Result<(), Unavailable> {
        let mut connection = self.connection().await?;
        self.finish("DEL", connection.del(keys)).await
    }

    pub(super) async fn increment(
        &self,
        key: &str,
        window: Duration,
    ) -> Result<Counter, Unavailable> {
        let mut connection = self.connection().await?;
        // One atomic round trip: create the window if absent, count, read its remaining life.
        let pipeline = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(key)
            .arg(0)
            .arg("NX")
            .arg("PX")
            .arg(millis(window))
            .ignore()
            .incr(key, 1u64)
            .pttl(key)
            .to_owned();
        let (count, ttl_ms): (u64, i64) = self
            .finish("INCR", pipeline.query_async(&mut connection))
            .await?;
        Ok(Counter {
            count,
            resets_in: remaining(ttl_ms).unwrap_or(window),
        })
    }

    pub(super) async fn counter(&self, key: &str) -> Result<Option<Counter>, Unavailable> {
        let mut connection = self.connection().await?;
        let pipeline = redis::pipe().get(key).pttl(key).to_owned();
        let (count, ttl_ms): (Option<u64>, i64) = self
            .finish("GET PTTL", pipeline.query_async(&mut connection))
            .await?;
        Ok(count.and_then(|count| remaining(ttl_ms).map(|resets_in| Counter { count, resets_in })))
    }

    /// A generation counter (0 while absent), read in one MGET with the reads around it: the
    /// hottest cached reads each ask for one or two.
    pub(super) async fn generation(self: &Arc<Self>, key: String) -> Result<u64, Unavailable> {
        batch::submit(self, |redis| &redis.generations, key).await
    }

    async fn get_generations(&self, keys: &[String]) -> Result<Vec<u64>, Unavailable> {
        let mut connection = self.connection().await?;
        let command = redis::cmd("MGET").arg(keys).to_owned();
        let counts: Vec<Option<u64>> = self
            .finish("MGET", command.query_async(&mut connection))
            .await?;
        Ok(counts.into_iter().map(|count| count.unwrap_or(0)).collect())
    }

    pub(super) async fn ping(&self) -> Result<(), Unavailable> {
        // The readiness probe asks even while the breaker is open, so it reports recovery.
        *self.down_until.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let mut connection = self.connection().await?;
        self.finish(
            "PING",
            redis::cmd("PING").query_async::<String>(&mut connection),
        )
        .await
        .map(drop)
    }

    async fn connection(&self) -> Result<ConnectionManager, Unavailable> {
        if self.is_down() {
            return Err(Unavailable);
        }
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Ok(connection.clone());
        }
        let mut config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(2);
        if let Some(credentials) = &self.credentials {
            config = config.set_credentials_provider(credentials.clone());
        }
        let connecting = ConnectionManager::new_with_config(self.client.clone(), config);
        match tokio::time::timeout(self.timeout, connecting).await {
            Ok(Ok(connection)) => {
                *slot = Some(connection.clone());
                Ok(connection)
            }
            Ok(Err(error)) => Err(self.trip(&error.to_string())),
            Err(_) => Err(self.trip("connect timed out")),
        }
    }

    /// Awaits `command` within the timeout, as a dependency span under the caller's span (none
    /// for calls made outside a request or timer, such as the batched budget spends).
    async fn finish<T>(
        &self,
        operation: &'static str,
        command: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Unavailable> {
        let span = if Span::current().is_none() {
            Span::none()
        } else {
            tracing::info_span!(
                "redis",
                otel.kind = "client",
                otel.name = operation,
                otel.status_code = field::Empty,
                db.system.name = "redis",
                db.operation.name = operation,
            )
        };
        let result = match tokio::time::timeout(self.timeout, command)
            .instrument(span.clone())
            .await
        {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => self.trip(&error.to_string()),
            Err(_) => self.trip("command timed out"),
        };
        span.record("otel.status_code", "ERROR");
        Err(result)
    }

    fn is_down(&self) -> bool {
        let down_until = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        down_until.is_some_and(|until| Instant::now() < until)
    }

    fn trip(&self, reason: &str) -> Unavailable {
        let mut down_until = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        if down_until.is_none_or(|until| Instant::now() >= until) {
            tracing::warn!(reason, "redis unavailable; using the in-process cache");
        }
        *down_until = Some(Instant::now() + RETRY_AFTER);
        Unavailable
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

pub(super) fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

fn remaining(ttl_ms: i64) -> Option<Duration> {
    u64::try_from(ttl_ms).ok().map(Duration::from_millis)
}

/// Takes one back from a live counter, never below zero; a missing counter stays missing.
const GIVE_BACK: &str = r"
local count = tonumber(redis.call('GET', KEYS[1]))
if count and count > 0 then
  redis.call('DECR', KEYS[1])
end
return 0
";

impl RedisCache {
    pub(super) async fn give_back(&self, key: &str) -> Result<(), Unavailable> {
        static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(GIVE_BACK));
        let mut connection = self.connection().await?;
        self.finish(
            "EVALSHA",
            SCRIPT.key(key).invoke_async::<i64>(&mut connection),
        )
        .await
        .map(drop)
    }

    /// Runs a script call (the batched request budgets).
    pub(super) async fn invoke<T: redis::FromRedisValue>(
        &self,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Result<T, Unavailable> {
        let mut connection = self.connection().await?;
        self.finish("EVALSHA", invocation.invoke_async(&mut connection))
            .await
    }
}

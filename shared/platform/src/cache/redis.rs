//! The shared cache in Redis, with a short circuit breaker: after a failure the instance stops
//! asking Redis for [`RETRY_AFTER`], so a dead Redis costs one timeout, not one per request.

use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::Counter;
use crate::rate_limit::{Quota, Standing};

const RETRY_AFTER: Duration = Duration::from_secs(5);

pub(super) struct RedisCache {
    client: redis::Client,
    connection: tokio::sync::Mutex<Option<ConnectionManager>>,
    down_until: Mutex<Option<Instant>>,
    timeout: Duration,
}

/// Redis did not answer (the failure is logged here; callers fall back).
#[derive(Debug)]
pub(super) struct Unavailable;

impl RedisCache {
    pub(super) fn new(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            client: redis::Client::open(url)
                .map_err(|_| anyhow::anyhow!("REDIS_URL is not a valid Redis URL"))?,
            connection: tokio::sync::Mutex::new(None),
            down_until: Mutex::new(None),
            timeout,
        })
    }

    pub(super) async fn get(&self, key: &str) -> Result<Option<String>, Unavailable> {
        let mut connection = self.connection().await?;
        self.finish(connection.get(key)).await
    }

    pub(super) async fn set(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), Unavailable> {
        let mut connection = self.connection().await?;
        self.finish(connection.pset_ex(key, value, millis(ttl)))
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
        self.finish(command.query_async::<Option<String>>(&mut connection))
            .await
            .map(drop)
    }

    pub(super) async fn delete(&self, keys: &[String]) -> Result<(), Unavailable> {
        let mut connection = self.connection().await?;
        self.finish(connection.del(keys)).await
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
        let (count, ttl_ms): (u64, i64) =
            self.finish(pipeline.query_async(&mut connection)).await?;
        Ok(Counter {
            count,
            resets_in: remaining(ttl_ms).unwrap_or(window),
        })
    }

    pub(super) async fn counter(&self, key: &str) -> Result<Option<Counter>, Unavailable> {
        let mut connection = self.connection().await?;
        let pipeline = redis::pipe().get(key).pttl(key).to_owned();
        let (count, ttl_ms): (Option<u64>, i64) =
            self.finish(pipeline.query_async(&mut connection)).await?;
        Ok(count.and_then(|count| remaining(ttl_ms).map(|resets_in| Counter { count, resets_in })))
    }

    pub(super) async fn ping(&self) -> Result<(), Unavailable> {
        // The readiness probe asks even while the breaker is open, so it reports recovery.
        *self.down_until.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let mut connection = self.connection().await?;
        self.finish(redis::cmd("PING").query_async::<String>(&mut connection))
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
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(2);
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

    async fn finish<T>(
        &self,
        command: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Unavailable> {
        match tokio::time::timeout(self.timeout, command).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.trip(&error.to_string())),
            Err(_) => Err(self.trip("command timed out")),
        }
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

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

fn remaining(ttl_ms: i64) -> Option<Duration> {
    u64::try_from(ttl_ms).ok().map(Duration::from_millis)
}

/// GCRA over every key of one request, atomically: each key holds its theoretical arrival time
/// (µs, Redis's clock; microseconds, so a budget of thousands a second is not rounded away).
/// Per key in ARGV: the emission interval and the burst tolerance (µs). Spends from every key
/// only when none refuses. Per key out: remaining, reset µs, retry µs (-1: allowed).
const SPEND: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out, new_tats, allowed = {}, {}, true
for i, key in ipairs(KEYS) do
  local emission, tolerance = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local tat = math.max(tonumber(redis.call('GET', key)) or now, now)
  local new_tat = tat + emission
  local allow_at = new_tat - tolerance
  if allow_at > now then
    allowed = false
    table.insert(out, 0)
    table.insert(out, tat - now)
    table.insert(out, allow_at - now)
  else
    new_tats[i] = new_tat
    table.insert(out, math.floor((now + tolerance - new_tat) / emission))
    table.insert(out, new_tat - now)
    table.insert(out, -1)
  end
end
if allowed then
  for i, key in ipairs(KEYS) do
    redis.call('SET', key, string.format('%.0f', new_tats[i]), 'PX', math.max(1, math.ceil((new_tats[i] - now) / 1000)))
  end
end
return out
";

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
        self.finish(SCRIPT.key(key).invoke_async::<i64>(&mut connection))
            .await
            .map(drop)
    }

    /// Spends one request from each `(key, quota)` in one round trip.
    pub(super) async fn spend(
        &self,
        budgets: &[(String, Quota)],
    ) -> Result<Vec<Standing>, Unavailable> {
        static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(SPEND));
        let mut connection = self.connection().await?;
        let mut invocation = SCRIPT.prepare_invoke();
        for (key, quota) in budgets {
            invocation
                .key(key)
                .arg(micros(quota.emission_interval()))
                .arg(micros(quota.window()));
        }
        let out: Vec<i64> = self
            .finish(invocation.invoke_async(&mut connection))
            .await?;
        let duration = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or(0));
        Ok(out
            .chunks_exact(3)
            .map(|item| Standing {
                remaining: u32::try_from(item[0]).unwrap_or(0),
                reset: duration(item[1]),
                retry_after: (item[2] >= 0).then(|| duration(item[2])),
            })
            .collect())
    }
}

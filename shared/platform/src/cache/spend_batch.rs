//! Request budgets spent in Redis in batches ([`super::batch`]): under load one round trip and
//! one script run serve many requests (a script call costs Redis about 17 µs whatever it holds;
//! one per request halved cached discovery's throughput), and at rest a spend goes at once.
//!
//! Each request is still all-or-nothing across its own budgets, and requests are judged in
//! arrival order, each seeing what the ones before it spent.

use std::sync::Arc;

use super::batch::{self, Batches};
use super::redis::{RedisCache, Unavailable, micros};
use crate::rate_limit::{Quota, Standing};

/// Most requests one script call judges.
const MAX_BATCH: usize = 256;

/// GCRA over a batch of requests: each key holds its theoretical arrival time (µs, Redis's
/// clock; microseconds, so a budget of thousands a second is not rounded away).
/// ARGV: the number of requests, then per request its key count and per key the emission
/// interval and burst tolerance (µs); KEYS: every request's keys in order. A request spends
/// from every key of its own only when none refuses. Out, per key: remaining, reset µs, retry
/// µs (-1: allowed).
const SPEND: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats, ttls, out = {}, {}, {}
local k, a = 1, 2
for _ = 1, tonumber(ARGV[1]) do
  local n = tonumber(ARGV[a])
  a = a + 1
  local allowed, new_tats = true, {}
  for i = 0, n - 1 do
    local key = KEYS[k + i]
    local emission, tolerance = tonumber(ARGV[a + 2 * i]), tonumber(ARGV[a + 2 * i + 1])
    local tat = math.max(tats[key] or tonumber(redis.call('GET', key)) or now, now)
    local new_tat = tat + emission
    local allow_at = new_tat - tolerance
    if allow_at > now then
      allowed = false
      table.insert(out, 0)
      table.insert(out, tat - now)
      table.insert(out, allow_at - now)
    else
      new_tats[key] = new_tat
      table.insert(out, math.floor((now + tolerance - new_tat) / emission))
      table.insert(out, new_tat - now)
      table.insert(out, -1)
    end
  end
  if allowed then
    for key, new_tat in pairs(new_tats) do
      tats[key] = new_tat
      ttls[key] = math.max(1, math.ceil((new_tat - now) / 1000))
    end
  end
  k = k + n
  a = a + 2 * n
end
for key, tat in pairs(tats) do
  if ttls[key] then
    redis.call('SET', key, string.format('%.0f', tat), 'PX', ttls[key])
  end
end
return out
";

/// The spends waiting for the next script call.
pub(super) type SpendBatches = Batches<Vec<(String, Quota)>, Vec<Standing>>;

pub(super) fn batches() -> SpendBatches {
    Batches::new(
        |redis, requests| Box::pin(judge(redis, requests)),
        MAX_BATCH,
    )
}

/// Spends one request from each `(key, quota)`, batched with the requests around it.
pub(super) async fn spend(
    redis: &Arc<RedisCache>,
    budgets: &[(String, Quota)],
) -> Result<Vec<Standing>, Unavailable> {
    batch::submit(redis, |redis| &redis.spends, budgets.to_vec()).await
}

/// One script call for `requests`; each request's standings, in order.
async fn judge(
    redis: &RedisCache,
    requests: &[Vec<(String, Quota)>],
) -> Result<Vec<Vec<Standing>>, Unavailable> {
    static SCRIPT: std::sync::LazyLock<redis::Script> =
        std::sync::LazyLock::new(|| redis::Script::new(SPEND));
    let mut invocation = SCRIPT.prepare_invoke();
    invocation.arg(requests.len());
    for budgets in requests {
        invocation.arg(budgets.len());
        for (key, quota) in budgets {
            invocation
                .key(key)
                .arg(micros(quota.emission_interval()))
                .arg(micros(quota.window()));
        }
    }
    let out: Vec<i64> = redis.invoke(invocation).await?;
    let duration = |us: i64| std::time::Duration::from_micros(u64::try_from(us).unwrap_or(0));
    let mut standings = out.chunks_exact(3).map(|item| Standing {
        remaining: u32::try_from(item[0]).unwrap_or(0),
        reset: duration(item[1]),
        retry_after: (item[2] >= 0).then(|| duration(item[2])),
    });
    Ok(requests
        .iter()
        .map(|budgets| standings.by_ref().take(budgets.len()).collect())
        .collect())
}

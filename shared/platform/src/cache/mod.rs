//! The cache: Redis when `REDIS_URL` is set and reachable, an in-process cache otherwise.
//!
//! Redis is shared by every instance, so it is the only place read while it answers. When it is
//! unset (one local process) the in-process cache is the whole truth. When it is configured but
//! failing, each instance falls back to its own in-process cache; because other instances can't
//! invalidate that copy, values written there live at most [`SHARED_FALLBACK_TTL`], which bounds
//! how stale a degraded instance can be. Deletes always go to both.
//!
//! Read-through entries are written with [`Cache::fill`] (only if absent) and invalidated with
//! [`Cache::invalidate`], which leaves a short-lived tombstone. A request that read the database
//! just before a change can then never put the old value back after the change's invalidation.
//!
//! Families of entries are retired at once by a generation counter in their keys
//! ([`Cache::bump_generation`]). Such an entry never changes once written, so the hottest public
//! reads keep a local copy ([`Cache::get_or_fill_snapshot`]): a hit costs the generation's read
//! (always from Redis, so a change shows at once on every instance; batched with the reads
//! around it, so under load many requests share one round trip) and no copy.

mod batch;
pub mod entra;
mod local;
mod local_limits;
mod redis;
mod spend_batch;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use bytes::Bytes;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::ExposeSecret;
use crate::config::{CacheConfig, SignIn};
use crate::error::{Error, Result};
use crate::http_cache;
use crate::rate_limit::{Budget, Verdict};
use crate::telemetry::metrics::metrics;
use local::LocalCache;
use local_limits::LocalLimits;
use redis::RedisCache;

/// Stored in place of an invalidated value; not JSON, so it reads as a miss.
const TOMBSTONE: &str = "~invalidated";

/// Life of a generation counter; far longer than any entry keyed by it.
const GENERATION_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Generation family of the public mentor list and its filtered pages.
pub const MENTOR_LIST: &str = "mentor-list";

/// Generation family of one person's cached booking lists.
pub fn bookings_of(user_id: uuid::Uuid) -> String {
    format!("bookings-of:{user_id}")
}

/// Longest life of a local copy of a generation-keyed entry (never longer than the entry's own).
const SNAPSHOT_LIFE: Duration = Duration::from_secs(60);

/// Memory for local copies of generation-keyed entries, in bytes.
const SNAPSHOT_MEMORY: u64 = 8 * 1024 * 1024;

/// Longest life of a fallback entry while Redis is configured but down.
pub const SHARED_FALLBACK_TTL: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    prefix: String,
    redis: Option<Arc<RedisCache>>,
    local: LocalCache,
    /// Request budgets while Redis is down or unset.
    local_limits: LocalLimits,
    /// Loads in progress, keyed like the cache, so concurrent misses share one.
    in_flight: moka::future::Cache<String, Arc<str>>,
    /// Local copies of generation-keyed entries, with the instant each stops being served.
    snapshots: moka::future::Cache<String, (Snapshot, Instant)>,
    /// Snapshot fills in progress, so concurrent misses share one.
    snapshot_fills: moka::future::Cache<String, Snapshot>,
}

/// A fixed-window counter's state after an increment or a peek.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    pub count: u64,
    /// Time until the window (and the counter) ends.
    pub resets_in: Duration,
}

/// Whether the shared cache answers, for the readiness probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CacheHealth {
    /// No Redis configured: the in-process cache serves alone.
    InProcess,
    Redis,
    /// Redis is configured but not answering; requests use the fallback.
    RedisDown,
}

/// A cached body kept on this instance, with its entity tag (computed once, when it arrived):
/// the same key holds the same bytes on every instance, so the tag is the same everywhere.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub body: Bytes,
    pub etag: HeaderValue,
}

impl Cache {
    /// Needs a Tokio runtime: with Redis and `REDIS_AUTH=entra` the identity's token renewal
    /// starts here.
    pub fn new(config: &CacheConfig) -> anyhow::Result<Self> {
        let redis = match &config.redis_url {
            Some(url) => {
                let credentials = match &config.auth {
                    SignIn::Entra(identity) => Some(entra::TokenCredentials::new(
                        azure_clients::entra::credential(identity)?,
                    )),
                    SignIn::Url => None,
                };
                Some(Arc::new(RedisCache::new(
                    url.expose_secret(),
                    config.redis_timeout,
                    credentials,
                )?))
            }
            None => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                prefix: config.key_prefix.clone(),
                redis,
                local: LocalCache::new(),
                local_limits: LocalLimits::default(),
                in_flight: moka::future::Cache::new(10_000),
                snapshot_fills: moka::future::Cache::new(10_000),
                snapshots: moka::future::Cache::builder()
                    .max_capacity(SNAPSHOT_MEMORY)
                    .weigher(|key: &String, (snapshot, _): &(Snapshot, Instant)| {
                        u32::try_from(key.len() + snapshot.body.len()).unwrap_or(u32::MAX)
                    })
                    .time_to_live(SNAPSHOT_LIFE)
                    .build(),
            }),
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let value = self
            .get_raw(key)
            .await
            .and_then(|raw| serde_json::from_str(&raw).ok());
        metrics().cache_lookup(key, value.is_some());
        value
    }

    /// The cached JSON text under `key`, or the text `load` produces, which is then cached for
    /// `ttl`. Concurrent misses for one key on this instance share a single `load`, so a cold
    /// cache under load costs one query, not one per waiting request.
    pub async fn get_or_fill_raw<F, Fut>(&self, key: &str, ttl: Duration, load: F) -> Result<String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<String>>,
    {
        let cached = self.get_raw(key).await;
        metrics().cache_lookup(key, cached.is_some());
        if let Some(raw) = cached {
            return Ok(raw);
        }
        let loading = async {
            if let Some(raw) = self.get_raw(key).await {
                return Ok(Arc::<str>::from(raw));
            }
            let raw = load().await?;
            self.fill_raw(key, raw.clone(), ttl).await;
            Ok::<_, Error>(Arc::from(raw))
        };
        let full_key = self.key(key);
        let result = self
            .inner
            .in_flight
            .try_get_with(full_key.clone(), loading)
            .await;
        // Only concurrent waiters share a load; later readers go back to the cache.
        self.inner.in_flight.invalidate(&full_key).await;
        result
            .map(|raw| raw.to_string())
            .map_err(|error| error.copied())
    }

    /// [`Cache::get_or_fill_raw`] for a key that carries a generation: such an entry is only
    /// ever retired, never changed, so this instance keeps a copy for `ttl` or [`SNAPSHOT_LIFE`],
    /// whichever is shorter, and answers later reads from it without a round trip or a copy.
    /// Concurrent misses for one key share one fill (one shared-cache read, at most one load):
    /// a cold instance under load holds each body once, not once per waiting request.
    pub async fn get_or_fill_snapshot<F, Fut>(
        &self,
        key: &str,
        ttl: Duration,
        load: F,
    ) -> Result<Snapshot>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<String>>,
    {
        if let Some(snapshot) = self.live_snapshot(key).await {
            metrics().cache_lookup(key, true);
            return Ok(snapshot);
        }
        let fill = async {
            // A fill that ended between the check above and this one has left its copy.
            if let Some(snapshot) = self.live_snapshot(key).await {
                metrics().cache_lookup(key, true);
                return Ok(snapshot);
            }
            let until = Instant::now() + ttl.min(SNAPSHOT_LIFE);
            let body = Bytes::from(self.get_or_fill_raw(key, ttl, load).await?);
            let snapshot = Snapshot {
                etag: http_cache::strong_etag(&body),
                body,
            };
            self.inner
                .snapshots
                .insert(key.to_owned(), (snapshot.clone(), until))
                .await;
            Ok::<_, Error>(snapshot)
        };
        // Boxed: the miss path's future is large, and the hit path stays small without it.
        let filled = Box::pin(
            self.inner
                .snapshot_fills
                .entry_by_ref(key)
                .or_try_insert_with(fill),
        )
        .await;
        // Only concurrent waiters share a fill; later readers find the copy it left.
        self.inner.snapshot_fills.invalidate(key).await;
        let filled = filled.map_err(|error| error.copied())?;
        if !filled.is_fresh() {
            metrics().cache_lookup(key, true);
        }
        Ok(filled.into_value())
    }

    async fn live_snapshot(&self, key: &str) -> Option<Snapshot> {
        let (snapshot, until) = self.inner.snapshots.get(key).await?;
        (Instant::now() < until).then_some(snapshot)
    }

    /// The current generation of a family of entries (see [`Cache::bump_generation`]).
    pub async fn generation(&self, family: &str) -> u64 {
        let key = self.key(&generation_key(family));
        if let Some(redis) = self.shared()
            && let Ok(generation) = redis.generation(key.clone()).await
        {
            return generation;
        }
        self.inner
            .local
            .counter(&key)
            .await
            .map_or(0, |counter| counter.count)
    }

    /// Retires every entry of a family at once: readers put the generation in their keys, so a
    /// bump makes all earlier entries unreachable (they then expire on their own).
    pub async fn bump_generation(&self, family: &str) {
        self.increment(&generation_key(family), GENERATION_LIFETIME)
            .await;
    }

    async fn get_raw(&self, key: &str) -> Option<String> {
        let key = self.key(key);
        let raw = match self.shared() {
            Some(redis) => match redis.get(&key).await {
                Ok(raw) => raw,
                Err(_) => self.inner.local.get(&key).await,
            },
            None => self.inner.local.get(&key).await,
        }?;
        (raw != TOMBSTONE).then_some(raw)
    }

    pub async fn set<T: Serialize>(&self, key: &str, value: &T, ttl: Duration) {
        let key = self.key(key);
        let Ok(raw) = serde_json::to_string(value) else {
            return;
        };
        match self.shared() {
            Some(redis) => {
                if redis.set(&key, &raw, ttl).await.is_err() {
                    let ttl = ttl.min(SHARED_FALLBACK_TTL);
                    self.inner.local.set(key, raw, ttl).await;
                }
            }
            None => self.inner.local.set(key, raw, ttl).await,
        }
    }

    /// Stores a value read from the source of truth, unless the key holds anything (a newer value
    /// or the tombstone of an invalidation).
    pub async fn fill<T: Serialize>(&self, key: &str, value: &T, ttl: Duration) {
        if let Ok(raw) = serde_json::to_string(value) {
            self.fill_raw(key, raw, ttl).await;
        }
    }

    async fn fill_raw(&self, key: &str, raw: String, ttl: Duration) {
        let key = self.key(key);
        match self.shared() {
            Some(redis) => {
                if redis.set_if_absent(&key, &raw, ttl).await.is_err() {
                    let ttl = ttl.min(SHARED_FALLBACK_TTL);
                    self.inner.local.set_if_absent(key, raw, ttl).await;
                }
            }
            None => self.inner.local.set_if_absent(key, raw, ttl).await,
        }
    }

    /// Marks `keys` as changed for `ttl` (at least the longest life of the values they held), so
    /// concurrent [`Cache::fill`]s of older values are refused; reads see a miss.
    pub async fn invalidate(&self, keys: &[String], ttl: Duration) {
        for key in keys {
            let key = self.key(key);
            self.inner
                .local
                .set(key.clone(), TOMBSTONE.into(), ttl)
                .await;
            if let Some(redis) = self.shared() {
                // A failure is logged by the backend; the old entry's own TTL bounds its life.
                let _ = redis.set(&key, TOMBSTONE, ttl).await;
            }
        }
    }

    pub async fn delete(&self, keys: &[String]) {
        let keys: Vec<String> = keys.iter().map(|key| self.key(key)).collect();
        for key in &keys {
            self.inner.local.delete(key).await;
        }
        if let Some(redis) = self.shared() {
            // A failed delete is already logged by the Redis backend; the entry's own TTL is
            // then the bound on its staleness.
            let _ = redis.delete(&keys).await;
        }
    }

    /// Adds one to a fixed-window counter that starts (and expires) with its first increment.
    pub async fn increment(&self, key: &str, window: Duration) -> Counter {
        let key = self.key(key);
        if let Some(redis) = self.shared()
            && let Ok(counter) = redis.increment(&key, window).await
        {
            return counter;
        }
        self.inner.local.increment(key, window).await
    }

    /// Spends one request from each budget (`crate::rate_limit`): in Redis, atomically and
    /// shared by every instance; on this instance alone while Redis is down or unset.
    pub async fn spend(&self, budgets: Vec<Budget>) -> Verdict {
        let keyed: Vec<_> = budgets
            .iter()
            .map(|budget| (self.key(&budget.key), budget.quota))
            .collect();
        let standings = match self.shared() {
            Some(redis) => match spend_batch::spend(redis, &keyed).await {
                Ok(standings) => standings,
                Err(_) => self.inner.local_limits.spend(&keyed),
            },
            None => self.inner.local_limits.spend(&keyed),
        };
        Verdict {
            budgets: budgets.into_iter().zip(standings).collect(),
        }
    }

    /// Takes one back from a fixed-window counter (an attempt that was never judged).
    pub async fn give_back(&self, key: &str) {
        let key = self.key(key);
        if let Some(redis) = self.shared()
            && redis.give_back(&key).await.is_ok()
        {
            return;
        }
        self.inner.local.give_back(key).await;
    }

    /// Reads a counter without changing it.
    pub async fn counter(&self, key: &str) -> Option<Counter> {
        let key = self.key(key);
        if let Some(redis) = self.shared()
            && let Ok(counter) = redis.counter(&key).await
        {
            return counter;
        }
        self.inner.local.counter(&key).await
    }

    pub async fn health(&self) -> CacheHealth {
        match &self.inner.redis {
            None => CacheHealth::InProcess,
            Some(redis) if redis.ping().await.is_ok() => CacheHealth::Redis,
            Some(_) => CacheHealth::RedisDown,
        }
    }

    fn shared(&self) -> Option<&Arc<RedisCache>> {
        self.inner.redis.as_ref()
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.inner.prefix)
    }
}

fn generation_key(family: &str) -> String {
    format!("generation:{family}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_process() -> Cache {
        Cache::new(&CacheConfig {
            redis_url: None,
            key_prefix: "t:".into(),
            redis_timeout: Duration::from_millis(100),
            auth: SignIn::Url,
        })
        .unwrap()
    }

    /// The machine's Redis (as the API tests use it), under a prefix of its own.
    fn shared_redis() -> Cache {
        redis_under(&format!("t-{}:", uuid::Uuid::new_v4().simple()))
    }

    fn redis_under(prefix: &str) -> Cache {
        let url = std::env::var("TEST_REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into());
        Cache::new(&CacheConfig {
            redis_url: Some(crate::config::Secret::from(url)),
            key_prefix: prefix.to_owned(),
            redis_timeout: Duration::from_secs(2),
            auth: SignIn::Url,
        })
        .unwrap()
    }

    /// Spends arriving together go in shared script calls; each is still judged alone, in
    /// order, and all-or-nothing across its own budgets.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_spends_in_batches_stop_exactly_at_the_limit() {
        use crate::rate_limit::{Budget, Quota};
        let cache = shared_redis();
        let shared = Quota::new(20, 60);
        let spends = (0..60).map(|n| {
            let cache = cache.clone();
            // Every other request also spends a budget of its own that it can't afford, so it
            // must leave the shared one untouched.
            let own = Quota::new(if n % 2 == 0 { 5 } else { 1 }, 60);
            tokio::spawn(async move {
                let mut budgets = vec![Budget::new("shared", "all", shared)];
                budgets.push(Budget::new("own", n, own));
                if n % 2 == 1 {
                    cache.spend(vec![Budget::new("own", n, own)]).await;
                }
                cache.spend(budgets).await.allowed()
            })
        });
        let allowed = futures::future::join_all(spends)
            .await
            .into_iter()
            .filter(|allowed| *allowed.as_ref().unwrap())
            .count();
        assert_eq!(allowed, 20);
        let last = cache
            .spend(vec![Budget::new("shared", "all", shared)])
            .await;
        assert!(!last.allowed(), "the shared budget is spent out: {last:?}");
    }

    #[tokio::test]
    async fn a_counter_gives_back_one_and_never_goes_below_zero() {
        for cache in [in_process(), shared_redis()] {
            let window = Duration::from_secs(60);
            cache.increment("n", window).await;
            cache.increment("n", window).await;
            cache.give_back("n").await;
            assert_eq!(
                cache.counter("n").await.map(|counter| counter.count),
                Some(1)
            );
            cache.give_back("n").await;
            cache.give_back("n").await;
            assert_eq!(
                cache.counter("n").await.map(|counter| counter.count),
                Some(0)
            );
            cache.give_back("missing").await;
            assert_eq!(cache.counter("missing").await, None);
        }
    }

    #[tokio::test]
    async fn values_round_trip_and_delete() {
        let cache = in_process();
        cache
            .set("a", &vec![1, 2, 3], Duration::from_secs(60))
            .await;
        assert_eq!(cache.get::<Vec<i32>>("a").await, Some(vec![1, 2, 3]));
        cache.delete(&["a".into()]).await;
        assert_eq!(cache.get::<Vec<i32>>("a").await, None);
    }

    #[tokio::test]
    async fn a_fill_never_overwrites_an_invalidation() {
        let cache = in_process();
        let ttl = Duration::from_secs(60);
        cache.fill("u", &"old", ttl).await;
        assert_eq!(cache.get::<String>("u").await.as_deref(), Some("old"));
        cache.invalidate(&["u".into()], ttl).await;
        assert_eq!(cache.get::<String>("u").await, None);
        cache.fill("u", &"stale read", ttl).await;
        assert_eq!(cache.get::<String>("u").await, None);
        cache.set("u", &"authoritative", ttl).await;
        assert_eq!(
            cache.get::<String>("u").await.as_deref(),
            Some("authoritative")
        );
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_load() {
        let cache = in_process();
        let loads = std::sync::atomic::AtomicUsize::new(0);
        let load = || async {
            loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok("[1]".to_owned())
        };

        let results = futures::future::join_all(
            (0..20).map(|_| cache.get_or_fill_raw("list", Duration::from_secs(60), load)),
        )
        .await;

        assert!(results.iter().all(|r| r.as_deref().ok() == Some("[1]")));
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_snapshot_is_kept_here_until_its_generation_retires() {
        let cache = in_process();
        let ttl = Duration::from_secs(60);
        let loads = std::sync::atomic::AtomicUsize::new(0);
        let read = |generation: u64| {
            let loads = &loads;
            let cache = &cache;
            async move {
                cache
                    .get_or_fill_snapshot(&format!("list:{generation}"), ttl, || async move {
                        loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        Ok(format!("[{generation}]"))
                    })
                    .await
                    .unwrap()
                    .body
            }
        };
        assert_eq!(read(0).await, "[0]");
        // The shared entry is gone, yet the local copy still answers: no load, no round trip.
        cache.delete(&["list:0".into()]).await;
        assert_eq!(read(0).await, "[0]");
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);

        cache.bump_generation("list").await;
        assert_eq!(read(cache.generation("list").await).await, "[1]");
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    /// A cold instance (another one filled the shared cache) under a burst of reads of one
    /// key: one shared-cache read, no load, and every reader holds the same copy of the body.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_snapshot_misses_share_one_copy() {
        let prefix = format!("t-{}:", uuid::Uuid::new_v4().simple());
        let (warm, cold) = (redis_under(&prefix), redis_under(&prefix));
        let ttl = Duration::from_secs(60);
        let body = format!("[{}]", "1,".repeat(4096));
        warm.fill_raw("list:0", body.clone(), ttl).await;
        let reads = futures::future::join_all((0..200).map(|_| {
            let cold = cold.clone();
            tokio::spawn(async move {
                cold.get_or_fill_snapshot("list:0", ttl, || async {
                    Err(anyhow::anyhow!("loaded although the shared cache holds it").into())
                })
                .await
                .unwrap()
            })
        }))
        .await;
        let snapshots: Vec<Snapshot> = reads.into_iter().map(Result::unwrap).collect();
        assert!(snapshots.iter().all(|snapshot| snapshot.body == body));
        let copies: std::collections::HashSet<_> = snapshots
            .iter()
            .map(|snapshot| snapshot.body.as_ptr())
            .collect();
        assert_eq!(copies.len(), 1, "one copy of the body on this instance");
    }

    #[tokio::test]
    async fn a_generation_bump_retires_a_family() {
        let cache = in_process();
        assert_eq!(cache.generation("f").await, 0);
        cache.bump_generation("f").await;
        cache.bump_generation("f").await;
        assert_eq!(cache.generation("f").await, 2);
    }

    /// Reads arriving together share MGETs; each still sees every bump made before it, on
    /// any instance, and a family never bumped reads 0.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batched_generation_reads_see_other_instances_bumps() {
        let prefix = format!("t-{}:", uuid::Uuid::new_v4().simple());
        let (reader, writer) = (redis_under(&prefix), redis_under(&prefix));
        let read_all = || {
            futures::future::join_all((0..300).map(|n| {
                let reader = reader.clone();
                tokio::spawn(async move {
                    let family = format!("f{}", n % 3);
                    (n % 3, reader.generation(&family).await)
                })
            }))
        };
        assert!(
            read_all()
                .await
                .into_iter()
                .all(|read| read.unwrap().1 == 0)
        );
        writer.bump_generation("f1").await;
        writer.bump_generation("f1").await;
        writer.bump_generation("f2").await;
        for read in read_all().await {
            let (family, generation) = read.unwrap();
            assert_eq!(generation, [0, 2, 1][family], "family f{family}");
        }
    }

    #[tokio::test]
    async fn counters_count_within_their_window() {
        let cache = in_process();
        let window = Duration::from_secs(60);
        assert_eq!(cache.increment("c", window).await.count, 1);
        let second = cache.increment("c", window).await;
        assert_eq!(second.count, 2);
        assert!(second.resets_in <= window && second.resets_in > Duration::from_secs(55));
        assert_eq!(cache.counter("c").await.map(|c| c.count), Some(2));
        assert_eq!(cache.counter("missing").await, None);
    }

    #[tokio::test]
    async fn unreachable_redis_falls_back_to_the_process() {
        let cache = Cache::new(&CacheConfig {
            redis_url: Some(crate::config::Secret::from("redis://127.0.0.1:1")),
            key_prefix: "t:".into(),
            redis_timeout: Duration::from_millis(200),
            auth: SignIn::Url,
        })
        .unwrap();
        cache.set("k", &"v", Duration::from_secs(60)).await;
        assert_eq!(cache.get::<String>("k").await.as_deref(), Some("v"));
        assert_eq!(cache.increment("n", Duration::from_secs(60)).await.count, 1);
        assert_eq!(cache.health().await, CacheHealth::RedisDown);
    }
}

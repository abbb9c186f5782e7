//! The in-process cache: moka with a per-entry time to live.

use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache as Moka;

use super::Counter;

const MAX_ENTRIES: u64 = 100_000;

#[derive(Clone)]
pub(super) struct LocalCache {
    entries: Moka<String, Entry>,
}

#[derive(Clone)]
struct Entry {
    value: Value,
    expires_at: Instant,
}

#[derive(Clone)]
enum Value {
    Text(std::sync::Arc<str>),
    Count(u64),
}

impl LocalCache {
    pub(super) fn new() -> Self {
        Self {
            entries: Moka::builder()
                .max_capacity(MAX_ENTRIES)
                .expire_after(EntryExpiry)
                .build(),
        }
    }

    pub(super) async fn get(&self, key: &str) -> Option<String> {
        match self.live(key).await?.value {
            Value::Text(text) => Some(text.to_string()),
            Value::Count(_) => None,
        }
    }

    pub(super) async fn set(&self, key: String, value: String, ttl: Duration) {
        let entry = Entry {
            value: Value::Text(value.into()),
            expires_at: Instant::now() + ttl,
        };
        self.entries.insert(key, entry).await;
    }

    pub(super) async fn set_if_absent(&self, key: String, value: String, ttl: Duration) {
        let entry = Entry {
            value: Value::Text(value.into()),
            expires_at: Instant::now() + ttl,
        };
        self.entries
            .entry(key)
            .and_upsert_with(|existing| {
                let keep = existing
                    .map(|existing| existing.into_value())
                    .filter(|existing| existing.expires_at > Instant::now());
                std::future::ready(keep.unwrap_or(entry))
            })
            .await;
    }

    pub(super) async fn delete(&self, key: &str) {
        self.entries.invalidate(key).await;
    }

    /// Takes one back from a live counter (never below zero); nothing when there is none.
    pub(super) async fn give_back(&self, key: String) {
        self.entries
            .entry(key)
            .and_compute_with(|existing| {
                let op = match existing.map(|entry| entry.into_value()) {
                    Some(Entry {
                        value: Value::Count(count),
                        expires_at,
                    }) if expires_at > Instant::now() => moka::ops::compute::Op::Put(Entry {
                        value: Value::Count(count.saturating_sub(1)),
                        expires_at,
                    }),
                    _ => moka::ops::compute::Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
    }

    pub(super) async fn increment(&self, key: String, window: Duration) -> Counter {
        let entry = self
            .entries
            .entry(key)
            .and_upsert_with(|existing| {
                let now = Instant::now();
                let next = match existing.map(|entry| entry.into_value()) {
                    Some(Entry {
                        value: Value::Count(count),
                        expires_at,
                    }) if expires_at > now => Entry {
                        value: Value::Count(count + 1),
                        expires_at,
                    },
                    _ => Entry {
                        value: Value::Count(1),
                        expires_at: now + window,
                    },
                };
                std::future::ready(next)
            })
            .await
            .into_value();
        to_counter(&entry).unwrap_or(Counter {
            count: 1,
            resets_in: window,
        })
    }

    pub(super) async fn counter(&self, key: &str) -> Option<Counter> {
        to_counter(&self.live(key).await?)
    }

    async fn live(&self, key: &str) -> Option<Entry> {
        self.entries
            .get(key)
            .await
            .filter(|entry| entry.expires_at > Instant::now())
    }
}

fn to_counter(entry: &Entry) -> Option<Counter> {
    match entry.value {
        Value::Count(count) => Some(Counter {
            count,
            resets_in: entry.expires_at.saturating_duration_since(Instant::now()),
        }),
        Value::Text(_) => None,
    }
}

struct EntryExpiry;

impl Expiry<String, Entry> for EntryExpiry {
    fn expire_after_create(&self, _key: &String, entry: &Entry, now: Instant) -> Option<Duration> {
        Some(entry.expires_at.saturating_duration_since(now))
    }

    fn expire_after_update(
        &self,
        _key: &String,
        entry: &Entry,
        now: Instant,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.expires_at.saturating_duration_since(now))
    }
}

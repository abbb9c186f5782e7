//! Request budgets on this instance alone, for when Redis is down or unset: one `governor`
//! keyed limiter per quota, pruned of idle keys now and then so memory stays bounded.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use governor::RateLimiter;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;

use crate::rate_limit::{Quota, Standing};

type Limiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// Checks between two prunings of idle keys.
const PRUNE_EVERY: u64 = 10_000;

#[derive(Default)]
pub(super) struct LocalLimits {
    limiters: Mutex<HashMap<Quota, Arc<Limiter>>>,
    checks: AtomicU64,
}

impl LocalLimits {
    /// Spends one request from each `(key, quota)` (each on its own: this is the fallback).
    pub(super) fn spend(&self, budgets: &[(String, Quota)]) -> Vec<Standing> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.prune();
        }
        let clock = DefaultClock::default();
        budgets
            .iter()
            .map(|(key, quota)| {
                let limiter = self.limiter(*quota);
                match limiter.check_key(key) {
                    Ok(snapshot) => {
                        let remaining = snapshot.remaining_burst_capacity();
                        Standing {
                            remaining,
                            reset: quota.emission_interval() * (quota.limit - remaining),
                            retry_after: None,
                        }
                    }
                    Err(refused) => Standing {
                        remaining: 0,
                        reset: quota.window(),
                        retry_after: Some(refused.wait_time_from(clock.now())),
                    },
                }
            })
            .collect()
    }

    fn limiter(&self, quota: Quota) -> Arc<Limiter> {
        let mut limiters = self.limiters.lock().unwrap_or_else(PoisonError::into_inner);
        limiters
            .entry(quota)
            .or_insert_with(|| {
                let burst = NonZeroU32::new(quota.limit).unwrap_or(NonZeroU32::MIN);
                let cells = governor::Quota::with_period(quota.emission_interval())
                    .unwrap_or_else(|| governor::Quota::per_second(NonZeroU32::MIN))
                    .allow_burst(burst);
                Arc::new(RateLimiter::keyed(cells).with_middleware::<StateInformationMiddleware>())
            })
            .clone()
    }

    fn prune(&self) {
        let limiters = self.limiters.lock().unwrap_or_else(PoisonError::into_inner);
        for limiter in limiters.values() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

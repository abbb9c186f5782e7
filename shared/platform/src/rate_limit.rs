//! Request budgets shared across instances. Each budget is a quota (`limit` requests per
//! `window`) on one key (a client IP, a session, a route and IP); the Generic Cell Rate
//! Algorithm spends it: a burst of `limit` at once, then one more every `window / limit`. All
//! budgets of a request are checked and spent in one Redis script call (so two instances never
//! both spend the last unit), which an instance shares among the requests arriving together
//! (`cache::spend_batch`); with Redis down or unset, an in-process `governor` limiter per quota
//! keeps refusing on each instance alone.
//!
//! Answers carry the IETF draft's `RateLimit-Policy` and `RateLimit` fields (one item per
//! budget), and a refusal is 429 `RATE_LIMITED` with `Retry-After`.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::Error;

/// At most `limit` requests per `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quota {
    pub limit: u32,
    pub window_seconds: u32,
}

impl Quota {
    pub const fn new(limit: u32, window_seconds: u32) -> Self {
        Self {
            limit,
            window_seconds,
        }
    }

    pub fn window(self) -> Duration {
        Duration::from_secs(u64::from(self.window_seconds))
    }

    /// The time one request's share takes to come back.
    pub(crate) fn emission_interval(self) -> Duration {
        self.window() / self.limit.max(1)
    }
}

/// One budget a request spends from.
#[derive(Debug, Clone)]
pub struct Budget {
    /// The policy's name in the response fields (`ip`, `user`, `login`, ...).
    pub policy: &'static str,
    /// Who spends it: the policy, then the client IP, a session hash or an e-mail.
    pub key: String,
    pub quota: Quota,
}

impl Budget {
    pub fn new(policy: &'static str, subject: impl std::fmt::Display, quota: Quota) -> Self {
        Self {
            policy,
            key: format!("rate:{policy}:{subject}"),
            quota,
        }
    }
}

/// A budget's state after a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub remaining: u32,
    /// Until the budget is whole again.
    pub reset: Duration,
    /// When refused: until the next request would pass.
    pub retry_after: Option<Duration>,
}

/// The outcome of a request's budgets: allowed when none is spent out.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub budgets: Vec<(Budget, Standing)>,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.budgets
            .iter()
            .all(|(_, standing)| standing.retry_after.is_none())
    }

    /// The longest wait among the refusing budgets.
    pub fn retry_after(&self) -> Option<Duration> {
        self.budgets
            .iter()
            .filter_map(|(_, standing)| standing.retry_after)
            .max()
    }

    /// Adds `RateLimit-Policy` and `RateLimit`, one item per budget.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        if self.budgets.is_empty() {
            return;
        }
        let policies = self.items(|budget, _| {
            format!(
                "\"{}\";q={};w={}",
                budget.policy, budget.quota.limit, budget.quota.window_seconds
            )
        });
        let states = self.items(|budget, standing| {
            format!(
                "\"{}\";r={};t={}",
                budget.policy,
                standing.remaining,
                standing.reset.as_secs_f64().ceil() as u64
            )
        });
        for (name, value) in [("ratelimit-policy", policies), ("ratelimit", states)] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }

    fn items(&self, item: impl Fn(&Budget, &Standing) -> String) -> String {
        self.budgets
            .iter()
            .map(|(budget, standing)| item(budget, standing))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The 429 for a refused request (`Retry-After` and `retryAt` from the longest wait).
    pub fn refusal(&self) -> Error {
        let wait = self.retry_after().unwrap_or(Duration::from_secs(1));
        let until = Utc::now()
            + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(1))
            + chrono::Duration::milliseconds(999);
        let policies: Vec<&str> = self
            .budgets
            .iter()
            .filter(|(_, standing)| standing.retry_after.is_some())
            .map(|(budget, _)| budget.policy)
            .collect();
        Error::rate_limited(
            "RATE_LIMITED",
            "Too many requests; slow down and try again later.",
            until,
        )
        .with("policies", policies)
    }
}

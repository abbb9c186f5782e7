//! Request budgets in front of every `/api` route (product-spec §12; `platform::rate_limit`):
//! each request spends from its client IP's budget, its session's when it carries one, and its
//! route's where the route is expensive or abusable, all in one Redis round trip. The budgets
//! are the admin-editable `rate-limits` setting, re-read every [`SETTINGS_LIFE`].
//!
//! Not limited here: timers (not under `/api`), the health probes, and calls that prove who
//! sends them (gateway webhooks by signature, Web PubSub events by Entra token); a flood of
//! those is Azure's or the gateway's to absorb, and refusing them would lose events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::platform_settings::{self, RateLimits};
use platform::AppState;
use platform::auth::{bearer_token, token};
use platform::client_ip::ClientIp;
use platform::rate_limit::{Budget, Quota};
use tokio::sync::RwLock;

/// How long an instance uses the budgets it read before reading them again.
pub const SETTINGS_LIFE: Duration = Duration::from_secs(10);

/// The middleware's state: the app and this instance's copy of the budgets.
#[derive(Clone)]
pub struct Limiter {
    state: AppState,
    settings: Arc<RwLock<Option<(Instant, RateLimits)>>>,
}

impl Limiter {
    pub fn new(state: AppState) -> Self {
        Self {
            state,
            settings: Arc::default(),
        }
    }

    async fn settings(&self) -> RateLimits {
        if let Some((read_at, limits)) = &*self.settings.read().await
            && read_at.elapsed() < SETTINGS_LIFE
        {
            return limits.clone();
        }
        // Boxed: the database read's future is large, and every request in flight would carry
        // its space otherwise.
        Box::pin(self.reload()).await
    }

    async fn reload(&self) -> RateLimits {
        let limits = match platform_settings::load::<RateLimits>(&self.state).await {
            Ok(limits) => limits,
            Err(error) => {
                tracing::warn!(error = %error, "rate limits unreadable; using the defaults");
                RateLimits::default()
            }
        };
        *self.settings.write().await = Some((Instant::now(), limits.clone()));
        limits
    }
}

/// Spends the request's budgets; a request past any of them gets 429 `RATE_LIMITED` with
/// `Retry-After`, and every answer carries `RateLimit-Policy` and `RateLimit`.
pub async fn limit(
    State(limiter): State<Limiter>,
    ClientIp(ip): ClientIp,
    request: Request,
    next: Next,
) -> Response {
    let Some(route) = request.extensions().get::<MatchedPath>().cloned() else {
        return next.run(request).await;
    };
    if exempt(route.as_str()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let session = bearer_token(&parts)
        .map(|presented| data_encoding::HEXLOWER.encode(&token::hash(&presented)[..16]));
    let limits = limiter.settings().await;
    let mut budgets = vec![Budget::new("ip", ip, limits.per_ip)];
    if let Some(session) = &session {
        budgets.push(Budget::new("session", session, limits.per_session));
    }
    if let Some((policy, quota, per_session)) = route_budget(&parts, route.as_str(), &limits) {
        match (per_session, &session) {
            (false, _) => budgets.push(Budget::new(policy, ip, quota)),
            (true, Some(session)) => budgets.push(Budget::new(policy, session, quota)),
            // Without a session the route answers 401; the IP budget covers it.
            (true, None) => {}
        }
    }
    let verdict = limiter.state.cache.spend(budgets).await;
    let mut response = if verdict.allowed() {
        next.run(Request::from_parts(parts, body)).await
    } else {
        verdict.refusal().into_response()
    };
    verdict.write_headers(response.headers_mut());
    response
}

/// Routes that spend no budget: outside `/api`, the health probes, the gateways' webhooks and
/// Web PubSub's events.
pub(crate) fn exempt(route: &str) -> bool {
    !route.starts_with("/api/")
        || route.starts_with("/api/health")
        || route.ends_with("/webhook")
        || route == "/api/realtime/events"
}

/// The route's own budget: its policy name, quota, and whether it is per session (else per IP).
fn route_budget(
    parts: &Parts,
    route: &str,
    limits: &RateLimits,
) -> Option<(&'static str, Quota, bool)> {
    if parts.method != Method::POST {
        return None;
    }
    Some(match route {
        "/api/auth/signup" => ("signup", limits.signup_per_ip, false),
        "/api/auth/login" => ("login", limits.login_per_ip, false),
        "/api/auth/password/forgot" | "/api/auth/password/reset" => {
            ("recovery", limits.recovery_per_ip, false)
        }
        "/api/auth/2fa/setup" | "/api/auth/2fa/verify" => {
            ("two-factor", limits.two_factor_per_session, true)
        }
        "/api/payments/razorpay/orders" | "/api/payments/stripe/intents" => {
            ("checkout", limits.checkout_per_session, true)
        }
        "/api/realtime/negotiate" => ("negotiate", limits.negotiate_per_session, true),
        "/api/mentors/me/media/{kind}/uploads"
        | "/api/bookings/{booking_id}/recording/parts/{part_number}/upload" => {
            ("uploads", limits.uploads_per_session, true)
        }
        _ => return None,
    })
}

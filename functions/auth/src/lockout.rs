//! Login lockout: after 5 failed attempts for an email, or 30 from one client IP, within 15
//! minutes, further attempts are refused until the window ends. Counters live in the shared
//! cache, so every instance agrees.
//!
//! An email's attempt is counted *before* its password is checked and the count is cleared on
//! success, so a burst of parallel guesses can't slip past the limit while they are in flight.

use std::net::IpAddr;
use std::time::Duration;

use chrono::Utc;
use platform::AppState;
use platform::Error;
use platform::cache::Counter;

const WINDOW: Duration = Duration::from_secs(15 * 60);
const MAX_FAILURES_PER_EMAIL: u64 = 5;
const MAX_FAILURES_PER_IP: u64 = 30;

/// Counts an attempt for `email`, refusing it while the email or the IP is locked out.
pub async fn begin_attempt(state: &AppState, email: &str, ip: IpAddr) -> Result<(), Error> {
    if let Some(by_ip) = state.cache.counter(&ip_key(ip)).await
        && by_ip.count >= MAX_FAILURES_PER_IP
    {
        return Err(locked(by_ip));
    }
    let by_email = state.cache.increment(&email_key(email), WINDOW).await;
    if by_email.count > MAX_FAILURES_PER_EMAIL {
        return Err(locked(by_email));
    }
    Ok(())
}

/// Gives back an attempt whose password was never checked (the hashing threads were busy, or
/// an internal error), so a busy server does not lock honest people out.
pub async fn give_back(state: &AppState, email: &str) {
    state.cache.give_back(&email_key(email)).await;
}

/// Counts a failed attempt against the client IP (the email's count already includes it).
pub async fn record_failure(state: &AppState, ip: IpAddr) {
    state.cache.increment(&ip_key(ip), WINDOW).await;
}

/// A successful sign-in clears the email's count (not the IP's: one good account must not
/// launder a spray of guesses at others).
pub async fn clear(state: &AppState, email: &str) {
    state.cache.delete(&[email_key(email)]).await;
}

fn locked(counter: Counter) -> Error {
    let ends_at = Utc::now()
        + chrono::Duration::from_std(counter.resets_in).unwrap_or(chrono::Duration::zero());
    Error::rate_limited(
        "LOGIN_LOCKED",
        "Too many failed sign-in attempts; try again later.",
        ends_at,
    )
    .with("lockoutEndsAt", ends_at)
}

fn email_key(email: &str) -> String {
    format!("login-failures:email:{email}")
}

fn ip_key(ip: IpAddr) -> String {
    format!("login-failures:ip:{ip}")
}

//! Phase 9: an abuse flood against the honest mix, under the product's default request budgets.
//!
//! Honest users, each from an address of its own, run the login and discovery mix at a human
//! pace (a login a second, a discovery call every 100 ms): first alone, then while abusive
//! clients from five addresses hammer signup, wrong-password logins (on accounts outside the
//! honest mix) and forgot-password as fast as they are answered. Both stages run in one
//! handler process, so the two are compared on the same machine state.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::json;
use sqlx::Connection;

use super::{StepResult, Target, VirtualUser, closed_loop, expect_ok, http, transport_error};
use crate::Options;
use crate::seed::PASSWORD;

/// Addresses the abusive clients come from, and connections from each.
const FLOOD_ADDRESSES: u8 = 5;
const FLOOD_CONNECTIONS_PER_ADDRESS: usize = 10;
/// One honest user in this many logs in (once a second); the others browse.
const LOGIN_SHARE: usize = 50;
const LOGIN_PAUSE: Duration = Duration::from_secs(1);
const DISCOVERY_PAUSE: Duration = Duration::from_millis(100);
/// What the flooded stage may cost honest users, as multiples of the quiet stage's p97.5.
const MAX_DISCOVERY_SLOWDOWN: f64 = 2.0;
const MAX_LOGIN_SLOWDOWN: f64 = 3.0;
/// How much more memory the handler may take while flooded than while quiet: the flood is
/// answered without keeping anything (the process's level itself depends on earlier phases).
const MAX_FLOOD_GROWTH_MB: f64 = 20.0;

/// The stages' outcomes, each with its label; the last carries the phase's checks.
pub async fn run(target: Arc<Target>, pids: &[u32], options: &Options) -> super::Parts {
    let defaults = serde_json::to_value(domain::platform_settings::RateLimits::default())
        .expect("the default budgets serialise");
    if let Err(error) = set_budgets(&target, defaults).await {
        let mut failed = closed_loop::<Honest>(options, &[], Vec::new()).await;
        failed.checks = vec![format!(
            "FAILED: could not restore the default budgets: {error}"
        )];
        return vec![("setup", failed)];
    }

    let (quiet_login, quiet_discovery) = tokio::join!(
        closed_loop(options, pids, honest(&target, Role::Login)),
        closed_loop(options, &[], honest(&target, Role::Discovery)),
    );
    let (flooded_login, flooded_discovery, mut flood) = tokio::join!(
        closed_loop(options, pids, honest(&target, Role::Login)),
        closed_loop(options, &[], honest(&target, Role::Discovery)),
        closed_loop(options, &[], abusive(&target)),
    );

    let mut checks = Vec::new();
    for (stage, outcome) in [
        ("quiet login", &quiet_login),
        ("quiet discovery", &quiet_discovery),
        ("flooded login", &flooded_login),
        ("flooded discovery", &flooded_discovery),
    ] {
        checks.push(verdict(
            outcome.errors.is_empty() && outcome.requests > 0,
            format!(
                "honest {stage}: {} of {} succeeded",
                outcome.successes, outcome.requests
            ),
        ));
    }
    checks.push(slowdown(
        "discovery",
        &quiet_discovery,
        &flooded_discovery,
        MAX_DISCOVERY_SLOWDOWN,
    ));
    checks.push(slowdown(
        "login",
        &quiet_login,
        &flooded_login,
        MAX_LOGIN_SLOWDOWN,
    ));
    let refused: u64 = flood
        .expected
        .iter()
        .filter(|(kind, _)| kind.starts_with("429") || kind.starts_with("503"))
        .map(|(_, count)| count)
        .sum();
    checks.push(verdict(
        refused * 2 > flood.requests,
        format!(
            "the flood was answered mostly 429/503: {refused} of {} ({:.1}%)",
            flood.requests,
            100.0 * refused as f64 / flood.requests.max(1) as f64
        ),
    ));
    let quiet_peak = quiet_login.usage.unwrap_or_default().peak_rss_mb;
    let peak = flooded_login.usage.unwrap_or_default().peak_rss_mb;
    checks.push(verdict(
        peak <= quiet_peak + MAX_FLOOD_GROWTH_MB,
        format!(
            "handler peak RSS {peak:.1} MB flooded vs {quiet_peak:.1} MB quiet (at most {MAX_FLOOD_GROWTH_MB} MB more)"
        ),
    ));
    // What comes after (the ceilings' replay of discovery) runs under the load budgets again.
    if let Err(error) = set_budgets(&target, crate::seed::load_budgets()).await {
        checks.push(verdict(
            false,
            format!("the load budgets put back: {error}"),
        ));
    }
    flood.checks = checks;
    vec![
        ("honest login, quiet", quiet_login),
        ("honest discovery, quiet", quiet_discovery),
        ("honest login, flooded", flooded_login),
        ("honest discovery, flooded", flooded_discovery),
        ("abusive clients", flood),
    ]
}

fn verdict(passed: bool, fact: String) -> String {
    format!("{} {fact}", if passed { "passed:" } else { "FAILED:" })
}

fn slowdown(what: &str, quiet: &super::Outcome, flooded: &super::Outcome, bound: f64) -> String {
    let quiet_ms = quiet.latency.value_at_percentile(97.5) as f64 / 1000.0;
    let flooded_ms = flooded.latency.value_at_percentile(97.5) as f64 / 1000.0;
    verdict(
        flooded_ms <= bound * quiet_ms.max(1.0),
        format!(
            "honest {what} p97.5 {flooded_ms:.1} ms flooded vs {quiet_ms:.1} ms quiet (at most {bound}×)"
        ),
    )
}

/// The load database holds the highest budgets (so other phases measure the handler, not the
/// limits); this phase runs under the product's defaults and then puts the load budgets back,
/// each set as an admin sets them, waiting until the handler has read them again.
async fn set_budgets(target: &Target, budgets: serde_json::Value) -> Result<(), String> {
    let admin_token = admin_session(&target.data.direct_url)
        .await
        .map_err(|error| format!("admin session: {error}"))?;
    let response = target
        .client
        .put(format!("{}/api/admin/rate-limits", target.base))
        .bearer_auth(admin_token)
        .json(&budgets)
        .send()
        .await;
    expect_ok(response)?;
    tokio::time::sleep(handler_settings_life()).await;
    Ok(())
}

/// The limiter re-reads its budgets this often (`handler::rate_limits::SETTINGS_LIFE`), plus a
/// margin.
fn handler_settings_life() -> Duration {
    Duration::from_secs(11)
}

/// An admin with a live session, written directly (the load database has none).
async fn admin_session(direct_url: &str) -> anyhow::Result<String> {
    let mut db = sqlx::PgConnection::connect(direct_url).await?;
    let (token, hash) = platform::auth::token::generate();
    sqlx::query(
        r#"WITH admin AS (
               INSERT INTO users (user_id, email, password_hash, first_name, last_name, role, country)
               VALUES (gen_random_uuid(), 'flood-admin-' || gen_random_uuid() || '@load.example', 'unused',
                       'Load', 'Admin', 'admin', 'India')
               RETURNING user_id)
           INSERT INTO sessions (session_id, user_id, token_hash, kind, expires_at)
           SELECT gen_random_uuid(), user_id, $1, 'session', now() + interval '1 hour' FROM admin"#,
    )
    .bind(hash)
    .execute(&mut db)
    .await?;
    db.close().await?;
    Ok(token)
}

#[derive(Clone, Copy)]
enum Role {
    Login,
    Discovery,
}

/// An honest user from an address of its own, at a human pace.
struct Honest {
    target: Arc<Target>,
    role: Role,
    user: usize,
    address: String,
    started: bool,
}

fn honest(target: &Arc<Target>, role: Role) -> Vec<Result<Honest, String>> {
    let honest = target
        .connections
        .saturating_sub(usize::from(FLOOD_ADDRESSES) * FLOOD_CONNECTIONS_PER_ADDRESS)
        .max(LOGIN_SHARE);
    (0..honest)
        .filter(|user| matches!(role, Role::Login) == (user % LOGIN_SHARE == 0))
        .map(|user| {
            Ok(Honest {
                target: target.clone(),
                role,
                user,
                address: format!("10.1.{}.{}", user / 250, user % 250 + 1),
                started: false,
            })
        })
        .collect()
}

impl VirtualUser for Honest {
    async fn think(&mut self) {
        if std::mem::replace(&mut self.started, true) {
            tokio::time::sleep(match self.role {
                Role::Login => LOGIN_PAUSE,
                Role::Discovery => DISCOVERY_PAUSE,
            })
            .await;
        }
    }

    async fn step(&mut self) -> StepResult {
        let Target {
            client, base, data, ..
        } = &*self.target;
        match self.role {
            Role::Login => {
                // Students of its own per user (as phase 1), so logins don't revoke each other.
                let email = &data.student_emails[self.user % data.student_emails.len()];
                http::login(client, base, email, Some(&self.address))
                    .await
                    .map(|(_, retried)| retried.then(|| http::RETRIED.to_owned()))
            }
            Role::Discovery => {
                let request = client
                    .get(http::discovery_url(base, &data.mentor_ids))
                    .header("x-forwarded-for", &self.address);
                expect_ok(request.send().await)
            }
        }
    }
}

/// An abusive client: no pause, rotating signup, a wrong password and forgot-password.
struct Abusive {
    target: Arc<Target>,
    address: String,
    step: usize,
}

fn abusive(target: &Arc<Target>) -> Vec<Result<Abusive, String>> {
    (0..usize::from(FLOOD_ADDRESSES) * FLOOD_CONNECTIONS_PER_ADDRESS)
        .map(|client| {
            Ok(Abusive {
                target: target.clone(),
                address: format!("10.66.0.{}", client % usize::from(FLOOD_ADDRESSES) + 1),
                step: client,
            })
        })
        .collect()
}

impl VirtualUser for Abusive {
    async fn step(&mut self) -> StepResult {
        let Target { client, base, .. } = &*self.target;
        self.step += 1;
        let stranger = format!("flood-{}@load.example", rand::rng().random::<u64>());
        let request = match self.step % 3 {
            0 => client.post(format!("{base}/api/auth/signup")).json(&json!({
                "email": stranger, "password": PASSWORD, "firstName": "Flood",
                "lastName": "Bot", "role": "student"
            })),
            // Accounts outside the honest mix, so the flood's lockouts don't reach honest users.
            1 => client
                .post(format!("{base}/api/auth/login"))
                .json(&json!({"email": format!("victim-{}@load.example", self.step % 100), "password": "Wrong-Guess1"})),
            _ => client
                .post(format!("{base}/api/auth/password/forgot"))
                .json(&json!({"email": stranger})),
        };
        let response = request
            .header("x-forwarded-for", &self.address)
            .send()
            .await
            .map_err(|error| transport_error(&error))?;
        let status = response.status();
        if status.is_server_error() && status.as_u16() != 503 {
            return Err(format!("HTTP {}", status.as_u16()));
        }
        let code = response
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|body| body["code"].as_str().map(str::to_owned));
        // Every designed answer is tallied by kind: the table shows how the flood was answered.
        Ok(Some(match code {
            Some(code) => format!("{} {code}", status.as_u16()),
            None => status.as_u16().to_string(),
        }))
    }
}

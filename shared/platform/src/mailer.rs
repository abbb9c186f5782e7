//! Delivery of the email outbox through SendGrid's v3 Mail Send API. Each run leases batches of
//! due emails (so overlapping runs never take the same one), sends them, and records the result
//! under that lease: sent exactly once, retried with exponential backoff on 429/5xx/network
//! errors, failed at once on other 4xx. Keys and email bodies are never logged (bodies carry
//! password reset codes). Addresses under the reserved `.invalid` top-level domain (RFC 2606;
//! the smoke check's throwaway accounts) are never sent: they fail at once, without SendGrid.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::json;
use uuid::Uuid;

use azure_clients::outbound;

use crate::config::ExposeSecret;
use crate::config::SendGridConfig;
use crate::error::Result;
use crate::outbox::OutboxStatus;
use crate::state::AppState;
use crate::telemetry::metrics::metrics;

const BATCH: i64 = 50;
/// E-mails sent at once by one pass.
const IN_FLIGHT: usize = 8;
/// How long one pass keeps leasing batches; well inside the lease and the timer's minute.
const PASS: Duration = Duration::from_secs(30);
const LEASE: chrono::Duration = chrono::Duration::minutes(2);
/// How long a delivery's result is retried when it cannot be written: well inside the lease.
const RECORD_FOR: Duration = Duration::from_secs(60);
const MAX_ATTEMPTS: i32 = 8;
const TIMEOUT: Duration = Duration::from_secs(15);

/// What one delivery pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

#[derive(sqlx::FromRow)]
struct Leased {
    email_outbox_id: Uuid,
    recipient: String,
    subject: String,
    body_text: String,
    category: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
}

enum Outcome {
    Sent,
    Retry(String),
    Permanent(String),
}

/// Delivers the due e-mails, batch after batch, until none is due or the pass has run for
/// [`PASS`] (the timer fires every minute; a burst of confirmations drains in one pass instead of
/// one batch a minute); without a SendGrid key it leaves them pending.
pub async fn deliver_due(state: &AppState) -> Result<Delivery> {
    let Some(sendgrid) = &state.config.mail.sendgrid else {
        return Ok(Delivery::default());
    };
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .unwrap_or_default();
    let started = std::time::Instant::now();
    let mut delivery = Delivery::default();
    loop {
        let leased = lease(state).await?;
        let full = leased.len() as i64 == BATCH;
        let outcomes: Vec<Result<OutboxStatus>> = futures::stream::iter(leased)
            .map(|email| deliver_one(state, &client, sendgrid, email))
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        for outcome in outcomes {
            match outcome? {
                OutboxStatus::Sent => delivery.sent += 1,
                OutboxStatus::Pending => delivery.retrying += 1,
                OutboxStatus::Failed => delivery.failed += 1,
            }
        }
        if !full || started.elapsed() > PASS {
            return Ok(delivery);
        }
    }
}

/// Leases up to [`BATCH`] due e-mails: overlapping passes (other instances) never take the same.
async fn lease(state: &AppState) -> Result<Vec<Leased>> {
    Ok(sqlx::query_as(
        r#"UPDATE email_outbox SET next_attempt_at = now() + $2
           WHERE email_outbox_id IN (
               SELECT email_outbox_id FROM email_outbox
               WHERE status = 'pending' AND next_attempt_at <= now()
               ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
           RETURNING email_outbox_id, recipient, subject, body_text, category, attempts, next_attempt_at"#,
    )
    .bind(BATCH)
    .bind(LEASE)
    .fetch_all(&state.db)
    .await?)
}

/// Sends one leased e-mail and records the result under its lease; the state it is left in.
async fn deliver_one(
    state: &AppState,
    client: &reqwest::Client,
    sendgrid: &SendGridConfig,
    email: Leased,
) -> Result<OutboxStatus> {
    let outcome = if is_reserved_invalid(&email.recipient) {
        Outcome::Permanent("not sent: the address is under the reserved .invalid domain".into())
    } else {
        send(client, sendgrid, &state.config.mail.from, &email).await
    };
    // A retry stays pending, due again after its backoff.
    let (status, error, retry_after) = match outcome {
        Outcome::Sent => (OutboxStatus::Sent, None, None),
        Outcome::Retry(error) if email.attempts + 1 < MAX_ATTEMPTS => (
            OutboxStatus::Pending,
            Some(error),
            Some(backoff(email.attempts)),
        ),
        Outcome::Retry(error) | Outcome::Permanent(error) => {
            (OutboxStatus::Failed, Some(error), None)
        }
    };
    // Guarded by the lease, so a run that outlived its lease changes nothing. A sent e-mail
    // whose result cannot be written (the database restarting) would be sent again once its
    // lease ran out, so the write is retried while the lease holds.
    let recording = std::time::Instant::now();
    loop {
        let recorded = sqlx::query(
            r#"UPDATE email_outbox
               SET status = $3,
                   sent_at = CASE WHEN $3 = 'sent' THEN now() ELSE sent_at END,
                   attempts = attempts + 1,
                   last_error = $4,
                   next_attempt_at = coalesce(now() + $5, next_attempt_at)
               WHERE email_outbox_id = $1 AND status = 'pending' AND next_attempt_at = $2"#,
        )
        .bind(email.email_outbox_id)
        .bind(email.next_attempt_at)
        .bind(status)
        .bind(&error)
        .bind(retry_after)
        .execute(&state.db)
        .await;
        match recorded {
            Ok(_) => return Ok(status),
            Err(failure) if recording.elapsed() < RECORD_FOR => {
                tracing::warn!(error = %failure, "could not record an e-mail's delivery; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(failure) => return Err(failure.into()),
        }
    }
}

/// Records how many e-mails wait and how long the oldest has (the outbox metrics).
pub async fn record_backlog(state: &AppState) -> Result<()> {
    let (pending, oldest_age): (i64, Option<f64>) = sqlx::query_as(
        r#"SELECT count(*), extract(epoch FROM now() - min(created_at))::float8
           FROM email_outbox WHERE status = 'pending'"#,
    )
    .fetch_one(&state.db)
    .await?;
    metrics().outbox(
        u64::try_from(pending).unwrap_or_default(),
        Duration::try_from_secs_f64(oldest_age.unwrap_or_default()).unwrap_or_default(),
    );
    Ok(())
}

/// Whether `recipient` is under `.invalid`, which no mail server can ever receive for.
fn is_reserved_invalid(recipient: &str) -> bool {
    recipient
        .rsplit_once('.')
        .is_some_and(|(_, tld)| tld.eq_ignore_ascii_case("invalid"))
}

/// 1, 2, 4, … minutes, capped at an hour.
fn backoff(attempts: i32) -> chrono::Duration {
    chrono::Duration::minutes((1i64 << attempts.clamp(0, 6)).min(60))
}

async fn send(
    client: &reqwest::Client,
    sendgrid: &SendGridConfig,
    from: &str,
    email: &Leased,
) -> Outcome {
    let body = json!({
        "personalizations": [{"to": [{"email": email.recipient}]}],
        "from": {"email": from, "name": "CodeConnect"},
        "subject": email.subject,
        "content": [{"type": "text/plain", "value": email.body_text}],
        "categories": [email.category],
        "custom_args": {"outbox_id": email.email_outbox_id.to_string()},
    });
    let request = client
        .post(format!("{}/v3/mail/send", sendgrid.base_url))
        .bearer_auth(sendgrid.api_key.expose_secret())
        .json(&body);
    let response = outbound::send(request, "SendGrid").await;
    match response {
        Ok(response) if response.status().is_success() => Outcome::Sent,
        Ok(response)
            if response.status().as_u16() == 429 || response.status().is_server_error() =>
        {
            Outcome::Retry(format!("SendGrid answered {}", response.status()))
        }
        Ok(response) => Outcome::Permanent(format!("SendGrid answered {}", response.status())),
        Err(error) => Outcome::Retry(format!("SendGrid unreachable: {}", error.without_url())),
    }
}

#[cfg(test)]
mod tests {
    use super::{backoff, is_reserved_invalid};

    #[test]
    fn only_the_invalid_top_level_domain_is_reserved() {
        assert!(is_reserved_invalid("s-1@smoke.codeconnect.INVALID"));
        assert!(!is_reserved_invalid("invalid@example.com"));
        assert!(!is_reserved_invalid("a@invalid.example.org"));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let minutes: Vec<i64> = (0..9).map(|n| backoff(n).num_minutes()).collect();
        assert_eq!(minutes, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}

//! What must hold after a fault run, read from the database and the SendGrid mock rather than
//! from the HTTP answers.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::verdict;
use super::workload::Outcome;
use crate::seed::LoadData;
use crate::sendgrid::SendGrid;

/// How long to wait for the outbox timer (every minute, on every instance) to send the run's
/// e-mails: a pass cut off by an outage leaves its batch leased for two minutes.
const OUTBOX_DRAIN: Duration = Duration::from_secs(200);

pub async fn check(data: &LoadData, outcome: &Outcome, sendgrid: &SendGrid) -> Vec<String> {
    let mut db = match PgConnection::connect(&data.direct_url).await {
        Ok(db) => db,
        Err(error) => return vec![format!("FAILED: could not read the database: {error}")],
    };
    let mut checks = Vec::new();
    match bookings(&mut db, outcome).await {
        Ok(found) => checks.extend(found),
        Err(error) => checks.push(format!("FAILED: booking checks could not run: {error}")),
    }
    match chat(&mut db, outcome).await {
        Ok(found) => checks.extend(found),
        Err(error) => checks.push(format!("FAILED: chat checks could not run: {error}")),
    }
    match emails(&mut db, outcome, sendgrid).await {
        Ok(found) => checks.extend(found),
        Err(error) => checks.push(format!("FAILED: e-mail checks could not run: {error}")),
    }
    checks
}

async fn bookings(db: &mut PgConnection, outcome: &Outcome) -> sqlx::Result<Vec<String>> {
    let overlapping = crate::phases::booking::overlapping_pairs(&mut *db).await?;
    let students: Vec<Uuid> = outcome
        .bookings
        .iter()
        .map(|record| record.student_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let stored: Vec<(Uuid, Uuid, Option<String>)> = sqlx::query_as(
        "SELECT booking_id, student_id, idempotency_key FROM bookings
          WHERE student_id = ANY($1) AND created_at >= $2",
    )
    .bind(&students)
    .bind(outcome.started_at)
    .fetch_all(&mut *db)
    .await?;
    let mut rows_per_key: HashMap<(Uuid, &str), Vec<Uuid>> = HashMap::new();
    for (booking_id, student_id, key) in &stored {
        rows_per_key
            .entry((*student_id, key.as_deref().unwrap_or_default()))
            .or_default()
            .push(*booking_id);
    }
    let returned: HashSet<Uuid> = outcome
        .bookings
        .iter()
        .filter_map(|record| record.booking_id)
        .collect();
    let answered_201 = returned.len();
    let mismatched = outcome
        .bookings
        .iter()
        .filter(|record| {
            let rows = rows_per_key
                .get(&(record.student_id, record.key.as_str()))
                .map_or(&[][..], Vec::as_slice);
            match record.booking_id {
                Some(id) => rows != [id],
                None => !rows.is_empty(),
            }
        })
        .count();
    let unreturned = stored
        .iter()
        .filter(|(booking_id, _, _)| !returned.contains(booking_id))
        .count();
    let ledger = ledger(&mut *db, &stored, outcome).await?;
    Ok(vec![
        verdict(
            overlapping == 0,
            format!("{overlapping} pairs of active bookings overlap for one mentor or student"),
        ),
        verdict(
            mismatched == 0,
            format!(
                "{} booking requests: each 201 ({answered_201}) stored exactly once under its key, each refused one stored never ({mismatched} differ)",
                outcome.bookings.len()
            ),
        ),
        verdict(
            unreturned == 0,
            format!(
                "{} bookings stored in the run, {unreturned} never returned to their student by the first answer or a retry",
                stored.len()
            ),
        ),
        ledger,
    ])
}

/// The ledger against the bookings: each class the generator paid for (verified and
/// webhooked, each possibly retried) confirmed with exactly one succeeded payment of its order's
/// amount; every other booking of the run (the free demos, classes left unpaid) without one; no
/// refund (no hold lapsed within a run); and nowhere a succeeded payment on an unpaid booking.
async fn ledger(
    db: &mut PgConnection,
    stored: &[(Uuid, Uuid, Option<String>)],
    outcome: &Outcome,
) -> sqlx::Result<String> {
    let rows: Vec<(Uuid, String, i64, i64, i64)> = sqlx::query_as(
        r#"SELECT b.booking_id, b.status,
                  count(t.*) FILTER (WHERE t.kind = 'payment' AND t.status = 'succeeded'),
                  coalesce(sum(t.amount * 100) FILTER (WHERE t.kind = 'payment' AND t.status = 'succeeded'), 0)::bigint,
                  count(t.*) FILTER (WHERE t.kind = 'refund')
             FROM bookings b LEFT JOIN payment_transactions t USING (booking_id)
            WHERE b.booking_id = ANY($1)
            GROUP BY b.booking_id, b.status"#,
    )
    .bind(stored.iter().map(|(id, _, _)| *id).collect::<Vec<_>>())
    .fetch_all(&mut *db)
    .await?;
    let paid: HashMap<Uuid, i64> = outcome
        .payments
        .iter()
        .map(|payment| (payment.booking_id, payment.amount_minor))
        .collect();
    let mut wrong_paid = 0;
    let mut wrong_unpaid = 0;
    let mut refunds = 0;
    for (booking_id, status, payments, amount_minor, refunded) in &rows {
        refunds += refunded;
        match paid.get(booking_id) {
            Some(expected) => {
                if status != "confirmed" || *payments != 1 || amount_minor != expected {
                    wrong_paid += 1;
                }
            }
            None => {
                if *payments != 0 {
                    wrong_unpaid += 1;
                }
            }
        }
    }
    let unstored = paid
        .keys()
        .filter(|id| !rows.iter().any(|row| row.0 == **id))
        .count();
    let inconsistent: i64 = sqlx::query_scalar(
        r#"SELECT count(*) FROM payment_transactions t JOIN bookings b USING (booking_id)
            WHERE t.kind = 'payment' AND t.status = 'succeeded'
              AND b.status IN ('pending_payment', 'expired')"#,
    )
    .fetch_one(&mut *db)
    .await?;
    Ok(verdict(
        wrong_paid == 0 && unstored == 0 && wrong_unpaid == 0 && refunds == 0 && inconsistent == 0,
        format!(
            "ledger: {} classes paid (verified, then webhooked): {wrong_paid} not confirmed with exactly one payment of their order's amount, {unstored} missing; {wrong_unpaid} of the run's other bookings with a payment; {refunds} refunds; {inconsistent} succeeded payments on unpaid or expired bookings",
            paid.len()
        ),
    ))
}

async fn chat(db: &mut PgConnection, outcome: &Outcome) -> anyhow::Result<Vec<String>> {
    let bookings: Vec<Uuid> = outcome.mentor_tokens.keys().copied().collect();
    let stored: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
        "SELECT message_id, booking_id, client_message_id FROM chat_messages
          WHERE booking_id = ANY($1) AND created_at >= $2",
    )
    .bind(&bookings)
    .bind(outcome.started_at)
    .fetch_all(&mut *db)
    .await?;
    let mut per_client_id: HashMap<&str, Vec<Uuid>> = HashMap::new();
    for (message_id, _, client_id) in &stored {
        per_client_id
            .entry(client_id)
            .or_default()
            .push(*message_id);
    }
    let misstored = outcome
        .messages
        .iter()
        .filter(|message| {
            per_client_id
                .get(message.client_message_id.as_str())
                .map(Vec::as_slice)
                != Some(&[message.message_id][..])
        })
        .count();
    let posted: HashSet<&str> = outcome
        .messages
        .iter()
        .map(|message| message.client_message_id.as_str())
        .collect();
    let unanswered = per_client_id
        .keys()
        .filter(|id| !posted.contains(*id))
        .count();

    let mut received: HashMap<Uuid, u32> = HashMap::new();
    for listener in &outcome.listeners {
        for id in &listener.received {
            *received.entry(*id).or_default() += 1;
        }
    }
    let twice = received.values().filter(|count| **count > 1).count();
    let undelivered: Vec<&(Uuid, Uuid, String)> = stored
        .iter()
        .filter(|(message_id, _, _)| !received.contains_key(message_id))
        .collect();
    let mut unfetchable = 0;
    for (message_id, booking_id, _) in &undelivered {
        if !fetchable(outcome, *booking_id, *message_id).await {
            unfetchable += 1;
        }
    }
    let gaps: u64 = outcome.listeners.iter().map(|l| l.gaps).sum();
    let resumed: u64 = outcome.listeners.iter().map(|l| l.resumed).sum();
    let listener_errors: Vec<&String> = outcome.listeners.iter().flat_map(|l| &l.errors).collect();
    Ok(vec![
        verdict(
            misstored == 0 && unanswered == 0,
            format!(
                "{} chat messages stored: each answered one stored exactly once under its clientMessageId ({misstored} differ), none stored unanswered ({unanswered})",
                stored.len()
            ),
        ),
        verdict(
            unfetchable == 0 && twice == 0,
            format!(
                "{} delivered to the listening mentor, {} not pushed but fetched with GET …/messages, {unfetchable} neither; {twice} delivered twice",
                stored.len() - undelivered.len(),
                undelivered.len() - unfetchable
            ),
        ),
        verdict(
            gaps == 0 && listener_errors.is_empty(),
            format!(
                "listeners: {resumed} connections resumed, {gaps} sequence numbers missing, errors: {listener_errors:?}"
            ),
        ),
    ])
}

/// Whether the class's mentor finds the message in the chat's history.
async fn fetchable(outcome: &Outcome, booking_id: Uuid, message_id: Uuid) -> bool {
    let Some(token) = outcome.mentor_tokens.get(&booking_id) else {
        return false;
    };
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!(
            "{}/api/bookings/{booking_id}/messages?limit=100",
            outcome.base
        );
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let Ok(response) = outcome.client.get(url).bearer_auth(token).send().await else {
            return false;
        };
        let Ok(page) = response.json::<serde_json::Value>().await else {
            return false;
        };
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if items
            .iter()
            .any(|item| item["messageId"] == message_id.to_string().as_str())
        {
            return true;
        }
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return false,
        }
    }
}

async fn emails(
    db: &mut PgConnection,
    outcome: &Outcome,
    sendgrid: &SendGrid,
) -> sqlx::Result<Vec<String>> {
    let since = outcome.started_at;
    let started = std::time::Instant::now();
    let pending = loop {
        let pending: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM email_outbox WHERE created_at >= $1 AND status = 'pending'",
        )
        .bind(since)
        .fetch_one(&mut *db)
        .await?;
        if pending == 0 || started.elapsed() > OUTBOX_DRAIN {
            break pending;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let rows: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT email_outbox_id, status FROM email_outbox WHERE created_at >= $1")
            .bind(since)
            .fetch_all(&mut *db)
            .await?;
    let deliveries = sendgrid.deliveries();
    let ids: HashSet<String> = rows.iter().map(|(id, _)| id.to_string()).collect();
    let not_once = rows
        .iter()
        .filter(|(id, status)| {
            status == "sent" && deliveries.get(&id.to_string()).copied() != Some(1)
        })
        .count();
    let failed = rows.iter().filter(|(_, status)| status == "failed").count();
    let twice = deliveries.values().filter(|count| **count > 1).count();
    let unknown = deliveries.keys().filter(|id| !ids.contains(*id)).count();
    Ok(vec![verdict(
        pending == 0 && not_once == 0 && failed == 0 && twice == 0,
        format!(
            "{} e-mails queued in the run: {} sent, {pending} still pending after the outbox drained, {failed} failed; {not_once} sent rows not delivered exactly once, {twice} delivered twice by SendGrid's mock ({unknown} deliveries from earlier runs)",
            rows.len(),
            rows.len() - pending as usize - failed
        ),
    )])
}

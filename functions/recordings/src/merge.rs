//! The `recordings` timer (every 5 minutes): commits the parts of classes that ended at least 20
//! minutes ago, blocks of the recording's blob, in part order (Put Block List: nothing is copied
//! or downloaded), checks that the result is WebM, and deletes recordings 6 months after their
//! class.
//!
//! A merge is claimed by inserting (or re-leasing) the booking's `recordings` row, so
//! overlapping runs never merge one class twice; a failed merge keeps its row with the error and
//! is retried with backoff once its lease runs out (committing again is harmless: each block is
//! taken in its latest upload, committed or not). A recording that is not WebM is deleted and
//! marked `failed`, for good.

use domain::uploads::WEBM;
use platform::invocation::{TimerFunction, TimerInfo};
use platform::{AppState, Result};
use uuid::Uuid;

use crate::parts::block_id;
use domain::uploads::recording_blob_name;

pub const TIMER: TimerFunction = TimerFunction {
    name: "recordings",
    run: |state, info| Box::pin(run(state, info)),
};

/// How a claimed recording (`merging`, which the claim's SQL writes) ends: its
/// `recordings.status` once committed.
#[derive(Debug, Clone, Copy, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
enum Finished {
    Ready,
    /// Not WebM: deleted, not retried.
    Failed,
}

/// Merges per run; the rest wait for the next run.
const BATCH: i64 = 20;

async fn run(state: AppState, info: TimerInfo) -> Result<Vec<String>> {
    let claimed = claim(&state).await?;
    let mut merged = 0;
    let mut logs = Vec::new();
    for (recording_id, booking_id) in claimed {
        match merge(&state, recording_id, booking_id).await {
            Ok(()) => merged += 1,
            Err(error) => {
                let error = error.to_string();
                tracing::warn!(%booking_id, error, "recording merge failed; will retry");
                record_failure(&state, recording_id, &error).await?;
                logs.push(format!("merge of booking {booking_id} failed; will retry"));
            }
        }
    }
    let expired = expire(&state).await?;
    logs.insert(
        0,
        format!("merged {merged} recordings, deleted {expired} expired"),
    );
    if info.is_past_due {
        logs.push("ran late (past due); caught up".into());
    }
    Ok(logs)
}

/// Claims classes ready to merge: ended 20+ minutes ago, with parts, and neither merged nor
/// leased by another run. Returns `(recording_id, booking_id)` pairs.
async fn claim(state: &AppState) -> Result<Vec<(Uuid, Uuid)>> {
    Ok(sqlx::query_as(
        r#"INSERT INTO recordings (recording_id, booking_id, status, lease_until)
           SELECT gen_random_uuid(), b.booking_id, 'merging', now() + interval '15 minutes'
           FROM bookings b
           WHERE b.ends_at <= now() - interval '20 minutes'
             AND EXISTS (SELECT 1 FROM recording_parts p WHERE p.booking_id = b.booking_id)
             AND NOT EXISTS (
                 SELECT 1 FROM recordings r WHERE r.booking_id = b.booking_id
                   AND (r.status = 'ready' OR r.lease_until > now()))
           ORDER BY b.ends_at
           LIMIT $1
           ON CONFLICT (booking_id) DO UPDATE
           SET lease_until = EXCLUDED.lease_until, attempts = recordings.attempts + 1
           WHERE recordings.status = 'merging' AND recordings.lease_until <= now()
           RETURNING recording_id, booking_id"#,
    )
    .bind(BATCH)
    .fetch_all(&state.db)
    .await?)
}

async fn merge(state: &AppState, recording_id: Uuid, booking_id: Uuid) -> Result<()> {
    let container = &state.config.blob.recordings_container;
    let name = recording_blob_name(booking_id);
    let numbers: Vec<i32> = sqlx::query_scalar(
        "SELECT part_number FROM recording_parts WHERE booking_id = $1 ORDER BY part_number",
    )
    .bind(booking_id)
    .fetch_all(&state.db)
    .await?;
    let ids: Vec<_> = numbers.iter().map(|&number| block_id(number)).collect();
    state
        .blobs
        .commit_blocks(container, &name, &ids, WEBM.content_type)
        .await?;
    let head = state.blobs.head(container, &name, 4).await?;
    let (status, blob_name, size) = if (WEBM.matches)(&head) {
        let size = state
            .blobs
            .properties(container, &name)
            .await?
            .map_or(0, |properties| properties.size);
        (
            Finished::Ready,
            Some(name),
            Some(i64::try_from(size).unwrap_or(i64::MAX)),
        )
    } else {
        tracing::warn!(%booking_id, "the committed recording is not WebM; deleted");
        state.blobs.delete(container, &name).await?;
        (Finished::Failed, None, None)
    };

    let mut transaction = state.db.begin().await?;
    sqlx::query(
        r#"UPDATE recordings
           SET status = $2, blob_name = $3, size_bytes = $4, part_count = $5,
               ready_at = CASE WHEN $2 = 'ready' THEN now() END, lease_until = NULL,
               last_error = CASE WHEN $2 = 'failed' THEN 'the recording is not WebM' END
           WHERE recording_id = $1"#,
    )
    .bind(recording_id)
    .bind(status)
    .bind(blob_name)
    .bind(size)
    .bind(i32::try_from(numbers.len()).unwrap_or(i32::MAX))
    .execute(&mut *transaction)
    .await?;
    sqlx::query("DELETE FROM recording_parts WHERE booking_id = $1 AND part_number = ANY($2)")
        .bind(booking_id)
        .bind(&numbers)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(())
}

/// Keeps the error and retries after a backoff that grows with the attempts (5 minutes each,
/// at most an hour).
async fn record_failure(state: &AppState, recording_id: Uuid, error: &str) -> Result<()> {
    sqlx::query(
        r#"UPDATE recordings
           SET last_error = left($2, 2000),
               lease_until = now() + least(attempts, 12) * interval '5 minutes'
           WHERE recording_id = $1"#,
    )
    .bind(recording_id)
    .bind(error)
    .execute(&state.db)
    .await?;
    Ok(())
}

/// Deletes recordings (blob, then row) of classes more than 6 months ago.
async fn expire(state: &AppState) -> Result<usize> {
    let container = &state.config.blob.recordings_container;
    let mut transaction = state.db.begin().await?;
    let expired: Vec<(Uuid, String)> = sqlx::query_as(
        r#"SELECT r.recording_id, r.blob_name
           FROM recordings r JOIN bookings b USING (booking_id)
           WHERE r.status = 'ready' AND b.scheduled_at < now() - interval '6 months'
           ORDER BY b.scheduled_at
           LIMIT 100
           FOR UPDATE OF r SKIP LOCKED"#,
    )
    .fetch_all(&mut *transaction)
    .await?;
    for (_, blob_name) in &expired {
        state.blobs.delete(container, blob_name).await?;
    }
    let ids: Vec<Uuid> = expired.iter().map(|(id, _)| *id).collect();
    sqlx::query("DELETE FROM recordings WHERE recording_id = ANY($1)")
        .bind(&ids)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(expired.len())
}

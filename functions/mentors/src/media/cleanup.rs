//! The `media-uploads` timer (hourly): deletes the blobs and rows of media uploads begun but
//! never completed, a day after their write URL expired (a client may still be sending when it
//! expires, and may complete the upload after that).

use platform::invocation::{TimerFunction, TimerInfo};
use platform::{AppState, Result};
use uuid::Uuid;

pub const TIMER: TimerFunction = TimerFunction {
    name: "media-uploads",
    run: |state, info| Box::pin(run(state, info)),
};

/// Uploads swept per run; the rest wait for the next run.
const BATCH: i64 = 500;

async fn run(state: AppState, info: TimerInfo) -> Result<Vec<String>> {
    let container = &state.config.blob.media_container;
    let mut transaction = state.db.begin().await?;
    let abandoned: Vec<(Uuid, String)> = sqlx::query_as(
        r#"SELECT upload_id, blob_name FROM media_uploads
           WHERE expires_at < now() - interval '1 day'
           ORDER BY expires_at
           LIMIT $1
           FOR UPDATE SKIP LOCKED"#,
    )
    .bind(BATCH)
    .fetch_all(&mut *transaction)
    .await?;
    for (_, blob_name) in &abandoned {
        state.blobs.delete(container, blob_name).await?;
    }
    let ids: Vec<Uuid> = abandoned.iter().map(|(id, _)| *id).collect();
    sqlx::query("DELETE FROM media_uploads WHERE upload_id = ANY($1)")
        .bind(&ids)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    let mut logs = vec![format!("deleted {} abandoned media uploads", ids.len())];
    if info.is_past_due {
        logs.push("ran late (past due); caught up".into());
    }
    Ok(logs)
}

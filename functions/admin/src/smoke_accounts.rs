//! Removal of the smoke check's throwaway accounts (`handler smoke`): every account under
//! [`SMOKE_CHECK_DOMAIN`] and everything it left (bookings and what hangs off them, packages,
//! payments, chat, WebRTC reports, e-mails, media and recording blobs), in one transaction.
//! Nothing outside that domain is touched, so the call is safe on a production database.

use axum::extract::State;
use domain::uploads::recording_blob_name;
use domain::users::SMOKE_CHECK_DOMAIN;
use platform::auth::{self, AdminUser, session};
use platform::cache::{MENTOR_LIST, bookings_of};
use platform::{AppState, Json, Result};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

/// What the removal took away.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SmokeCleanup {
    accounts: usize,
    bookings: usize,
    emails: u64,
    blobs: usize,
}

/// Rows that reference a booking, a package or a person with no cascade, removed first, in
/// this order (`$1`: bookings, `$2`: packages, `$3`: people).
const DEPENDENT_ROWS: &[&str] = &[
    "DELETE FROM chat_messages WHERE booking_id = ANY($1) OR sender_id = ANY($3)",
    "DELETE FROM chat_reads WHERE booking_id = ANY($1) OR user_id = ANY($3)",
    "DELETE FROM notifications WHERE booking_id = ANY($1)",
    "DELETE FROM payment_transactions WHERE booking_id = ANY($1) OR package_id = ANY($2) OR mentor_id = ANY($3)
        OR payment_order_id IN (SELECT payment_order_id FROM payment_orders
                                WHERE booking_id = ANY($1) OR package_id = ANY($2) OR student_id = ANY($3))",
    "DELETE FROM payment_orders WHERE booking_id = ANY($1) OR package_id = ANY($2) OR student_id = ANY($3)",
    "DELETE FROM recording_parts WHERE booking_id = ANY($1)",
    "DELETE FROM recordings WHERE booking_id = ANY($1)",
    "DELETE FROM reviews WHERE booking_id = ANY($1) OR student_id = ANY($3) OR mentor_id = ANY($3)",
    "DELETE FROM video_joins WHERE booking_id = ANY($1) OR user_id = ANY($3)",
    "DELETE FROM webrtc_stats WHERE booking_id = ANY($1) OR user_id = ANY($3)",
    "DELETE FROM webrtc_events WHERE booking_id = ANY($1) OR user_id = ANY($3)",
    "DELETE FROM bookings WHERE booking_id = ANY($1)",
    "DELETE FROM packages WHERE package_id = ANY($2)",
];

/// Remove the smoke check's accounts
///
/// Admin only. Deletes every account under `smoke.codeconnect.invalid` (the throwaway accounts
/// of `handler smoke`) and everything they made: bookings, chat, notices, payments, e-mails,
/// media rows and their blobs. Nothing outside that domain is touched.
#[utoipa::path(
    delete, path = "/admin/smoke-accounts", tag = "admin",
    security(("session" = [])),
    responses(
        (status = 200, description = "Every smoke-check account and its data removed", body = SmokeCleanup),
        (status = 403, description = "FORBIDDEN_ROLE")
    )
)]
pub async fn remove_smoke_accounts(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Json<SmokeCleanup>> {
    let mut transaction = state.db.begin().await?;
    let people: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT user_id, email FROM users WHERE email LIKE '%@' || $1 ORDER BY user_id FOR UPDATE",
    )
    .bind(SMOKE_CHECK_DOMAIN)
    .fetch_all(&mut *transaction)
    .await?;
    let ids: Vec<Uuid> = people.iter().map(|(id, _)| *id).collect();
    let bookings: Vec<Uuid> = sqlx::query_scalar(
        "SELECT booking_id FROM bookings WHERE student_id = ANY($1) OR mentor_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut *transaction)
    .await?;
    let packages: Vec<Uuid> = sqlx::query_scalar(
        "SELECT package_id FROM packages WHERE student_id = ANY($1) OR mentor_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut *transaction)
    .await?;
    let blobs = blobs_of(&state, &mut transaction, &ids, &bookings).await?;
    for statement in DEPENDENT_ROWS {
        sqlx::query(statement)
            .bind(&bookings)
            .bind(&packages)
            .bind(&ids)
            .execute(&mut *transaction)
            .await?;
    }
    let emails = sqlx::query("DELETE FROM email_outbox WHERE recipient LIKE '%@' || $1")
        .bind(SMOKE_CHECK_DOMAIN)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
    let mut revoked = Vec::new();
    for id in &ids {
        revoked.extend(session::revoke_all(&mut transaction, *id, None).await?);
    }
    // The rest (profiles, subjects, slots, media rows, sessions, notices) cascades.
    sqlx::query("DELETE FROM users WHERE user_id = ANY($1)")
        .bind(&ids)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;

    session::forget(&state, revoked).await;
    let emails_cached: Vec<String> = people
        .iter()
        .map(|(_, email)| auth::user_by_email_key(email))
        .collect();
    state
        .cache
        .invalidate(&emails_cached, auth::USER_BY_EMAIL_TTL)
        .await;
    for id in &ids {
        state.cache.bump_generation(&bookings_of(*id)).await;
    }
    state.cache.bump_generation(MENTOR_LIST).await;
    for (container, name) in &blobs {
        state.blobs.delete(container, name).await?;
    }
    Ok(Json(SmokeCleanup {
        accounts: ids.len(),
        bookings: bookings.len(),
        emails,
        blobs: blobs.len(),
    }))
}

/// The blobs the accounts own: mentor media (stored or begun) and class recordings, as
/// `(container, name)`.
async fn blobs_of(
    state: &AppState,
    connection: &mut PgConnection,
    people: &[Uuid],
    bookings: &[Uuid],
) -> Result<Vec<(String, String)>> {
    let media: Vec<String> = sqlx::query_scalar(
        r#"SELECT blob_name FROM mentor_media WHERE mentor_id = ANY($1)
           UNION SELECT blob_name FROM media_uploads WHERE mentor_id = ANY($1)"#,
    )
    .bind(people)
    .fetch_all(&mut *connection)
    .await?;
    // A class's parts are blocks of its one recording blob.
    let recorded: Vec<Uuid> = sqlx::query_scalar(
        r#"SELECT booking_id FROM recording_parts WHERE booking_id = ANY($1)
           UNION SELECT booking_id FROM recordings WHERE booking_id = ANY($1)"#,
    )
    .bind(bookings)
    .fetch_all(&mut *connection)
    .await?;
    let recordings = recorded.into_iter().map(recording_blob_name);
    let containers = &state.config.blob;
    let in_container = |container: &String| {
        let container = container.clone();
        move |name| (container.clone(), name)
    };
    Ok(media
        .into_iter()
        .map(in_container(&containers.media_container))
        .chain(recordings.map(in_container(&containers.recordings_container)))
        .collect())
}

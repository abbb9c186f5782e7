//! Sessions: one live session per user, 30 days idle / 90 days absolute, refreshed (slid) at most
//! once an hour. The session behind a token is cached; revocation leaves a tombstone in the cache
//! (see `cache`), so a revoked token stops working on every instance at once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::Role;
use super::token;
use crate::error::{Error, Result};
use crate::state::AppState;

pub const COOKIE_NAME: &str = "cc_session";
pub const IDLE_TIMEOUT: chrono::Duration = chrono::Duration::days(30);
pub const ABSOLUTE_LIFETIME: chrono::Duration = chrono::Duration::days(90);
pub const ENROLLMENT_LIFETIME: chrono::Duration = chrono::Duration::minutes(15);
/// How often `last_seen_at` is written; also the longest a cached session lives.
const SLIDE_EVERY: chrono::Duration = chrono::Duration::hours(1);
const CACHE_TTL: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// Authenticates requests.
    Session,
    /// Only lets a mentor who has not enrolled 2FA yet set it up.
    TotpEnrollment,
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct Session {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub role: Role,
    pub kind: SessionKind,
    pub expires_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// A freshly issued token; the only moment the raw token exists on the server.
#[derive(Debug)]
pub struct IssuedToken {
    pub token: String,
    pub session: Session,
}

/// Issues a session of `kind` for the user. A full session revokes every other session of the
/// user (single session); an enrollment token revokes only earlier enrollment tokens.
pub async fn issue(
    state: &AppState,
    user_id: Uuid,
    role: Role,
    kind: SessionKind,
) -> Result<IssuedToken> {
    let (token, token_hash) = token::generate();
    let now = Utc::now();
    let lifetime = match kind {
        SessionKind::Session => ABSOLUTE_LIFETIME,
        SessionKind::TotpEnrollment => ENROLLMENT_LIFETIME,
    };
    let session = Session {
        session_id: Uuid::new_v4(),
        user_id,
        role,
        kind,
        expires_at: now + lifetime,
        last_seen_at: now,
    };
    // Both statements run in one round trip; the data-modifying CTE always runs to completion.
    let revoked: Vec<Vec<u8>> = sqlx::query_scalar(
        r#"WITH revoked AS (
               UPDATE sessions SET revoked_at = $6
               WHERE user_id = $2 AND revoked_at IS NULL AND ($4 = 'session' OR kind = $4)
               RETURNING token_hash
           ), created AS (
               INSERT INTO sessions (session_id, user_id, token_hash, kind, created_at, last_seen_at, expires_at)
               VALUES ($1, $2, $3, $4, $6, $6, $5)
           )
           SELECT token_hash FROM revoked"#,
    )
    .bind(session.session_id)
    .bind(user_id)
    .bind(&token_hash)
    .bind(kind)
    .bind(session.expires_at)
    .bind(now)
    .fetch_all(&state.db)
    .await?;
    forget(state, revoked).await;
    if kind == SessionKind::Session {
        state
            .cache
            .set(
                &token::session_cache_key(&token_hash),
                &session,
                cache_ttl(&session, now),
            )
            .await;
    }
    Ok(IssuedToken { token, session })
}

/// The live session behind `token`, if it is of one of the `accepted` kinds.
pub async fn resolve(state: &AppState, token: &str, accepted: &[SessionKind]) -> Result<Session> {
    let token_hash = token::hash(token);
    let key = token::session_cache_key(&token_hash);
    if let Some(session) = state.cache.get::<Session>(&key).await
        && accepted.contains(&session.kind)
        && session.expires_at > Utc::now()
    {
        return Ok(session);
    }
    let session = load(state, &token_hash, accepted).await?;
    if session.kind == SessionKind::Session {
        state
            .cache
            .fill(&key, &session, cache_ttl(&session, Utc::now()))
            .await;
    }
    Ok(session)
}

/// Revokes the user's live sessions except `keep`, returning what to [`forget`] after commit.
pub async fn revoke_all(
    connection: &mut PgConnection,
    user_id: Uuid,
    keep: Option<Uuid>,
) -> Result<Vec<Vec<u8>>> {
    Ok(sqlx::query_scalar(
        r#"UPDATE sessions SET revoked_at = now()
           WHERE user_id = $1 AND revoked_at IS NULL AND session_id IS DISTINCT FROM $2
           RETURNING token_hash"#,
    )
    .bind(user_id)
    .bind(keep)
    .fetch_all(connection)
    .await?)
}

/// Revokes one session, returning what to [`forget`] after commit.
pub async fn revoke(connection: &mut PgConnection, session_id: Uuid) -> Result<Vec<Vec<u8>>> {
    Ok(sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = now() WHERE session_id = $1 AND revoked_at IS NULL RETURNING token_hash",
    )
    .bind(session_id)
    .fetch_all(connection)
    .await?)
}

/// Drops revoked sessions from every instance's view (call after the revoking commit).
pub async fn forget(state: &AppState, token_hashes: Vec<Vec<u8>>) {
    if token_hashes.is_empty() {
        return;
    }
    let keys: Vec<String> = token_hashes
        .iter()
        .map(|hash| token::session_cache_key(hash))
        .collect();
    state.cache.invalidate(&keys, CACHE_TTL).await;
}

#[derive(sqlx::FromRow)]
struct StoredSession {
    #[sqlx(flatten)]
    session: Session,
    revoked_at: Option<DateTime<Utc>>,
    is_active: bool,
}

async fn load(state: &AppState, token_hash: &[u8], accepted: &[SessionKind]) -> Result<Session> {
    let stored: Option<StoredSession> = sqlx::query_as(
        r#"SELECT s.session_id, s.user_id, u.role, s.kind, s.expires_at, s.last_seen_at,
                  s.revoked_at, u.is_active
           FROM sessions s JOIN users u USING (user_id)
           WHERE s.token_hash = $1"#,
    )
    .bind(token_hash)
    .fetch_optional(&state.db)
    .await?;
    let now = Utc::now();
    let Some(stored) = stored.filter(|stored| accepted.contains(&stored.session.kind)) else {
        return Err(Error::unauthorized(
            "UNAUTHENTICATED",
            "Sign in to continue.",
        ));
    };
    if stored.revoked_at.is_some() {
        return Err(Error::unauthorized(
            "SESSION_REVOKED",
            "This session has ended (signed out, signed in elsewhere, or the password changed).",
        ));
    }
    if !stored.is_active {
        return Err(Error::forbidden(
            "ACCOUNT_INACTIVE",
            "This account is deactivated.",
        ));
    }
    let mut session = stored.session;
    if session.expires_at <= now || session.last_seen_at + IDLE_TIMEOUT <= now {
        return Err(Error::unauthorized(
            "SESSION_EXPIRED",
            "This session has expired; sign in again.",
        ));
    }
    if session.last_seen_at + SLIDE_EVERY <= now {
        sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE session_id = $1")
            .bind(session.session_id)
            .bind(now)
            .execute(&state.db)
            .await?;
        session.last_seen_at = now;
    }
    Ok(session)
}

/// A cached session lives until its next slide is due (so sliding happens on a cache miss) and
/// never past its absolute expiry.
fn cache_ttl(session: &Session, now: DateTime<Utc>) -> Duration {
    let until_slide = (session.last_seen_at + SLIDE_EVERY - now)
        .to_std()
        .unwrap_or_default();
    let until_expiry = (session.expires_at - now).to_std().unwrap_or_default();
    CACHE_TTL
        .min(until_slide)
        .min(until_expiry)
        .max(Duration::from_secs(1))
}

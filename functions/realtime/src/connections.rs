//! Client connections: `POST /api/realtime/negotiate` hands a signed-in user a Web PubSub URL
//! (joined to their personal group `user.{id}`, no other rights), and `/api/realtime/events` is
//! the hub's upstream event handler: the abuse-protection handshake (for our Web PubSub's host
//! only), then CloudEvents whose Entra bearer token must come from the service's identity.
//! Connect and disconnected events keep the table of whose connection is whose, and a
//! disconnect from a video class tells the class the participant left.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use azure_clients::entra::TokenError;
use azure_clients::pubsub::personal_group;
use chrono::{DateTime, Utc};
use platform::auth::CurrentUser;
use platform::{AppState, Error, Json, Result};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::video;

const CLIENT_URL_TTL: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Negotiated {
    /// WebSocket URL with its access token (`json.webpubsub.azure.v1` subprotocols).
    url: String,
    expires_at: DateTime<Utc>,
}

/// Connect to real time
///
/// A Web PubSub client URL with its access token, for the signed-in user (subprotocol
/// `json.webpubsub.azure.v1`). The connection then joins a class's chat or video group through
/// the routes that check participation.
#[utoipa::path(
    post, path = "/realtime/negotiate", tag = "realtime",
    security(("session" = [])),
    responses((status = 200, body = Negotiated), (status = 401, description = "UNAUTHENTICATED"), (status = 503, description = "REALTIME_UNAVAILABLE"))
)]
pub async fn negotiate(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Negotiated>> {
    if !state.pubsub.is_enabled() {
        return Err(Error::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "REALTIME_UNAVAILABLE",
            "Real-time updates are not configured.",
        ));
    }
    let url = state
        .pubsub
        .client_url(
            &user.user_id.to_string(),
            &[],
            &[personal_group(user.user_id)],
            CLIENT_URL_TTL,
        )
        .await?;
    Ok(Json(Negotiated {
        url,
        expires_at: Utc::now() + CLIENT_URL_TTL,
    }))
}

/// Web PubSub abuse protection
///
/// For Web PubSub only: the handshake before it sends events. Only our own service's host is
/// allowed, so nobody can point another service's events at this app.
#[utoipa::path(
    options, path = "/realtime/events", tag = "realtime",
    params(("WebHook-Request-Origin" = String, Header, description = "The Web PubSub host asking to send events")),
    responses(
        (status = 200, description = "WebHook-Allowed-Origin echoes WebHook-Request-Origin"),
        (status = 400, description = "MISSING_ORIGIN"),
        (status = 403, description = "ORIGIN_NOT_ALLOWED")
    )
)]
pub async fn allow_events(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    let origin = headers
        .get("webhook-request-origin")
        .cloned()
        .ok_or_else(|| {
            Error::bad_request("MISSING_ORIGIN", "WebHook-Request-Origin is required.")
        })?;
    if !state
        .pubsub
        .is_our_service(origin.to_str().unwrap_or_default())
    {
        return Err(Error::forbidden(
            "ORIGIN_NOT_ALLOWED",
            "Events are accepted only from this app's Web PubSub.",
        ));
    }
    Ok((StatusCode::OK, [("webhook-allowed-origin", origin)]).into_response())
}

/// Web PubSub events
///
/// For Web PubSub only, with its managed identity's Entra token: connect, connected and
/// disconnected events, which record who owns a connection and announce presence in class
/// groups.
#[utoipa::path(
    post, path = "/realtime/events", tag = "realtime",
    responses(
        (status = 204, description = "Handled"),
        (status = 400, description = "INVALID_EVENT"),
        (status = 401, description = "INVALID_EVENT_TOKEN, ANONYMOUS_CONNECTION"),
        (status = 503, description = "EVENT_KEYS_UNAVAILABLE")
    )
)]
pub async fn handle_event(State(state): State<AppState>, headers: HeaderMap) -> Result<StatusCode> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value: &HeaderValue| value.to_str().ok())
            .unwrap_or_default()
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    match state.pubsub.authenticate_event(authorization).await {
        Ok(_) => {}
        Err(TokenError::KeysUnavailable(error)) => {
            tracing::error!(
                error = format!("{error:#}"),
                "cannot check Web PubSub's event token"
            );
            return Err(Error::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "EVENT_KEYS_UNAVAILABLE",
                "The token issuer's keys could not be fetched; try again.",
            ));
        }
        Err(refused) => {
            tracing::warn!(reason = %refused, "upstream event refused");
            return Err(Error::unauthorized(
                "INVALID_EVENT_TOKEN",
                "The event does not carry a token from our Web PubSub.",
            ));
        }
    }
    let connection_id = header("ce-connectionid");
    if connection_id.is_empty() {
        return Err(Error::bad_request(
            "INVALID_EVENT",
            "ce-connectionId is required.",
        ));
    }
    let user_id = header("ce-userid").parse::<Uuid>().ok();
    match header("ce-type") {
        // `connect` is answered before the client hears it is connected, so the connection is
        // recorded here: `connected` is sent after, and may arrive after the client has already
        // asked to join a class with it.
        "azure.webpubsub.sys.connect" => {
            // Tokens come from negotiate and always name the user.
            let Some(user_id) = user_id else {
                return Err(Error::unauthorized(
                    "ANONYMOUS_CONNECTION",
                    "Connect with a URL from /api/realtime/negotiate.",
                ));
            };
            sqlx::query(
                "INSERT INTO realtime_connections (connection_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(connection_id)
            .bind(user_id)
            .execute(&state.db)
            .await?;
        }
        "azure.webpubsub.sys.connected" => {
            // Recorded at connect already.
        }
        "azure.webpubsub.sys.disconnected" => {
            sqlx::query("DELETE FROM realtime_connections WHERE connection_id = $1")
                .bind(connection_id)
                .execute(&state.db)
                .await?;
            video::left(&state, connection_id).await?;
        }
        kind if kind.starts_with("azure.webpubsub.user.") => {
            // Clients talk through groups and the HTTP API; no user events are handled.
        }
        _ => {
            return Err(Error::bad_request("INVALID_EVENT", "Unknown ce-type."));
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Whether `connection_id` is a live connection of `user_id` (from the connect events).
pub async fn owns(state: &AppState, user_id: Uuid, connection_id: &str) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM realtime_connections WHERE connection_id = $1 AND user_id = $2)",
    )
    .bind(connection_id)
    .bind(user_id)
    .fetch_one(&state.db)
    .await?)
}

/// Error for a connection id that is not the caller's.
pub fn not_yours() -> Error {
    Error::forbidden(
        "CONNECTION_NOT_YOURS",
        "That connection is not one of yours (or it has closed).",
    )
}

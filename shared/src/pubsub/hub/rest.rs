//! The data-plane REST API under `/api/hubs/{hub}/…` (azure-contracts §2.1), authorised, as the
//! service is with local auth off, by an Entra bearer token for `https://webpubsub.azure.com`
//! issued to a permitted principal (the app's managed identity).

use std::sync::Arc;

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use data_encoding::BASE64;
use serde_json::{Value, json};

use super::roles::Action;
use super::{Hub, client};
use crate::entra::TokenError;

const MAX_BODY: usize = 1024 * 1024;

pub async fn health() -> StatusCode {
    StatusCode::OK
}

pub async fn dispatch(State(hub): State<Arc<Hub>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let verdict = match &hub.rest_callers {
        Some(callers) => callers.validate_header(authorization).await.map(drop),
        None => Err(TokenError::WrongPrincipal),
    };
    if let Err(refused) = verdict {
        tracing::warn!(error = %refused, "hub REST call refused");
        return error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Invalid or missing token.",
        );
    }
    let path = parts.uri.path().to_owned();
    let segments: Vec<String> = path
        .split('/')
        .skip(4) // "", "api", "hubs", "{hub}"
        .map(percent_decode)
        .collect();
    let hub_name = path
        .split('/')
        .nth(3)
        .map(percent_decode)
        .unwrap_or_default();
    if !hub_name.eq_ignore_ascii_case(&hub.name) {
        return error(StatusCode::NOT_FOUND, "NotFound", "No such hub.");
    }
    let query = query_pairs(parts.uri.query());
    let one = |name: &str| {
        query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let all = |name: &str| -> Vec<String> {
        query
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .collect()
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let body = match to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLarge",
                "At most 1 MB.",
            );
        }
    };
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = parts.method;
    match (method, segments.as_slice()) {
        (Method::POST, ["connections", connection, ":send"]) => {
            send(
                &hub,
                vec![connection.to_string()],
                &[],
                &content_type,
                &body,
            )
            .await
        }
        (Method::POST, [scope @ .., ":send"]) => match targets(&hub, scope) {
            Some(targets) => send(&hub, targets, &all("excluded"), &content_type, &body).await,
            None => not_found(),
        },
        (Method::PUT, ["groups", group, "connections", connection]) => {
            if hub.registry().join(connection, group) {
                StatusCode::OK.into_response()
            } else {
                error(StatusCode::NOT_FOUND, "NotFound", "No such connection.")
            }
        }
        (Method::DELETE, ["groups", group, "connections", connection]) => {
            hub.registry().leave(connection, group);
            StatusCode::NO_CONTENT.into_response()
        }
        (Method::PUT, ["users", user, "groups", group]) => {
            let mut registry = hub.registry();
            for connection in registry.of_user(user) {
                registry.join(&connection, group);
            }
            StatusCode::OK.into_response()
        }
        (Method::DELETE, ["users", user, "groups", group]) => {
            let mut registry = hub.registry();
            for connection in registry.of_user(user) {
                registry.leave(&connection, group);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        (Method::DELETE, ["users", user, "groups"]) => {
            let mut registry = hub.registry();
            for connection in registry.of_user(user) {
                leave_all(&mut registry, &connection);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        (Method::DELETE, ["connections", connection, "groups"]) => {
            leave_all(&mut hub.registry(), connection);
            StatusCode::NO_CONTENT.into_response()
        }
        (Method::DELETE, ["connections", connection]) => {
            let reason = one("reason").unwrap_or_default();
            client::close(&hub, connection, &reason).await;
            StatusCode::NO_CONTENT.into_response()
        }
        (Method::POST, [scope @ .., ":closeConnections"]) => {
            let Some(targets) = targets(&hub, scope) else {
                return not_found();
            };
            let reason = one("reason").unwrap_or_default();
            for connection in targets.iter().filter(|id| !all("excluded").contains(id)) {
                client::close(&hub, connection, &reason).await;
            }
            StatusCode::NO_CONTENT.into_response()
        }
        (Method::HEAD, ["connections", connection]) => {
            exists(hub.registry().connections.contains_key(*connection))
        }
        (Method::HEAD, ["groups", group]) => exists(hub.registry().groups.contains_key(*group)),
        (Method::HEAD, ["users", user]) => exists(!hub.registry().of_user(user).is_empty()),
        (method, ["permissions", permission, "connections", connection]) => {
            let Some(action) = [Action::JoinLeave, Action::Send]
                .into_iter()
                .find(|action| action.permission() == *permission)
            else {
                return error(StatusCode::BAD_REQUEST, "BadRequest", "Unknown permission.");
            };
            let Some(group) = one("targetName") else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "targetName is required.",
                );
            };
            permission_call(&hub, method, action, connection, &group)
        }
        (Method::POST, [":generateToken"]) => {
            let minutes = one("minutesToExpire")
                .and_then(|minutes| minutes.parse::<i64>().ok())
                .unwrap_or(60);
            let token = client::token(
                &hub,
                one("userId").as_deref(),
                &all("role"),
                &all("group"),
                minutes * 60,
            );
            axum::Json(json!({ "token": token })).into_response()
        }
        _ => not_found(),
    }
}

fn permission_call(
    hub: &Hub,
    method: Method,
    action: Action,
    connection: &str,
    group: &str,
) -> Response {
    let mut registry = hub.registry();
    let Some(connection) = registry.connections.get_mut(connection) else {
        return error(StatusCode::NOT_FOUND, "NotFound", "No such connection.");
    };
    let grant = (action.permission().to_owned(), group.to_owned());
    match method {
        Method::PUT => {
            connection.granted.insert(grant);
            StatusCode::OK.into_response()
        }
        Method::DELETE => {
            connection.granted.remove(&grant);
            StatusCode::NO_CONTENT.into_response()
        }
        Method::HEAD => exists(connection.granted.contains(&grant)),
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "PUT, DELETE or HEAD.",
        ),
    }
}

async fn send(
    hub: &Hub,
    targets: Vec<String>,
    excluded: &[String],
    content_type: &str,
    body: &Bytes,
) -> Response {
    let (data_type, data) = if content_type.starts_with("application/json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(data) => ("json", data),
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "The body is not JSON.",
                );
            }
        }
    } else if content_type.starts_with("text/plain") {
        (
            "text",
            Value::String(String::from_utf8_lossy(body).into_owned()),
        )
    } else {
        ("binary", Value::String(BASE64.encode(body)))
    };
    let frame = json!({"type": "message", "from": "server", "dataType": data_type, "data": data});
    client::deliver(hub, &targets, excluded, &frame).await;
    StatusCode::ACCEPTED.into_response()
}

/// The connections a hub-wide (no scope), group or user operation applies to; `None` for any
/// other scope.
fn targets(hub: &Hub, scope: &[&str]) -> Option<Vec<String>> {
    let registry = hub.registry();
    match scope {
        [] => Some(registry.connections.keys().cloned().collect()),
        ["groups", group] => Some(registry.in_group(group)),
        ["users", user] => Some(registry.of_user(user)),
        _ => None,
    }
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "NotFound", "No such operation.")
}

fn leave_all(registry: &mut super::Registry, connection: &str) {
    let groups: Vec<String> = registry
        .connections
        .get(connection)
        .map(|connection| connection.groups.iter().cloned().collect())
        .unwrap_or_default();
    for group in groups {
        registry.leave(connection, &group);
    }
}

fn exists(found: bool) -> Response {
    if found {
        StatusCode::OK.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"code": code, "message": message})),
    )
        .into_response()
}

/// Percent-decoding of a path segment or query value (`+` is a space in queries only, and REST
/// clients do not send it).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && index + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&text[index + 1..index + 3], 16)
        {
            out.push(byte);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(key),
                percent_decode(&value.replace('+', " ")),
            )
        })
        .collect()
}

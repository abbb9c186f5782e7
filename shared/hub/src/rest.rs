//! The data-plane REST API under `/api/hubs/{hub}/…` (azure-contracts §2.1), authorised, as the
//! service is with local auth off, by an Entra bearer token for `https://webpubsub.azure.com`
//! issued to a permitted principal (the app's managed identity). One axum route per operation;
//! the scopes `/`, `/groups/{group}` and `/users/{user}` share their `:send` and
//! `:closeConnections` handlers through [`Scope`].

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, head, post, put};
use bytes::Bytes;
use data_encoding::BASE64;
use serde::Deserialize;
use serde_json::{Value, json};

use super::roles::Action;
use super::{Hub, client};
use azure_clients::entra::TokenError;

const MAX_BODY: usize = 1024 * 1024;

/// The REST routes, to nest under `/api/hubs/{hub}`.
pub fn routes(hub: Arc<Hub>) -> Router<Arc<Hub>> {
    Router::new()
        // The service's operations are segments starting with `:`, literal, not captures.
        .without_v07_checks()
        .route("/:send", post(send_to_scope))
        .route("/:closeConnections", post(close_scope))
        .route("/:generateToken", post(generate_token))
        .route("/groups/{group}", head(group_exists))
        .route("/groups/{group}/:send", post(send_to_scope))
        .route("/groups/{group}/:closeConnections", post(close_scope))
        .route(
            "/groups/{group}/connections/{connection}",
            put(join_group).delete(leave_group),
        )
        .route("/users/{user}", head(user_exists))
        .route("/users/{user}/:send", post(send_to_scope))
        .route("/users/{user}/:closeConnections", post(close_scope))
        .route(
            "/users/{user}/groups/{group}",
            put(add_user_to_group).delete(remove_user_from_group),
        )
        .route("/users/{user}/groups", delete(remove_user_from_all_groups))
        .route(
            "/connections/{connection}",
            head(connection_exists).delete(close_connection),
        )
        .route("/connections/{connection}/:send", post(send_to_connection))
        .route(
            "/connections/{connection}/groups",
            delete(remove_connection_from_all_groups),
        )
        .route(
            "/permissions/{permission}/connections/{connection}",
            put(grant_permission)
                .delete(revoke_permission)
                .head(check_permission),
        )
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(hub, authorise))
}

pub async fn health() -> StatusCode {
    StatusCode::OK
}

/// The path's names, decoded, where the route has them (the hub's is checked by [`authorise`]).
#[derive(Debug, Deserialize)]
struct Names {
    group: Option<String>,
    user: Option<String>,
    connection: Option<String>,
    permission: Option<String>,
}

impl Names {
    fn connection(&self) -> &str {
        self.connection.as_deref().unwrap_or_default()
    }

    fn group(&self) -> &str {
        self.group.as_deref().unwrap_or_default()
    }

    fn user(&self) -> &str {
        self.user.as_deref().unwrap_or_default()
    }
}

/// The query's parameters, decoded, repeated names kept (`excluded`, `role`, `group`).
struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    fn from(query: Option<String>) -> Self {
        Self(
            form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    fn one(&self, name: &str) -> Option<String> {
        self.all(name).into_iter().next()
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .collect()
    }
}

/// Admits only the permitted principal's token, for this hub.
async fn authorise(
    State(hub): State<Arc<Hub>>,
    Path(names): Path<HashMap<String, String>>,
    request: Request,
    next: Next,
) -> Response {
    let authorization = request
        .headers()
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
    let ours = names
        .get("hub")
        .is_some_and(|name| name.eq_ignore_ascii_case(&hub.name));
    if !ours {
        return error(StatusCode::NOT_FOUND, "NotFound", "No such hub.");
    }
    next.run(request).await
}

/// The connections of the route's scope: the hub, a group or a user.
fn scope_targets(hub: &Hub, names: &Names) -> Vec<String> {
    let registry = hub.registry();
    match (&names.group, &names.user) {
        (Some(group), _) => registry.in_group(group),
        (_, Some(user)) => registry.of_user(user),
        _ => registry.connections.keys().cloned().collect(),
    }
}

async fn send_to_scope(
    State(hub): State<Arc<Hub>>,
    Path(names): Path<Names>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let targets = scope_targets(&hub, &names);
    let excluded = QueryPairs::from(query).all("excluded");
    send(&hub, targets, &excluded, &headers, &body).await
}

async fn send_to_connection(
    State(hub): State<Arc<Hub>>,
    Path(names): Path<Names>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let targets = vec![names.connection().to_owned()];
    send(&hub, targets, &[], &headers, &body).await
}

async fn close_scope(
    State(hub): State<Arc<Hub>>,
    Path(names): Path<Names>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = QueryPairs::from(query);
    let reason = query.one("reason").unwrap_or_default();
    let excluded = query.all("excluded");
    for connection in scope_targets(&hub, &names)
        .iter()
        .filter(|id| !excluded.contains(id))
    {
        client::close(&hub, connection, &reason).await;
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn close_connection(
    State(hub): State<Arc<Hub>>,
    Path(names): Path<Names>,
    RawQuery(query): RawQuery,
) -> Response {
    let reason = QueryPairs::from(query).one("reason").unwrap_or_default();
    client::close(&hub, names.connection(), &reason).await;
    StatusCode::NO_CONTENT.into_response()
}

async fn generate_token(State(hub): State<Arc<Hub>>, RawQuery(query): RawQuery) -> Response {
    let query = QueryPairs::from(query);
    let minutes = query
        .one("minutesToExpire")
        .and_then(|minutes| minutes.parse::<i64>().ok())
        .unwrap_or(60);
    let token = client::token(
        &hub,
        query.one("userId").as_deref(),
        &query.all("role"),
        &query.all("group"),
        minutes * 60,
    );
    axum::Json(json!({ "token": token })).into_response()
}

async fn join_group(State(hub): State<Arc<Hub>>, Path(names): Path<Names>) -> Response {
    if hub.registry().join(names.connection(), names.group()) {
        StatusCode::OK.into_response()
    } else {
        error(StatusCode::NOT_FOUND, "NotFound", "No such connection.")
    }
}

async fn leave_group(State(hub): State<Arc<Hub>>, Path(names): Path<Names>) -> StatusCode {
    hub.registry().leave(names.connection(), names.group());
    StatusCode::NO_CONTENT
}

async fn add_user_to_group(State(hub): State<Arc<Hub>>, Path(names): Path<Names>) -> StatusCode {
    let mut registry = hub.registry();
    for connection in registry.of_user(names.user()) {
        registry.join(&connection, names.group());
    }
    StatusCode::OK
}

async fn remove_user_from_group(
    State(hub): State<Arc<Hub>>,
    Path(names): Path<Names>,
) -> StatusCode {
    let mut registry = hub.registry();
    for connection in registry.of_user(names.user()) {
        registry.leave(&connection, names.group());
    }
    StatusCode::NO_CONTENT
}

async fn remove_user_from_all_groups(
    State(hub): State<Arc<Hub>>,
    Path(names): Path<Names>,
) -> StatusCode {
    let mut registry = hub.registry();
    for connection in registry.of_user(names.user()) {
        leave_all(&mut registry, &connection);
    }
    StatusCode::NO_CONTENT
}

async fn remove_connection_from_all_groups(
    State(hub): State<Arc<Hub>>,
    Path(names): Path<Names>,
) -> StatusCode {
    leave_all(&mut hub.registry(), names.connection());
    StatusCode::NO_CONTENT
}

async fn connection_exists(State(hub): State<Arc<Hub>>, Path(names): Path<Names>) -> StatusCode {
    exists(hub.registry().connections.contains_key(names.connection()))
}

async fn group_exists(State(hub): State<Arc<Hub>>, Path(names): Path<Names>) -> StatusCode {
    exists(hub.registry().groups.contains_key(names.group()))
}

async fn user_exists(State(hub): State<Arc<Hub>>, Path(names): Path<Names>) -> StatusCode {
    exists(!hub.registry().of_user(names.user()).is_empty())
}

async fn grant_permission(
    State(hub): State<Arc<Hub>>,
    Path(names): Path<Names>,
    RawQuery(query): RawQuery,
) -> Response {
    permission_call(&hub, &names, query, |granted, grant| {
        granted.insert(grant);
        StatusCode::OK
    })
}

async fn revoke_permission(
    State(hub): State<Arc<Hub>>,
    Path(names): Path<Names>,
    RawQuery(query): RawQuery,
) -> Response {
    permission_call(&hub, &names, query, |granted, grant| {
        granted.remove(&grant);
        StatusCode::NO_CONTENT
    })
}

async fn check_permission(
    State(hub): State<Arc<Hub>>,
    Path(names): Path<Names>,
    RawQuery(query): RawQuery,
) -> Response {
    permission_call(&hub, &names, query, |granted, grant| {
        exists(granted.contains(&grant))
    })
}

/// Finds the connection and the grant (`permission` on the `targetName` group) the route names,
/// then applies `change` to the connection's grants.
fn permission_call(
    hub: &Hub,
    names: &Names,
    query: Option<String>,
    change: impl FnOnce(
        &mut std::collections::HashSet<(String, String)>,
        (String, String),
    ) -> StatusCode,
) -> Response {
    let Some(action) = [Action::JoinLeave, Action::Send]
        .into_iter()
        .find(|action| Some(action.permission()) == names.permission.as_deref())
    else {
        return error(StatusCode::BAD_REQUEST, "BadRequest", "Unknown permission.");
    };
    let Some(group) = QueryPairs::from(query).one("targetName") else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "targetName is required.",
        );
    };
    let mut registry = hub.registry();
    let Some(connection) = registry.connections.get_mut(names.connection()) else {
        return error(StatusCode::NOT_FOUND, "NotFound", "No such connection.");
    };
    change(
        &mut connection.granted,
        (action.permission().to_owned(), group),
    )
    .into_response()
}

async fn send(
    hub: &Hub,
    targets: Vec<String>,
    excluded: &[String],
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("application/octet-stream");
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

async fn not_found() -> Response {
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

fn exists(found: bool) -> StatusCode {
    if found {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"code": code, "message": message})),
    )
        .into_response()
}

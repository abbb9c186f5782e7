//! The one error type. Every handler returns `Result<_, Error>`; this module alone turns errors
//! into HTTP: an `application/problem+json` body with a stable machine-readable `code`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::validation::FieldError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug)]
pub enum Error {
    /// Something the client can act on: bad input, missing rights, a conflict, a rate limit.
    Client(Problem),
    /// A bug or an unavailable dependency. Logged once; the client sees only a generic 500.
    Internal(anyhow::Error),
}

/// An RFC 9457 problem: status, stable code, human detail and extension members.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub extensions: Map<String, Value>,
}

impl Error {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Error::Client(Problem {
            status,
            code,
            detail: detail.into(),
            extensions: Map::new(),
        })
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }

    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }

    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    /// 422 with one message per offending field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|error| format!("{}: {}", error.field, error.message))
            .collect::<Vec<_>>()
            .join("; ");
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
            detail,
        )
        .with("errors", errors)
    }

    /// 429 that tells the client when it may try again (body and `Retry-After`).
    pub fn rate_limited(
        code: &'static str,
        detail: impl Into<String>,
        until: DateTime<Utc>,
    ) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, code, detail).with("retryAt", until)
    }

    /// Adds an extension member to a client problem (no effect on internal errors).
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        if let Error::Client(problem) = &mut self {
            let value = serde_json::to_value(value).unwrap_or(Value::Null);
            problem.extensions.insert(key.to_owned(), value);
        }
        self
    }

    /// A copy for a second caller of a shared load: client problems as they are, an unreachable
    /// database as its 503, other internal errors by their message.
    pub fn copied(&self) -> Error {
        match self {
            Error::Client(problem) => Error::Client(problem.clone()),
            Error::Internal(inner) if dependency_unavailable(inner) => Error::Client(unavailable()),
            Error::Internal(inner) => Error::Internal(anyhow::anyhow!("{inner:#}")),
        }
    }

    /// The stable code, for client problems.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Error::Client(problem) => Some(problem.code),
            Error::Internal(_) => None,
        }
    }
}

/// For logs: a problem's status and code, or the cause chain. Never `{:?}` in logs: with
/// `RUST_BACKTRACE` set, an internal error's Debug symbolizes a backtrace, which loads the
/// executable's debug info (tens of MB, kept for the process's life) and takes milliseconds.
impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Client(problem) => write!(
                f,
                "{} {}: {}",
                problem.status.as_u16(),
                problem.code,
                problem.detail
            ),
            Error::Internal(error) => write!(f, "{error:#}"),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for Error {
    fn from(error: E) -> Self {
        Error::Internal(error.into())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let problem = match self {
            Error::Client(problem) => problem,
            Error::Internal(error) if dependency_unavailable(&error) => {
                tracing::warn!(error = format!("{error:#}"), "a dependency is unavailable");
                unavailable()
            }
            Error::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                Problem {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    code: "INTERNAL",
                    detail: "An unexpected error occurred; it has been logged.".into(),
                    extensions: Map::new(),
                }
            }
        };
        problem.into_response()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let retry_after = self
            .extensions
            .get("retryAt")
            .and_then(Value::as_str)
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            .map(|at| (at.with_timezone(&Utc) - Utc::now()).num_seconds().max(1));
        let mut body = Map::new();
        body.insert(
            "type".into(),
            format!("urn:codeconnect:problem:{}", self.code).into(),
        );
        body.insert(
            "title".into(),
            self.status.canonical_reason().unwrap_or("Error").into(),
        );
        body.insert("status".into(), self.status.as_u16().into());
        body.insert("detail".into(), self.detail.into());
        body.insert("code".into(), self.code.into());
        body.extend(self.extensions);

        let mut response = (self.status, axum::Json(Value::Object(body))).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The stable code of a request the database could not serve just then (it, or PgBouncer before
/// it, was restarting or out of reach): safe to send again after `Retry-After`.
pub const UNAVAILABLE: &str = "UNAVAILABLE";

/// 503 [`UNAVAILABLE`], to be retried after a second.
fn unavailable() -> Problem {
    let mut extensions = Map::new();
    extensions.insert(
        "retryAt".into(),
        (Utc::now() + chrono::Duration::seconds(1))
            .to_rfc3339()
            .into(),
    );
    Problem {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: UNAVAILABLE,
        detail: "The database was briefly out of reach. Send the request again shortly; with the same idempotency key, a write that did go through is not repeated.".into(),
        extensions,
    }
}

/// Whether `error` says the database could not be reached or dropped the connection (not that a
/// statement was wrong): no pooled connection in time, a socket error, a connection cut off
/// mid-message (a protocol error: PgBouncer closing as it stops), or a connection-class
/// SQLSTATE (08: connection exception, as PgBouncer reports a lost server; 57P01-57P03: the
/// server shutting down or starting).
fn dependency_unavailable(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| match cause.downcast_ref::<sqlx::Error>() {
            Some(
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::WorkerCrashed,
            ) => true,
            Some(sqlx::Error::Database(db)) => db.code().is_some_and(|code| {
                code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")
            }),
            _ => false,
        })
}

/// Maps a named Postgres constraint violation to a client error at the call site, so a
/// constraint (the source of truth) becomes a clean 409 instead of a 500.
pub trait ConstraintExt<T> {
    fn on_constraint(self, name: &str, to_error: impl FnOnce() -> Error) -> Result<T>;
}

impl<T> ConstraintExt<T> for std::result::Result<T, sqlx::Error> {
    fn on_constraint(self, name: &str, to_error: impl FnOnce() -> Error) -> Result<T> {
        self.map_err(|error| match &error {
            sqlx::Error::Database(db) if db.constraint() == Some(name) => to_error(),
            _ => Error::Internal(error.into()),
        })
    }
}

impl<T> ConstraintExt<T> for Result<T> {
    fn on_constraint(self, name: &str, to_error: impl FnOnce() -> Error) -> Result<T> {
        self.map_err(|error| match error {
            Error::Internal(inner) => match inner.downcast_ref::<sqlx::Error>() {
                Some(sqlx::Error::Database(db)) if db.constraint() == Some(name) => to_error(),
                _ => Error::Internal(inner),
            },
            client => client,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: Response) -> Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn logs_show_a_problem_or_the_cause_chain_never_a_backtrace() {
        let problem = Error::conflict("EMAIL_TAKEN", "taken");
        assert_eq!(problem.to_string(), "409 EMAIL_TAKEN: taken");
        let internal =
            Error::from(anyhow::anyhow!("connection refused").context("loading a mentor"));
        assert_eq!(internal.to_string(), "loading a mentor: connection refused");
    }

    #[tokio::test]
    async fn client_problems_carry_code_and_extensions() {
        let response = Error::conflict("EMAIL_TAKEN", "taken")
            .with("field", "email")
            .into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = body_of(response).await;
        assert_eq!(body["code"], "EMAIL_TAKEN");
        assert_eq!(body["status"], 409);
        assert_eq!(body["field"], "email");
    }

    #[tokio::test]
    async fn internal_errors_never_leak_their_message() {
        let response = Error::from(anyhow::anyhow!("password=hunter2 exploded")).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = body_of(response).await;
        assert_eq!(body["code"], "INTERNAL");
        assert!(!body.to_string().contains("hunter2"));
    }

    #[tokio::test]
    async fn an_unreachable_database_is_a_503_to_retry() {
        let lost = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let error = anyhow::Error::from(sqlx::Error::Io(lost)).context("load the bookings");
        let response = Error::Internal(error).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(body_of(response).await["code"], UNAVAILABLE);

        let response = Error::from(sqlx::Error::PoolTimedOut).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let response = Error::from(sqlx::Error::RowNotFound).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn rate_limits_set_retry_after() {
        let until = Utc::now() + chrono::Duration::seconds(90);
        let response = Error::rate_limited("LOGIN_LOCKED", "locked", until).into_response();
        let seconds: i64 = response.headers()[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((85..=90).contains(&seconds), "retry after {seconds}");
    }
}

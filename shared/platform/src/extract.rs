//! Our `Json`, `Query` and `Path` extractors: axum's, with every rejection turned into a problem
//! with a stable code (malformed JSON 400, wrong content type 415, too large 413, wrong shape
//! 422, bad query or path 400). Text with a NUL character, which Postgres refuses to store, is
//! refused here, where input enters, as a 422 `VALIDATION_FAILED` naming the field.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::Error;
use crate::validation::FieldError;

#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let value = match axum::Json::<Value>::from_request(request, state).await {
            Ok(axum::Json(value)) => value,
            Err(rejection) => return Err(json_rejection(&rejection)),
        };
        let mut with_nul = Vec::new();
        find_nul(&value, String::new(), &mut with_nul);
        refuse_nul(with_nul)?;
        serde_json::from_value(value).map(Json).map_err(|error| {
            Error::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_BODY",
                format!("Failed to deserialize the JSON body into the target type: {error}"),
            )
        })
    }
}

fn json_rejection(rejection: &JsonRejection) -> Error {
    let code = match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_MEDIA_TYPE",
        StatusCode::UNPROCESSABLE_ENTITY => "INVALID_BODY",
        _ => "MALFORMED_JSON",
    };
    Error::new(rejection.status(), code, rejection.body_text())
}

/// Collects the paths (`notes`, `items[2].name`) of strings in `value` that hold a NUL.
fn find_nul(value: &Value, path: String, found: &mut Vec<String>) {
    match value {
        Value::String(text) if text.contains('\0') => found.push(path),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                find_nul(item, format!("{path}[{index}]"), found);
            }
        }
        Value::Object(fields) => {
            for (name, field) in fields {
                let field_path = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                if name.contains('\0') {
                    found.push(field_path.clone());
                }
                find_nul(field, field_path, found);
            }
        }
        _ => {}
    }
}

/// 422 `VALIDATION_FAILED` naming each field that holds a NUL character.
fn refuse_nul(fields: Vec<String>) -> Result<(), Error> {
    if fields.is_empty() {
        return Ok(());
    }
    Err(Error::validation(
        fields
            .into_iter()
            .map(|field| FieldError {
                field,
                message: "must not contain a NUL character".into(),
            })
            .collect(),
    ))
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        refuse_nul(
            form_urlencoded::parse(query.as_bytes())
                .filter(|(name, value)| name.contains('\0') || value.contains('\0'))
                .map(|(name, _)| name.into_owned())
                .collect(),
        )?;
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|rejection: QueryRejection| {
                Error::bad_request("INVALID_QUERY", rejection.body_text())
            })
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Ok(params) = RawPathParams::from_request_parts(parts, state).await {
            refuse_nul(
                params
                    .iter()
                    .filter(|(_, value)| value.contains('\0'))
                    .map(|(name, _)| name.to_owned())
                    .collect(),
            )?;
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|rejection: PathRejection| {
                Error::bad_request("INVALID_PATH", rejection.body_text())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_found_by_their_field_path() {
        let value = serde_json::json!({
            "name": "ok",
            "notes": "a\u{0}b",
            "items": [{"subject": "fine"}, {"subject": "\u{0}"}],
            "nested": {"deep": ["x", "y\u{0}"]},
            "count": 3
        });
        let mut found = Vec::new();
        find_nul(&value, String::new(), &mut found);
        found.sort();
        assert_eq!(found, ["items[1].subject", "nested.deep[1]", "notes"]);
    }
}

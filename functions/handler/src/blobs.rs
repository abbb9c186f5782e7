//! Read URLs of the local-folder blob store (`LOCAL_BLOB_DIR`, local runs only): checks the
//! URL's signature and expiry, then streams the file. With Azure or Azurite configured the read
//! URLs point at the storage service and this route answers 404.

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shared::{AppState, Error, Path, Query, Result};
use tokio_util::io::ReaderStream;

#[derive(Debug, Deserialize)]
pub struct Signature {
    exp: i64,
    sig: String,
}

pub async fn read(
    State(state): State<AppState>,
    Path((container, name)): Path<(String, String)>,
    Query(signature): Query<Signature>,
) -> Result<Response> {
    let store = state
        .blobs
        .local()
        .ok_or_else(|| Error::not_found("NOT_FOUND", "No such route."))?;
    store.verify_local_url(&container, &name, signature.exp, &signature.sig)?;
    let blob = store.open(&container, &name).await?;
    Ok((
        [
            (header::CONTENT_TYPE, blob.content_type),
            (header::CONTENT_LENGTH, blob.size.to_string()),
            (header::CACHE_CONTROL, "private, max-age=300".to_owned()),
        ],
        Body::from_stream(ReaderStream::new(blob.file)),
    )
        .into_response())
}

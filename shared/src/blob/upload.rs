//! Streams an HTTP request body into blob storage under upload rules: an allowed content type,
//! file contents that match it (magic bytes), and a size limit enforced while streaming (a body
//! that grows past the limit is cut off and never committed), so an upload never sits whole in
//! memory and a refused upload leaves nothing behind.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, stream};
use tokio::sync::Semaphore;

use super::{BlobStore, ByteStream};
use crate::error::{Error, Result};

/// Bytes read before the body is handed to the store, to check what the file really is.
const SNIFF_LEN: usize = 12;

/// Uploads streaming at once in this process. Each holds up to one block of its body while the
/// store stages it, so this bounds upload memory; further uploads wait their turn, their bodies
/// held back in the clients' and the kernel's buffers.
const UPLOADS_AT_ONCE: usize = 32;

/// One accepted content type and how to recognise its first bytes.
#[derive(Debug)]
pub struct FileType {
    pub content_type: &'static str,
    pub matches: fn(&[u8]) -> bool,
}

pub const JPEG: FileType = FileType {
    content_type: "image/jpeg",
    matches: |head| head.starts_with(&[0xFF, 0xD8, 0xFF]),
};
pub const PNG: FileType = FileType {
    content_type: "image/png",
    matches: |head| head.starts_with(b"\x89PNG\r\n\x1a\n"),
};
pub const WEBP: FileType = FileType {
    content_type: "image/webp",
    matches: |head| head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP",
};
pub const MP4: FileType = FileType {
    content_type: "video/mp4",
    matches: |head| head.len() >= 8 && &head[4..8] == b"ftyp",
};
/// Matroska/WebM (EBML header).
pub const WEBM: FileType = FileType {
    content_type: "video/webm",
    matches: |head| head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]),
};

/// What an upload route accepts.
pub struct UploadRules {
    pub types: &'static [FileType],
    pub max_bytes: u64,
}

/// A stored upload.
#[derive(Debug, Clone)]
pub struct Stored {
    pub content_type: &'static str,
    pub size: u64,
}

impl UploadRules {
    /// The accepted type named by the `Content-Type` header (parameters ignored), or 415
    /// `UNSUPPORTED_MEDIA_TYPE`; 411 `LENGTH_REQUIRED` without `Content-Length` (the Functions
    /// host forwards a body only with one: a chunked upload would arrive empty); 413
    /// `PAYLOAD_TOO_LARGE` at once when `Content-Length` says the body is over the limit.
    pub fn check_headers(&self, headers: &HeaderMap) -> Result<&'static FileType> {
        let declared = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .map(|value| value.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let file_type = self
            .types
            .iter()
            .find(|file_type| file_type.content_type == declared)
            .ok_or_else(|| {
                Error::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UNSUPPORTED_MEDIA_TYPE",
                    format!("Content-Type must be one of: {}.", self.accepted()),
                )
                .with("accepted", self.accepted())
            })?;
        let length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok())
            .ok_or_else(|| {
                Error::new(
                    StatusCode::LENGTH_REQUIRED,
                    "LENGTH_REQUIRED",
                    "Send the file with a Content-Length header.",
                )
            })?;
        if length > self.max_bytes {
            return Err(self.too_large());
        }
        Ok(file_type)
    }

    /// Streams `body` to `container`/`name` after [`Self::check_headers`]. Refusals: 400
    /// `EMPTY_BODY`, 415 `CONTENT_TYPE_MISMATCH` (the bytes are not what the header says), 413
    /// `PAYLOAD_TOO_LARGE`, 400 `UPLOAD_INTERRUPTED` (the client stopped sending).
    pub async fn store(
        &self,
        store: &dyn BlobStore,
        container: &str,
        name: &str,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Stored> {
        let file_type = self.check_headers(headers)?;
        let _turn = upload_turns()
            .acquire()
            .await
            .map_err(|_| anyhow::anyhow!("upload turns closed"))?;
        let mut body = body.into_data_stream();
        let mut head = BytesMut::new();
        while head.len() < SNIFF_LEN {
            match body.next().await {
                Some(Ok(chunk)) => head.extend_from_slice(&chunk),
                Some(Err(_)) => return Err(interrupted()),
                None => break,
            }
        }
        if head.is_empty() {
            return Err(Error::bad_request("EMPTY_BODY", "The upload is empty."));
        }
        if !(file_type.matches)(&head) {
            return Err(Error::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "CONTENT_TYPE_MISMATCH",
                format!("The file is not {}.", file_type.content_type),
            ));
        }
        let over_limit = Arc::new(AtomicBool::new(false));
        let client_failed = Arc::new(AtomicBool::new(false));
        let limited = limit(
            stream::once(async move { Ok(head.freeze()) }).chain(body),
            self.max_bytes,
            over_limit.clone(),
            client_failed.clone(),
        );
        match store
            .put(container, name, file_type.content_type, limited)
            .await
        {
            Ok(size) => Ok(Stored {
                content_type: file_type.content_type,
                size,
            }),
            Err(_) if over_limit.load(Ordering::Relaxed) => Err(self.too_large()),
            Err(_) if client_failed.load(Ordering::Relaxed) => Err(interrupted()),
            Err(error) => Err(error),
        }
    }

    fn accepted(&self) -> String {
        self.types
            .iter()
            .map(|file_type| file_type.content_type)
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn too_large(&self) -> Error {
        Error::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("The file may be at most {} bytes.", self.max_bytes),
        )
        .with("maxBytes", self.max_bytes)
    }
}

fn upload_turns() -> &'static Semaphore {
    static TURNS: OnceLock<Semaphore> = OnceLock::new();
    TURNS.get_or_init(|| Semaphore::new(UPLOADS_AT_ONCE))
}

fn interrupted() -> Error {
    Error::bad_request(
        "UPLOAD_INTERRUPTED",
        "The upload did not arrive completely.",
    )
}

/// Passes chunks through until more than `max_bytes` have passed, then fails the stream (the
/// store then abandons the blob). Flags say which way the stream failed.
fn limit<S, E>(
    body: S,
    max_bytes: u64,
    over_limit: Arc<AtomicBool>,
    client_failed: Arc<AtomicBool>,
) -> ByteStream
where
    S: futures::Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
{
    let mut seen = 0u64;
    body.map(move |chunk| match chunk {
        Ok(chunk) => {
            seen += chunk.len() as u64;
            if seen > max_bytes {
                over_limit.store(true, Ordering::Relaxed);
                Err(std::io::Error::other("upload over the size limit"))
            } else {
                Ok(chunk)
            }
        }
        Err(_) => {
            client_failed.store(true, Ordering::Relaxed);
            Err(std::io::Error::other("the client stopped sending"))
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes_recognise_each_type_and_nothing_else() {
        let samples: [(&FileType, &[u8]); 5] = [
            (
                &JPEG,
                &[
                    0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F', 0, 1,
                ],
            ),
            (&PNG, b"\x89PNG\r\n\x1a\n\0\0\0\x0d"),
            (&WEBP, b"RIFF\x24\0\0\0WEBP"),
            (&MP4, b"\0\0\0\x20ftypisom"),
            (
                &WEBM,
                &[
                    0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 1, 0x42, 0xF7, 0x81,
                ],
            ),
        ];
        for (index, (file_type, _)) in samples.iter().enumerate() {
            for (other, (_, bytes)) in samples.iter().enumerate() {
                assert_eq!(
                    (file_type.matches)(bytes),
                    index == other,
                    "{} against sample {other}",
                    file_type.content_type
                );
            }
        }
    }

    #[test]
    fn headers_pick_the_type_need_a_length_and_refuse_declared_oversize() {
        let rules = UploadRules {
            types: &[JPEG, PNG],
            max_bytes: 10,
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "Image/PNG; charset=x".parse().unwrap(),
        );
        assert_eq!(
            rules.check_headers(&headers).unwrap_err().code(),
            Some("LENGTH_REQUIRED")
        );
        headers.insert(header::CONTENT_LENGTH, "10".parse().unwrap());
        assert_eq!(
            rules.check_headers(&headers).unwrap().content_type,
            "image/png"
        );
        headers.insert(header::CONTENT_LENGTH, "11".parse().unwrap());
        assert_eq!(
            rules.check_headers(&headers).unwrap_err().code(),
            Some("PAYLOAD_TOO_LARGE")
        );
        headers.insert(header::CONTENT_TYPE, "image/gif".parse().unwrap());
        assert_eq!(
            rules.check_headers(&headers).unwrap_err().code(),
            Some("UNSUPPORTED_MEDIA_TYPE")
        );
    }
}

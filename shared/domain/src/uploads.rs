//! Direct uploads. A client asks for an upload, saying what it will send and how large; it gets
//! an [`UploadTarget`], a write URL for exactly one blob that it sends the file to, straight to
//! storage (the Functions host forwards at most 100 MiB and cuts a response at 230 s, so large
//! files never go through the app); then it asks the app to complete the upload, and
//! [`UploadRules::verify`] checks the stored blob: its size, its content type and its first bytes
//! (magic bytes). A refused blob is deleted, and the caller writes its row only after the check.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use azure_clients::blob::BlobStore;
use platform::error::{Error, Result};

/// Bytes read from the stored blob to check what the file really is.
const SNIFF_LEN: usize = 12;

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

/// Where and how a client sends a file: `method` to `url` with `headers`, before `expiresAt`.
/// The URL grants writing one blob and nothing else.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadTarget {
    pub url: String,
    /// Always `PUT`.
    #[schema(example = "PUT")]
    pub method: &'static str,
    /// Headers the request must carry, such as `x-ms-blob-type: BlockBlob`.
    pub headers: BTreeMap<&'static str, String>,
    pub expires_at: DateTime<Utc>,
    /// The most bytes the completion accepts.
    pub max_bytes: u64,
}

impl UploadTarget {
    /// A whole file in one Put Blob request, stored with `content_type`.
    pub async fn put_blob(
        store: &dyn BlobStore,
        container: &str,
        name: &str,
        content_type: &str,
        ttl: Duration,
        max_bytes: u64,
    ) -> Result<Self> {
        let url = store.write_url(container, name, ttl).await?;
        let headers = BTreeMap::from([
            ("x-ms-blob-type", "BlockBlob".to_owned()),
            ("Content-Type", content_type.to_owned()),
        ]);
        Ok(Self::new(url, headers, ttl, max_bytes))
    }

    /// One block, `block_id`, of a block blob (Put Block), committed later by the app.
    pub async fn put_block(
        store: &dyn BlobStore,
        container: &str,
        name: &str,
        block_id: &[u8],
        ttl: Duration,
        max_bytes: u64,
    ) -> Result<Self> {
        let mut url = reqwest::Url::parse(&store.write_url(container, name, ttl).await?)
            .map_err(|_| anyhow::anyhow!("the store signed a malformed URL"))?;
        url.query_pairs_mut()
            .append_pair("comp", "block")
            .append_pair("blockid", &data_encoding::BASE64.encode(block_id));
        Ok(Self::new(url.into(), BTreeMap::new(), ttl, max_bytes))
    }

    fn new(
        url: String,
        headers: BTreeMap<&'static str, String>,
        ttl: Duration,
        max_bytes: u64,
    ) -> Self {
        Self {
            url,
            method: "PUT",
            headers,
            expires_at: Utc::now() + ttl,
            max_bytes,
        }
    }
}

impl UploadRules {
    /// The accepted type named by `content_type` (parameters and case ignored) for a file of
    /// `size` bytes, checked before any URL is handed out: 415 `UNSUPPORTED_MEDIA_TYPE`, 400
    /// `EMPTY_BODY`, 413 `PAYLOAD_TOO_LARGE`.
    pub fn check_declared(&self, content_type: &str, size: u64) -> Result<&'static FileType> {
        let file_type = self.file_type(content_type)?;
        self.check_size(size)?;
        Ok(file_type)
    }

    /// The accepted type named by `content_type`, or 415 `UNSUPPORTED_MEDIA_TYPE`.
    pub fn file_type(&self, content_type: &str) -> Result<&'static FileType> {
        let declared = essence(content_type);
        self.types
            .iter()
            .find(|file_type| file_type.content_type == declared)
            .ok_or_else(|| {
                Error::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UNSUPPORTED_MEDIA_TYPE",
                    format!("The file must be one of: {}.", self.accepted()),
                )
                .with("accepted", self.accepted())
            })
    }

    /// Checks the blob `container`/`name` as stored against `expected`, the type declared when
    /// the upload began, and returns its size. Refusals delete the blob: 409 `UPLOAD_INCOMPLETE` (nothing stored yet;
    /// nothing deleted), 400 `EMPTY_BODY`, 413 `PAYLOAD_TOO_LARGE`, 415 `CONTENT_TYPE_MISMATCH`
    /// (stored with another content type, or the bytes are not what it says).
    pub async fn verify(
        &self,
        store: &dyn BlobStore,
        container: &str,
        name: &str,
        expected: &'static FileType,
    ) -> Result<u64> {
        let properties = store.properties(container, name).await?.ok_or_else(|| {
            Error::conflict(
                "UPLOAD_INCOMPLETE",
                "Nothing has arrived at the upload URL yet: send the file there first.",
            )
        })?;
        let checked = match self.check_size(properties.size) {
            Err(refusal) => Err(refusal),
            Ok(()) if essence(&properties.content_type) != expected.content_type => {
                Err(mismatch(expected))
            }
            Ok(()) => {
                let head = store.head(container, name, SNIFF_LEN).await?;
                if (expected.matches)(&head) {
                    Ok(())
                } else {
                    Err(mismatch(expected))
                }
            }
        };
        match checked {
            Ok(()) => Ok(properties.size),
            Err(refusal) => {
                store.delete(container, name).await?;
                Err(refusal)
            }
        }
    }

    /// 400 `EMPTY_BODY` for nothing, 413 `PAYLOAD_TOO_LARGE` over the limit.
    pub fn check_size(&self, size: u64) -> Result<()> {
        if size == 0 {
            return Err(Error::bad_request("EMPTY_BODY", "The file is empty."));
        }
        if size > self.max_bytes {
            return Err(Error::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                format!("The file may be at most {} bytes.", self.max_bytes),
            )
            .with("maxBytes", self.max_bytes));
        }
        Ok(())
    }

    fn accepted(&self) -> String {
        self.types
            .iter()
            .map(|file_type| file_type.content_type)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `Image/PNG; charset=x` → `image/png`.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn mismatch(expected: &FileType) -> Error {
    Error::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "CONTENT_TYPE_MISMATCH",
        format!("The stored file is not {}.", expected.content_type),
    )
}

/// The one blob a class's recording is built in, from the parts its mentor uploads as blocks.
pub fn recording_blob_name(booking_id: uuid::Uuid) -> String {
    format!("bookings/{booking_id}/recording.webm")
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
    fn declarations_pick_the_type_and_refuse_empty_and_oversize_files() {
        let rules = UploadRules {
            types: &[JPEG, PNG],
            max_bytes: 10,
        };
        assert_eq!(
            rules
                .check_declared("Image/PNG; charset=x", 10)
                .unwrap()
                .content_type,
            "image/png"
        );
        for (content_type, size, code) in [
            ("image/png", 0, "EMPTY_BODY"),
            ("image/png", 11, "PAYLOAD_TOO_LARGE"),
            ("image/gif", 1, "UNSUPPORTED_MEDIA_TYPE"),
        ] {
            assert_eq!(
                rules.check_declared(content_type, size).unwrap_err().code(),
                Some(code),
                "{content_type} of {size} bytes"
            );
        }
    }
}

//! Blob storage behind one small trait, [`BlobStore`], held as `Arc<dyn BlobStore>`.
//!
//! Two implementations, chosen by [`BlobConfig`]:
//!
//! - [`AzureBlobStore`]: Azure Blob Storage through `azure_storage_blobs` 0.21. In Azure it
//!   authenticates with the app's managed identity (`AZURE_STORAGE_ACCOUNT_URL`) and signs read
//!   URLs as user delegation SAS; locally it uses an account-key connection string
//!   (`AZURE_STORAGE_CONNECTION_STRING`, Azurite included) and signs service SAS.
//! - [`LocalBlobStore`]: a folder (`LOCAL_BLOB_DIR`), for runs without any storage service. Its
//!   read URLs point at a route of the handler that checks them with
//!   [`LocalBlobStore::verify_local_url`] and streams [`LocalBlobStore::open`].
//!
//! Media is served only through short-lived read URLs, never through a proxy that reads blobs on
//! a client's behalf. Blob and container names are chosen by the product, not by clients, so a
//! malformed name is a bug (an internal error), and names are restricted to characters that need
//! no escaping in a URL or a path.

mod account;
mod azure;
mod local;
mod sas;
pub mod upload;

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::config::{BlobBackend, BlobConfig};
use crate::error::Result;

pub use account::StorageAccount;
pub use azure::AzureBlobStore;
pub use local::{LocalBlob, LocalBlobStore};

/// A body to upload, read chunk by chunk (an HTTP request body, a file).
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `body` as `name` in `container`, replacing any blob of that name, without holding
    /// the whole body in memory. Returns the number of bytes stored.
    async fn put(
        &self,
        container: &str,
        name: &str,
        content_type: &str,
        body: ByteStream,
    ) -> Result<u64>;

    /// Stores the concatenation of `parts` (in the order given, all in `container`) as `target`.
    /// The parts stay; delete them when no longer needed. Returns the size of `target`.
    async fn concat(
        &self,
        container: &str,
        parts: &[String],
        target: &str,
        content_type: &str,
    ) -> Result<u64>;

    /// A URL that lets anyone holding it read the blob, and nothing else, for `ttl`.
    async fn read_url(&self, container: &str, name: &str, ttl: Duration) -> Result<String>;

    /// Deletes the blob; deleting a blob that does not exist succeeds.
    async fn delete(&self, container: &str, name: &str) -> Result<()>;

    /// The local-folder store, when this is one: the route serving its read URLs needs it.
    fn local(&self) -> Option<&LocalBlobStore> {
        None
    }
}

/// Builds the store the configuration names. Nothing here contacts a storage service, so the
/// handler is ready at once; Azurite containers are created at their first use.
pub fn from_config(config: &BlobConfig) -> anyhow::Result<Arc<dyn BlobStore>> {
    Ok(match &config.backend {
        BlobBackend::ManagedIdentity { account_url } => {
            Arc::new(AzureBlobStore::with_managed_identity(account_url)?)
        }
        BlobBackend::SharedKey(account) => Arc::new(AzureBlobStore::with_account_key(account)?),
        BlobBackend::LocalFolder { dir } => {
            Arc::new(LocalBlobStore::new(dir, &config.public_base_url))
        }
    })
}

/// Checks a container name against Azure's rules (3-63 lowercase letters, digits and single
/// hyphens, starting and ending with a letter or digit).
fn check_container(container: &str) -> Result<()> {
    let valid = (3..=63).contains(&container.len())
        && container
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !container.starts_with('-')
        && !container.ends_with('-')
        && !container.contains("--");
    if valid {
        Ok(())
    } else {
        Err(anyhow!("invalid blob container name {container:?}").into())
    }
}

/// Checks a blob name: `/`-separated segments of ASCII letters, digits, `.`, `_` and `-`, none
/// empty or starting with a dot. This keeps names safe as URL paths and as relative file paths
/// (no `..`), and leaves dot-names free for the local store's own bookkeeping.
fn check_name(name: &str) -> Result<()> {
    let valid = (1..=1024).contains(&name.len())
        && name.split('/').all(|segment| {
            !segment.is_empty()
                && !segment.starts_with('.')
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if valid {
        Ok(())
    } else {
        Err(anyhow!("invalid blob name {name:?}").into())
    }
}

fn check_names(container: &str, name: &str) -> Result<()> {
    check_container(container)?;
    check_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_follow_azure_rules() {
        for good in ["media", "recordings", "abc", "test-1234"] {
            assert!(check_container(good).is_ok(), "{good} should be valid");
        }
        for bad in [
            "ab",
            "Media",
            "-media",
            "media-",
            "me--dia",
            "me_dia",
            &"a".repeat(64),
        ] {
            assert!(check_container(bad).is_err(), "{bad} should be invalid");
        }
    }

    #[test]
    fn blob_names_cannot_escape_or_need_escaping() {
        for good in ["a", "session/part-0001.webm", "2024/05/x_y.mp4"] {
            assert!(check_name(good).is_ok(), "{good} should be valid");
        }
        for bad in [
            "",
            "../etc/passwd",
            "a/../b",
            "/abs",
            "trailing/",
            "a//b",
            ".meta/x",
            "space name",
            "percent%2F",
            "back\\slash",
            "q?x=1",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} should be invalid");
        }
    }
}

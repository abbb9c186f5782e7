//! Blob storage behind one small trait, [`BlobStore`], held as `Arc<dyn BlobStore>`, and
//! implemented by [`AzureBlobStore`]: Azure Blob Storage through `azure_storage_blobs` 0.21, with
//! the app's managed identity in Azure (`AZURE_STORAGE_ACCOUNT_URL`, user delegation SAS) or an
//! account-key connection string (`AZURE_STORAGE_CONNECTION_STRING`: Azurite locally, service
//! SAS).
//!
//! Files never pass through the app, in either direction: clients upload straight to storage
//! with a short-lived write URL for exactly one blob, the app then checks what arrived
//! (the domain's upload rules), and media is read only through short-lived read URLs. Blob and container names
//! are chosen by the product, not by clients, so a malformed name is a bug (an internal error),
//! and names are restricted to characters that need no escaping in a URL.

mod account;
mod azure;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow};
use async_trait::async_trait;
use bytes::Bytes;

pub use account::StorageAccount;
pub use azure::AzureBlobStore;

/// Blob storage: Azure with the managed identity (`AZURE_STORAGE_ACCOUNT_URL`), or Azure or
/// Azurite with an account key (`AZURE_STORAGE_CONNECTION_STRING`); one of the two is required.
#[derive(Debug, Clone)]
pub struct BlobConfig {
    pub backend: BlobBackend,
    /// `BLOB_MEDIA_CONTAINER`, default `media`.
    pub media_container: String,
    /// `BLOB_RECORDINGS_CONTAINER`, default `recordings`.
    pub recordings_container: String,
}

#[derive(Debug, Clone)]
pub enum BlobBackend {
    /// `AZURE_STORAGE_ACCOUNT_URL`: `https://<account>.blob.core.windows.net`.
    ManagedIdentity { account_url: String },
    /// `AZURE_STORAGE_CONNECTION_STRING` (`UseDevelopmentStorage=true` for Azurite).
    SharedKey(StorageAccount),
}

/// What storage knows of a committed blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobProperties {
    pub size: u64,
    pub content_type: String,
}

/// One block of a block blob, as Get Block List reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The block id, decoded (clients send it base64-encoded).
    pub id: Bytes,
    pub size: u64,
    pub committed: bool,
}

#[async_trait]
pub trait BlobStore: Send + Sync {
    /// A URL that lets anyone holding it read the blob, and nothing else, for `ttl`.
    async fn read_url(&self, container: &str, name: &str, ttl: Duration) -> Result<String>;

    /// A URL that lets its holder create or overwrite this one blob, and nothing else, for
    /// `ttl`: Put Blob, or Put Block (with `comp=block&blockid=` added) and Put Block List.
    async fn write_url(&self, container: &str, name: &str, ttl: Duration) -> Result<String>;

    /// The committed blob's size and content type; `None` when there is none.
    async fn properties(&self, container: &str, name: &str) -> Result<Option<BlobProperties>>;

    /// The first `len` bytes of the committed blob (fewer if it is shorter).
    async fn head(&self, container: &str, name: &str, len: usize) -> Result<Bytes>;

    /// The blob's committed and uncommitted blocks; empty when it has none.
    async fn blocks(&self, container: &str, name: &str) -> Result<Vec<Block>>;

    /// Commits the blob as the blocks `ids`, in that order, each in its latest upload
    /// (uncommitted, else committed). Uncommitted blocks not named are discarded. Committing
    /// the same list again is harmless.
    async fn commit_blocks(
        &self,
        container: &str,
        name: &str,
        ids: &[Bytes],
        content_type: &str,
    ) -> Result<()>;

    /// Deletes the blob; deleting a blob that does not exist succeeds.
    async fn delete(&self, container: &str, name: &str) -> Result<()>;
}

/// Builds the store the configuration names. Nothing here contacts a storage service, so the
/// handler is ready at once; Azurite containers are created at their first use.
pub fn from_config(config: &BlobConfig) -> anyhow::Result<Arc<dyn BlobStore>> {
    Ok(match &config.backend {
        BlobBackend::ManagedIdentity { account_url } => {
            Arc::new(AzureBlobStore::with_managed_identity(account_url)?)
        }
        BlobBackend::SharedKey(account) => Arc::new(AzureBlobStore::with_account_key(account)?),
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
        Err(anyhow!("invalid blob container name {container:?}"))
    }
}

/// Checks a blob name: `/`-separated segments of ASCII letters, digits, `.`, `_` and `-`, none
/// empty or starting with a dot. This keeps names safe as URL paths and as relative file paths
/// (no `..`).
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
        Err(anyhow!("invalid blob name {name:?}"))
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

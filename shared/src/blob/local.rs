//! The local-folder store: `<dir>/<container>/<name>`, the content type beside it under
//! `<dir>/<container>/.meta/<name>` (blob names never start a segment with a dot, so these never
//! collide). Writes go to a temporary file in `<dir>/<container>/.tmp/` and are renamed into
//! place, so readers never see half a blob.
//!
//! Read URLs are `{PUBLIC_BASE_URL}/api/blobs/{container}/{name}?exp=<unix>&sig=<hex>`, the
//! HMAC-SHA256 of container, name and expiry under a key drawn at random when the process starts:
//! URLs die with the process, which suits a single local instance.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use chrono::Utc;
use data_encoding::HEXLOWER;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::fs;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::{BlobStore, ByteStream, check_names};
use crate::error::{Error, Result};

const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

pub struct LocalBlobStore {
    root: PathBuf,
    /// `PUBLIC_BASE_URL` without a trailing slash.
    public_base_url: String,
    signing_key: [u8; 32],
}

/// A stored blob opened for streaming to a client.
#[derive(Debug)]
pub struct LocalBlob {
    pub file: fs::File,
    pub size: u64,
    pub content_type: String,
}

impl LocalBlobStore {
    pub fn new(root: &Path, public_base_url: &str) -> Self {
        Self {
            root: root.to_owned(),
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            signing_key: rand::random(),
        }
    }

    /// Checks the `exp` and `sig` query parameters of a read URL for `container`/`name`:
    /// 403 `BLOB_URL_EXPIRED` after the expiry, 403 `BLOB_URL_INVALID` for any other mismatch.
    pub fn verify_local_url(&self, container: &str, name: &str, exp: i64, sig: &str) -> Result<()> {
        let invalid = || Error::forbidden("BLOB_URL_INVALID", "This link is not valid.");
        let signature = HEXLOWER.decode(sig.as_bytes()).map_err(|_| invalid())?;
        self.mac(container, name, exp)
            .verify_slice(&signature)
            .map_err(|_| invalid())?;
        if Utc::now().timestamp() >= exp {
            return Err(Error::forbidden(
                "BLOB_URL_EXPIRED",
                "This link has expired.",
            ));
        }
        Ok(())
    }

    /// Opens a stored blob (404 `BLOB_NOT_FOUND` when there is none). Verify the URL first.
    pub async fn open(&self, container: &str, name: &str) -> Result<LocalBlob> {
        check_names(container, name)?;
        let file = match fs::File::open(self.path(container, name)).await {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::not_found("BLOB_NOT_FOUND", "No such file."));
            }
            Err(error) => {
                return Err(anyhow::Error::new(error)
                    .context(format!("open {name}"))
                    .into());
            }
        };
        let size = file
            .metadata()
            .await
            .with_context(|| format!("read the size of {name}"))?
            .len();
        let content_type = match fs::read_to_string(self.meta_path(container, name)).await {
            Ok(content_type) => content_type,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                DEFAULT_CONTENT_TYPE.to_owned()
            }
            Err(error) => {
                return Err(anyhow::Error::new(error)
                    .context(format!("read the content type of {name}"))
                    .into());
            }
        };
        Ok(LocalBlob {
            file,
            size,
            content_type,
        })
    }

    fn mac(&self, container: &str, name: &str, exp: i64) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.signing_key).expect("HMAC accepts 32-byte keys");
        mac.update(format!("{container}\n{name}\n{exp}").as_bytes());
        mac
    }

    fn path(&self, container: &str, name: &str) -> PathBuf {
        self.root.join(container).join(name)
    }

    fn meta_path(&self, container: &str, name: &str) -> PathBuf {
        self.root.join(container).join(".meta").join(name)
    }

    /// A fresh temporary file on the same file system as the container's blobs.
    async fn temporary(&self, container: &str) -> Result<(PathBuf, fs::File)> {
        let directory = self.root.join(container).join(".tmp");
        fs::create_dir_all(&directory)
            .await
            .with_context(|| format!("create {}", directory.display()))?;
        let path = directory.join(Uuid::new_v4().simple().to_string());
        let file = fs::File::create(&path)
            .await
            .with_context(|| format!("create {}", path.display()))?;
        Ok((path, file))
    }

    /// Moves a finished temporary file into place and records its content type.
    async fn publish(
        &self,
        temporary: &Path,
        container: &str,
        name: &str,
        content_type: &str,
    ) -> Result<()> {
        let path = self.path(container, name);
        let meta_path = self.meta_path(container, name);
        for directory in [path.parent(), meta_path.parent()].into_iter().flatten() {
            fs::create_dir_all(directory)
                .await
                .with_context(|| format!("create {}", directory.display()))?;
        }
        fs::write(&meta_path, content_type)
            .await
            .with_context(|| format!("record the content type of {name}"))?;
        fs::rename(temporary, &path)
            .await
            .with_context(|| format!("move {name} into place"))?;
        Ok(())
    }
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(
        &self,
        container: &str,
        name: &str,
        content_type: &str,
        mut body: ByteStream,
    ) -> Result<u64> {
        check_names(container, name)?;
        let (temporary, mut file) = self.temporary(container).await?;
        let written = async {
            let mut size = 0;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.context("read the body to upload")?;
                file.write_all(&chunk)
                    .await
                    .with_context(|| format!("write {name}"))?;
                size += chunk.len() as u64;
            }
            file.flush()
                .await
                .with_context(|| format!("write {name}"))?;
            Ok::<_, Error>(size)
        }
        .await;
        drop(file);
        match written {
            Ok(size) => {
                self.publish(&temporary, container, name, content_type)
                    .await?;
                Ok(size)
            }
            Err(error) => {
                let _ = fs::remove_file(&temporary).await;
                Err(error)
            }
        }
    }

    async fn concat(
        &self,
        container: &str,
        parts: &[String],
        target: &str,
        content_type: &str,
    ) -> Result<u64> {
        check_names(container, target)?;
        let (temporary, mut file) = self.temporary(container).await?;
        let written = async {
            let mut size = 0;
            for part in parts {
                check_names(container, part)?;
                let mut source = fs::File::open(self.path(container, part))
                    .await
                    .with_context(|| format!("open {part}"))?;
                size += tokio::io::copy(&mut source, &mut file)
                    .await
                    .with_context(|| format!("copy {part} into {target}"))?;
            }
            file.flush()
                .await
                .with_context(|| format!("write {target}"))?;
            Ok::<_, Error>(size)
        }
        .await;
        drop(file);
        match written {
            Ok(size) => {
                self.publish(&temporary, container, target, content_type)
                    .await?;
                Ok(size)
            }
            Err(error) => {
                let _ = fs::remove_file(&temporary).await;
                Err(error)
            }
        }
    }

    async fn read_url(&self, container: &str, name: &str, ttl: Duration) -> Result<String> {
        check_names(container, name)?;
        let ttl =
            i64::try_from(ttl.as_secs()).map_err(|_| anyhow!("read URL lifetime too long"))?;
        // Round up, so a URL always lives at least its ttl.
        let exp = Utc::now().timestamp() + ttl + 1;
        let sig = HEXLOWER.encode(&self.mac(container, name, exp).finalize().into_bytes());
        Ok(format!(
            "{}/api/blobs/{container}/{name}?exp={exp}&sig={sig}",
            self.public_base_url
        ))
    }

    async fn delete(&self, container: &str, name: &str) -> Result<()> {
        check_names(container, name)?;
        for path in [self.path(container, name), self.meta_path(container, name)] {
            match fs::remove_file(&path).await {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(anyhow::Error::new(error)
                        .context(format!("delete {name}"))
                        .into());
                }
            }
        }
        Ok(())
    }

    fn local(&self) -> Option<&LocalBlobStore> {
        Some(self)
    }
}

//! Azure Blob Storage (and Azurite) through `azure_storage_blobs` 0.21.
//!
//! Uploads are staged as blocks of [`BLOCK_SIZE`] and committed with Put Block List, so memory
//! stays at one block whatever the body's size. [`BlobStore::concat`] composes the target on the
//! server: Put Block From URL for each part (read through a short SAS of the part), then Put Block
//! List. Azurite does not implement Put Block From URL (it answers 501), so on a 501 the store
//! falls back, once and for the rest of the process, to streaming each part through this process
//! block by block.
//!
//! Read URLs are signed in [`super::sas`]: with the account key when there is one, else with a
//! user delegation key that the managed identity obtains and that is cached until near expiry.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use azure_core::StatusCode;
use azure_core::error::ErrorKind;
use azure_core::request_options::Range;
use azure_storage::{CloudLocation, StorageCredentials};
use azure_storage_blobs::prelude::{
    BlobBlockType, BlobClient, BlobServiceClient, BlockId, BlockList, ClientBuilder,
    ContainerClient,
};
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, TimeDelta, Utc};
use data_encoding::BASE64;
use futures::StreamExt;
use reqwest::Url;
use uuid::Uuid;

use super::account::{StorageAccount, check_endpoint, is_loopback};
use super::sas::{self, DelegationKey, ReadGrant};
use super::{BlobStore, ByteStream, check_container, check_names};
use crate::error::Result;

/// Bytes per staged block: 100 blocks for a 100 MB video, and the most memory one upload holds.
const BLOCK_SIZE: usize = 1024 * 1024;

/// Bytes per Put Block From URL. The service allows blocks up to 4000 MiB (since version
/// 2019-12-12; 100 MiB before), but a copy request must finish within the service's time-out, so
/// larger parts are copied as several ranges of this size.
const COPY_BLOCK_SIZE: u64 = 100 * 1024 * 1024;

/// How long the service may read a part through its SAS during a concat.
const COPY_SOURCE_TTL: Duration = Duration::from_secs(15 * 60);

/// A user delegation key is requested for this long (the service allows at most 7 days)...
const DELEGATION_KEY_LIFETIME: TimeDelta = TimeDelta::hours(24);
/// ...and replaced when a URL would outlive it, with this margin.
const DELEGATION_KEY_MARGIN: TimeDelta = TimeDelta::minutes(5);
/// The longest read URL a user delegation key can back.
const MAX_DELEGATED_TTL: TimeDelta = TimeDelta::days(6);

pub struct AzureBlobStore {
    service: BlobServiceClient,
    account: String,
    /// The blob endpoint without a trailing slash.
    endpoint: String,
    /// `spr` of the SAS: `https`, or `https,http` for an emulator on this machine.
    protocol: &'static str,
    signer: Signer,
    /// With an account key (Azurite, local runs) containers are created at first use; with the
    /// managed identity they exist already (Bicep) and the identity need not create them.
    create_containers: bool,
    ready_containers: Mutex<HashSet<String>>,
    /// False once the service has answered Put Block From URL with 501 (Azurite).
    copy_from_url: AtomicBool,
    /// Reads parts when concatenating without Put Block From URL.
    http: reqwest::Client,
}

enum Signer {
    /// The base64-decoded account key.
    AccountKey(Vec<u8>),
    UserDelegation(tokio::sync::Mutex<Option<CachedKey>>),
}

struct CachedKey {
    key: DelegationKey,
    valid_until: DateTime<Utc>,
}

impl AzureBlobStore {
    /// Azure with the app's managed identity (or whatever `DefaultAzureCredential` finds:
    /// environment credentials, App Service or VM identity, Azure CLI).
    /// `account_url` is `https://<account>.blob.core.windows.net`.
    pub fn with_managed_identity(account_url: &str) -> anyhow::Result<Self> {
        let endpoint = account_url.trim().trim_end_matches('/').to_owned();
        check_endpoint(&endpoint)
            .map_err(|problem| anyhow!("AZURE_STORAGE_ACCOUNT_URL {problem}"))?;
        let url = Url::parse(&endpoint).context("parse AZURE_STORAGE_ACCOUNT_URL")?;
        let account = url
            .host_str()
            .and_then(|host| host.split('.').next())
            .filter(|account| !account.is_empty())
            .context("AZURE_STORAGE_ACCOUNT_URL names no account")?
            .to_owned();
        let credential =
            azure_identity::create_credential().context("create the Azure credential")?;
        let service = ClientBuilder::with_location(
            CloudLocation::Custom {
                account: account.clone(),
                uri: endpoint.clone(),
            },
            StorageCredentials::token_credential(credential),
        )
        .blob_service_client();
        Ok(Self {
            service,
            account,
            endpoint,
            protocol: "https",
            signer: Signer::UserDelegation(tokio::sync::Mutex::new(None)),
            create_containers: false,
            ready_containers: Mutex::new(HashSet::new()),
            copy_from_url: AtomicBool::new(true),
            http: reqwest::Client::new(),
        })
    }

    /// Azure or Azurite with an account key (from a connection string).
    pub fn with_account_key(account: &StorageAccount) -> anyhow::Result<Self> {
        let key = BASE64
            .decode(account.key.expose().as_bytes())
            .map_err(|_| anyhow!("the storage account key is not base64"))?;
        let endpoint_url = Url::parse(&account.blob_endpoint).context("parse the blob endpoint")?;
        let protocol = if endpoint_url.scheme() == "http" && is_loopback(&endpoint_url) {
            "https,http"
        } else {
            "https"
        };
        let credentials = StorageCredentials::access_key(
            account.name.clone(),
            azure_core::auth::Secret::new(account.key.expose().to_owned()),
        );
        let service = ClientBuilder::with_location(
            CloudLocation::Custom {
                account: account.name.clone(),
                uri: account.blob_endpoint.clone(),
            },
            credentials,
        )
        .blob_service_client();
        Ok(Self {
            service,
            account: account.name.clone(),
            endpoint: account.blob_endpoint.clone(),
            protocol,
            signer: Signer::AccountKey(key),
            create_containers: true,
            ready_containers: Mutex::new(HashSet::new()),
            copy_from_url: AtomicBool::new(true),
            http: reqwest::Client::new(),
        })
    }

    /// Creates the container once per process when this store manages containers.
    async fn container(&self, container: &str) -> Result<ContainerClient> {
        check_container(container)?;
        let client = self.service.container_client(container);
        if !self.create_containers
            || self
                .ready_containers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(container)
        {
            return Ok(client);
        }
        match client.create().await {
            Ok(_) => {}
            Err(error) if status(&error) == Some(StatusCode::Conflict) => {}
            Err(error) => {
                return Err(anyhow::Error::new(error)
                    .context(format!("create blob container {container}"))
                    .into());
            }
        }
        self.ready_containers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(container.to_owned());
        Ok(client)
    }

    async fn signed_url(&self, container: &str, name: &str, ttl: Duration) -> Result<String> {
        check_names(container, name)?;
        let ttl = TimeDelta::from_std(ttl).context("read URL lifetime out of range")?;
        let grant = ReadGrant {
            account: &self.account,
            container,
            name,
            expiry: Utc::now() + ttl,
            protocol: self.protocol,
        };
        let params = match &self.signer {
            Signer::AccountKey(key) => sas::service_sas(&grant, key),
            Signer::UserDelegation(cache) => {
                let mut cache = cache.lock().await;
                let key = self.delegation_key(&mut cache, ttl).await?;
                sas::user_delegation_sas(&grant, key)
            }
        };
        let mut url = Url::parse(&format!("{}/{container}/{name}", self.endpoint))
            .context("build the blob URL")?;
        url.query_pairs_mut().extend_pairs(params);
        Ok(url.into())
    }

    /// The cached user delegation key, replaced when a URL living `ttl` would outlive it.
    async fn delegation_key<'c>(
        &self,
        cache: &'c mut Option<CachedKey>,
        ttl: TimeDelta,
    ) -> Result<&'c DelegationKey> {
        if ttl > MAX_DELEGATED_TTL {
            return Err(anyhow!("read URLs may live at most {MAX_DELEGATED_TTL}").into());
        }
        let now = Utc::now();
        let fresh = cache
            .as_ref()
            .is_some_and(|cached| cached.valid_until > now + ttl + DELEGATION_KEY_MARGIN);
        if !fresh {
            // Whole seconds, so the times the service echoes back format exactly as it signed
            // them; the start is a little in the past to allow for clock skew.
            let start = whole_seconds(now - TimeDelta::minutes(1))?;
            let expiry =
                whole_seconds(now + DELEGATION_KEY_LIFETIME.max(ttl + TimeDelta::hours(1)))?;
            let response = self
                .service
                .get_user_deligation_key(start, expiry)
                .await
                .context("get a user delegation key")?;
            let key = response.user_deligation_key;
            let value = BASE64
                .decode(key.value.secret().as_bytes())
                .map_err(|_| anyhow!("the user delegation key is not base64"))?;
            let valid_until = to_chrono(key.signed_expiry)?;
            *cache = Some(CachedKey {
                key: DelegationKey {
                    object_id: key.signed_oid.to_string(),
                    tenant_id: key.signed_tid.to_string(),
                    start: sas::format_time(to_chrono(key.signed_start)?),
                    expiry: sas::format_time(valid_until),
                    service: key.signed_service,
                    version: key.signed_version,
                    value,
                },
                valid_until,
            });
        }
        let cached = cache.as_ref().context("user delegation key cache")?;
        Ok(&cached.key)
    }

    /// Stages every part as blocks of `target` read by the service from the part's SAS URL.
    async fn stage_from_urls(
        &self,
        container: &str,
        parts: &[(String, u64)],
        target: &BlobClient,
        upload: &str,
    ) -> std::result::Result<Vec<BlockId>, StageError> {
        let mut blocks = Vec::new();
        for (part, size) in parts {
            let source: Url = self
                .signed_url(container, part, COPY_SOURCE_TTL)
                .await
                .map_err(StageError::Other)?
                .parse()
                .map_err(|_| StageError::Other(anyhow!("parse the SAS URL of {part}").into()))?;
            let mut start = 0;
            while start < *size {
                let end = (start + COPY_BLOCK_SIZE).min(*size);
                let id = block_id(upload, blocks.len());
                let staged = target
                    .put_block_url(id.clone(), source.clone())
                    .range(Range::new(start, end))
                    .await;
                match staged {
                    Ok(_) => blocks.push(id),
                    Err(error) if status(&error) == Some(StatusCode::NotImplemented) => {
                        return Err(StageError::NotImplemented);
                    }
                    Err(error) => {
                        return Err(StageError::Other(
                            anyhow::Error::new(error)
                                .context(format!("copy {part} into {}", target.blob_name()))
                                .into(),
                        ));
                    }
                }
                start = end;
            }
        }
        Ok(blocks)
    }

    /// Stages every part as blocks of `target` by reading it through this process, one block
    /// at a time (for services without Put Block From URL). The parts are read with a plain GET
    /// of their SAS URL: the SDK's ranged reads ask for a CRC64 that Azurite refuses.
    async fn stage_by_streaming(
        &self,
        container: &str,
        parts: &[(String, u64)],
        target: &BlobClient,
        upload: &str,
    ) -> Result<Vec<BlockId>> {
        let mut blocks = Blocks::new(target, upload);
        for (part, _) in parts {
            let url = self.signed_url(container, part, COPY_SOURCE_TTL).await?;
            let response = self
                .http
                .get(url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(reqwest::Error::without_url)
                .with_context(|| format!("read {part}"))?;
            let mut body = response.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk
                    .map_err(reqwest::Error::without_url)
                    .with_context(|| format!("read {part}"))?;
                blocks.write(&chunk).await?;
            }
        }
        blocks.finish().await
    }
}

#[async_trait]
impl BlobStore for AzureBlobStore {
    async fn put(
        &self,
        container: &str,
        name: &str,
        content_type: &str,
        mut body: ByteStream,
    ) -> Result<u64> {
        check_names(container, name)?;
        let blob = self.container(container).await?.blob_client(name);
        // A per-upload prefix keeps the blocks of two concurrent uploads of one name apart.
        let upload = Uuid::new_v4().simple().to_string();
        let mut blocks = Blocks::new(&blob, &upload);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.context("read the body to upload")?;
            blocks.write(&chunk).await?;
        }
        let size = blocks.size;
        if blocks.staged.is_empty() {
            // Small bodies go up in one request.
            blob.put_block_blob(blocks.buffer.freeze())
                .content_type(content_type.to_owned())
                .await
                .with_context(|| format!("upload {name}"))?;
        } else {
            commit(&blob, blocks.finish().await?, content_type).await?;
        }
        Ok(size)
    }

    async fn concat(
        &self,
        container: &str,
        parts: &[String],
        target: &str,
        content_type: &str,
    ) -> Result<u64> {
        check_names(container, target)?;
        let container_client = self.container(container).await?;
        let mut sized_parts = Vec::with_capacity(parts.len());
        for part in parts {
            check_names(container, part)?;
            let properties = container_client
                .blob_client(part)
                .get_properties()
                .await
                .with_context(|| format!("read the properties of {part}"))?;
            sized_parts.push((part.clone(), properties.blob.properties.content_length));
        }
        let target_blob = container_client.blob_client(target);
        let upload = Uuid::new_v4().simple().to_string();
        let blocks = if self.copy_from_url.load(Ordering::Relaxed) {
            match self
                .stage_from_urls(container, &sized_parts, &target_blob, &upload)
                .await
            {
                Ok(blocks) => blocks,
                Err(StageError::NotImplemented) => {
                    tracing::warn!(
                        "the blob service lacks Put Block From URL (Azurite?); \
                         concatenating through this process instead"
                    );
                    self.copy_from_url.store(false, Ordering::Relaxed);
                    self.stage_by_streaming(container, &sized_parts, &target_blob, &upload)
                        .await?
                }
                Err(StageError::Other(error)) => return Err(error),
            }
        } else {
            self.stage_by_streaming(container, &sized_parts, &target_blob, &upload)
                .await?
        };
        commit(&target_blob, blocks, content_type).await?;
        Ok(sized_parts.iter().map(|(_, size)| size).sum())
    }

    async fn read_url(&self, container: &str, name: &str, ttl: Duration) -> Result<String> {
        self.signed_url(container, name, ttl).await
    }

    async fn delete(&self, container: &str, name: &str) -> Result<()> {
        check_names(container, name)?;
        match self
            .service
            .container_client(container)
            .blob_client(name)
            .delete()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if status(&error) == Some(StatusCode::NotFound) => Ok(()),
            Err(error) => Err(anyhow::Error::new(error)
                .context(format!("delete {name}"))
                .into()),
        }
    }
}

enum StageError {
    NotImplemented,
    Other(crate::error::Error),
}

/// Block ids must have one length within a blob: the upload's 32 hex digits and 6 digits.
fn block_id(upload: &str, index: usize) -> BlockId {
    BlockId::new(Bytes::from(format!("{upload}{index:06}")))
}

/// Cuts a byte stream into blocks of [`BLOCK_SIZE`] and stages each as it fills.
struct Blocks<'b> {
    blob: &'b BlobClient,
    upload: &'b str,
    staged: Vec<BlockId>,
    /// Bytes not yet staged: less than one block between writes.
    buffer: BytesMut,
    size: u64,
}

impl<'b> Blocks<'b> {
    fn new(blob: &'b BlobClient, upload: &'b str) -> Self {
        Self {
            blob,
            upload,
            staged: Vec::new(),
            buffer: BytesMut::new(),
            size: 0,
        }
    }

    async fn write(&mut self, mut chunk: &[u8]) -> Result<()> {
        self.size += chunk.len() as u64;
        while !chunk.is_empty() {
            let taken = chunk.len().min(BLOCK_SIZE - self.buffer.len());
            self.make_room(taken);
            self.buffer.extend_from_slice(&chunk[..taken]);
            chunk = &chunk[taken..];
            if self.buffer.len() == BLOCK_SIZE {
                let block = std::mem::take(&mut self.buffer).freeze();
                self.stage(block).await?;
            }
        }
        Ok(())
    }

    /// Grows the buffer by doubling, but never past one block (a small part holds little, a
    /// large one exactly a block).
    fn make_room(&mut self, additional: usize) {
        let needed = self.buffer.len() + additional;
        if needed > self.buffer.capacity() {
            let capacity = needed.max(2 * self.buffer.capacity()).min(BLOCK_SIZE);
            let mut grown = BytesMut::with_capacity(capacity);
            grown.extend_from_slice(&self.buffer);
            self.buffer = grown;
        }
    }

    /// Stages what remains and returns every block id, in order.
    async fn finish(mut self) -> Result<Vec<BlockId>> {
        if !self.buffer.is_empty() {
            let rest = std::mem::take(&mut self.buffer).freeze();
            self.stage(rest).await?;
        }
        Ok(self.staged)
    }

    async fn stage(&mut self, data: Bytes) -> Result<()> {
        let index = self.staged.len();
        let id = block_id(self.upload, index);
        self.blob
            .put_block(id.clone(), data)
            .await
            .with_context(|| format!("upload block {index} of {}", self.blob.blob_name()))?;
        self.staged.push(id);
        Ok(())
    }
}

async fn commit(blob: &BlobClient, blocks: Vec<BlockId>, content_type: &str) -> Result<()> {
    let block_list = BlockList {
        blocks: blocks
            .into_iter()
            .map(BlobBlockType::new_uncommitted)
            .collect(),
    };
    blob.put_block_list(block_list)
        .content_type(content_type.to_owned())
        .await
        .with_context(|| format!("commit the blocks of {}", blob.blob_name()))?;
    Ok(())
}

fn status(error: &azure_core::Error) -> Option<StatusCode> {
    match error.kind() {
        ErrorKind::HttpResponse { status, .. } => Some(*status),
        _ => None,
    }
}

fn whole_seconds(time: DateTime<Utc>) -> anyhow::Result<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(time.timestamp()).context("time out of range")
}

fn to_chrono(time: time::OffsetDateTime) -> anyhow::Result<DateTime<Utc>> {
    DateTime::from_timestamp(time.unix_timestamp(), 0).context("time out of range")
}

//! Azure Blob Storage (and Azurite) through `azure_storage_blobs` 0.21.
//!
//! Clients upload straight to storage with a short write SAS for one blob; this store signs those
//! URLs and the read URLs, then inspects what arrived (properties, first bytes, block lists) and
//! commits block lists. No file passes through this process.
//!
//! SAS are signed in [`super::sas`]: with the account key when there is one, else with a user
//! delegation key that the managed identity obtains and that is cached until near expiry.

use crate::config::ExposeSecret;
use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use azure_core::StatusCode;
use azure_core::error::ErrorKind;
use azure_storage::{CloudLocation, StorageCredentials};
use azure_storage_blobs::prelude::{
    BlobBlockType, BlobServiceClient, BlockId, BlockList, BlockListType, ClientBuilder,
    ContainerClient,
};
use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use data_encoding::BASE64;
use reqwest::Url;

use super::account::{StorageAccount, check_endpoint, is_loopback};
use super::sas::{self, DelegationKey, Grant};
use super::{BlobProperties, BlobStore, Block, check_container, check_names};
use crate::error::Result;

/// How long the SAS lives that this store reads a blob's first bytes through.
const HEAD_READ_TTL: Duration = Duration::from_secs(5 * 60);

/// A user delegation key is requested for this long (the service allows at most 7 days)...
const DELEGATION_KEY_LIFETIME: TimeDelta = TimeDelta::hours(24);
/// ...and replaced when a URL would outlive it, with this margin.
const DELEGATION_KEY_MARGIN: TimeDelta = TimeDelta::minutes(5);
/// The longest SAS URL a user delegation key can back.
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
    /// Reads the first bytes of uploads.
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
            http: reqwest::Client::new(),
        })
    }

    /// Azure or Azurite with an account key (from a connection string).
    pub fn with_account_key(account: &StorageAccount) -> anyhow::Result<Self> {
        let key = BASE64
            .decode(account.key.expose_secret().as_bytes())
            .map_err(|_| anyhow!("the storage account key is not base64"))?;
        let endpoint_url = Url::parse(&account.blob_endpoint).context("parse the blob endpoint")?;
        let protocol = if endpoint_url.scheme() == "http" && is_loopback(&endpoint_url) {
            "https,http"
        } else {
            "https"
        };
        let credentials = StorageCredentials::access_key(
            account.name.clone(),
            azure_core::auth::Secret::new(account.key.expose_secret().to_owned()),
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

    async fn signed_url(
        &self,
        container: &str,
        name: &str,
        permissions: &'static str,
        ttl: Duration,
    ) -> Result<String> {
        check_names(container, name)?;
        let ttl = TimeDelta::from_std(ttl).context("SAS lifetime out of range")?;
        let grant = Grant {
            account: &self.account,
            container,
            name,
            permissions,
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
            return Err(anyhow!("SAS URLs may live at most {MAX_DELEGATED_TTL}").into());
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
}

#[async_trait]
impl BlobStore for AzureBlobStore {
    async fn read_url(&self, container: &str, name: &str, ttl: Duration) -> Result<String> {
        self.signed_url(container, name, "r", ttl).await
    }

    async fn write_url(&self, container: &str, name: &str, ttl: Duration) -> Result<String> {
        // The client's first request must find the container (Azurite creates none itself).
        self.container(container).await?;
        self.signed_url(container, name, "cw", ttl).await
    }

    async fn properties(&self, container: &str, name: &str) -> Result<Option<BlobProperties>> {
        check_names(container, name)?;
        let blob = self.service.container_client(container).blob_client(name);
        match blob.get_properties().await {
            Ok(response) => Ok(Some(BlobProperties {
                size: response.blob.properties.content_length,
                content_type: response.blob.properties.content_type,
            })),
            Err(error) if status(&error) == Some(StatusCode::NotFound) => Ok(None),
            Err(error) => Err(anyhow::Error::new(error)
                .context(format!("read the properties of {name}"))
                .into()),
        }
    }

    async fn head(&self, container: &str, name: &str, len: usize) -> Result<Bytes> {
        // A plain ranged GET of a read SAS: the SDK's ranged reads ask for a CRC64 that Azurite
        // refuses.
        let url = self.signed_url(container, name, "r", HEAD_READ_TTL).await?;
        let response = self
            .http
            .get(url)
            .header(
                reqwest::header::RANGE,
                format!("bytes=0-{}", len.max(1) - 1),
            )
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(reqwest::Error::without_url)
            .with_context(|| format!("read the start of {name}"))?;
        let mut body = response
            .bytes()
            .await
            .map_err(reqwest::Error::without_url)
            .with_context(|| format!("read the start of {name}"))?;
        body.truncate(len);
        Ok(body)
    }

    async fn blocks(&self, container: &str, name: &str) -> Result<Vec<Block>> {
        check_names(container, name)?;
        let blob = self.service.container_client(container).blob_client(name);
        let listed = blob
            .get_block_list()
            .block_list_type(BlockListType::All)
            .await;
        let listed = match listed {
            Ok(listed) => listed,
            Err(error) if status(&error) == Some(StatusCode::NotFound) => return Ok(Vec::new()),
            Err(error) => {
                return Err(anyhow::Error::new(error)
                    .context(format!("list the blocks of {name}"))
                    .into());
            }
        };
        Ok(listed
            .block_with_size_list
            .blocks
            .into_iter()
            .filter_map(|block| {
                let (id, committed) = match block.block_list_type {
                    BlobBlockType::Committed(id) => (id, true),
                    BlobBlockType::Uncommitted(id) => (id, false),
                    BlobBlockType::Latest(_) => return None,
                };
                Some(Block {
                    id: id.bytes().clone(),
                    size: block.size_in_bytes,
                    committed,
                })
            })
            .collect())
    }

    async fn commit_blocks(
        &self,
        container: &str,
        name: &str,
        ids: &[Bytes],
        content_type: &str,
    ) -> Result<()> {
        check_names(container, name)?;
        let blob = self.service.container_client(container).blob_client(name);
        let block_list = BlockList {
            blocks: ids
                .iter()
                .map(|id| BlobBlockType::new_latest(BlockId::new(id.clone())))
                .collect(),
        };
        blob.put_block_list(block_list)
            .content_type(content_type.to_owned())
            .await
            .with_context(|| format!("commit the blocks of {name}"))?;
        Ok(())
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

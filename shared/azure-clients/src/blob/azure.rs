//! Azure Blob Storage (and Azurite) through `azure_storage_blobs` 0.21.
//!
//! Clients upload straight to storage with a short write SAS for one blob; this store signs those
//! URLs and the read URLs, then inspects what arrived (properties, first bytes, block lists) and
//! commits block lists. No file passes through this process.
//!
//! SAS are signed by `azure_storage` (signed version 2022-11-02): with the account key when
//! there is one, else with a user delegation key that the managed identity obtains and that is
//! cached until near expiry.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use async_trait::async_trait;
use azure_core::StatusCode;
use azure_core::error::ErrorKind;
use azure_storage::shared_access_signature::SasProtocol;
use azure_storage::shared_access_signature::SasToken;
use azure_storage::shared_access_signature::service_sas::{
    BlobSasPermissions, BlobSharedAccessSignature, BlobSignedResource, SasKey, UserDeligationKey,
};
use azure_storage::{CloudLocation, StorageCredentials};
use azure_storage_blobs::prelude::{
    BlobBlockType, BlobServiceClient, BlockId, BlockList, BlockListType, ClientBuilder,
    ContainerClient,
};
use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use reqwest::Url;
use secrecy::ExposeSecret;
use tracing::{Instrument, Span};

use super::account::{StorageAccount, check_endpoint, is_loopback};
use super::{BlobProperties, BlobStore, Block, check_container, check_names};
use crate::outbound;

/// Reading one blob.
const READ: BlobSasPermissions = BlobSasPermissions {
    read: true,
    add: false,
    create: false,
    write: false,
    delete: false,
    delete_version: false,
    permanent_delete: false,
    list: false,
    tags: false,
    move_: false,
    execute: false,
    ownership: false,
    permissions: false,
};
/// Put Blob, Put Block and Put Block List on one blob.
const CREATE_AND_WRITE: BlobSasPermissions = BlobSasPermissions {
    read: false,
    create: true,
    write: true,
    ..READ
};

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
    /// `spr` of the SAS: `https`, or both for an emulator on this machine.
    protocol: SasProtocol,
    signer: Signer,
    /// With an account key (Azurite, local runs) containers are created at first use; with the
    /// managed identity they exist already (Bicep) and the identity need not create them.
    create_containers: bool,
    ready_containers: Mutex<HashSet<String>>,
    /// Reads the first bytes of uploads.
    http: reqwest::Client,
}

enum Signer {
    /// The account key as given (base64).
    AccountKey(azure_core::auth::Secret),
    /// A user delegation key obtained with the managed identity, cached until near expiry.
    UserDelegation(tokio::sync::Mutex<Option<UserDeligationKey>>),
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
            protocol: SasProtocol::Https,
            signer: Signer::UserDelegation(tokio::sync::Mutex::new(None)),
            create_containers: false,
            ready_containers: Mutex::new(HashSet::new()),
            http: reqwest::Client::new(),
        })
    }

    /// Azure or Azurite with an account key (from a connection string).
    pub fn with_account_key(account: &StorageAccount) -> anyhow::Result<Self> {
        let key = azure_core::auth::Secret::new(account.key.expose_secret().to_owned());
        let endpoint_url = Url::parse(&account.blob_endpoint).context("parse the blob endpoint")?;
        let protocol = if endpoint_url.scheme() == "http" && is_loopback(&endpoint_url) {
            SasProtocol::HttpHttps
        } else {
            SasProtocol::Https
        };
        let credentials = StorageCredentials::access_key(account.name.clone(), key.clone());
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
        match client
            .create()
            .into_future()
            .instrument(self.traced("CreateContainer", "PUT"))
            .await
        {
            Ok(_) => {}
            Err(error) if status(&error) == Some(StatusCode::Conflict) => {}
            Err(error) => {
                return Err(
                    anyhow::Error::new(error).context(format!("create blob container {container}"))
                );
            }
        }
        self.ready_containers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(container.to_owned());
        Ok(client)
    }

    /// A dependency span for one call to storage through the SDK.
    fn traced(&self, operation: &'static str, method: &'static str) -> Span {
        let host = Url::parse(&self.endpoint).ok();
        tracing::info_span!(
            "blob",
            otel.kind = "client",
            otel.name = format!("Blob Storage {operation}"),
            peer.service = "Blob Storage",
            http.request.method = method,
            server.address = host.as_ref().and_then(Url::host_str).unwrap_or(""),
        )
    }

    /// The blob's URL with a SAS granting `permissions` on it alone for `ttl`, signed by
    /// `azure_storage` (signed version 2022-11-02).
    async fn signed_url(
        &self,
        container: &str,
        name: &str,
        permissions: BlobSasPermissions,
        ttl: Duration,
    ) -> Result<String> {
        check_names(container, name)?;
        let ttl = TimeDelta::from_std(ttl).context("SAS lifetime out of range")?;
        let key: SasKey = match &self.signer {
            Signer::AccountKey(key) => key.clone().into(),
            Signer::UserDelegation(cache) => {
                let mut cache = cache.lock().await;
                self.delegation_key(&mut cache, ttl).await?.clone().into()
            }
        };
        let expiry = whole_seconds(Utc::now() + ttl)?;
        let token = sas_query(
            key,
            &self.account,
            container,
            name,
            permissions,
            expiry,
            self.protocol,
        )?;
        let mut url = Url::parse(&format!("{}/{container}/{name}", self.endpoint))
            .context("build the blob URL")?;
        url.set_query(Some(&token));
        Ok(url.into())
    }

    /// The cached user delegation key, replaced when a URL living `ttl` would outlive it.
    async fn delegation_key<'c>(
        &self,
        cache: &'c mut Option<UserDeligationKey>,
        ttl: TimeDelta,
    ) -> Result<&'c UserDeligationKey> {
        if ttl > MAX_DELEGATED_TTL {
            return Err(anyhow!("SAS URLs may live at most {MAX_DELEGATED_TTL}"));
        }
        let now = Utc::now();
        let needed_until = whole_seconds(now + ttl + DELEGATION_KEY_MARGIN)?;
        let fresh = cache
            .as_ref()
            .is_some_and(|key| key.signed_expiry > needed_until);
        if !fresh {
            // Whole seconds, so the times the service echoes back format exactly as it signed
            // them; the start is a little in the past to allow for clock skew.
            let start = whole_seconds(now - TimeDelta::minutes(1))?;
            let expiry =
                whole_seconds(now + DELEGATION_KEY_LIFETIME.max(ttl + TimeDelta::hours(1)))?;
            let response = self
                .service
                .get_user_deligation_key(start, expiry)
                .into_future()
                .instrument(self.traced("GetUserDelegationKey", "POST"))
                .await
                .context("get a user delegation key")?;
            *cache = Some(response.user_deligation_key);
        }
        cache.as_ref().context("user delegation key cache")
    }
}

#[async_trait]
impl BlobStore for AzureBlobStore {
    async fn read_url(&self, container: &str, name: &str, ttl: Duration) -> Result<String> {
        self.signed_url(container, name, READ, ttl).await
    }

    async fn write_url(&self, container: &str, name: &str, ttl: Duration) -> Result<String> {
        // The client's first request must find the container (Azurite creates none itself).
        self.container(container).await?;
        self.signed_url(container, name, CREATE_AND_WRITE, ttl)
            .await
    }

    async fn properties(&self, container: &str, name: &str) -> Result<Option<BlobProperties>> {
        check_names(container, name)?;
        let blob = self.service.container_client(container).blob_client(name);
        match blob
            .get_properties()
            .into_future()
            .instrument(self.traced("GetBlobProperties", "HEAD"))
            .await
        {
            Ok(response) => Ok(Some(BlobProperties {
                size: response.blob.properties.content_length,
                content_type: response.blob.properties.content_type,
            })),
            Err(error) if status(&error) == Some(StatusCode::NotFound) => Ok(None),
            Err(error) => {
                Err(anyhow::Error::new(error).context(format!("read the properties of {name}")))
            }
        }
    }

    async fn head(&self, container: &str, name: &str, len: usize) -> Result<Bytes> {
        // A plain ranged GET of a read SAS: the SDK's ranged reads ask for a CRC64 that Azurite
        // refuses.
        let url = self
            .signed_url(container, name, READ, HEAD_READ_TTL)
            .await?;
        let request = self.http.get(url).header(
            reqwest::header::RANGE,
            format!("bytes=0-{}", len.max(1) - 1),
        );
        let response = outbound::send(request, "Blob Storage")
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
            .into_future()
            .instrument(self.traced("GetBlockList", "GET"))
            .await;
        let listed = match listed {
            Ok(listed) => listed,
            Err(error) if status(&error) == Some(StatusCode::NotFound) => return Ok(Vec::new()),
            Err(error) => {
                return Err(anyhow::Error::new(error).context(format!("list the blocks of {name}")));
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
            .into_future()
            .instrument(self.traced("PutBlockList", "PUT"))
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
            .into_future()
            .instrument(self.traced("DeleteBlob", "DELETE"))
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if status(&error) == Some(StatusCode::NotFound) => Ok(()),
            Err(error) => Err(anyhow::Error::new(error).context(format!("delete {name}"))),
        }
    }
}

/// The query of a SAS for one blob.
fn sas_query(
    key: SasKey,
    account: &str,
    container: &str,
    name: &str,
    permissions: BlobSasPermissions,
    expiry: time::OffsetDateTime,
    protocol: SasProtocol,
) -> Result<String> {
    BlobSharedAccessSignature::new(
        key,
        format!("/blob/{account}/{container}/{name}"),
        permissions,
        expiry,
        BlobSignedResource::Blob,
    )
    .protocol(protocol)
    .token()
    .context("sign a SAS")
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

#[cfg(test)]
mod tests {
    use super::*;

    const EMULATOR_KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    fn expiry() -> time::OffsetDateTime {
        time::OffsetDateTime::parse(
            "2030-01-02T03:04:05Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    }

    fn param(query: &str, name: &str) -> String {
        reqwest::Url::parse(&format!("http://x/?{query}"))
            .unwrap()
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
            .unwrap_or_else(|| panic!("no {name} in {query}"))
    }

    // Expected signatures were computed with Azurite 3.35.0's own validator
    // (`generateBlobSASSignature` and `generateBlobSASSignatureWithUDK` in
    // dist/src/blob/authentication/IBlobSASSignatureValues.js) from the same values.

    #[test]
    fn a_service_sas_to_write_matches_azurites_signature() {
        let query = sas_query(
            azure_core::auth::Secret::new(EMULATOR_KEY).into(),
            "devstoreaccount1",
            "media",
            "videos/intro.mp4",
            CREATE_AND_WRITE,
            expiry(),
            SasProtocol::HttpHttps,
        )
        .unwrap();
        assert_eq!(param(&query, "sp"), "cw");
        assert_eq!(param(&query, "sv"), "2022-11-02");
        assert_eq!(param(&query, "se"), "2030-01-02T03:04:05Z");
        assert_eq!(
            param(&query, "sig"),
            "6lg+4fbadw3mXb1HRmqJvpy6ATZ+mz1oT2omZ6f6ifE="
        );
    }

    #[test]
    fn a_user_delegation_sas_to_read_matches_azurites_signature() {
        let at = |text: &str| {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        let key = UserDeligationKey {
            signed_oid: "11111111-2222-3333-4444-555555555555".parse().unwrap(),
            signed_tid: "66666666-7777-8888-9999-000000000000".parse().unwrap(),
            signed_start: at("2029-12-31T00:00:00Z"),
            signed_expiry: at("2030-01-07T00:00:00Z"),
            signed_service: "b".into(),
            signed_version: "2022-11-02".into(),
            value: azure_core::auth::Secret::new(
                "dXNlci1kZWxlZ2F0aW9uLWtleS1mb3ItdGVzdHMtb25seS0zMmI=",
            ),
        };
        let query = sas_query(
            key.into(),
            "devstoreaccount1",
            "media",
            "videos/intro.mp4",
            READ,
            expiry(),
            SasProtocol::Https,
        )
        .unwrap();
        assert_eq!(param(&query, "sp"), "r");
        assert_eq!(
            param(&query, "skoid"),
            "11111111-2222-3333-4444-555555555555"
        );
        assert_eq!(param(&query, "skt"), "2029-12-31T00:00:00Z");
        assert_eq!(
            param(&query, "sig"),
            "lqTqcW05ZNGO7ZPT8ipmXYvrvGq56iE37Bx4n6M6Ohs="
        );
    }
}

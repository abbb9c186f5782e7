//! Both blob stores against the real thing: the Azure store against Azurite on 127.0.0.1:10000
//! (`infra/local/up.sh`; `TEST_AZURE_STORAGE_CONNECTION_STRING` points elsewhere), the local
//! store against a temporary folder. Each test uses its own container (or folder) and removes it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use reqwest::{StatusCode, Url};
use sha2::{Digest, Sha256};
use shared::blob::{AzureBlobStore, BlobStore, ByteStream, LocalBlobStore, StorageAccount};
use shared::config::{BlobBackend, BlobConfig};
use uuid::Uuid;

const MIB: usize = 1024 * 1024;

fn azurite_account() -> StorageAccount {
    let connection_string = std::env::var("TEST_AZURE_STORAGE_CONNECTION_STRING")
        .unwrap_or_else(|_| "UseDevelopmentStorage=true".into());
    StorageAccount::from_connection_string(&connection_string).expect("Azurite connection string")
}

/// The Azure store on Azurite, in a container of its own.
struct Azurite {
    store: AzureBlobStore,
    account: StorageAccount,
    container: String,
}

impl Azurite {
    fn new() -> Self {
        let account = azurite_account();
        Self {
            store: AzureBlobStore::with_account_key(&account).expect("Azure store"),
            account,
            container: format!("test-{}", Uuid::new_v4().simple()),
        }
    }

    /// Deletes the test's container (the store itself never deletes containers).
    async fn remove(self) {
        let credentials = azure_storage::StorageCredentials::access_key(
            self.account.name.clone(),
            azure_core::auth::Secret::new(self.account.key.expose().to_owned()),
        );
        azure_storage_blobs::prelude::ClientBuilder::with_location(
            azure_storage::CloudLocation::Custom {
                account: self.account.name.clone(),
                uri: self.account.blob_endpoint.clone(),
            },
            credentials,
        )
        .container_client(&self.container)
        .delete()
        .await
        .expect("delete the test container");
    }
}

/// The local store in a fresh temporary folder.
struct LocalFolder {
    store: LocalBlobStore,
    root: PathBuf,
}

impl LocalFolder {
    fn new() -> Self {
        let root = std::env::temp_dir().join(format!("blob-store-test-{}", Uuid::new_v4()));
        Self {
            store: LocalBlobStore::new(&root, "http://127.0.0.1:7071/"),
            root,
        }
    }

    fn remove(self) {
        match std::fs::remove_dir_all(&self.root) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                panic!("remove the test folder: {error}")
            }
            _ => {}
        }
    }
}

/// Deterministic bytes that do not repeat at block boundaries.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// `data` as a stream of uneven chunks, as a network body arrives.
fn stream_of(data: &[u8], chunk: usize) -> ByteStream {
    let chunks: Vec<std::io::Result<Bytes>> = data
        .chunks(chunk)
        .map(|piece| Ok(Bytes::copy_from_slice(piece)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

fn sha256(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url).await.expect("GET the read URL")
}

async fn body_of(url: &str) -> Vec<u8> {
    let response = get(url).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {url}");
    response.bytes().await.expect("read the body").to_vec()
}

/// The URL with one query parameter replaced.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut url = Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(key, old)| {
            let new = if key == name {
                value.to_owned()
            } else {
                old.into_owned()
            };
            (key.into_owned(), new)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.into()
}

fn param(url: &str, name: &str) -> String {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .unwrap_or_else(|| panic!("{url} has no {name}"))
}

/// A different valid signature-shaped value: the first character changed.
fn tampered(signature: &str) -> String {
    let mut chars: Vec<char> = signature.chars().collect();
    chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

// Azure store on Azurite.

#[tokio::test]
async fn a_put_blob_reads_back_through_its_sas_url() {
    let azurite = Azurite::new();
    let data = b"hello, blob".to_vec();

    let size = azurite
        .store
        .put(
            &azurite.container,
            "notes/hello.txt",
            "text/plain",
            stream_of(&data, 4),
        )
        .await
        .unwrap();
    let url = azurite
        .store
        .read_url(
            &azurite.container,
            "notes/hello.txt",
            Duration::from_secs(60),
        )
        .await
        .unwrap();

    assert_eq!(size, data.len() as u64);
    assert_eq!(param(&url, "sv"), "2022-11-02");
    assert_eq!(param(&url, "sp"), "r");
    let response = get(&url).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(response.bytes().await.unwrap().to_vec(), data);
    azurite.remove().await;
}

#[tokio::test]
async fn a_sas_url_is_refused_once_expired() {
    let azurite = Azurite::new();
    azurite
        .store
        .put(
            &azurite.container,
            "short.txt",
            "text/plain",
            stream_of(b"brief", 5),
        )
        .await
        .unwrap();
    let url = azurite
        .store
        .read_url(&azurite.container, "short.txt", Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(get(&url).await.status(), StatusCode::OK);

    tokio::time::sleep(Duration::from_secs(4)).await;

    assert_eq!(get(&url).await.status(), StatusCode::FORBIDDEN);
    azurite.remove().await;
}

#[tokio::test]
async fn a_tampered_sas_url_is_refused() {
    let azurite = Azurite::new();
    for name in ["a.txt", "b.txt"] {
        azurite
            .store
            .put(
                &azurite.container,
                name,
                "text/plain",
                stream_of(name.as_bytes(), 8),
            )
            .await
            .unwrap();
    }
    let url = azurite
        .store
        .read_url(&azurite.container, "a.txt", Duration::from_secs(60))
        .await
        .unwrap();

    let cases = [
        (
            "signature changed",
            with_param(&url, "sig", &tampered(&param(&url, "sig"))),
        ),
        (
            "expiry extended",
            with_param(&url, "se", "2099-01-01T00:00:00Z"),
        ),
        ("permission widened", with_param(&url, "sp", "rw")),
        ("another blob", url.replace("/a.txt?", "/b.txt?")),
    ];
    for (case, tampered_url) in cases {
        assert_ne!(tampered_url, url, "{case}: the URL did not change");
        assert_eq!(
            get(&tampered_url).await.status(),
            StatusCode::FORBIDDEN,
            "{case}"
        );
    }
    assert_eq!(get(&url).await.status(), StatusCode::OK);
    azurite.remove().await;
}

#[tokio::test]
async fn a_streamed_multi_block_upload_keeps_its_size_and_content() {
    let azurite = Azurite::new();
    // 10 MiB plus an odd tail, in 100 kB chunks: three blocks, none aligned with a chunk.
    let data = pattern(10 * MIB + 12_345, 7);

    let size = azurite
        .store
        .put(
            &azurite.container,
            "videos/big.mp4",
            "video/mp4",
            stream_of(&data, 100_000),
        )
        .await
        .unwrap();
    let url = azurite
        .store
        .read_url(
            &azurite.container,
            "videos/big.mp4",
            Duration::from_secs(60),
        )
        .await
        .unwrap();

    assert_eq!(size, data.len() as u64);
    let stored = body_of(&url).await;
    assert_eq!(stored.len(), data.len());
    assert_eq!(sha256(&stored), sha256(&data));
    azurite.remove().await;
}

#[tokio::test]
async fn concat_joins_parts_in_the_order_given_not_the_order_uploaded() {
    let azurite = Azurite::new();
    // The first part spans two blocks, so block order within a part matters too.
    let parts = [pattern(5 * MIB + 3, 1), pattern(1000, 2), pattern(MIB, 3)];
    let names: Vec<String> = (1..=3).map(|i| format!("session/part-{i}")).collect();
    for index in [2, 0, 1] {
        azurite
            .store
            .put(
                &azurite.container,
                &names[index],
                "video/webm",
                stream_of(&parts[index], 64 * 1024),
            )
            .await
            .unwrap();
    }

    let size = azurite
        .store
        .concat(
            &azurite.container,
            &names,
            "session/full.webm",
            "video/webm",
        )
        .await
        .unwrap();

    let expected = parts.concat();
    assert_eq!(size, expected.len() as u64);
    let url = azurite
        .store
        .read_url(
            &azurite.container,
            "session/full.webm",
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let response = get(&url).await;
    assert_eq!(response.headers()["content-type"], "video/webm");
    let stored = response.bytes().await.unwrap();
    assert_eq!(sha256(&stored), sha256(&expected));
    azurite.remove().await;
}

#[tokio::test]
async fn a_deleted_blob_is_gone_and_deleting_again_succeeds() {
    let azurite = Azurite::new();
    azurite
        .store
        .put(
            &azurite.container,
            "gone.txt",
            "text/plain",
            stream_of(b"bye", 3),
        )
        .await
        .unwrap();

    azurite
        .store
        .delete(&azurite.container, "gone.txt")
        .await
        .unwrap();
    azurite
        .store
        .delete(&azurite.container, "gone.txt")
        .await
        .unwrap();

    let url = azurite
        .store
        .read_url(&azurite.container, "gone.txt", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(get(&url).await.status(), StatusCode::NOT_FOUND);
    azurite.remove().await;
}

#[tokio::test]
async fn an_empty_body_is_stored_as_an_empty_blob() {
    let azurite = Azurite::new();

    let size = azurite
        .store
        .put(&azurite.container, "empty", "text/plain", stream_of(b"", 1))
        .await
        .unwrap();

    assert_eq!(size, 0);
    let url = azurite
        .store
        .read_url(&azurite.container, "empty", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(body_of(&url).await.is_empty());
    azurite.remove().await;
}

#[tokio::test]
async fn malformed_names_are_refused_before_any_request() {
    let azurite = Azurite::new();
    for name in ["../escape", "with space", ""] {
        let result = azurite
            .store
            .put(&azurite.container, name, "text/plain", stream_of(b"x", 1))
            .await;
        assert!(result.is_err(), "{name:?} was accepted");
    }
}

// Local-folder store.

/// Splits a local read URL into what the route extracts: container, name, exp and sig.
fn local_route_parts(url: &str) -> (String, String, i64, String) {
    let parsed = Url::parse(url).unwrap();
    let path = parsed
        .path()
        .strip_prefix("/api/blobs/")
        .expect("route prefix");
    let (container, name) = path.split_once('/').expect("container and name");
    (
        container.to_owned(),
        name.to_owned(),
        param(url, "exp").parse().unwrap(),
        param(url, "sig"),
    )
}

async fn read_local(store: &LocalBlobStore, url: &str) -> (Vec<u8>, String) {
    use tokio::io::AsyncReadExt;
    let (container, name, exp, sig) = local_route_parts(url);
    store
        .verify_local_url(&container, &name, exp, &sig)
        .unwrap();
    let mut blob = store.open(&container, &name).await.unwrap();
    let mut data = Vec::new();
    blob.file.read_to_end(&mut data).await.unwrap();
    assert_eq!(blob.size, data.len() as u64);
    (data, blob.content_type)
}

#[tokio::test]
async fn local_blobs_round_trip_through_a_verified_url() {
    let local = LocalFolder::new();
    let data = pattern(3 * MIB + 5, 9);

    let size = local
        .store
        .put(
            "media",
            "videos/intro.mp4",
            "video/mp4",
            stream_of(&data, 100_000),
        )
        .await
        .unwrap();
    let url = local
        .store
        .read_url("media", "videos/intro.mp4", Duration::from_secs(60))
        .await
        .unwrap();

    assert_eq!(size, data.len() as u64);
    assert!(
        url.starts_with("http://127.0.0.1:7071/api/blobs/media/videos/intro.mp4?exp="),
        "{url}"
    );
    let (stored, content_type) = read_local(&local.store, &url).await;
    assert_eq!(sha256(&stored), sha256(&data));
    assert_eq!(content_type, "video/mp4");
    local.remove();
}

#[tokio::test]
async fn local_urls_are_refused_when_tampered_with() {
    let local = LocalFolder::new();
    let url = local
        .store
        .read_url("media", "a.txt", Duration::from_secs(60))
        .await
        .unwrap();
    let (container, name, exp, sig) = local_route_parts(&url);
    local
        .store
        .verify_local_url(&container, &name, exp, &sig)
        .unwrap();

    let (container, name) = (container.as_str(), name.as_str());
    let cases = [
        ("signature changed", container, name, exp, tampered(&sig)),
        ("signature not hex", container, name, exp, "zz".to_owned()),
        ("expiry extended", container, name, exp + 3600, sig.clone()),
        ("another blob", container, "b.txt", exp, sig.clone()),
        ("another container", "recordings", name, exp, sig.clone()),
    ];
    for (case, container, name, exp, sig) in cases {
        let error = local
            .store
            .verify_local_url(container, name, exp, &sig)
            .unwrap_err();
        assert_eq!(error.code(), Some("BLOB_URL_INVALID"), "{case}");
    }
    local.remove();
}

#[tokio::test]
async fn local_urls_are_refused_once_expired() {
    let local = LocalFolder::new();
    let url = local
        .store
        .read_url("media", "a.txt", Duration::from_secs(0))
        .await
        .unwrap();
    let (container, name, exp, sig) = local_route_parts(&url);

    tokio::time::sleep(Duration::from_millis(2100)).await;

    let error = local
        .store
        .verify_local_url(&container, &name, exp, &sig)
        .unwrap_err();
    assert_eq!(error.code(), Some("BLOB_URL_EXPIRED"));
    local.remove();
}

#[tokio::test]
async fn local_concat_joins_parts_in_order_and_delete_removes() {
    let local = LocalFolder::new();
    let parts = [pattern(70_000, 4), pattern(10, 5), pattern(300_000, 6)];
    let names: Vec<String> = (1..=3).map(|i| format!("session/part-{i}")).collect();
    for index in [1, 2, 0] {
        local
            .store
            .put(
                "recordings",
                &names[index],
                "video/webm",
                stream_of(&parts[index], 4096),
            )
            .await
            .unwrap();
    }

    let size = local
        .store
        .concat("recordings", &names, "session/full.webm", "video/webm")
        .await
        .unwrap();

    let expected = parts.concat();
    assert_eq!(size, expected.len() as u64);
    let url = local
        .store
        .read_url("recordings", "session/full.webm", Duration::from_secs(60))
        .await
        .unwrap();
    let (stored, content_type) = read_local(&local.store, &url).await;
    assert_eq!(sha256(&stored), sha256(&expected));
    assert_eq!(content_type, "video/webm");

    local
        .store
        .delete("recordings", "session/full.webm")
        .await
        .unwrap();
    local
        .store
        .delete("recordings", "session/full.webm")
        .await
        .unwrap();
    let error = local
        .store
        .open("recordings", "session/full.webm")
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("BLOB_NOT_FOUND"));
    local.remove();
}

#[tokio::test]
async fn a_failed_upload_leaves_no_blob_behind() {
    let local = LocalFolder::new();
    let body: ByteStream = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"partial")),
        Err(std::io::Error::other("client went away")),
    ])
    .boxed();

    let result = local
        .store
        .put("media", "broken.bin", "application/octet-stream", body)
        .await;

    assert!(result.is_err());
    let error = local.store.open("media", "broken.bin").await.unwrap_err();
    assert_eq!(error.code(), Some("BLOB_NOT_FOUND"));
    local.remove();
}

#[tokio::test]
async fn the_configured_backend_is_chosen_and_only_the_folder_serves_local_urls() {
    let local_dir = std::env::temp_dir().join(format!("blob-store-test-{}", Uuid::new_v4()));
    let config = |backend| BlobConfig {
        backend,
        media_container: "media".into(),
        recordings_container: "recordings".into(),
        public_base_url: "http://127.0.0.1:7071".into(),
    };

    let folder: Arc<dyn BlobStore> =
        shared::blob::from_config(&config(BlobBackend::LocalFolder { dir: local_dir })).unwrap();
    let azure: Arc<dyn BlobStore> =
        shared::blob::from_config(&config(BlobBackend::SharedKey(azurite_account()))).unwrap();

    assert!(folder.local().is_some());
    assert!(azure.local().is_none());
}

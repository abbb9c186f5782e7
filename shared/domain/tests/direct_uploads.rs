//! Direct uploads against the real thing, Azurite on 127.0.0.1:10000 (`infra/local/up.sh`;
//! `TEST_AZURE_STORAGE_CONNECTION_STRING` points elsewhere): the blob store's URLs and the upload
//! checks, with real PUTs to the write URLs as a browser sends them. Each test uses its own container and removes it.

use std::time::Duration;

use azure_clients::blob::{AzureBlobStore, BlobProperties, BlobStore, StorageAccount};
use bytes::Bytes;
use domain::uploads::{PNG, UploadRules, UploadTarget, WEBM};
use reqwest::{StatusCode, Url};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
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
            azure_core::auth::Secret::new(self.account.key.expose_secret().to_owned()),
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

// Write URLs./// What a browser does with an [`UploadTarget`]: `PUT` the bytes with its headers (and a
/// Content-Length, `0` included).
async fn send(target: &UploadTarget, body: Vec<u8>) -> StatusCode {
    let mut request = reqwest::Client::new()
        .put(&target.url)
        .header(reqwest::header::CONTENT_LENGTH, body.len())
        .body(body);
    for (name, value) in &target.headers {
        request = request.header(*name, value);
    }
    request.send().await.expect("PUT to the write URL").status()
}

const HOUR: Duration = Duration::from_secs(3600);

// Write URLs.

#[tokio::test]
async fn a_file_put_to_its_write_url_reads_back_through_a_read_url() {
    let azurite = Azurite::new();
    let data = pattern(3 * MIB + 17, 1);
    let target = UploadTarget::put_blob(
        &azurite.store,
        &azurite.container,
        "uploads/photo.png",
        "image/png",
        HOUR,
        5 * MIB as u64,
    )
    .await
    .unwrap();
    assert_eq!(target.method, "PUT");
    assert_eq!(param(&target.url, "sp"), "cw");
    assert_eq!(send(&target, data.clone()).await, StatusCode::CREATED);

    assert_eq!(
        azurite
            .store
            .properties(&azurite.container, "uploads/photo.png")
            .await
            .unwrap(),
        Some(BlobProperties {
            size: data.len() as u64,
            content_type: "image/png".into()
        })
    );
    let url = azurite
        .store
        .read_url(&azurite.container, "uploads/photo.png", HOUR)
        .await
        .unwrap();
    assert_eq!(param(&url, "sp"), "r");
    assert_eq!(sha256(&body_of(&url).await), sha256(&data));
    assert_eq!(
        azurite
            .store
            .head(&azurite.container, "uploads/photo.png", 12)
            .await
            .unwrap(),
        Bytes::copy_from_slice(&data[..12])
    );
    azurite.remove().await;
}

#[tokio::test]
async fn a_write_url_writes_its_one_blob_and_cannot_read_it() {
    let azurite = Azurite::new();
    let target = UploadTarget::put_blob(
        &azurite.store,
        &azurite.container,
        "mine.png",
        "image/png",
        HOUR,
        100,
    )
    .await
    .unwrap();
    assert_eq!(send(&target, b"first".to_vec()).await, StatusCode::CREATED);

    // Another blob name under the same signature: refused, nothing written.
    let other = UploadTarget {
        url: target.url.replace("/mine.png?", "/other.png?"),
        ..target.clone()
    };
    assert_eq!(send(&other, b"x".to_vec()).await, StatusCode::FORBIDDEN);
    assert_eq!(
        azurite
            .store
            .properties(&azurite.container, "other.png")
            .await
            .unwrap(),
        None
    );
    // Tampered: a changed signature, or the permission widened to read.
    for url in [
        with_param(&target.url, "sig", &tampered(&param(&target.url, "sig"))),
        with_param(&target.url, "sp", "rcw"),
    ] {
        let tampered = UploadTarget {
            url,
            ..target.clone()
        };
        assert_eq!(
            send(&tampered, b"evil".to_vec()).await,
            StatusCode::FORBIDDEN
        );
    }
    // The write URL does not read.
    assert_eq!(get(&target.url).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        azurite
            .store
            .head(&azurite.container, "mine.png", 5)
            .await
            .unwrap(),
        Bytes::from_static(b"first")
    );
    azurite.remove().await;
}

#[tokio::test]
async fn write_and_read_urls_are_refused_once_expired() {
    let azurite = Azurite::new();
    let target = UploadTarget::put_blob(
        &azurite.store,
        &azurite.container,
        "late.png",
        "image/png",
        Duration::from_secs(1),
        100,
    )
    .await
    .unwrap();
    let read = azurite
        .store
        .read_url(&azurite.container, "late.png", Duration::from_secs(1))
        .await
        .unwrap();
    // SAS times have whole seconds: wait past the next one.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(send(&target, b"late".to_vec()).await, StatusCode::FORBIDDEN);
    assert_eq!(get(&read).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        azurite
            .store
            .properties(&azurite.container, "late.png")
            .await
            .unwrap(),
        None
    );
    azurite.remove().await;
}

// Checking what arrived.

#[tokio::test]
async fn verify_accepts_the_declared_type_and_deletes_what_it_refuses() {
    let azurite = Azurite::new();
    let rules = UploadRules {
        types: &[PNG],
        max_bytes: 64,
    };
    let png = |len: usize| {
        let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
        bytes.resize(len, 7);
        bytes
    };
    // (what is sent, the content type it is stored with, the refusal)
    let cases: [(Vec<u8>, &str, Option<&str>); 5] = [
        (png(64), "image/png", None),
        (png(65), "image/png", Some("PAYLOAD_TOO_LARGE")),
        (
            b"GIF89a-not-a-png".to_vec(),
            "image/png",
            Some("CONTENT_TYPE_MISMATCH"),
        ),
        (png(20), "image/gif", Some("CONTENT_TYPE_MISMATCH")),
        (Vec::new(), "image/png", Some("EMPTY_BODY")),
    ];
    for (index, (body, content_type, refusal)) in cases.into_iter().enumerate() {
        let name = format!("case-{index}");
        let target = UploadTarget::put_blob(
            &azurite.store,
            &azurite.container,
            &name,
            content_type,
            HOUR,
            64,
        )
        .await
        .unwrap();
        assert_eq!(
            send(&target, body.clone()).await,
            StatusCode::CREATED,
            "case {index}"
        );
        let verified = rules
            .verify(&azurite.store, &azurite.container, &name, &PNG)
            .await;
        let stored = azurite
            .store
            .properties(&azurite.container, &name)
            .await
            .unwrap();
        match refusal {
            None => {
                assert_eq!(verified.unwrap(), body.len() as u64);
                assert!(stored.is_some());
            }
            Some(code) => {
                assert_eq!(verified.unwrap_err().code(), Some(code), "case {index}");
                assert_eq!(stored, None, "case {index}: a refused blob is deleted");
            }
        }
    }
    let nothing = rules
        .verify(&azurite.store, &azurite.container, "never-sent", &PNG)
        .await;
    assert_eq!(nothing.unwrap_err().code(), Some("UPLOAD_INCOMPLETE"));
    azurite.remove().await;
}

// Blocks.

#[tokio::test]
async fn blocks_sent_out_of_order_and_again_commit_in_the_order_given() {
    let azurite = Azurite::new();
    let name = "class/recording.webm";
    let block = |n: u8| Bytes::from(format!("part-{n:03}"));
    let put = |n: u8, body: Vec<u8>| {
        let azurite = &azurite;
        async move {
            let target = UploadTarget::put_block(
                &azurite.store,
                &azurite.container,
                name,
                &block(n),
                HOUR,
                MIB as u64,
            )
            .await
            .unwrap();
            assert!(target.headers.is_empty());
            send(&target, body).await
        }
    };
    let mut first = vec![0x1A, 0x45, 0xDF, 0xA3];
    first.extend(pattern(1000, 1));
    let second = pattern(2000, 2);
    let third = pattern(3000, 3);
    assert_eq!(put(3, third.clone()).await, StatusCode::CREATED);
    assert_eq!(put(1, pattern(10, 9)).await, StatusCode::CREATED);
    assert_eq!(put(2, second.clone()).await, StatusCode::CREATED);
    // Part 1 sent again replaces its block.
    assert_eq!(put(1, first.clone()).await, StatusCode::CREATED);

    let mut listed = azurite
        .store
        .blocks(&azurite.container, name)
        .await
        .unwrap();
    listed.sort_by(|a, b| a.id.cmp(&b.id));
    let summary: Vec<_> = listed
        .iter()
        .map(|block| (block.id.clone(), block.size, block.committed))
        .collect();
    assert_eq!(
        summary,
        vec![
            (block(1), first.len() as u64, false),
            (block(2), 2000, false),
            (block(3), 3000, false),
        ]
    );
    assert_eq!(
        azurite
            .store
            .properties(&azurite.container, name)
            .await
            .unwrap(),
        None,
        "uncommitted blocks are no blob yet"
    );

    let ids = [block(1), block(2), block(3)];
    for _ in 0..2 {
        // Committing again (a retried timer run) changes nothing.
        azurite
            .store
            .commit_blocks(&azurite.container, name, &ids, WEBM.content_type)
            .await
            .unwrap();
    }
    let url = azurite
        .store
        .read_url(&azurite.container, name, HOUR)
        .await
        .unwrap();
    let expected = [first, second, third].concat();
    assert_eq!(sha256(&body_of(&url).await), sha256(&expected));
    let properties = azurite
        .store
        .properties(&azurite.container, name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(properties.size, expected.len() as u64);
    assert_eq!(properties.content_type, "video/webm");
    assert!(
        azurite
            .store
            .blocks(&azurite.container, name)
            .await
            .unwrap()
            .iter()
            .all(|block| block.committed)
    );
    azurite.remove().await;
}

#[tokio::test]
async fn a_blob_without_blocks_lists_none_and_deleting_twice_succeeds() {
    let azurite = Azurite::new();
    let store = &azurite.store;
    let container = &azurite.container;
    // The container exists once a write URL was handed out.
    store.write_url(container, "x", HOUR).await.unwrap();
    assert!(store.blocks(container, "nothing").await.unwrap().is_empty());
    let target = UploadTarget::put_blob(store, container, "gone.png", "image/png", HOUR, 10)
        .await
        .unwrap();
    assert_eq!(send(&target, b"abc".to_vec()).await, StatusCode::CREATED);
    store.delete(container, "gone.png").await.unwrap();
    assert_eq!(store.properties(container, "gone.png").await.unwrap(), None);
    store.delete(container, "gone.png").await.unwrap();
    azurite.remove().await;
}

/// `infra/local/up.sh` gives Azurite the CORS rule Bicep gives the storage account.
#[tokio::test]
async fn a_browsers_preflight_for_an_upload_is_allowed() {
    let azurite = Azurite::new();
    let target = UploadTarget::put_blob(
        &azurite.store,
        &azurite.container,
        "photo.png",
        "image/png",
        HOUR,
        10,
    )
    .await
    .unwrap();
    let preflight = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, &target.url)
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "PUT")
        .header(
            "access-control-request-headers",
            "content-type,x-ms-blob-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::OK);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    azurite.remove().await;
}

#[tokio::test]
async fn malformed_names_are_refused_before_any_request() {
    let azurite = Azurite::new();
    let store = &azurite.store;
    assert!(store.write_url("Bad_Container", "x", HOUR).await.is_err());
    assert!(
        store
            .read_url(&azurite.container, "../x", HOUR)
            .await
            .is_err()
    );
    assert!(store.properties(&azurite.container, "a//b").await.is_err());
    assert!(store.delete(&azurite.container, "").await.is_err());
}

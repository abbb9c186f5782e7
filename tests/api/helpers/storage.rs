//! Blob storage as a browser reaches it.

use super::*;

/// Sends `body` as an upload target (`{url, method, headers}`) says, straight to storage, as a
/// browser would; the status storage answered.
pub async fn put_to_storage(target: &Value, body: Vec<u8>) -> StatusCode {
    assert_eq!(target["method"], "PUT");
    let url = target["url"].as_str().expect("an upload URL");
    let mut request = reqwest::Client::new()
        .put(url)
        .header("content-length", body.len())
        .body(body);
    for (name, value) in target["headers"].as_object().expect("headers") {
        request = request.header(name, value.as_str().unwrap());
    }
    request.send().await.expect("PUT to storage").status()
}

//! HTTP validators for public responses: a strong `ETag` from the body's bytes, and the
//! `If-None-Match` comparison (weak, as RFC 9110 asks for GET).

use axum::http::HeaderValue;
use data_encoding::BASE64URL_NOPAD;
use sha2::{Digest, Sha256};

/// A strong entity tag for `body`: 128 bits of its SHA-256, quoted.
pub fn strong_etag(body: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(body);
    let tag = format!("\"{}\"", BASE64URL_NOPAD.encode(&digest[..16]));
    HeaderValue::from_str(&tag).expect("base64url is a valid header value")
}

/// Whether `If-None-Match` names `etag` (or is `*`).
pub fn none_match_names(if_none_match: &HeaderValue, etag: &HeaderValue) -> bool {
    let (Ok(tags), Ok(etag)) = (if_none_match.to_str(), etag.to_str()) else {
        return false;
    };
    tags.split(',')
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_of_tags_weak_or_strong_matches_its_member() {
        let etag = strong_etag(b"body");
        let listed = format!("\"x\", W/{}", etag.to_str().unwrap());
        assert!(none_match_names(
            &HeaderValue::from_str(&listed).unwrap(),
            &etag
        ));
        assert!(none_match_names(&HeaderValue::from_static("*"), &etag));
        assert!(!none_match_names(&HeaderValue::from_static("\"x\""), &etag));
        assert_ne!(strong_etag(b"body"), strong_etag(b"other"));
    }
}

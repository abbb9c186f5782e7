//! Opaque bearer tokens: 256 random bits for the client, their SHA-256 for the database.

use data_encoding::{BASE64URL_NOPAD, HEXLOWER};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new token and the hash to store in its place.
pub fn generate() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = BASE64URL_NOPAD.encode(&bytes);
    let hash = hash(&token);
    (token, hash)
}

pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Cache key of the session behind a token hash.
pub fn session_cache_key(token_hash: &[u8]) -> String {
    format!("session:{}", HEXLOWER.encode(token_hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_hash_to_what_is_stored() {
        let (first, first_hash) = generate();
        let (second, _) = generate();
        assert_ne!(first, second);
        assert_eq!(first.len(), 43, "256 bits in unpadded base64url");
        assert_eq!(hash(&first), first_hash);
        assert_eq!(first_hash.len(), 32);
    }
}

//! HS256 JSON Web Tokens, as Web PubSub takes them: signed with the UTF-8 bytes of the access key
//! string (not its base64 decoding).

use data_encoding::BASE64URL_NOPAD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

pub fn sign(claims: &Value, key: &str) -> String {
    let header = BASE64URL_NOPAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = BASE64URL_NOPAD.encode(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{payload}");
    let signature = BASE64URL_NOPAD.encode(&mac(key, signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

pub fn mac(key: &str, message: &[u8]) -> Vec<u8> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokens_match_an_independent_hs256_implementation() {
        // Made with Python: hmac.new(b"key-one", header + b"." + payload, sha256), base64url.
        let token = sign(&json!({"sub": "u1"}), "key-one");
        assert_eq!(
            token,
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1MSJ9.V2CLGOGE9ZwzN0dV215rL7MqafKv28LvyK-CG8NRpO8"
        );
    }
}

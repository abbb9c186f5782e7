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

/// The claims of a token signed with `key`, if the signature holds (expiry is the caller's).
pub fn verify(token: &str, key: &str) -> Option<Value> {
    let (signing_input, signature) = token.rsplit_once('.')?;
    let (header, payload) = signing_input.split_once('.')?;
    let header: Value =
        serde_json::from_slice(&BASE64URL_NOPAD.decode(header.as_bytes()).ok()?).ok()?;
    if header["alg"] != "HS256" {
        return None;
    }
    let signature = BASE64URL_NOPAD.decode(signature.as_bytes()).ok()?;
    let mut check = Hmac::<Sha256>::new_from_slice(key.as_bytes()).ok()?;
    check.update(signing_input.as_bytes());
    check.verify_slice(&signature).ok()?;
    serde_json::from_slice(&BASE64URL_NOPAD.decode(payload.as_bytes()).ok()?).ok()
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
    fn tokens_verify_with_their_key_only() {
        let claims = json!({"aud": "http://localhost/api/hubs/chat/:send", "exp": 2_000_000_000});
        let token = sign(&claims, "key-one");
        assert_eq!(verify(&token, "key-one"), Some(claims));
        assert_eq!(verify(&token, "key-two"), None);
        let (head, signature) = token.rsplit_once('.').unwrap();
        let forged = format!("{head}x.{signature}");
        assert_eq!(verify(&forged, "key-one"), None);
    }

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

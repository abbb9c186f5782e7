//! Client access tokens (`?access_token=` on the client URL): HS256 JWTs the hub signs with its
//! own key, as the service does for `:generateToken`. That key never leaves the hub.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::Value;

pub fn sign(claims: &Value, key: &str) -> String {
    EncodingKey::from_secret(key.as_bytes())
        .and_then(|key| jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key))
        .expect("HS256 signing with a non-empty key does not fail")
}

/// The claims of an unexpired token signed with `key`.
pub fn verify(token: &str, key: &str) -> Option<Value> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_aud = false;
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp"]);
    let key = DecodingKey::from_secret(key.as_bytes()).ok()?;
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .ok()
        .map(|data| data.claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokens_verify_with_their_key_only_and_until_they_expire() {
        let claims = json!({"sub": "u1", "exp": 4_000_000_000_i64});
        let token = sign(&claims, "key-one");
        assert_eq!(verify(&token, "key-one"), Some(claims));
        assert_eq!(verify(&token, "key-two"), None);
        let (head, signature) = token.rsplit_once('.').unwrap();
        assert_eq!(verify(&format!("{head}x.{signature}"), "key-one"), None);
        let expired = sign(&json!({"sub": "u1", "exp": 1_000_000_000}), "key-one");
        assert_eq!(verify(&expired, "key-one"), None);
    }
}

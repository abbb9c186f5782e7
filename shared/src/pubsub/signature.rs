//! The `ce-signature` header on Web PubSub's upstream calls: `sha256=<hex>` per access key
//! (primary, secondary), each the HMAC-SHA256 of the connection id. A request is genuine when
//! any value matches any of our keys, so either key works during a rotation.

use data_encoding::HEXLOWER;

use super::jwt::mac;

pub fn signature_for(key: &str, connection_id: &str) -> String {
    format!(
        "sha256={}",
        HEXLOWER.encode(&mac(key, connection_id.as_bytes()))
    )
}

pub fn is_valid(header: &str, connection_id: &str, keys: &[&str]) -> bool {
    let expected: Vec<String> = keys
        .iter()
        .map(|key| signature_for(key, connection_id))
        .collect();
    header.split(',').map(str::trim).any(|value| {
        expected
            .iter()
            .any(|expected| constant_time_eq(value, expected))
    })
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH";

    #[test]
    fn matches_the_documented_test_vector() {
        assert_eq!(
            signature_for(KEY, "conn1"),
            "sha256=8de7281e588e23b0a30a7180ffa240257b8176e983004c240c9f3f7a7233c993"
        );
    }

    #[test]
    fn any_value_may_match_any_key() {
        let old = signature_for("old-key", "conn1");
        let new = signature_for(KEY, "conn1");
        assert!(is_valid(&format!("{old},{new}"), "conn1", &[KEY]));
        assert!(is_valid(&old, "conn1", &[KEY, "old-key"]));
        assert!(!is_valid(&old, "conn1", &[KEY]));
        assert!(!is_valid(&new, "conn2", &[KEY]));
        assert!(!is_valid("", "conn1", &[KEY]));
    }
}

//! Gateway signatures, all HMAC-SHA256 in lowercase hex, compared in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a Stripe signature's timestamp may be from now.
pub const STRIPE_TOLERANCE_SECONDS: i64 = 300;

/// Razorpay checkout: `HMAC(key_secret, "{order_id}|{payment_id}")`, with the order id we stored.
pub fn razorpay_checkout_valid(
    key_secret: &str,
    order_id: &str,
    payment_id: &str,
    signature: &str,
) -> bool {
    matches(
        key_secret,
        format!("{order_id}|{payment_id}").as_bytes(),
        signature,
    )
}

/// Razorpay webhook: `HMAC(webhook_secret, raw_body)`.
pub fn razorpay_webhook_valid(webhook_secret: &str, raw_body: &[u8], signature: &str) -> bool {
    matches(webhook_secret, raw_body, signature)
}

/// Stripe webhook: header `t=…,v1=…[,v1=…]`; valid if any `v1` is
/// `HMAC(endpoint_secret, "{t}.{raw_body}")` and `t` is within the tolerance of `now`.
pub fn stripe_webhook_valid(
    endpoint_secret: &str,
    raw_body: &[u8],
    header: &str,
    now: i64,
) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.push(value),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return false;
    };
    if (now - timestamp).abs() > STRIPE_TOLERANCE_SECONDS {
        return false;
    }
    let mut payload = format!("{timestamp}.").into_bytes();
    payload.extend_from_slice(raw_body);
    signatures
        .iter()
        .any(|signature| matches(endpoint_secret, &payload, signature))
}

/// Lowercase hex HMAC-SHA256, for signing (tests and mocks use it too).
pub fn sign(secret: &str, message: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(message);
    data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
}

fn matches(secret: &str, message: &[u8], signature_hex: &str) -> bool {
    let Ok(signature) = data_encoding::HEXLOWER_PERMISSIVE.decode(signature_hex.trim().as_bytes())
    else {
        return false;
    };
    let mut mac = mac(secret);
    mac.update(message);
    mac.verify_slice(&signature).is_ok()
}

fn mac(secret: &str) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors from the gateways' documentation (azure-contracts §6-7).
    #[test]
    fn documented_vectors() {
        assert!(razorpay_checkout_valid(
            "test_secret",
            "order_EKwxwAgItmmXdp",
            "pay_29QQoUBi66xm2f",
            "1675549575062101c963f74dfcf27c7368919d5a09736690061d2afa8acea007"
        ));
        let body = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;
        let header =
            "t=1700000000,v1=001ce3ef73e456cedaab328328720d3ad59defb8bbd0f1518f46c04ad4ac0bb7";
        assert!(stripe_webhook_valid(
            "whsec_test",
            body,
            header,
            1_700_000_100
        ));
    }

    #[test]
    fn tampering_and_stale_timestamps_are_refused() {
        assert!(!razorpay_checkout_valid(
            "test_secret",
            "order_EKwxwAgItmmXdp",
            "pay_other",
            "1675549575062101c963f74dfcf27c7368919d5a09736690061d2afa8acea007"
        ));
        assert!(!razorpay_webhook_valid("secret", b"{}", "not hex"));
        let body = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;
        let good = "001ce3ef73e456cedaab328328720d3ad59defb8bbd0f1518f46c04ad4ac0bb7";
        assert!(
            !stripe_webhook_valid(
                "whsec_test",
                body,
                &format!("t=1700000000,v1={good}"),
                1_700_000_301
            ),
            "too old"
        );
        assert!(
            !stripe_webhook_valid(
                "whsec_test",
                b"{}",
                &format!("t=1700000000,v1={good}"),
                1_700_000_000
            ),
            "other body"
        );
        assert!(
            stripe_webhook_valid(
                "whsec_test",
                body,
                &format!("t=1700000000,v1=00ff,v1={good}"),
                1_700_000_000
            ),
            "any v1 may match"
        );
        assert!(!stripe_webhook_valid(
            "whsec_test",
            body,
            "v1=nothing",
            1_700_000_000
        ));
    }
}

//! RFC 6238 time-based one-time passwords (SHA-1, 6 digits, 30 s steps), as authenticator apps
//! implement them.

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use subtle::ConstantTimeEq;

const STEP_SECONDS: i64 = 30;
/// Steps accepted either side of now, for clock drift between phone and server.
const DRIFT_STEPS: i64 = 1;

/// A new 160-bit secret, base32 as authenticator apps expect.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    BASE32_NOPAD.encode(&bytes)
}

/// The `otpauth://` URL an authenticator app reads from a QR code.
pub fn otpauth_url(secret: &str, account: &str) -> String {
    let account: String = account
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect();
    format!(
        "otpauth://totp/CodeConnect:{account}?secret={secret}&issuer=CodeConnect&algorithm=SHA1&digits=6&period=30"
    )
}

/// The time step `code` is valid for at `unix_time`, if any (within the allowed drift).
pub fn matching_step(secret: &str, code: &str, unix_time: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let key = BASE32_NOPAD.decode(secret.as_bytes()).ok()?;
    let now = unix_time / STEP_SECONDS;
    // Every step is compared, each in constant time, so timing tells nothing about the code.
    (now - DRIFT_STEPS..=now + DRIFT_STEPS).fold(None, |found, step| {
        let expected = format!("{:06}", code_at(&key, step) % 1_000_000);
        let equal: bool = expected.as_bytes().ct_eq(code.as_bytes()).into();
        found.or(equal.then_some(step))
    })
}

/// The current code for a base32 secret (what an authenticator app shows).
pub fn current_code(secret: &str, unix_time: i64) -> Option<String> {
    let key = BASE32_NOPAD.decode(secret.as_bytes()).ok()?;
    Some(format!(
        "{:06}",
        code_at(&key, unix_time / STEP_SECONDS) % 1_000_000
    ))
}

/// HOTP (RFC 4226) value before reduction to digits.
fn code_at(key: &[u8], step: i64) -> u32 {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 seed "12345678901234567890" (8-digit values, last 6 here).
    #[test]
    fn rfc_6238_vectors() {
        let secret = BASE32_NOPAD.encode(b"12345678901234567890");
        for (time, expected) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(
                current_code(&secret, time).as_deref(),
                Some(expected),
                "time {time}"
            );
        }
    }

    #[test]
    fn codes_match_within_one_step_of_drift_only() {
        let secret = generate_secret();
        let now = 1_700_000_000;
        let code = current_code(&secret, now).unwrap();
        assert_eq!(matching_step(&secret, &code, now), Some(now / 30));
        assert!(matching_step(&secret, &code, now + 30).is_some());
        assert_eq!(matching_step(&secret, &code, now + 95), None);
        assert_eq!(matching_step(&secret, "12a456", now), None);
    }

    #[test]
    fn the_account_name_is_escaped_in_the_url() {
        let url = otpauth_url("ABC", "ann+1@example.com");
        assert!(url.starts_with("otpauth://totp/CodeConnect:ann%2B1%40example.com?secret=ABC"));
    }
}
